-- The seeds' enums (schema spec, "Enums Reference").

create type public.platform_enum as enum ('bluesky', 'strava', 'instagram');

create type public.account_status_enum as enum ('active', 'error', 'disconnected', 'token_expired');

create type public.content_type_enum as enum (
    'post', 'activity', 'story', 'reel', 'reply', 'repost', 'article'
);

create type public.download_status_enum as enum (
    'pending', 'downloading', 'downloaded', 'failed', 'unavailable'
);

create type public.sync_type_enum as enum ('webhook', 'manual', 'scheduled', 'backfill');

-- A sync requested but not started yet is 'queued': a manual "sync now" returns its sync_logs id at once and
-- the client polls it through queued -> running -> success / partial / failed / cancelled.
create type public.sync_status_enum as enum ('queued', 'running', 'success', 'partial', 'failed', 'cancelled');

create type public.ingestion_source_enum as enum ('webhook', 'fetch', 'backfill', 'retry');

create type public.processing_status_enum as enum (
    'pending', 'processing', 'completed', 'failed', 'dead_letter'
);
