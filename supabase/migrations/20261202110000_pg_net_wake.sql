-- Waking the service from the database (pg_net), for workers that scale to zero or cannot hold a LISTEN
-- connection through a transaction pooler: new work (every table whose inserts NOTIFY trove_work) and a
-- pg_cron heartbeat (a lost call is caught within the minute: pg_net does not retry) POST to the service's
-- wake endpoint, which drains a bounded batch. Where pg_net does not exist, or no wake target is set, nothing
-- is sent and LISTEN/NOTIFY alone wakes the long-running workers.
--
-- The target: Supabase Vault's secrets `trove_wake_url` and `trove_wake_secret` where Vault exists, else
-- the row of trove_private.wake_settings (trove_private.set_wake_target).

create table trove_private.wake_settings (
    singleton boolean primary key default true,
    url text not null,
    secret text not null,
    constraint wake_settings_singleton_check check (singleton),
    constraint wake_settings_url_check check (url ~* '^https?://'),
    constraint wake_settings_secret_check check (length(secret) >= 32)
);

revoke all on table trove_private.wake_settings from public;
grant select, insert, update, delete on table trove_private.wake_settings to service_role;

create function trove_private.set_wake_target(p_url text, p_secret text)
returns void
language sql
security definer
set search_path = ''
as $$
    insert into trove_private.wake_settings (url, secret) values (p_url, p_secret)
    on conflict (singleton) do update set url = excluded.url, secret = excluded.secret
$$;

create function trove_private.wake_target(out url text, out secret text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
    if to_regclass('vault.decrypted_secrets') is not null then
        execute $q$
            select (select ds.decrypted_secret from vault.decrypted_secrets as ds where ds.name = 'trove_wake_url'),
                   (select ds.decrypted_secret from vault.decrypted_secrets as ds where ds.name = 'trove_wake_secret')
        $q$ into url, secret;
        if url is not null and secret is not null then
            return;
        end if;
    end if;
    select w.url, w.secret into url, secret from trove_private.wake_settings as w;
end;
$$;

-- POST {"reason": ...} to the wake target with its secret; the pg_net request id, or null where nothing
-- was sent (no pg_net, no target). The endpoint answers once its bounded drain is done (20 s by default):
-- pg_net waits up to 30 s for that answer.
create function trove_private.wake_service(p_reason text)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    target record;
    request_id bigint;
begin
    if to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is null then
        return null;
    end if;
    select * into target from trove_private.wake_target();
    if target.url is null or target.secret is null then
        return null;
    end if;
    execute 'select net.http_post($1, $2, $3, $4, $5)'
    into request_id
    using target.url, jsonb_build_object('reason', p_reason), '{}'::jsonb,
    jsonb_build_object('Content-Type', 'application/json', 'X-Trove-Wake-Secret', target.secret), 30000;
    return request_id;
end;
$$;

-- Every queue's insert trigger (see 20261123110200_work_queues) now also wakes the service.
create or replace function trove_private.notify_work()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    perform pg_notify('trove_work', tg_table_name);
    perform trove_private.wake_service(tg_table_name);
    return null;
end;
$$;

revoke execute on function trove_private.set_wake_target(text, text) from public;
revoke execute on function trove_private.wake_target() from public;
revoke execute on function trove_private.wake_service(text) from public;
grant execute on function trove_private.set_wake_target(text, text) to service_role;
grant execute on function trove_private.wake_service(text) to service_role;

-- The heartbeat, every minute where pg_cron runs (see 20261123150000_schedules).
do $cron$
begin
    if not exists (select from pg_extension where extname = 'pg_cron')
        or current_database() <> coalesce(current_setting('cron.database_name', true), 'postgres') then
        return;
    end if;
    perform cron.schedule('trove-wake-heartbeat', '* * * * *', 'select trove_private.wake_service(''heartbeat'')');
end;
$cron$;
