-- post_interactions: what others did with a user's posts that a platform told us of (comments, mentions, a
-- story's insights), each an engagement record of the post it belongs to. Linked by the platform's post id,
-- not a foreign key: the event may arrive before the post is archived (a comment on a post not synced yet,
-- the insights of a story that has just ended), and the link holds once it is. The webhook item it came from
-- stays in ingested_items. One record per (account, kind, platform item): a retried or repeated event
-- updates it (insights grow until the story ends).
create table public.post_interactions (
    id uuid primary key default gen_random_uuid(),
    account_id uuid not null references public.connected_accounts (id) on delete cascade,
    user_id uuid not null references public.users (id) on delete cascade,
    platform public.platform_enum not null,
    platform_post_id text not null,
    kind text not null,
    platform_item_id text not null,
    author_handle text,
    text_content text,
    details jsonb not null default '{}',
    occurred_at timestamptz,
    ingested_item_id uuid references public.ingested_items (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint post_interactions_account_kind_item_key unique (account_id, kind, platform_item_id),
    constraint post_interactions_kind_check check (kind ~ '^[a-z_]{1,32}$'),
    constraint post_interactions_ids_check check (
        length(platform_post_id) between 1 and 256 and length(platform_item_id) between 1 and 256
    ),
    constraint post_interactions_details_check check (jsonb_typeof(details) = 'object')
);

create index post_interactions_post_idx on public.post_interactions (account_id, platform_post_id);
create index post_interactions_user_id_idx on public.post_interactions (user_id);
create index post_interactions_ingested_item_id_idx on public.post_interactions (ingested_item_id);

create trigger post_interactions_user_id_from_account
before insert or update of account_id on public.post_interactions
for each row execute function trove_private.user_id_from_account();

create trigger post_interactions_set_updated_at
before update on public.post_interactions
for each row execute function trove_private.set_updated_at();

alter table public.post_interactions enable row level security;
revoke all on table public.post_interactions from anon, authenticated, service_role;
grant select on table public.post_interactions to authenticated;
grant select, insert, update, delete on table public.post_interactions to service_role;

create policy post_interactions_select_own on public.post_interactions
for select to authenticated
using ((select auth.uid()) = user_id);
