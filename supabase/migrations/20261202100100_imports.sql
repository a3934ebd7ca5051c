-- imports: one row per export file a user hands in (`trove import`, POST /api/import). The file waits in the
-- service's state directory; the worker claims the row like any work item (trove_private.claim_work, with
-- a lease kept alive while it reads), records its progress as it goes (records done: where a killed import
-- resumes) and writes what it archived under a sync log of type 'import'.

create table public.imports (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references public.users (id) on delete cascade,
    -- Known once the file is read: the platform whose export it is and the account it belongs to.
    platform public.platform_enum,
    account_id uuid references public.connected_accounts (id) on delete set null,
    sync_log_id uuid references public.sync_logs (id) on delete set null,

    file_name text not null,
    file_path text not null,
    file_sha256 text not null,
    byte_size bigint not null,

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

    -- {"records": read so far, "posts", "files", "problems", "total": records in the file (once known)}
    progress jsonb not null default '{}',

    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),

    constraint imports_attempts_check check (attempts >= 0),
    constraint imports_byte_size_check check (byte_size >= 0),
    constraint imports_file_sha256_check check (file_sha256 ~ '^[0-9a-f]{64}$'),
    constraint imports_file_name_check check (file_name <> '' and length(file_name) <= 255),
    -- A name inside the service's import directory, never a path of the caller's choosing.
    constraint imports_file_path_check check (file_path ~ '^[0-9a-f-]{36}/[0-9a-f]{64}$'),
    constraint imports_progress_check check (jsonb_typeof(progress) = 'object')
);

-- The same file handed in again while its import is unfinished joins it (and resumes it).
create unique index imports_one_unfinished_idx on public.imports (user_id, file_sha256)
where status in ('pending', 'processing', 'failed');
create index imports_user_id_idx on public.imports (user_id);
create index imports_account_id_idx on public.imports (account_id);
create index imports_sync_log_id_idx on public.imports (sync_log_id);
create index imports_ready_idx on public.imports (run_after)
where status in ('pending', 'failed');
create index imports_leased_idx on public.imports (locked_until)
where status = 'processing';

create trigger imports_set_updated_at
before update on public.imports
for each row execute function trove_private.set_updated_at();

create trigger imports_notify_work
after insert on public.imports
for each statement execute function trove_private.notify_work();

alter table public.imports enable row level security;

revoke all on table public.imports from anon, authenticated, service_role;
grant select on table public.imports to authenticated;
grant select, insert, update, delete on table public.imports to service_role;

create policy imports_select_own on public.imports
for select to authenticated
using ((select auth.uid()) = user_id);

-- A record read again from an export (the same file twice, a newer export of the same account) is stored
-- once: its identity and content hash are its external id.
create unique index ingested_items_import_dedupe_idx on public.ingested_items (platform, external_id)
where source = 'import' and external_id is not null;

-- A file that came inside an export is copied from it, not downloaded: it has no URL.
alter table public.media_downloads drop constraint media_downloads_original_url_check;

alter table public.media_downloads add constraint media_downloads_original_url_check check (
    original_url ~* '^https?://'
    or (original_url = '' and status = 'unavailable' and error is not null)
    or (original_url = '' and status = 'downloaded')
);

-- Exports carry the original activity files (GPX, TCX, FIT, maybe gzipped) next to the photos.
do $storage$
begin
    if to_regclass('storage.buckets') is null then
        return;
    end if;
    update storage.buckets
    set allowed_mime_types = array[
        'image/*', 'video/*', 'audio/*', 'application/gpx+xml', 'application/vnd.garmin.tcx+xml',
        'application/vnd.ant.fit', 'application/gzip'
    ]
    where id = 'media';
end;
$storage$;

-- The imports queue runs through the same functions as the others (same column names as ingested_items).
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
        when 'ingested_items', 'ingested_posts', 'imports' then
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
    if p_queue not in ('ingested_items', 'ingested_posts', 'media_downloads', 'sync_requests', 'imports') then
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
