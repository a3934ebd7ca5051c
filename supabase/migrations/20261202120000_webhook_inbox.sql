-- webhook_inbox: a webhook delivery the Edge Function relay (supabase/functions/_shared/relay.ts) could not
-- hand to the service in time, kept as it came (the path under /functions/v1 with any secret segment, the
-- query string, the headers that matter, the raw body) so the platform gets its 200 within its deadline and
-- loses nothing. Nothing here is trusted: the worker claims each row like any work item and runs it through
-- the same checks as a direct delivery (signature, secret URL, subscription id); what fails them is
-- dead-lettered with the reason, what passes is stored as the service would have stored it. Once a delivery
-- is done with, its body and headers are dropped and its path loses the secret segment: what is left says
-- what came and what became of it (the events themselves live on in ingested_items).

create table public.webhook_inbox (
    id uuid primary key default gen_random_uuid(),
    request_path text not null,
    query text not null default '',
    headers jsonb not null default '{}',
    body bytea not null,
    body_bytes integer generated always as (octet_length(body)) stored,
    received_at timestamptz not null default now(),
    -- Once replayed: 'stored', 'duplicate' (the service had it already), or why it was rejected.
    outcome text,

    status public.processing_status_enum not null default 'pending',
    attempts integer not null default 0,
    run_after timestamptz not null default now(),
    locked_by text,
    locked_until timestamptz,
    started_at timestamptz,
    completed_at timestamptz,
    error_message text,
    error_details jsonb,
    last_error_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),

    constraint webhook_inbox_attempts_check check (attempts >= 0),
    -- Only webhook deliveries: webhook-<platform>, optionally with one secret path segment.
    constraint webhook_inbox_path_check check (request_path ~ '^webhook-[a-z0-9_]{1,32}(/[A-Za-z0-9._~-]{1,255})?$'),
    constraint webhook_inbox_query_check check (length(query) <= 4096),
    constraint webhook_inbox_headers_check check (
        jsonb_typeof(headers) = 'object' and length(headers::text) <= 8192
    ),
    -- What the service takes of a webhook body (trove/http/webhooks.py, MAX_EVENT_BYTES).
    constraint webhook_inbox_body_check check (octet_length(body) <= 65536)
);

create index webhook_inbox_ready_idx on public.webhook_inbox (run_after)
where status in ('pending', 'failed');
create index webhook_inbox_leased_idx on public.webhook_inbox (locked_until)
where status = 'processing';
create index webhook_inbox_finished_idx on public.webhook_inbox (updated_at)
where status in ('completed', 'dead_letter');

create trigger webhook_inbox_set_updated_at
before update on public.webhook_inbox
for each row execute function trove_private.set_updated_at();

-- New rows wake the worker (NOTIFY) and, where pg_net is set up, the service (20261202110000_pg_net_wake).
create trigger webhook_inbox_notify_work
after insert on public.webhook_inbox
for each statement execute function trove_private.notify_work();

-- The service's own table: no user reads or writes it (RLS on, no policy for anyone but the service role).
alter table public.webhook_inbox enable row level security;

revoke all on table public.webhook_inbox from anon, authenticated, service_role;
grant select, insert, update, delete on table public.webhook_inbox to service_role;

-- What the relay calls (over SUPABASE_DB_URL): one delivery in, its id out. A delivery the inbox does not
-- take is refused with SQLSTATE 23514 and a message of its own (no failing-row detail: the path may hold
-- a secret). Bounded: while 10,000 deliveries wait, or the bodies kept come to 64 MiB, more are refused
-- (53400) and the relay answers 503, so the platform retries later instead of a flood of unverified bodies
-- filling the database. Puts are serialized so concurrent ones cannot pass the bound together.
create function trove_private.webhook_inbox_put(p_path text, p_query text, p_headers jsonb, p_body bytea)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    waiting integer;
    kept_bytes bigint;
    new_id uuid;
