-- sync_requests: the sync queue. A request (scheduled, manual, webhook-triggered, backfill) is one sync
-- run of one account; it carries its sync_logs row from the start, so "sync now" can return the log id at
-- once. At most one request per account is in flight: a second request joins it.

create table public.sync_requests (
    id uuid primary key default gen_random_uuid(),
    account_id uuid not null references public.connected_accounts (id) on delete cascade,
    user_id uuid not null references public.users (id) on delete cascade,
    sync_type public.sync_type_enum not null,
    sync_log_id uuid references public.sync_logs (id) on delete set null,
    status public.processing_status_enum not null default 'pending',
    -- Lower runs first: manual 0, webhook 1, scheduled 2, backfill 3.
    priority smallint not null default 2,
    attempts integer not null default 0,
    run_after timestamptz not null default now(),
    locked_by text,
    locked_until timestamptz,
    last_error text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),

    constraint sync_requests_attempts_check check (attempts >= 0)
);

create unique index sync_requests_one_in_flight_idx on public.sync_requests (account_id)
where status in ('pending', 'processing');
create index sync_requests_ready_idx on public.sync_requests (priority, run_after)
where status = 'pending';
create index sync_requests_leased_idx on public.sync_requests (locked_until)
where status = 'processing';
create index sync_requests_user_id_idx on public.sync_requests (user_id);
create index sync_requests_sync_log_id_idx on public.sync_requests (sync_log_id);

create trigger sync_requests_user_id_from_account
before insert or update of account_id on public.sync_requests
for each row execute function trove_private.user_id_from_account();

create trigger sync_requests_set_updated_at
before update on public.sync_requests
for each row execute function trove_private.set_updated_at();

create trigger sync_requests_notify_work
after insert on public.sync_requests
for each statement execute function trove_private.notify_work();

alter table public.sync_requests enable row level security;

revoke all on table public.sync_requests from anon, authenticated, service_role;
grant select on table public.sync_requests to authenticated;
grant select, insert, update, delete on table public.sync_requests to service_role;

create policy sync_requests_select_own on public.sync_requests
for select to authenticated
using ((select auth.uid()) = user_id);

