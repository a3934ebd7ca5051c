-- RLS matrix for public.sync_requests: select/insert/update/delete by anon, the owner (alice), another
-- user (bob) and service_role, each cell asserted. PostgREST is emulated: set local role + JWT claims.
begin;
select plan(17);

select tests.create_two_archives();

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select id from public.sync_requests where id = tests.id('sync_request', 'alice') $$, '42501', null, 'sync_requests select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ select id from public.sync_requests where id = tests.id('sync_request', 'alice') $$, 'sync_requests select by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ select id from public.sync_requests where id = tests.id('sync_request', 'alice') $$, 'sync_requests select by another user (bob): no row');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select id from public.sync_requests where id = tests.id('sync_request', 'alice') $$, 'sync_requests select by service_role: allowed');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select is_empty($$ select id from public.sync_requests where user_id is distinct from (select auth.uid()) $$, 'sync_requests: a user sees no row of anybody else');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.sync_requests (account_id, sync_type, status) values (tests.id('account', 'alice'), 'manual', 'completed') returning id $$, '42501', null, 'sync_requests insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.sync_requests (account_id, sync_type, status) values (tests.id('account', 'alice'), 'manual', 'completed') returning id $$, '42501', null, 'sync_requests insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.sync_requests (account_id, sync_type, status) values (tests.id('account', 'alice'), 'manual', 'completed') returning id $$, '42501', null, 'sync_requests insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.sync_requests (account_id, sync_type, status) values (tests.id('account', 'alice'), 'manual', 'completed') returning id $$, 'sync_requests insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.sync_requests set priority = 9 where id = tests.id('sync_request', 'alice') returning id $$, '42501', null, 'sync_requests update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ update public.sync_requests set priority = 9 where id = tests.id('sync_request', 'alice') returning id $$, '42501', null, 'sync_requests update by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ update public.sync_requests set priority = 9 where id = tests.id('sync_request', 'alice') returning id $$, '42501', null, 'sync_requests update by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.sync_requests set priority = 9 where id = tests.id('sync_request', 'alice') returning id $$, 'sync_requests update by service_role: allowed');
select tests.clear_authentication();

-- delete (the owner's own delete last: it cascades)
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.sync_requests where id = tests.id('sync_request', 'alice') returning id $$, '42501', null, 'sync_requests delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ delete from public.sync_requests where id = tests.id('sync_request', 'alice') returning id $$, '42501', null, 'sync_requests delete by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ delete from public.sync_requests where id = tests.id('sync_request', 'alice') returning id $$, '42501', null, 'sync_requests delete by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.sync_requests where id = tests.id('sync_request', 'alice') returning id $$, 'sync_requests delete by service_role: allowed');
select tests.clear_authentication();

select finish();
rollback;
