-- RLS matrix for public.notifications: select/insert/update/delete by anon, the owner (alice), another
-- user (bob) and service_role, each cell asserted. PostgREST is emulated: set local role + JWT claims.
begin;
select plan(18);

select tests.create_two_archives();

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select id from public.notifications where id = tests.id('notification', 'alice') $$, '42501', null, 'notifications select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ select id from public.notifications where id = tests.id('notification', 'alice') $$, 'notifications select by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ select id from public.notifications where id = tests.id('notification', 'alice') $$, 'notifications select by another user (bob): no row');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select id from public.notifications where id = tests.id('notification', 'alice') $$, 'notifications select by service_role: allowed');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select is_empty($$ select id from public.notifications where user_id is distinct from (select auth.uid()) $$, 'notifications: a user sees no row of anybody else');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.notifications (user_id, kind, title) values (tests.id('user', 'alice'), 'sync_failing', 'by anon') returning id $$, '42501', null, 'notifications insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.notifications (user_id, kind, title) values (tests.id('user', 'alice'), 'sync_failing', 'by alice') returning id $$, '42501', null, 'notifications insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.notifications (user_id, kind, title) values (tests.id('user', 'alice'), 'sync_failing', 'by bob') returning id $$, '42501', null, 'notifications insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.notifications (user_id, kind, title) values (tests.id('user', 'alice'), 'sync_failing', 'by service') returning id $$, 'notifications insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.notifications set read_at = now() where id = tests.id('notification', 'alice') returning id $$, '42501', null, 'notifications update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ update public.notifications set read_at = now() where id = tests.id('notification', 'alice') returning id $$, 'notifications update by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ update public.notifications set read_at = now() where id = tests.id('notification', 'alice') returning id $$, 'notifications update by another user (bob): no row (the row is invisible)');
select tests.clear_authentication();
select is((
    select read_at is not null from public.notifications
    where id = tests.id('notification', 'alice')
), true, 'notifications: alice''s own update went through, bob''s changed nothing');
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.notifications set read_at = now() where id = tests.id('notification', 'alice') returning id $$, 'notifications update by service_role: allowed');
select tests.clear_authentication();

-- delete (the owner's own delete last: it cascades)
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.notifications where id = tests.id('notification', 'alice') returning id $$, '42501', null, 'notifications delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ delete from public.notifications where id = tests.id('notification', 'alice') returning id $$, 'notifications delete by another user (bob): no row (the row is invisible)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.notifications where id = tests.id('notification', 'bob') returning id $$, 'notifications delete by service_role: allowed (bob''s row)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ delete from public.notifications where id = tests.id('notification', 'alice') returning id $$, 'notifications delete by the owner (alice): allowed');
select tests.clear_authentication();

select finish();
rollback;
