-- A sync asked for while the account's sync is already running joins it, but the running one may be past
-- the point where it would see what the new request was for (an event's post to fetch). So the request is
-- remembered on the running sync, and when that one finishes a new one is queued at once: work that arrives
-- during a sync is never left waiting for the next scheduled one. Both functions take the account's lock.
alter table public.sync_requests add column rerun_sync_type public.sync_type_enum;

comment on column public.sync_requests.rerun_sync_type is
'set on a processing request when another sync is asked for meanwhile: queued again when it finishes';

create or replace function trove_private.enqueue_sync(
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
    if found and existing.status = 'pending' then
        if new_priority < existing.priority then
            update public.sync_requests as r
            set priority = new_priority, run_after = least(r.run_after, p_now)
            where r.id = existing.id;
        end if;
        return existing.sync_log_id;
    elsif found then
        -- The widest kind asked for wins: on a platform whose events carry their records, a webhook sync
        -- reads no pages, so it must not replace a poll (manual, scheduled) or a backfill asked for.
        update public.sync_requests as r
        set rerun_sync_type = case
            when r.rerun_sync_type is null then p_sync_type
            when array_position(array['manual', 'scheduled', 'backfill', 'webhook']::public.sync_type_enum[],
                p_sync_type) < array_position(
                array['manual', 'scheduled', 'backfill', 'webhook']::public.sync_type_enum[], r.rerun_sync_type
            ) then p_sync_type
            else r.rerun_sync_type
        end
        -- fail_sync takes no account lock: a sync that failed meanwhile is not joined, a new one is made.
        where r.id = existing.id and r.status = 'processing';
        if found then
            return existing.sync_log_id;
        end if;
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

create or replace function trove_private.finish_sync(
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
    -- The account's lock, as enqueue_sync takes it: a request joining this sync either lands before it
    -- finishes (and is queued again below) or after (and makes a new request).
    perform pg_advisory_xact_lock(hashtextextended('trove.sync:' || r.account_id::text, 0))
    from public.sync_requests as r where r.id = p_request_id;
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
    if request.rerun_sync_type is not null
        and exists (
            select 1 from public.connected_accounts as ca
            where ca.id = request.account_id and ca.status not in ('token_expired', 'disconnected')
        ) then
        perform trove_private.enqueue_sync(
            request.account_id, request.rerun_sync_type, 'asked for during the previous sync', p_now
        );
    end if;
    return true;
end;
$$;
