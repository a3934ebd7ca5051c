-- sync_logs: one row per sync run (webhook, manual, scheduled, backfill), with its metrics. Completing a
-- run stamps completed_at and duration_ms and records the outcome on the account.

create table public.sync_logs (
    id uuid primary key default gen_random_uuid(),
    account_id uuid references public.connected_accounts (id) on delete set null,
    user_id uuid references public.users (id) on delete set null,

    sync_type public.sync_type_enum not null,
    status public.sync_status_enum not null default 'running',

    posts_fetched integer not null default 0,
    posts_created integer not null default 0,
    posts_updated integer not null default 0,
    posts_deleted integer not null default 0,
    media_downloaded integer not null default 0,
    media_failed integer not null default 0,

    error_message text,
    error_details jsonb,

    started_at timestamptz not null default now(),
    completed_at timestamptz,
    duration_ms integer,

    metadata jsonb not null default '{}',

    created_at timestamptz not null default now(),

    constraint sync_logs_metrics_check check (
        posts_fetched >= 0 and posts_created >= 0 and posts_updated >= 0 and posts_deleted >= 0
        and media_downloaded >= 0 and media_failed >= 0
    ),
    constraint sync_logs_duration_ms_check check (duration_ms >= 0),
    constraint sync_logs_completed_after_start_check check (completed_at >= started_at),
    constraint sync_logs_metadata_check check (jsonb_typeof(metadata) = 'object')
);

create index sync_logs_account_id_idx on public.sync_logs (account_id);
create index sync_logs_user_id_idx on public.sync_logs (user_id);
create index sync_logs_started_at_idx on public.sync_logs (started_at desc);
create index sync_logs_account_started_idx on public.sync_logs (account_id, started_at desc);
create index sync_logs_status_idx on public.sync_logs (status);
create index sync_logs_sync_type_idx on public.sync_logs (sync_type);

-- A run that is neither queued nor running is complete: stamp completed_at (unless given) and the duration.
create function trove_private.complete_sync_log()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if new.status not in ('queued', 'running') and new.completed_at is null then
        new.completed_at := greatest(now(), new.started_at);
    end if;
    if new.completed_at is not null then
        new.duration_ms := round(extract(epoch from new.completed_at - new.started_at) * 1000)::integer;
    else
        new.duration_ms := null;
    end if;
    return new;
end;
$$;

-- The account shows when it last synced and how that went (seed: last_sync_status success/failed/partial).
create function trove_private.record_sync_on_account()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    update public.connected_accounts as ca
    set last_sync_at = new.completed_at,
        last_sync_status = case
            when new.status in ('success', 'failed', 'partial') then new.status::text
            else ca.last_sync_status
        end
    where ca.id = new.account_id;
    return null;
end;
$$;

revoke execute on function trove_private.complete_sync_log() from public;
revoke execute on function trove_private.record_sync_on_account() from public;

create trigger sync_logs_user_id_from_account
before insert or update of account_id on public.sync_logs
for each row execute function trove_private.user_id_from_account();

create trigger sync_logs_complete
before insert or update on public.sync_logs
for each row execute function trove_private.complete_sync_log();

create trigger sync_logs_record_on_account
after insert or update of status on public.sync_logs
for each row
when (new.status not in ('queued', 'running') and new.account_id is not null)
execute function trove_private.record_sync_on_account();

alter table public.sync_logs enable row level security;

revoke all on table public.sync_logs from anon, authenticated, service_role;
grant select on table public.sync_logs to authenticated;
grant select, insert, update, delete on table public.sync_logs to service_role;

create policy sync_logs_select_own on public.sync_logs
for select to authenticated
using ((select auth.uid()) = user_id);
