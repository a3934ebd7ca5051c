-- Scheduled jobs (seed 4.2, 5, 10.2, 11, 12.2), every pg_cron job Trove has. Each job is a plain function,
-- so it can be called and tested directly; pg_cron runs them where it is installed (minute granularity). The
-- public_posts refresh lives with its view (trove_private.refresh_public_posts); the others are here.

-- Health checks (seed 12.2), kept for the operator (service role only) and announced to workers, which log
-- them (LISTEN trove_health).
create table public.health_checks (
    id uuid primary key default gen_random_uuid(),
    checked_at timestamptz not null default now(),
    accounts_in_error integer not null,
    accounts_not_synced_24h integer not null,
    media_pending_over_1h integer not null,
    healthy boolean not null,
    details jsonb not null default '{}'
);

create index health_checks_checked_at_idx on public.health_checks (checked_at desc);

alter table public.health_checks enable row level security;
revoke all on table public.health_checks from anon, authenticated, service_role;
grant select, insert, update, delete on table public.health_checks to service_role;

-- Every active, enabled account whose next sync is due gets a scheduled sync request (joined when one is
-- already in flight). Returns how many accounts were enqueued.
create function trove_private.enqueue_due_syncs(p_now timestamptz default now())
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
        where ca.sync_enabled
            and ca.status = 'active'
            and (ca.next_sync_at is null or ca.next_sync_at <= p_now)
            and not exists (
                select 1 from public.sync_requests as r
                where r.account_id = ca.id and r.status in ('pending', 'processing')
            )
        order by ca.next_sync_at nulls first
    loop
        perform trove_private.enqueue_sync(due, 'scheduled', 'schedule', p_now);
        enqueued := enqueued + 1;
    end loop;
    return enqueued;
end;
$$;

-- Media that failed all its attempts because of passing trouble (not 404/410: those are 'unavailable')
-- gets a fresh round a day later.
create function trove_private.retry_failed_media(p_now timestamptz default now())
returns integer
language plpgsql
set search_path = ''
as $$
declare
    retried integer;
begin
    update public.media_downloads as md
    set status = 'pending', attempts = 0, run_after = p_now
    where md.status = 'failed' and md.attempts >= 3 and md.last_attempt_at < p_now - interval '1 day';
    get diagnostics retried = row_count;
    if retried > 0 then
        perform pg_notify('trove_work', 'media_downloads');
    end if;
    return retried;
end;
$$;

create function trove_private.run_health_check(p_now timestamptz default now())
returns public.health_checks
language plpgsql
set search_path = ''
as $$
declare
    result public.health_checks%rowtype;
begin
    insert into public.health_checks (
        checked_at, accounts_in_error, accounts_not_synced_24h, media_pending_over_1h, healthy, details
    )
    select
        p_now,
        accounts.in_error,
        accounts.stale,
        media.stale,
        accounts.in_error = 0 and accounts.stale = 0 and media.stale = 0,
        jsonb_build_object('queued_syncs', queue.queued, 'dead_letter_items', queue.dead)
    from
        (
            select
                count(*) filter (where ca.status = 'error')::integer as in_error,
                count(*) filter (
                    where ca.sync_enabled and ca.status = 'active'
                    and coalesce(ca.last_sync_at, ca.created_at) < p_now - interval '24 hours'
                )::integer as stale
            from public.connected_accounts as ca
        ) as accounts,
        (
            select count(*)::integer as stale from public.media_downloads as md
            where md.status = 'pending' and md.created_at < p_now - interval '1 hour'
        ) as media,
        (
            select
                (select count(*) from public.sync_requests as r where r.status = 'pending')::integer as queued,
                (
                    (select count(*) from public.ingested_items as i where i.status = 'dead_letter')
                    + (select count(*) from public.ingested_posts as p where p.status = 'dead_letter')
                )::integer as dead
        ) as queue
    returning * into result;
    perform pg_notify('trove_health', to_jsonb(result)::text);
    return result;
end;
$$;

-- Retention (seed 11/DESIGN): sync logs 90 days, health checks 30 days, OAuth states a day after they
-- expire (used or not, they are worthless then), pg_cron's own run history 7 days (pg_cron never purges
-- cron.job_run_details by itself).
create function trove_private.purge_old_records(p_now timestamptz default now())
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
    if to_regclass('cron.job_run_details') is not null then
        execute 'delete from cron.job_run_details where end_time < $1' using p_now - interval '7 days';
        get diagnostics more = row_count;
        purged := purged + more;
    end if;
    return purged;
end;
$$;

revoke execute on function trove_private.enqueue_due_syncs(timestamptz) from public;
revoke execute on function trove_private.retry_failed_media(timestamptz) from public;
revoke execute on function trove_private.run_health_check(timestamptz) from public;
revoke execute on function trove_private.purge_old_records(timestamptz) from public;
grant execute on function trove_private.enqueue_due_syncs(timestamptz) to service_role;
grant execute on function trove_private.retry_failed_media(timestamptz) to service_role;
grant execute on function trove_private.run_health_check(timestamptz) to service_role;
grant execute on function trove_private.purge_old_records(timestamptz) to service_role;

-- Register with pg_cron where it can run: installed, and this is the database its scheduler serves
-- (cron.database_name; on Supabase, postgres). Elsewhere (test databases, no pg_cron) skip cleanly.
do $cron$
begin
    if not exists (select 1 from pg_available_extensions where name = 'pg_cron')
        or current_database() <> coalesce(current_setting('cron.database_name', true), 'postgres') then
        raise notice 'pg_cron is not available in database %: Trove schedules not registered', current_database();
        return;
    end if;
    create extension if not exists pg_cron;
    perform cron.schedule('trove-enqueue-due-syncs', '* * * * *', 'select trove_private.enqueue_due_syncs()');
    perform cron.schedule('trove-retry-failed-media', '*/15 * * * *', 'select trove_private.retry_failed_media()');
    perform cron.schedule('trove-health-check', '*/5 * * * *', 'select trove_private.run_health_check()');
    perform cron.schedule('trove-purge-old-records', '17 3 * * *', 'select trove_private.purge_old_records()');
    perform cron.schedule(
        'trove-refresh-public-posts', '*/5 * * * *', 'select trove_private.refresh_public_posts()'
    );
end;
$cron$;
