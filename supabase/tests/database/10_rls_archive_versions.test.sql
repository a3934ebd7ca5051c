-- RLS matrix for public.archive_versions: select/insert/update/delete by anon, the owner (alice), another
-- user (bob) and service_role, each cell asserted. Rows are written by triggers only.
begin;
select plan(17);

select tests.create_two_archives();

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select version from public.archive_versions $$, '42501', null, 'archive_versions select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty(
    $$ select version from public.archive_versions where user_id = tests.id('user', 'alice') $$,
    'archive_versions select by the owner (alice): allowed'
);
select is_empty(
    $$ select version from public.archive_versions where user_id <> (select auth.uid()) $$,
    'archive_versions: a user sees no row of anybody else'
);
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty(
    $$ select version from public.archive_versions where user_id = tests.id('user', 'alice') $$,
    'archive_versions select by another user (bob): no row'
);
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select version from public.archive_versions $$, 'archive_versions select by service_role: allowed');
select tests.clear_authentication();

-- insert, update, delete: never by the API users
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.archive_versions (user_id) values (tests.id('user', 'alice')) $$, '42501', null, 'insert by anon: refused (42501)');
select throws_ok($$ update public.archive_versions set version = 0 $$, '42501', null, 'update by anon: refused (42501)');
select throws_ok($$ delete from public.archive_versions $$, '42501', null, 'delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.archive_versions (user_id) values (gen_random_uuid()) $$, '42501', null, 'insert by the owner: refused (42501)');
select throws_ok($$ update public.archive_versions set version = 0 $$, '42501', null, 'update by the owner: refused (42501)');
select throws_ok($$ delete from public.archive_versions $$, '42501', null, 'delete by the owner: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.archive_versions (user_id) values (tests.id('user', 'alice')) $$, '42501', null, 'insert by another user: refused (42501)');
select throws_ok($$ update public.archive_versions set version = 0 $$, '42501', null, 'update by another user: refused (42501)');
select throws_ok($$ delete from public.archive_versions $$, '42501', null, 'delete by another user: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty(
    $$ update public.archive_versions set version = version + 1 where user_id = tests.id('user', 'alice') returning version $$,
    'update by service_role: allowed'
);
select isnt_empty(
    $$ delete from public.archive_versions where user_id = tests.id('user', 'bob') returning user_id $$,
    'delete by service_role: allowed'
);
select isnt_empty(
    $$ insert into public.archive_versions (user_id) values (tests.id('user', 'bob')) returning user_id $$,
    'insert by service_role: allowed'
);
select tests.clear_authentication();

select finish();
rollback;
