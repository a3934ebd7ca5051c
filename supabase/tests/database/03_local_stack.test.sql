-- The local recreation of what Supabase provides (supabase/local/): roles and the auth helpers behave
-- as on Supabase, where PostgREST sets the role and `request.jwt.claims` per request.
begin;
select plan(16);

select has_role('anon', 'role anon exists');
select has_role('authenticated', 'role authenticated exists');
select has_role('service_role', 'role service_role exists');
select has_role('authenticator', 'role authenticator exists');
select ok((
    select rolbypassrls from pg_roles
    where rolname = 'service_role'
), 'service_role bypasses RLS');
select ok(not (
    select rolbypassrls from pg_roles
    where rolname = 'authenticated'
), 'authenticated does not bypass RLS');
select ok((
    select rolcanlogin and not rolinherit from pg_roles
    where rolname = 'authenticator'
), 'authenticator logs in and does not inherit');
select ok(
    pg_has_role('authenticator', 'anon', 'member') and pg_has_role('authenticator', 'service_role', 'member'),
    'authenticator can switch to the API roles'
);

select is(auth.uid(), null, 'no JWT: auth.uid() is null');
select set_config('request.jwt.claims', '{"sub": "7d4f8a3c-0000-4000-8000-000000000001", "role": "authenticated", "email": "a@b.test"}', true);
select is(auth.uid(), '7d4f8a3c-0000-4000-8000-000000000001'::uuid, 'auth.uid() reads sub from request.jwt.claims');
select is(auth.role(), 'authenticated', 'auth.role() reads role from request.jwt.claims');
select is(auth.email(), 'a@b.test', 'auth.email() reads email from request.jwt.claims');
select is(auth.jwt() ->> 'sub', '7d4f8a3c-0000-4000-8000-000000000001', 'auth.jwt() returns the claims');
select set_config('request.jwt.claim.sub', '7d4f8a3c-0000-4000-8000-000000000002', true);
select is(auth.uid(), '7d4f8a3c-0000-4000-8000-000000000002'::uuid, 'the legacy request.jwt.claim.sub setting wins, as on Supabase');
select set_config('request.jwt.claim.sub', '', true);
select set_config('request.jwt.claims', '', true);
select is(auth.uid(), null, 'empty claims: auth.uid() is null');
select is(
    (
        select count(*)::int from supabase_migrations.schema_migrations), (
        select count(*)::int from supabase_migrations.schema_migrations
        where version ~ '^\d{14}$'
    ),
    'migrations are recorded in supabase_migrations.schema_migrations by version'
);

select finish();
rollback;
