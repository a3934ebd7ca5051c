-- ingested_items: every raw payload we receive, kept forever: each webhook body and each API response
-- page a sync or backfill fetched. Processing state lives beside it so the worker can (re)process it.

create table public.ingested_items (
    id uuid primary key default gen_random_uuid(),
    -- The seeds' column name.
    source public.ingestion_source_enum not null, -- noqa: RF04
    platform public.platform_enum not null,
    account_id uuid references public.connected_accounts (id) on delete set null,
    user_id uuid references public.users (id) on delete set null,

    event_type text not null,
    external_id text,

    payload jsonb not null,

    status public.processing_status_enum not null default 'pending',
    attempts integer not null default 0,

    received_at timestamptz not null default now(),
    started_at timestamptz,
    completed_at timestamptz,

    error_message text,
    error_details jsonb,
    last_error_at timestamptz,

    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),

    -- Work queue (trove_private.claim_work): due time and the lease of the worker processing it.
    run_after timestamptz not null default now(),
    locked_by text,
    locked_until timestamptz,

    -- What processing a stored event did: an event is a hint, never the truth. Destructive events
    -- (deauthorize, delete) are applied only when the platform confirms them; otherwise they stay stored,
    -- marked not_confirmed, and change nothing.
    outcome text,

    constraint ingested_items_attempts_check check (attempts >= 0),
    constraint ingested_items_event_type_check check (event_type <> ''),
    constraint ingested_items_outcome_check check (outcome in ('applied', 'ignored', 'not_confirmed'))
);

comment on column public.ingested_items.outcome is
'applied: acted on; ignored: nothing to do; not_confirmed: the platform did not confirm it, nothing changed';

create index ingested_items_status_idx on public.ingested_items (status);
create index ingested_items_platform_idx on public.ingested_items (platform);
create index ingested_items_account_id_idx on public.ingested_items (account_id);
create index ingested_items_user_id_idx on public.ingested_items (user_id);
create index ingested_items_received_at_idx on public.ingested_items (received_at desc);
create index ingested_items_payload_idx on public.ingested_items using gin (payload jsonb_path_ops);
create index ingested_items_platform_external_id_idx on public.ingested_items (platform, external_id);
create index ingested_items_ready_idx on public.ingested_items (run_after)
where status in ('pending', 'failed');
create index ingested_items_leased_idx on public.ingested_items (locked_until)
where status = 'processing';

-- Platforms retry webhook deliveries (Strava up to 3 times): one stored event per delivery identity.
create unique index ingested_items_webhook_dedupe_idx on public.ingested_items (platform, external_id)
where source = 'webhook' and external_id is not null;

create trigger ingested_items_user_id_from_account
before insert or update of account_id on public.ingested_items
for each row execute function trove_private.user_id_from_account();

create trigger ingested_items_set_updated_at
before update on public.ingested_items
for each row execute function trove_private.set_updated_at();

alter table public.ingested_items enable row level security;

revoke all on table public.ingested_items from anon, authenticated, service_role;
grant select on table public.ingested_items to authenticated;
grant select, insert, update, delete on table public.ingested_items to service_role;

create policy ingested_items_select_own on public.ingested_items
for select to authenticated
using ((select auth.uid()) = user_id);