begin
    if p_path is null or p_path !~ '^webhook-[a-z0-9_]{1,32}(/[A-Za-z0-9._~-]{1,255})?$'
        or length(coalesce(p_query, '')) > 4096
        or p_headers is null or jsonb_typeof(p_headers) <> 'object' or length(p_headers::text) > 8192
        or p_body is null or octet_length(p_body) > 65536 then
        raise exception 'not a webhook delivery the inbox keeps (path, query, headers or body size)'
        using errcode = '23514';
    end if;
    perform pg_advisory_xact_lock(hashtext('trove_private.webhook_inbox_put'));
    select count(*) filter (where i.status in ('pending', 'processing', 'failed')), coalesce(sum(i.body_bytes), 0)
    into waiting, kept_bytes
    from public.webhook_inbox as i;
    if waiting >= 10000 or kept_bytes + octet_length(p_body) > 64 * 1024 * 1024 then
        raise exception 'the webhook inbox is full (% deliveries waiting, % bytes kept)', waiting, kept_bytes
        using errcode = '53400';
    end if;
    insert into public.webhook_inbox (request_path, query, headers, body)
    values (p_path, coalesce(p_query, ''), p_headers, p_body)
    returning id into new_id;
    return new_id;
end;
$$;

revoke execute on function trove_private.webhook_inbox_put(text, text, jsonb, bytea) from public;
grant execute on function trove_private.webhook_inbox_put(text, text, jsonb, bytea) to service_role;

-- The inbox is a work queue like the others (same column names as ingested_items).
create or replace function trove_private.queue_spec(
    p_queue text,
    out working_state text,
    out done_state text,
    out terminal_state text,
    out permanent_state text,
    out max_attempts integer,
    out base_backoff interval,
    out error_column text,
    out started_column text,
    out finished_column text
)
language plpgsql
immutable
set search_path = ''
as $$
begin
    case p_queue
        when 'ingested_items', 'ingested_posts', 'imports', 'webhook_inbox' then
            select 'processing', 'completed', 'dead_letter', 'dead_letter', 5, interval '30 seconds',
                'error_message', 'started_at', 'completed_at'
            into working_state, done_state, terminal_state, permanent_state, max_attempts, base_backoff,
                error_column, started_column, finished_column;
        when 'media_downloads' then
            -- Seed 5 and 8.2: three attempts; 404/410 mean the media is gone (unavailable).
            select 'downloading', 'downloaded', 'failed', 'unavailable', 3, interval '1 minute',
                'error', 'last_attempt_at', 'last_attempt_at'
            into working_state, done_state, terminal_state, permanent_state, max_attempts, base_backoff,
                error_column, started_column, finished_column;
        else
            raise exception 'unknown work queue %', p_queue using errcode = '22023';
    end case;
end;
$$;

create or replace function trove_private.extend_lease(
    p_queue text, p_id uuid, p_worker text, p_lease interval, p_now timestamptz default now()
)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
    extended integer;
begin
    if p_queue not in (
        'ingested_items', 'ingested_posts', 'media_downloads', 'sync_requests', 'imports', 'webhook_inbox'
    ) then
        raise exception 'unknown work queue %', p_queue using errcode = '22023';
    end if;
    execute format(
        'update public.%I set locked_until = $1 + $2 where id = $3 and locked_by = $4 and locked_until is not null',
        p_queue
    ) using p_now, p_lease, p_id, p_worker;
    get diagnostics extended = row_count;
    return extended = 1;
end;
$$;

-- Replayed or rejected deliveries are kept 30 days (the events themselves live on in ingested_items).
create or replace function trove_private.purge_old_records(p_now timestamptz default now())
returns integer
language plpgsql
set search_path = ''
as $$
declare
    purged integer;
    more integer;
begin
    delete from public.sync_logs as l
    where l.started_at < p_now - interval '90 days'
        and l.status not in ('queued', 'running');
    get diagnostics purged = row_count;
    delete from public.health_checks as h where h.checked_at < p_now - interval '30 days';
    get diagnostics more = row_count;
    purged := purged + more;
    delete from public.oauth_states as s where s.expires_at < p_now - interval '1 day';
    get diagnostics more = row_count;
    purged := purged + more;
    delete from public.webhook_inbox as w
    where w.status in ('completed', 'dead_letter') and w.updated_at < p_now - interval '30 days';
    get diagnostics more = row_count;
    purged := purged + more;
    if to_regclass('cron.job_run_details') is not null then
        execute 'delete from cron.job_run_details where end_time < $1' using p_now - interval '7 days';
        get diagnostics more = row_count;
        purged := purged + more;
    end if;
    return purged;
end;
$$;
