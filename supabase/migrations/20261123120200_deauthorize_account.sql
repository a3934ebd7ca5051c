-- The user revoked Trove's access on the platform (Strava: athlete update with authorized=false): the
-- account is disconnected, its tokens wiped, queued syncs cancelled and the owner told. The archive stays.
create function trove_private.deauthorize_account(p_account_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
    update public.connected_accounts as ca
    set status = 'disconnected', access_token = null, refresh_token = null, token_expires_at = null,
        webhook_subscribed = false, error_message = 'Access was revoked on the platform.'
    where ca.id = p_account_id;
    with cancelled as (
        update public.sync_requests as r
        set status = 'completed', locked_by = null, locked_until = null, last_error = 'access revoked'
        where r.account_id = p_account_id and r.status = 'pending'
        returning r.sync_log_id
    )
    update public.sync_logs as l
    set status = 'cancelled', error_message = 'access revoked'
    from cancelled
    where l.id = cancelled.sync_log_id;
    perform trove_private.notify_account_owner(
        p_account_id, 'account_deauthorized', 'Trove no longer has access to your account',
        'You revoked Trove''s access on the platform. Your archive is kept; reconnect to resume syncing.'
    );
end;
$$;

revoke execute on function trove_private.deauthorize_account(uuid) from public;
grant execute on function trove_private.deauthorize_account(uuid) to service_role;
