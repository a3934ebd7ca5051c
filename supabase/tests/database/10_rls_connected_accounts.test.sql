-- RLS matrix for public.connected_accounts: select/insert/update/delete by anon, the owner (alice), another
-- user (bob) and service_role, each cell asserted. PostgREST is emulated: set local role + JWT claims.
begin;
select plan(18);

select tests.create_two_archives();

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select id from public.connected_accounts where id = tests.id('account', 'alice') $$, '42501', null, 'connected_accounts select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ select id from public.connected_accounts where id = tests.id('account', 'alice') $$, 'connected_accounts select by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ select id from public.connected_accounts where id = tests.id('account', 'alice') $$, 'connected_accounts select by another user (bob): no row');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select id from public.connected_accounts where id = tests.id('account', 'alice') $$, 'connected_accounts select by service_role: allowed');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select is_empty($$ select id from public.connected_accounts where user_id is distinct from (select auth.uid()) $$, 'connected_accounts: a user sees no row of anybody else');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.connected_accounts (user_id, platform, platform_user_id, username) values (tests.id('user', 'alice'), 'bluesky', 'did:plc:anon', 'anon.test') returning id $$, '42501', null, 'connected_accounts insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.connected_accounts (user_id, platform, platform_user_id, username) values (tests.id('user', 'alice'), 'bluesky', 'did:plc:alice', 'alice.test') returning id $$, '42501', null, 'connected_accounts insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.connected_accounts (user_id, platform, platform_user_id, username) values (tests.id('user', 'alice'), 'bluesky', 'did:plc:bob', 'bob.test') returning id $$, '42501', null, 'connected_accounts insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.connected_accounts (user_id, platform, platform_user_id, username) values (tests.id('user', 'alice'), 'bluesky', 'did:plc:service', 'service.test') returning id $$, 'connected_accounts insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.connected_accounts set sync_enabled = ('anon' <> 'alice') where id = tests.id('account', 'alice') returning id $$, '42501', null, 'connected_accounts update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ update public.connected_accounts set sync_enabled = ('alice' <> 'alice') where id = tests.id('account', 'alice') returning id $$, 'connected_accounts update by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ update public.connected_accounts set sync_enabled = ('bob' <> 'alice') where id = tests.id('account', 'alice') returning id $$, 'connected_accounts update by another user (bob): no row (the row is invisible)');
select tests.clear_authentication();
select is((
    select sync_enabled from public.connected_accounts
    where id = tests.id('account', 'alice')
), false, 'connected_accounts: bob''s update changed nothing of alice''s row');
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.connected_accounts set sync_enabled = ('service' <> 'alice') where id = tests.id('account', 'alice') returning id $$, 'connected_accounts update by service_role: allowed');
select tests.clear_authentication();

-- delete (the owner's own delete last: it cascades)
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.connected_accounts where id = tests.id('account', 'alice') returning id $$, '42501', null, 'connected_accounts delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ delete from public.connected_accounts where id = tests.id('account', 'alice') returning id $$, 'connected_accounts delete by another user (bob): no row (the row is invisible)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.connected_accounts where id = tests.id('account', 'bob') returning id $$, 'connected_accounts delete by service_role: allowed (bob''s row)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ delete from public.connected_accounts where id = tests.id('account', 'alice') returning id $$, 'connected_accounts delete by the owner (alice): allowed');
select tests.clear_authentication();

select finish();
rollback;
