-- posts: the normalized form of every post/activity, unique per platform post. Platform-specific detail
-- stays in ingested_posts.post_data. Written only by the sync (service role); owners read their own.
-- No platform rule lives in SQL: who may see a post on its platform (visibility), which of its raw fields a
-- public reader may see (public_data, an allow-list) and its search terms are decided by the platform's
-- normalizer in Python (trove.platforms.<name>.normalize) and stored here; SQL treats every platform alike.

create table public.posts (
    id uuid primary key default gen_random_uuid(),
    account_id uuid not null references public.connected_accounts (id) on delete cascade,
    user_id uuid not null references public.users (id) on delete cascade,

    platform public.platform_enum not null,
    platform_post_id text not null,
    content_type public.content_type_enum not null default 'post',

    text_content text,
    html_content text,

    created_at_platform timestamptz not null,
    updated_at_platform timestamptz,

    published boolean not null default true,
    deleted_on_platform boolean not null default false,

    -- public: everyone on the platform may see it; followers: only its followers; private: only the owner.
    -- Public mode (API keys, public_posts) shows only public, published, not deleted posts.
    visibility text not null default 'private',
    -- The raw fields a public reader may see: an allow-list chosen by the normalizer (never coordinates).
    public_data jsonb not null default '{}'::jsonb,
    -- Search terms beyond the text: the author's handle (weight B; the account's username when null) and
    -- keywords such as an activity's sport (weight C).
    author_handle text,
    search_keywords text,

    search_vector tsvector,

    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),

    constraint posts_platform_post_key unique (platform, platform_post_id),
    constraint posts_platform_post_id_check check (platform_post_id <> ''),
    constraint posts_visibility_check check (visibility in ('public', 'followers', 'private')),
    constraint posts_public_data_check check (jsonb_typeof(public_data) = 'object')
);

create index posts_account_id_idx on public.posts (account_id);
create index posts_user_id_idx on public.posts (user_id);
create index posts_user_created_idx on public.posts (user_id, created_at_platform desc);
create index posts_user_platform_created_idx on public.posts (user_id, platform, created_at_platform desc);
create index posts_deleted_on_platform_idx on public.posts (deleted_on_platform);
create index posts_search_vector_idx on public.posts using gin (search_vector);
-- The feed's order (public.feed): newest first, the id breaking ties, so keyset pages are index scans.
create index posts_user_feed_idx on public.posts (user_id, created_at_platform desc, id desc);

-- user_id always follows the account, and the account must be on the post's platform.
create function trove_private.check_post_account()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
    account_platform public.platform_enum;
begin
    select ca.platform, ca.user_id into account_platform, new.user_id
    from public.connected_accounts as ca
    where ca.id = new.account_id;
    if account_platform is distinct from new.platform then
        raise exception 'post % is on %, but account % is on %',
            new.platform_post_id, new.platform, new.account_id, coalesce(account_platform::text, 'no platform')
            using errcode = '23514';
    end if;
    return new;
end;
$$;

-- Text (weight A), the author's handle (B: the post's own, else the account's username) and keywords (C).
create function trove_private.post_search_vector(
    p_text text, p_author_handle text, p_keywords text, p_account_id uuid
)
returns tsvector
language sql
stable
set search_path = ''
as $$
    select
        setweight(to_tsvector('english'::regconfig, coalesce(p_text, '')), 'A')
        || setweight(to_tsvector('simple'::regconfig, coalesce(
            p_author_handle,
            (select ca.username from public.connected_accounts as ca where ca.id = p_account_id),
            ''
        )), 'B')
        || setweight(to_tsvector('english'::regconfig, coalesce(p_keywords, '')), 'C')
$$;

create function trove_private.set_post_search_vector()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.search_vector := trove_private.post_search_vector(
        new.text_content, new.author_handle, new.search_keywords, new.account_id
    );
    return new;
end;
$$;

revoke execute on function trove_private.check_post_account() from public;
revoke execute on function trove_private.post_search_vector(text, text, text, uuid) from public;
-- The sync writes posts as service_role; their triggers call this helper with its rights.
grant execute on function trove_private.post_search_vector(text, text, text, uuid) to service_role;
revoke execute on function trove_private.set_post_search_vector() from public;

create trigger posts_check_account
before insert or update of account_id, platform on public.posts
for each row execute function trove_private.check_post_account();

create trigger posts_set_search_vector
before insert or update of text_content, author_handle, search_keywords, account_id on public.posts
for each row execute function trove_private.set_post_search_vector();

create trigger posts_set_updated_at
before update on public.posts
for each row execute function trove_private.set_updated_at();

alter table public.posts enable row level security;

revoke all on table public.posts from anon, authenticated, service_role;
grant select on table public.posts to authenticated;
grant select, insert, update, delete on table public.posts to service_role;

create policy posts_select_own on public.posts
for select to authenticated
using ((select auth.uid()) = user_id);
