-- Tokens that lapse unless refreshed: the connector says by when a token must be renewed (TokenSet.refresh_at,
-- e.g. a week before a 60-day token expires), the worker stores it here with the token, and a pg_cron job
-- queues a token_refresh run for every account whose time has come, so an account nobody synced for weeks
-- keeps its access. Null: the token is refreshed when a sync needs it (rotating refresh tokens).
alter table public.connected_accounts add column token_refresh_at timestamptz;

comment on column public.connected_accounts.token_refresh_at is
'renew the token by then even if the account is idle (null: refreshed when used)';

create index connected_accounts_token_refresh_at_idx on public.connected_accounts (token_refresh_at)
where token_refresh_at is not null;

-- The column is as secret as the token's expiry is not: users may see when their token will be renewed.
grant select (token_refresh_at) on table public.connected_accounts to authenticated;

-- Queue a token refresh for every connected account whose token is due for renewal (joining a sync already
-- in flight for it: every sync renews a due token first). Returns how many were queued.
create function trove_private.enqueue_token_refreshes(p_now timestamptz default now())
returns integer
language plpgsql
set search_path = ''
as $$
declare
    due uuid;
    enqueued integer := 0;
begin
    for due in
        select ca.id from public.connected_accounts as ca
        where ca.token_refresh_at <= p_now
            and ca.status in ('active', 'error')
            and ca.access_token is not null
        order by ca.token_refresh_at
    loop
        perform trove_private.enqueue_sync(due, 'token_refresh', 'token_refresh', p_now);
        enqueued := enqueued + 1;
    end loop;
    return enqueued;
end;
$$;

revoke execute on function trove_private.enqueue_token_refreshes(timestamptz) from public;
grant execute on function trove_private.enqueue_token_refreshes(timestamptz) to service_role;

-- Hourly, where pg_cron runs (see 20261123150000_schedules).
do $cron$
begin
    if not exists (select from pg_extension where extname = 'pg_cron')
        or current_database() <> coalesce(current_setting('cron.database_name', true), 'postgres') then
        return;
    end if;
    perform cron.schedule('trove-refresh-tokens', '23 * * * *', 'select trove_private.enqueue_token_refreshes()');
end;
$cron$;
