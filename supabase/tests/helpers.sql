-- Test-only helpers for the pgTAP files in supabase/tests/database/. Installed into test databases only
-- (the pytest harness loads this file; never a migration). They emulate PostgREST exactly: a request is
-- `set local role <role>` plus `request.jwt.claims`, both transaction-local, then plain SQL.

create schema if not exists tests;
grant usage on schema tests to anon, authenticated, service_role;

-- Named fixtures: tests refer to rows as ('post', 'alice') instead of carrying UUIDs around.
create table if not exists tests.fixtures (
    kind text not null,
    owner_name text not null,
    id uuid not null,
    primary key (kind, owner_name)
);
grant select on table tests.fixtures to anon, authenticated, service_role;

create or replace function tests.id(p_kind text, p_owner text)
returns uuid
language plpgsql
stable
as $$
declare
    found_id uuid;
begin
    select f.id into found_id from tests.fixtures as f where f.kind = p_kind and f.owner_name = p_owner;
    if found_id is null then
        raise exception 'no test fixture % of %', p_kind, p_owner;
    end if;
    return found_id;
end;
$$;

-- A Supabase Auth sign-up (the trigger creates public.users).
create or replace function tests.create_user(p_name text)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    new_id uuid := gen_random_uuid();
begin
    insert into auth.users (id, aud, role, email)
    values (new_id, 'authenticated', 'authenticated', p_name || '@test.trove.local');
    insert into tests.fixtures (kind, owner_name, id) values ('user', p_name, new_id);
    return new_id;
end;
$$;

-- One of everything for a user: account, raw page, raw post, post, media, sync log, engagement,
-- notification and a queued sync request.
create or replace function tests.create_archive(p_name text, p_platform public.platform_enum default 'strava')
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    uid uuid := tests.id('user', p_name);
    account uuid;
    item uuid;
    raw_post uuid;
    post uuid;
    media uuid;
    sync_log uuid;
    engagement uuid;
    notification uuid;
    queued_log uuid;
begin
    insert into public.connected_accounts (user_id, platform, platform_user_id, username, access_token,
                                           refresh_token, token_expires_at, scope)
    values (uid, p_platform, p_name || '-athlete', p_name, 'v1:test:secret-access-' || p_name,
            'v1:test:secret-refresh-' || p_name, now() + interval '6 hours', 'read,activity:read_all')
    returning id into account;
    insert into public.ingested_items (source, platform, account_id, event_type, payload)
    values ('fetch', p_platform, account, 'activities.page', '[{"id": 1}]')
    returning id into item;
    insert into public.ingested_posts (ingested_item_id, platform, account_id, platform_post_id, post_data)
    values (item, p_platform, account, p_name || '-post-1',
            jsonb_build_object('name', p_name || ' morning run', 'sport_type', 'TrailRun'))
    returning id into raw_post;
    insert into public.posts (account_id, platform, platform_post_id, content_type, text_content,
                              created_at_platform)
    values (account, p_platform, p_name || '-post-1', 'activity', p_name || ' morning run', now())
    returning id into post;
    insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url)
    values (raw_post, uid, p_platform, p_name || '-photo-1', 'https://media.example.test/' || p_name || '.jpg')
    returning id into media;
    insert into public.sync_logs (account_id, sync_type) values (account, 'backfill')
    returning id into sync_log;
    insert into public.engagement_history (post_id, engagement_stats)
    values (post, '{"kudos_count": 3}')
    returning id into engagement;
    insert into public.notifications (user_id, account_id, kind, title)
    values (uid, account, 'sync_failing', 'Syncing keeps failing')
    returning id into notification;
    queued_log := trove_private.enqueue_sync(account, 'scheduled');
    insert into public.api_keys (user_id, name, prefix, key_hash)
    values (uid, p_name || ' website', left(md5(p_name), 8), md5('key-' || p_name));

    insert into tests.fixtures (kind, owner_name, id)
    values
    ('account', p_name, account),
    ('ingested_item', p_name, item),
    ('ingested_post', p_name, raw_post),
    ('post', p_name, post),
    ('media_download', p_name, media),
    ('sync_log', p_name, sync_log),
    ('engagement', p_name, engagement),
    ('notification', p_name, notification),
    ('queued_sync_log', p_name, queued_log),
    ('api_key', p_name, (select k.id from public.api_keys as k where k.user_id = uid)),
    ('sync_request', p_name, (select r.id from public.sync_requests as r where r.sync_log_id = queued_log));
end;
$$;

-- Two users, alice and bob, each with a full archive: the setup of every RLS test.
create or replace function tests.create_two_archives()
returns void
language plpgsql
as $$
begin
    perform tests.create_user('alice');
    perform tests.create_user('bob');
    perform tests.create_archive('alice');
    perform tests.create_archive('bob');
end;
$$;

-- Act as a signed-in user, as PostgREST does for a request carrying that user's JWT.
create or replace function tests.authenticate_as(p_name text)
returns void
language plpgsql
as $$
declare
    uid uuid := tests.id('user', p_name);
begin
    perform set_config('role', 'authenticated', true);
    perform set_config(
        'request.jwt.claims',
        json_build_object('sub', uid, 'role', 'authenticated', 'email', p_name || '@test.trove.local')::text,
        true
    );
end;
$$;

create or replace function tests.authenticate_as_anon()
returns void
language plpgsql
as $$
begin
    perform set_config('role', 'anon', true);
    perform set_config('request.jwt.claims', '{"role": "anon"}', true);
end;
$$;

create or replace function tests.authenticate_as_service_role()
returns void
language plpgsql
as $$
begin
    perform set_config('role', 'service_role', true);
    perform set_config('request.jwt.claims', '{"role": "service_role"}', true);
end;
$$;

-- Back to the session's own role (postgres) with no JWT.
create or replace function tests.clear_authentication()
returns void
language plpgsql
as $$
begin
    perform set_config('role', 'none', true);
    perform set_config('request.jwt.claims', '', true);
end;
$$;

grant execute on all functions in schema tests to anon, authenticated, service_role;

-- Catalog look-ups that keep the schema tests one line each.
create or replace function tests.constraint_def(p_table regclass, p_name text)
returns text
language sql
stable
as $$
    select pg_get_constraintdef(c.oid) from pg_catalog.pg_constraint as c
    where c.conrelid = p_table and c.conname = p_name
$$;

create or replace function tests.constraint_names(p_table regclass)
returns text[]
language sql
stable
as $$
    select array_agg(c.conname::text order by c.conname) from pg_catalog.pg_constraint as c
    where c.conrelid = p_table
$$;

create or replace function tests.rls_enabled(p_table regclass)
returns boolean
language sql
stable
as $$
    select c.relrowsecurity from pg_catalog.pg_class as c where c.oid = p_table
$$;
