-- Waking the service from the database (pg_net), for workers that scale to zero or cannot hold a LISTEN
-- connection through a transaction pooler: new work (every table whose inserts NOTIFY trove_work) and a
-- pg_cron heartbeat (a lost call is caught within the minute: pg_net does not retry) POST to the service's
-- wake endpoint, which drains a bounded batch. Where pg_net does not exist, or no wake target is set, nothing
-- is sent and LISTEN/NOTIFY alone wakes the long-running workers.
--
-- The target: Supabase Vault's secrets `trove_wake_url` and `trove_wake_secret` where Vault exists, else
-- the row of trove_private.wake_settings (trove_private.set_wake_target).

-- The wake-up is signed with pgcrypto's hmac (in Supabase's extensions schema, as there).
create extension if not exists pgcrypto with schema extensions;

create table trove_private.wake_settings (
    singleton boolean primary key default true,
    url text not null,
    secret text not null,
    constraint wake_settings_singleton_check check (singleton),
    -- A URL pg_net can send to (a pasted newline or space would make every wake-up fail).
    constraint wake_settings_url_check check (url ~* '^https?://[^\s/?#]+(/\S*)?$'),
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
        if url ~* '^https?://[^\s/?#]+(/\S*)?$' and length(secret) >= 32 then
            return;
        end if;
    end if;
    select w.url, w.secret into url, secret from trove_private.wake_settings as w;
end;
$$;

-- POST {"reason": ...} to the wake target, signed: X-Trove-Wake-Timestamp (Unix seconds) and
-- X-Trove-Wake-Signature, the hex HMAC-SHA256 with the secret of "<timestamp>.<body>" (the body as pg_net
-- sends it: the jsonb's text). The secret itself never travels: on Supabase, pg_net's queue table is
-- readable by every role that may use pg_net. The pg_net request id, or null where nothing was sent (no
-- pg_net, no target, no pgcrypto). The endpoint answers once its bounded drain is done (at most its budget,
-- 20 s by default, plus 5 s for a sync to give its run back): pg_net waits up to 30 s for that answer.
create function trove_private.wake_service(p_reason text)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    target record;
    crypto text := (select e.extnamespace::regnamespace::text from pg_catalog.pg_extension as e
                    where e.extname = 'pgcrypto');
    body jsonb := jsonb_build_object('reason', p_reason);
    stamp text := extract(epoch from clock_timestamp())::bigint::text;
    signature text;
    request_id bigint;
begin
    if to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is null or crypto is null then
        return null;
    end if;
    select * into target from trove_private.wake_target();
    if target.url is null or target.secret is null then
        return null;
    end if;
    execute format('select encode(%I.hmac($1, $2, ''sha256''), ''hex'')', crypto)
    into signature
    using stamp || '.' || body::text, target.secret;
    execute 'select net.http_post($1, $2, $3, $4, $5)'
    into request_id
    using target.url, body, '{}'::jsonb,
    jsonb_build_object(
        'Content-Type', 'application/json', 'X-Trove-Wake-Timestamp', stamp, 'X-Trove-Wake-Signature', signature
    ),
    30000;
    return request_id;
end;
$$;

-- Every queue's insert trigger (see 20261123110200_work_queues) now also wakes the service: once per
-- transaction (a sync's page inserts many rows in many statements: one wake-up is enough, sent at commit). A
-- wake-up that cannot be sent never fails the insert: the work is stored, the heartbeat wakes the service.
-- SECURITY DEFINER: whichever role inserts the work, the wake-up is the service's.
create or replace function trove_private.notify_work()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform pg_notify('trove_work', tg_table_name);
    if coalesce(current_setting('trove.woken', true), '') <> 'yes' then
        perform set_config('trove.woken', 'yes', true);
        begin
            perform trove_private.wake_service(tg_table_name);
        exception when others then
            raise warning 'trove: waking the service failed (%): the heartbeat will', sqlerrm;
        end;
    end if;
    return null;
end;
$$;

-- A bounded drain (the wake endpoint) that ran out of time gives back what it still holds, without counting
-- the attempt: a long download must not use its attempts up one wake-up at a time. The items released.
create function trove_private.release_held_work(p_queue text, p_worker text)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    spec record;
    held uuid;
    released integer := 0;
begin
    spec := trove_private.queue_spec(p_queue);
    for held in execute format(
        'select id from public.%I where locked_by = $1 and status = %L', p_queue, spec.working_state
    ) using p_worker loop
        if trove_private.release_work(p_queue, held, p_worker) then
            released := released + 1;
        end if;
    end loop;
    return released;
end;
$$;

revoke execute on function trove_private.release_held_work(text, text) from public;
grant execute on function trove_private.release_held_work(text, text) to service_role;
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