-- Request a sync; returns the sync_logs id to poll. Joins the request in flight for the account, moving
-- it forward when the new request is more urgent (a manual "sync now" while a backfill waits).
create function trove_private.enqueue_sync(
    p_account_id uuid,
    p_sync_type public.sync_type_enum,
    p_reason text default null,
    p_now timestamptz default now()
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    account_status public.account_status_enum;
    existing public.sync_requests%rowtype;
    new_log uuid;
    new_priority smallint := case p_sync_type
        when 'manual' then 0 when 'webhook' then 1 when 'scheduled' then 2 else 3
    end;
begin
    -- Concurrent requests for one account queue up here, so exactly one request is created.
    perform pg_advisory_xact_lock(hashtextextended('trove.sync:' || p_account_id::text, 0));
    select ca.status into account_status from public.connected_accounts as ca where ca.id = p_account_id;
    if not found then
        raise exception 'no connected account %', p_account_id using errcode = 'P0002';
    end if;
    if account_status in ('token_expired', 'disconnected') then
        raise exception 'account % must be reconnected before it can sync (status %)', p_account_id, account_status
            using errcode = '55000';
    end if;
    select * into existing from public.sync_requests as r
    where r.account_id = p_account_id and r.status in ('pending', 'processing');
    if found then
        if existing.status = 'pending' and new_priority < existing.priority then
            update public.sync_requests as r
            set priority = new_priority, run_after = least(r.run_after, p_now)
            where r.id = existing.id;
        end if;
        return existing.sync_log_id;
    end if;
    insert into public.sync_logs (account_id, sync_type, status, started_at, metadata)
    values (p_account_id, p_sync_type, 'queued', p_now,
            jsonb_build_object('trigger_reason', coalesce(p_reason, p_sync_type::text)))
    returning id into new_log;
    insert into public.sync_requests (account_id, sync_type, sync_log_id, priority, run_after)
    values (p_account_id, p_sync_type, new_log, new_priority, p_now);
    return new_log;
end;
$$;

-- Claim ready requests, most urgent first; their logs turn 'running'. A request abandoned three times
-- by dying workers is dead-lettered and its log failed, instead of killing a fourth.
create function trove_private.claim_sync_requests(
    p_worker text, p_limit integer, p_lease interval, p_now timestamptz default now()
)
returns setof public.sync_requests
language plpgsql
set search_path = ''
as $$
begin
    with dead as (
        update public.sync_requests as r
        set status = 'dead_letter', locked_by = null, locked_until = null,
            last_error = 'abandoned by a worker (lease expired) three times'
        where r.status = 'processing' and r.locked_until < p_now and r.attempts >= 3
        returning r.sync_log_id
    )
    update public.sync_logs as l
    set status = 'failed', completed_at = greatest(p_now, l.started_at),
        error_message = 'abandoned by a worker (lease expired) three times'
    from dead
    where l.id = dead.sync_log_id;

    return query
    with ready as (
        select r.id
        from public.sync_requests as r
        where (r.status = 'pending' and r.run_after <= p_now)
            or (r.status = 'processing' and r.locked_until < p_now)
        order by r.priority, r.run_after
        limit p_limit
        for update skip locked
    ),

    claimed as (
        update public.sync_requests as r
        set status = 'processing', locked_by = p_worker, locked_until = p_now + p_lease,
            attempts = r.attempts + 1
        from ready
        where r.id = ready.id
        returning r.*
    ),

    started as (
        update public.sync_logs as l
        set status = 'running', started_at = p_now
        from claimed
        where l.id = claimed.sync_log_id and l.status = 'queued'
    )

    select * from claimed;
end;
$$;

-- A sync run ended well (success / partial) or was cancelled. Success resets the account's error state
-- (seed 8.1) and schedules the next poll. False: this worker no longer holds the request.
create function trove_private.finish_sync(
    p_request_id uuid,
    p_worker text,
    p_status public.sync_status_enum,
    p_next_sync_in interval default interval '1 hour',
    p_now timestamptz default now()
)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
    request public.sync_requests%rowtype;
begin
    if p_status not in ('success', 'partial', 'cancelled') then
        raise exception 'finish_sync takes success, partial or cancelled, not %', p_status using errcode = '22023';
    end if;
    update public.sync_requests as r
    set status = 'completed', locked_by = null, locked_until = null
    where r.id = p_request_id and r.locked_by = p_worker and r.status = 'processing'
    returning * into request;
    if not found then
        return false;
    end if;
    update public.sync_logs as l
    set status = p_status, completed_at = greatest(p_now, l.started_at)
    where l.id = request.sync_log_id;
    if p_status in ('success', 'partial') then
        update public.connected_accounts as ca
        set error_count = 0, error_message = null,
            status = case when ca.status = 'error' then 'active' else ca.status end,
            next_sync_at = p_now + p_next_sync_in
        where ca.id = request.account_id;
    end if;
    return true;
end;
$$;

-- A sync run failed: seed 8.1 exactly. error_count + 1; at 5 the account goes to 'error' and its owner is
-- told; then by kind: rate_limit -> next try at the reset time; auth -> token_expired; not_found ->
-- disconnected; invalid_grant (refresh refused) -> disconnected; anything else -> 2^error_count minutes.
create function trove_private.fail_sync(
    p_request_id uuid,
    p_worker text,
    p_kind text,
    p_message text,
    p_retry_at timestamptz default null,
    p_now timestamptz default now()
)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
    request public.sync_requests%rowtype;
    account public.connected_accounts%rowtype;
    message text := left(p_message, 2000);
begin
    if p_kind not in ('rate_limit', 'auth', 'not_found', 'invalid_grant', 'transient') then
        raise exception 'unknown sync error kind %', p_kind using errcode = '22023';
    end if;
    if p_kind = 'invalid_grant' then
        message := 'Token refresh failed. Reauthorization required.';
    end if;
    update public.sync_requests as r
    set status = 'failed', locked_by = null, locked_until = null, last_error = message
    where r.id = p_request_id and r.locked_by = p_worker and r.status = 'processing'
    returning * into request;
    if not found then
        return false;
    end if;
    update public.sync_logs as l
    set status = 'failed', completed_at = greatest(p_now, l.started_at), error_message = message,
        error_details = coalesce(l.error_details, '{}') || jsonb_build_object('kind', p_kind)
    where l.id = request.sync_log_id;

    update public.connected_accounts as ca
    set error_count = ca.error_count + 1,
        last_sync_status = 'failed',
        error_message = message,
        status = case
            when p_kind = 'auth' then 'token_expired'
            when p_kind in ('not_found', 'invalid_grant') then 'disconnected'
            when ca.error_count + 1 >= 5 then 'error'
            else ca.status
        end,
        next_sync_at = case
            when p_kind = 'rate_limit' then coalesce(p_retry_at, p_now + interval '15 minutes')
            else p_now + power(2, least(ca.error_count + 1, 20)) * interval '1 minute'
        end
    where ca.id = request.account_id
    returning * into account;

    if p_kind = 'auth' then
        perform trove_private.notify_account_owner(
            account.id, 'reauthorization_required', 'Reconnect your ' || account.platform || ' account',
            'The platform no longer accepts Trove''s access. Syncing resumes once you reconnect.'
        );
    elsif p_kind = 'invalid_grant' then
        perform trove_private.notify_account_owner(
            account.id, 'reauthorization_required', 'Reconnect your ' || account.platform || ' account',
            'Token refresh failed. Reauthorization required; syncing is stopped until you reconnect.'
        );
    elsif p_kind = 'not_found' then
        perform trove_private.notify_account_owner(
            account.id, 'account_disconnected', 'Your ' || account.platform || ' account was not found',
            'The account seems deleted on the platform; syncing is stopped.'
        );
    elsif account.error_count >= 5 then
        perform trove_private.notify_account_owner(
            account.id, 'sync_failing', 'Syncing your ' || account.platform || ' account keeps failing',
            'The last ' || account.error_count || ' syncs failed: ' || message
        );
    end if;
    return true;
end;
$$;

-- Shutdown mid-sync: hand the request back (pages already committed stay; the next run resumes).
create function trove_private.release_sync(p_request_id uuid, p_worker text, p_run_after timestamptz default now())
returns boolean
language plpgsql
set search_path = ''
as $$
declare
    request public.sync_requests%rowtype;
begin
    update public.sync_requests as r
    set status = 'pending', attempts = greatest(r.attempts - 1, 0), run_after = p_run_after,
        locked_by = null, locked_until = null
    where r.id = p_request_id and r.locked_by = p_worker and r.status = 'processing'
    returning * into request;
    if not found then
        return false;
    end if;
    update public.sync_logs as l set status = 'queued' where l.id = request.sync_log_id and l.status = 'running';
    return true;
end;
$$;

revoke execute on function trove_private.enqueue_sync(uuid, public.sync_type_enum, text, timestamptz) from public;
revoke execute on function trove_private.claim_sync_requests(text, integer, interval, timestamptz) from public;
revoke execute on function trove_private.finish_sync(uuid, text, public.sync_status_enum, interval, timestamptz)
from public;
revoke execute on function trove_private.fail_sync(uuid, text, text, text, timestamptz, timestamptz) from public;
revoke execute on function trove_private.release_sync(uuid, text, timestamptz) from public;

grant execute on function trove_private.enqueue_sync(uuid, public.sync_type_enum, text, timestamptz) to service_role;
grant execute on function trove_private.claim_sync_requests(text, integer, interval, timestamptz) to service_role;
grant execute on function trove_private.finish_sync(uuid, text, public.sync_status_enum, interval, timestamptz)
to service_role;
grant execute on function trove_private.fail_sync(uuid, text, text, text, timestamptz, timestamptz) to service_role;
grant execute on function trove_private.release_sync(uuid, text, timestamptz) to service_role;
