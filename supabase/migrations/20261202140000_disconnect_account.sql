-- The owner disconnects an account from the web app: the tokens are wiped and syncing stops, the archive
-- stays, and connecting again resumes. Unlike trove_private.deauthorize_account (the platform said access was
-- revoked) it tells the owner nothing: they did it themselves. Both cancel the account's waiting syncs the
-- same way, through trove_private.cancel_waiting_syncs.
create function trove_private.cancel_waiting_syncs(p_account_id uuid, p_reason text)
returns void
language sql
set search_path = ''
as $$
    with cancelled as (
        update public.sync_requests as r
        set status = 'completed', locked_by = null, locked_until = null, last_error = p_reason
        where r.account_id = p_account_id and r.status = 'pending'
        returning r.sync_log_id
    )

    update public.sync_logs as l
    set status = 'cancelled', error_message = p_reason
    from cancelled
    where l.id = cancelled.sync_log_id
$$;

revoke all on function trove_private.cancel_waiting_syncs(uuid, text) from public, anon, authenticated;
grant execute on function trove_private.cancel_waiting_syncs(uuid, text) to service_role;

create or replace function trove_private.deauthorize_account(p_account_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
    update public.connected_accounts as ca
    set status = 'disconnected', access_token = null, refresh_token = null, token_expires_at = null,
        webhook_subscribed = false, error_message = 'Access was revoked on the platform.'
    where ca.id = p_account_id;
    perform trove_private.cancel_waiting_syncs(p_account_id, 'access revoked');
    perform trove_private.notify_account_owner(
        p_account_id, 'account_deauthorized', 'Trove no longer has access to your account',
        'You revoked Trove''s access on the platform. Your archive is kept; reconnect to resume syncing.'
    );
end;
$$;

create function trove_private.disconnect_account(p_account_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
    update public.connected_accounts as ca
    set status = 'disconnected', access_token = null, refresh_token = null, token_expires_at = null,
        token_binding = null, token_refresh_at = null, next_sync_at = null, webhook_subscribed = false,
        error_message = 'You disconnected this account.'
    where ca.id = p_account_id;
    perform trove_private.cancel_waiting_syncs(p_account_id, 'disconnected by the owner');
end;
$$;

revoke all on function trove_private.disconnect_account(uuid) from public, anon, authenticated;
grant execute on function trove_private.disconnect_account(uuid) to service_role;
