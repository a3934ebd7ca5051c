-- RLS matrix for public.users: select/insert/update/delete by anon, the owner (alice), another
-- user (bob) and service_role, each cell asserted. PostgREST is emulated: set local role + JWT claims.
begin;
select plan(18);

select tests.create_two_archives();
select tests.create_user('spare');
delete from public.users
where id = tests.id('user', 'spare');

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select id from public.users where id = tests.id('user', 'alice') $$, '42501', null, 'users select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ select id from public.users where id = tests.id('user', 'alice') $$, 'users select by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ select id from public.users where id = tests.id('user', 'alice') $$, 'users select by another user (bob): no row');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select id from public.users where id = tests.id('user', 'alice') $$, 'users select by service_role: allowed');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select is_empty($$ select id from public.users where id <> (select auth.uid()) $$, 'users: a user sees no row of anybody else');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.users (id, email) values (tests.id('user', 'spare'), 'spare-anon@x.test') returning id $$, '42501', null, 'users insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.users (id, email) values (tests.id('user', 'spare'), 'spare-alice@x.test') returning id $$, '42501', null, 'users insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.users (id, email) values (tests.id('user', 'spare'), 'spare-bob@x.test') returning id $$, '42501', null, 'users insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.users (id, email) values (tests.id('user', 'spare'), 'spare-service@x.test') returning id $$, 'users insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.users set display_name = 'changed by anon' where id = tests.id('user', 'alice') returning id $$, '42501', null, 'users update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ update public.users set display_name = 'changed by alice' where id = tests.id('user', 'alice') returning id $$, 'users update by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ update public.users set display_name = 'changed by bob' where id = tests.id('user', 'alice') returning id $$, 'users update by another user (bob): no row (the row is invisible)');
select tests.clear_authentication();
select is((
    select display_name from public.users
    where id = tests.id('user', 'alice')
), 'changed by alice', 'users: bob''s update changed nothing of alice''s row');
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.users set display_name = 'changed by service' where id = tests.id('user', 'alice') returning id $$, 'users update by service_role: allowed');
select tests.clear_authentication();

-- delete (the owner's own delete last: it cascades)
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.users where id = tests.id('user', 'alice') returning id $$, '42501', null, 'users delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ delete from public.users where id = tests.id('user', 'alice') returning id $$, '42501', null, 'users delete by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ delete from public.users where id = tests.id('user', 'alice') returning id $$, '42501', null, 'users delete by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.users where id = tests.id('user', 'alice') returning id $$, 'users delete by service_role: allowed');
select tests.clear_authentication();

select finish();
rollback;
