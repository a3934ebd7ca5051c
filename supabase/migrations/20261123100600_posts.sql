-- posts: the normalized form of every post/activity, unique per platform post. Platform-specific detail
-- stays in ingested_posts.post_data. Written only by the sync (service role); owners read their own.

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

    search_vector tsvector,

    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),

    constraint posts_platform_post_key unique (platform, platform_post_id),
    constraint posts_platform_post_id_check check (platform_post_id <> '')
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

-- Text (weight A), the author's handle (B) and the activity type (C). Handle and activity type come
-- from the latest raw post: Bluesky post views carry author.handle (feed items nest it under post),
-- Instagram media carry username, Strava activities carry sport_type (older ones only type).
create function trove_private.post_search_vector(
    p_text text, p_platform public.platform_enum, p_platform_post_id text, p_account_id uuid
)
returns tsvector
language sql
stable
set search_path = ''
as $$
    select
        setweight(to_tsvector('english'::regconfig, coalesce(p_text, '')), 'A')
        || setweight(to_tsvector('simple'::regconfig, coalesce(
            ip.post_data -> 'author' ->> 'handle',
            ip.post_data -> 'post' -> 'author' ->> 'handle',
            ip.post_data ->> 'username',
            (select ca.username from public.connected_accounts as ca where ca.id = p_account_id),
            ''
        )), 'B')
        || setweight(to_tsvector('english'::regconfig, coalesce(
            case when p_platform = 'strava' then coalesce(ip.post_data ->> 'sport_type', ip.post_data ->> 'type') end,
            ''
        )), 'C')
    from (select 1) as one
    left join public.ingested_posts as ip
        on ip.platform = p_platform and ip.platform_post_id = p_platform_post_id
$$;

create function trove_private.set_post_search_vector()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.search_vector := trove_private.post_search_vector(
        new.text_content, new.platform, new.platform_post_id, new.account_id
    );
    return new;
end;
$$;

revoke execute on function trove_private.check_post_account() from public;
revoke execute on function trove_private.post_search_vector(text, public.platform_enum, text, uuid) from public;
-- The sync writes posts and raw posts as service_role; their triggers call this helper with its rights.
grant execute on function trove_private.post_search_vector(text, public.platform_enum, text, uuid) to service_role;
revoke execute on function trove_private.set_post_search_vector() from public;

create trigger posts_check_account
before insert or update of account_id, platform on public.posts
for each row execute function trove_private.check_post_account();

create trigger posts_set_search_vector
before insert or update of text_content, account_id, platform, platform_post_id on public.posts
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

-- A newer raw post (e.g. an edited Strava activity type) refreshes the search vector of its post.
create function trove_private.refresh_post_search_vector()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    update public.posts as p
    set search_vector = trove_private.post_search_vector(p.text_content, p.platform, p.platform_post_id, p.account_id)
    where p.platform = new.platform
        and p.platform_post_id = new.platform_post_id
        and p.search_vector is distinct from
        trove_private.post_search_vector(p.text_content, p.platform, p.platform_post_id, p.account_id);
    return null;
end;
$$;

revoke execute on function trove_private.refresh_post_search_vector() from public;

create trigger ingested_posts_refresh_post_search_vector
after insert or update of post_data on public.ingested_posts
for each row execute function trove_private.refresh_post_search_vector();
