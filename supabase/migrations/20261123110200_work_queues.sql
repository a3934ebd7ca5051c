-- Work queues: ingested_items and ingested_posts (to process) and media_downloads (to fetch) are claimed
-- by workers with FOR UPDATE SKIP LOCKED and a lease. A worker that dies leaves its items to be claimed
-- again once the lease expires; every claim counts an attempt, failures back off exponentially, and after
-- the maximum attempts an item ends in its terminal state (dead_letter / failed / unavailable). The queue
-- columns (run_after, locked_by, locked_until) and their ready/leased indexes are in each table's migration.

-- How each queue names its states and columns (the tables keep the seeds' own names).
create function trove_private.queue_spec(
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
        when 'ingested_items', 'ingested_posts' then
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

-- Claim up to p_limit ready items (new, due for a retry, or abandoned by a dead worker); returns their ids.
create function trove_private.claim_work(
    p_queue text, p_worker text, p_limit integer, p_lease interval, p_now timestamptz default now()
)
returns setof uuid
language plpgsql
set search_path = ''
as $$
declare
    spec record;
begin
    spec := trove_private.queue_spec(p_queue);
    -- Abandoned after the last allowed attempt: the item is poison for workers, stop handing it out.
    execute format(
        $sql$
        update public.%1$I
        set status = %2$L, locked_by = null, locked_until = null,
            %3$I = 'abandoned by a worker (lease expired) after the last attempt'
        where status = %4$L and locked_until < $1 and attempts >= $2
        $sql$,
        p_queue, spec.terminal_state, spec.error_column, spec.working_state
    ) using p_now, spec.max_attempts;

    return query execute format(
        $sql$
        with ready as (
            select q.id
            from public.%1$I as q
            where ((q.status in ('pending', 'failed') and q.run_after <= $1)
                    or (q.status = %2$L and q.locked_until < $1))
                and q.attempts < $4
            order by q.run_after
            limit $2
            for update skip locked
        )
        update public.%1$I as q
        set status = %2$L, locked_by = $3, locked_until = $1 + $5, attempts = q.attempts + 1, %3$I = $1
        from ready
        where q.id = ready.id
        returning q.id
        $sql$,
        p_queue, spec.working_state, spec.started_column
    ) using p_now, p_limit, p_worker, spec.max_attempts, p_lease;
end;
$$;

-- A long job keeps its items: false means the lease was lost (another worker may have them now).
create function trove_private.extend_lease(
    p_queue text, p_id uuid, p_worker text, p_lease interval, p_now timestamptz default now()
)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
    extended integer;
begin
    if p_queue not in ('ingested_items', 'ingested_posts', 'media_downloads', 'sync_requests') then
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

create function trove_private.complete_work(
    p_queue text, p_id uuid, p_worker text, p_now timestamptz default now()
)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
    spec record;
    done integer;
begin
    spec := trove_private.queue_spec(p_queue);
    execute format(
        $sql$
        update public.%1$I
        set status = %2$L, locked_by = null, locked_until = null, %3$I = $1, %4$I = null
        where id = $2 and locked_by = $3 and status = %5$L
        $sql$,
        p_queue, spec.done_state, spec.finished_column, spec.error_column, spec.working_state
    ) using p_now, p_id, p_worker;
    get diagnostics done = row_count;
    return done = 1;
end;
$$;

-- Record a failure: back off 2^(attempts-1) x base (at most an hour), or end in the terminal state after
-- the maximum attempts, or at once in the permanent state when retrying cannot help. Returns the new
-- status, or null when this worker no longer holds the item.
create function trove_private.fail_work(
    p_queue text,
    p_id uuid,
    p_worker text,
    p_error text,
    p_permanent boolean default false,
    p_now timestamptz default now()
)
returns text
language plpgsql
set search_path = ''
as $$
declare
    spec record;
    new_status text;
begin
    spec := trove_private.queue_spec(p_queue);
    execute format(
        $sql$
        update public.%1$I
        set status = (case
                when $5 then %2$L
                when attempts >= $6 then %3$L
                else 'failed'
            end)::%4$s,
            run_after = $1 + least($7 * power(2, greatest(attempts - 1, 0)), interval '1 hour'),
            %5$I = left($4, 2000),
            %6$I = $1,
            locked_by = null,
            locked_until = null
        where id = $2 and locked_by = $3 and status = %7$L
        returning status::text
        $sql$,
        p_queue, spec.permanent_state, spec.terminal_state,
        case when p_queue = 'media_downloads' then 'public.download_status_enum' else 'public.processing_status_enum' end,
        spec.error_column,
        case when p_queue = 'media_downloads' then 'last_attempt_at' else 'last_error_at' end,
        spec.working_state
    ) into new_status using p_now, p_id, p_worker, p_error, p_permanent, spec.max_attempts, spec.base_backoff;
    return new_status;
end;
$$;

-- Some failures are final without being "gone": a file over the size limit or of the wrong type will be the
-- same on every retry. give_up_work ends the item in its terminal state at once (attempts used up, so it is
-- not claimed again), reason recorded.
create function trove_private.give_up_work(
    p_queue text, p_id uuid, p_worker text, p_error text, p_now timestamptz default now()
)
returns text
language plpgsql
set search_path = ''
as $$
declare
    spec record;
    new_status text;
begin
    spec := trove_private.queue_spec(p_queue);
    execute format(
        $sql$
        update public.%1$I
        set status = %2$L, %3$I = left($4, 2000), %4$I = $1, locked_by = null, locked_until = null,
            attempts = greatest(attempts, $5)
        where id = $2 and locked_by = $3 and status = %5$L
        returning status::text
        $sql$,
        p_queue, spec.terminal_state, spec.error_column,
        case when p_queue = 'media_downloads' then 'last_attempt_at' else 'last_error_at' end,
        spec.working_state
    ) into new_status using p_now, p_id, p_worker, p_error, spec.max_attempts;
    return new_status;
end;
$$;

-- Give an item back without counting the attempt (graceful shutdown, or the platform budget is spent).
create function trove_private.release_work(
    p_queue text, p_id uuid, p_worker text, p_run_after timestamptz default now()
)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
    spec record;
    released integer;
begin
    spec := trove_private.queue_spec(p_queue);
    execute format(
        $sql$
        update public.%1$I
        set status = 'pending', attempts = greatest(attempts - 1, 0), run_after = $1,
            locked_by = null, locked_until = null
        where id = $2 and locked_by = $3 and status = %2$L
        $sql$,
        p_queue, spec.working_state
    ) using p_run_after, p_id, p_worker;
    get diagnostics released = row_count;
    return released = 1;
end;
$$;

-- New work wakes idle workers at once (LISTEN trove_work); workers also poll, as NOTIFY can be missed.
create function trove_private.notify_work()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    perform pg_notify('trove_work', tg_table_name);
    return null;
end;
$$;

create trigger ingested_items_notify_work
after insert on public.ingested_items
for each statement execute function trove_private.notify_work();

create trigger ingested_posts_notify_work
after insert on public.ingested_posts
for each statement execute function trove_private.notify_work();

create trigger media_downloads_notify_work
after insert on public.media_downloads
for each statement execute function trove_private.notify_work();

revoke execute on function trove_private.queue_spec(text) from public;
revoke execute on function trove_private.claim_work(text, text, integer, interval, timestamptz) from public;
revoke execute on function trove_private.extend_lease(text, uuid, text, interval, timestamptz) from public;
revoke execute on function trove_private.complete_work(text, uuid, text, timestamptz) from public;
revoke execute on function trove_private.fail_work(text, uuid, text, text, boolean, timestamptz) from public;
revoke execute on function trove_private.give_up_work(text, uuid, text, text, timestamptz) from public;
revoke execute on function trove_private.release_work(text, uuid, text, timestamptz) from public;
revoke execute on function trove_private.notify_work() from public;

grant execute on function trove_private.queue_spec(text) to service_role;
grant execute on function trove_private.claim_work(text, text, integer, interval, timestamptz) to service_role;
grant execute on function trove_private.extend_lease(text, uuid, text, interval, timestamptz) to service_role;
grant execute on function trove_private.complete_work(text, uuid, text, timestamptz) to service_role;
grant execute on function trove_private.fail_work(text, uuid, text, text, boolean, timestamptz) to service_role;
grant execute on function trove_private.give_up_work(text, uuid, text, text, timestamptz) to service_role;
grant execute on function trove_private.release_work(text, uuid, text, timestamptz) to service_role;
