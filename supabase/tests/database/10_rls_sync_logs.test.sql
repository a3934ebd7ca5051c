-- RLS matrix for public.sync_logs: select/insert/update/delete by anon, the owner (alice), another
-- user (bob) and service_role, each cell asserted. PostgREST is emulated: set local role + JWT claims.
begin;
select plan(17);

select tests.create_two_archives();

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select id from public.sync_logs where id = tests.id('sync_log', 'alice') $$, '42501', null, 'sync_logs select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ select id from public.sync_logs where id = tests.id('sync_log', 'alice') $$, 'sync_logs select by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ select id from public.sync_logs where id = tests.id('sync_log', 'alice') $$, 'sync_logs select by another user (bob): no row');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select id from public.sync_logs where id = tests.id('sync_log', 'alice') $$, 'sync_logs select by service_role: allowed');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select is_empty($$ select id from public.sync_logs where user_id is distinct from (select auth.uid()) $$, 'sync_logs: a user sees no row of anybody else');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.sync_logs (account_id, sync_type) values (tests.id('account', 'alice'), 'manual') returning id $$, '42501', null, 'sync_logs insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.sync_logs (account_id, sync_type) values (tests.id('account', 'alice'), 'manual') returning id $$, '42501', null, 'sync_logs insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.sync_logs (account_id, sync_type) values (tests.id('account', 'alice'), 'manual') returning id $$, '42501', null, 'sync_logs insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.sync_logs (account_id, sync_type) values (tests.id('account', 'alice'), 'manual') returning id $$, 'sync_logs insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.sync_logs set error_message = 'changed by anon' where id = tests.id('sync_log', 'alice') returning id $$, '42501', null, 'sync_logs update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ update public.sync_logs set error_message = 'changed by alice' where id = tests.id('sync_log', 'alice') returning id $$, '42501', null, 'sync_logs update by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ update public.sync_logs set error_message = 'changed by bob' where id = tests.id('sync_log', 'alice') returning id $$, '42501', null, 'sync_logs update by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.sync_logs set error_message = 'changed by service' where id = tests.id('sync_log', 'alice') returning id $$, 'sync_logs update by service_role: allowed');
select tests.clear_authentication();

-- delete (the owner's own delete last: it cascades)
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.sync_logs where id = tests.id('sync_log', 'alice') returning id $$, '42501', null, 'sync_logs delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ delete from public.sync_logs where id = tests.id('sync_log', 'alice') returning id $$, '42501', null, 'sync_logs delete by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ delete from public.sync_logs where id = tests.id('sync_log', 'alice') returning id $$, '42501', null, 'sync_logs delete by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.sync_logs where id = tests.id('sync_log', 'alice') returning id $$, 'sync_logs delete by service_role: allowed');
select tests.clear_authentication();

select finish();
rollback;
