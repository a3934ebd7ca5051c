-- What a Supabase project already has, recreated for vanilla PostgreSQL. Applied before the migrations,
-- only on the local stack (never on Supabase). Idempotent: roles are cluster-wide, schemas per database.

-- PostgREST's roles: it logs in as authenticator and switches to anon / authenticated / service_role.
do $roles$
begin
    if not exists (select from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
    if not exists (select from pg_roles where rolname = 'authenticator') then
        create role authenticator login noinherit password 'postgres';
    end if;
end
$roles$;

grant anon to authenticator;
grant authenticated to authenticator;
grant service_role to authenticator;
grant anon to postgres;
grant authenticated to postgres;
grant service_role to postgres;

-- Supabase's schemas: public is exposed through PostgREST, extensions holds extensions.
create schema if not exists extensions;
grant usage on schema public, extensions to anon, authenticated, service_role;

-- Supabase grants everything in public to the API roles by default; our migrations revoke it table by
-- table and grant explicitly, and the tests prove they do. Keep the same defaults here so they must.
alter default privileges for role postgres in schema public
grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
grant all on sequences to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
grant all on functions to anon, authenticated, service_role;

-- As on Supabase, extensions (pgTAP among them in tests) resolve without a schema prefix.
alter role postgres set search_path = "$user", public, extensions; -- noqa: RF05
alter role authenticator set search_path = "$user", public, extensions; -- noqa: RF05
