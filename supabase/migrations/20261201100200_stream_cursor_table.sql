-- Where each stream consumer left off, in the platform's own counting (Jetstream: time_us). Written in the
-- same transaction as the events it covers, so a restart resumes exactly there. The worker only.
create table public.stream_cursors (
    platform public.platform_enum not null,
    consumer text not null,
    resume_from bigint not null,
    updated_at timestamptz not null default now(),

    primary key (platform, consumer),
    constraint stream_cursors_consumer_check check (consumer ~ '^[a-z0-9_.:-]{1,64}$'),
    constraint stream_cursors_resume_from_check check (resume_from >= 0)
);

comment on table public.stream_cursors is
'where each real-time stream consumer left off (Jetstream time_us); written with the events it covers';

alter table public.stream_cursors enable row level security;
revoke all on table public.stream_cursors from anon, authenticated, service_role;
grant select, insert, update, delete on table public.stream_cursors to service_role;

-- One stored event per stream event identity (a replay after a reconnect stores nothing twice).
create unique index ingested_items_stream_dedupe_idx on public.ingested_items (platform, external_id)
where source = 'stream' and external_id is not null;
