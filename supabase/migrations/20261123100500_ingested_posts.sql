-- ingested_posts: the latest raw form of each post, one row per platform post (the sync upserts it).
-- Engagement changes over time go to engagement_history.

create table public.ingested_posts (
    id uuid primary key default gen_random_uuid(),
    ingested_item_id uuid references public.ingested_items (id) on delete set null,

    platform public.platform_enum not null,
    account_id uuid references public.connected_accounts (id) on delete set null,
    user_id uuid references public.users (id) on delete set null,

    platform_post_id text not null,

    post_data jsonb not null,

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

    -- Archive first, details later: list pages give every post in few calls; a post whose raw form is only a
    -- summary (Strava's list items) is marked detail_pending, and the worker fetches its detail afterwards at
    -- low priority within the rate-limit budget.
    detail_pending boolean not null default false,

    constraint ingested_posts_platform_post_key unique (platform, platform_post_id),
    constraint ingested_posts_attempts_check check (attempts >= 0),
    constraint ingested_posts_platform_post_id_check check (platform_post_id <> '')
);

create index ingested_posts_status_idx on public.ingested_posts (status);
create index ingested_posts_account_id_idx on public.ingested_posts (account_id);
create index ingested_posts_user_id_idx on public.ingested_posts (user_id);
create index ingested_posts_received_at_idx on public.ingested_posts (received_at desc);
create index ingested_posts_ingested_item_id_idx on public.ingested_posts (ingested_item_id);
create index ingested_posts_post_data_idx on public.ingested_posts using gin (post_data jsonb_path_ops);
create index ingested_posts_ready_idx on public.ingested_posts (run_after)
where status in ('pending', 'failed');
create index ingested_posts_leased_idx on public.ingested_posts (locked_until)
where status = 'processing';
create index ingested_posts_detail_pending_idx on public.ingested_posts (account_id, received_at desc)
where detail_pending;

create trigger ingested_posts_user_id_from_account
before insert or update of account_id on public.ingested_posts
for each row execute function trove_private.user_id_from_account();

create trigger ingested_posts_set_updated_at
before update on public.ingested_posts
for each row execute function trove_private.set_updated_at();

alter table public.ingested_posts enable row level security;

revoke all on table public.ingested_posts from anon, authenticated, service_role;
grant select on table public.ingested_posts to authenticated;
grant select, insert, update, delete on table public.ingested_posts to service_role;

create policy ingested_posts_select_own on public.ingested_posts
for select to authenticated
using ((select auth.uid()) = user_id);
