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
    -- As the sync stores it: the normalizer decided it is public, its public fields and its keywords.
    insert into public.posts (account_id, platform, platform_post_id, content_type, text_content,
                              created_at_platform, visibility, public_data, search_keywords)
    values (account, p_platform, p_name || '-post-1', 'activity', p_name || ' morning run', now(),
            'public', jsonb_build_object('name', p_name || ' morning run', 'sport_type', 'TrailRun'), 'TrailRun')
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

-- One cell of an RLS matrix: run p_sql as p_actor (anon, alice, bob or service, through the PostgREST
-- emulation above) and assert the outcome: 'refused' (42501, no privilege), 'allowed' (rows come back) or
-- 'no row' (RLS hides the row). Returns the pgTAP line; the description names table, operation and actor.
create or replace function tests.rls_cell(
    p_table text, p_operation text, p_actor text, p_sql text, p_expect text, p_note text default ''
)
returns text
language plpgsql
as $$
declare
    label text := format(
        '%s %s by %s', p_table, p_operation,
        case p_actor
            when 'anon' then 'anon'
            when 'alice' then 'the owner (alice)'
            when 'bob' then 'another user (bob)'
            when 'service' then 'service_role'
        end
    );
    result text;
begin
    case p_actor
        when 'anon' then perform tests.authenticate_as_anon();
        when 'service' then perform tests.authenticate_as_service_role();
        else perform tests.authenticate_as(p_actor);
    end case;
    result := case p_expect
        when 'refused' then throws_ok(p_sql, '42501', null, label || ': refused (42501)' || p_note)
        when 'allowed' then isnt_empty(p_sql, label || ': allowed' || p_note)
        when 'no row' then is_empty(
            p_sql, label || ': no row' || case when p_operation = 'select' then '' else ' (the row is invisible)' end
        )
    end;
    perform tests.clear_authentication();
    if result is null then
        raise exception 'rls_cell: unknown actor % or expectation %', p_actor, p_expect;
    end if;
    return result;
end;
$$;

-- What one cell of the matrix expects (see tests.rls_matrix).
create or replace function tests.rls_expectation(p_operation text, p_actor text, p_owner_may text[])
returns text
language sql
immutable
as $$
    select case
        when p_actor = 'anon' then 'refused'
        when p_actor = 'service' then 'allowed'
        when p_operation = 'insert' or not p_operation = any(p_owner_may) then 'refused'
        when p_actor = 'alice' then 'allowed'
        else 'no row'
    end
$$;

-- The RLS matrix of one table in public: select, insert, update and delete by anon, the owner (alice),
-- another user (bob) and service_role, every cell asserted (select * from tests.rls_matrix(...)). What each
-- cell expects follows from p_owner_may, what the owner may do (of select, update, delete; no API user ever
-- inserts): anon is refused everything (42501) and the service role allowed everything; the owner is allowed
-- what p_owner_may names and refused the rest; another user gets no row where the owner is allowed (RLS hides
-- the owner's row) and is refused elsewhere. Where the owner may select, a user also sees no row of anybody
-- else; where she may update, another user's update changes nothing of her row; where she may delete, her
-- own delete comes last (it cascades) and the service role deletes bob's row (p_other_row) instead.
--   p_row     the WHERE condition picking alice's row (null: the whole table, for service-only tables)
--   p_insert  an INSERT statement without RETURNING; p_update a SET clause. In both, {actor} is replaced by
--             the actor's name: write a different value per actor.
--   p_key     the column selected and returned (the API roles need SELECT on it)
create or replace function tests.rls_matrix(
    p_table text,
    p_row text,
    p_insert text,
    p_update text,
    p_owner_may text[] default array['select'],
    p_key text default 'id',
    p_other_row text default null,
    p_owner_column text default 'user_id',
    p_operations text[] default array['select', 'insert', 'update', 'delete']
)
returns setof text
language plpgsql
as $$
declare
    target text := format('public.%I', p_table);
    rows_of_alice text := coalesce(' where ' || p_row, '');
    actor text;
    before_bob jsonb;
    after_bob jsonb;
    snapshot text := format(
        'select jsonb_agg(to_jsonb(t) order by to_jsonb(t)::text) from public.%I as t%s', p_table, rows_of_alice
    );
begin
    if 'delete' = any(p_owner_may) and p_other_row is null then
        raise exception 'rls_matrix(%): the owner may delete, so p_other_row must name bob''s row', p_table;
    end if;

    if 'select' = any(p_operations) then
        foreach actor in array array['anon', 'alice', 'bob', 'service'] loop
            return next tests.rls_cell(
                p_table, 'select', actor, format('select %I from %s%s', p_key, target, rows_of_alice),
                tests.rls_expectation('select', actor, p_owner_may)
            );
        end loop;
        if 'select' = any(p_owner_may) then
            perform tests.authenticate_as('alice');
            return next is_empty(
                format('select %I from %s where %I is distinct from (select auth.uid())', p_key, target, p_owner_column),
                p_table || ': a user sees no row of anybody else'
            );
            perform tests.clear_authentication();
        end if;
    end if;

    if 'insert' = any(p_operations) then
        foreach actor in array array['anon', 'alice', 'bob', 'service'] loop
            return next tests.rls_cell(
                p_table, 'insert', actor, replace(p_insert, '{actor}', actor) || format(' returning %I', p_key),
                tests.rls_expectation('insert', actor, p_owner_may)
            );
        end loop;
    end if;

    if 'update' = any(p_operations) then
        foreach actor in array array['anon', 'alice', 'bob', 'service'] loop
            if actor = 'bob' then
                execute snapshot into before_bob;
            end if;
            return next tests.rls_cell(
                p_table, 'update', actor,
                format('update %s set %s%s returning %I', target, replace(p_update, '{actor}', actor), rows_of_alice, p_key),
                tests.rls_expectation('update', actor, p_owner_may)
            );
            if actor = 'bob' and 'update' = any(p_owner_may) then
                execute snapshot into after_bob;
                return next is(after_bob, before_bob, p_table || ': bob''s update changed nothing of alice''s row');
            end if;
        end loop;
    end if;

    if 'delete' = any(p_operations) then
        foreach actor in array case
            when 'delete' = any(p_owner_may) then array['anon', 'bob', 'service', 'alice']
            else array['anon', 'bob', 'alice', 'service']
        end loop
            if actor = 'service' and 'delete' = any(p_owner_may) then
                return next tests.rls_cell(
                    p_table, 'delete', actor, format('delete from %s where %s returning %I', target, p_other_row, p_key),
                    'allowed', ' (bob''s row)'
                );
            else
                return next tests.rls_cell(
                    p_table, 'delete', actor, format('delete from %s%s returning %I', target, rows_of_alice, p_key),
                    tests.rls_expectation('delete', actor, p_owner_may)
                );
            end if;
        end loop;
    end if;
end;
$$;

grant execute on all functions in schema tests to anon, authenticated, service_role;

-- A catalog look-up that keeps the schema tests one line each.
create or replace function tests.rls_enabled(p_table regclass)
returns boolean
language sql
stable
as $$
    select c.relrowsecurity from pg_catalog.pg_class as c where c.oid = p_table
$$;
