-- RLS matrix for public.ingested_items: select/insert/update/delete by anon, the owner (alice), another
-- user (bob) and service_role, each cell asserted. PostgREST is emulated: set local role + JWT claims.
begin;
select plan(17);

select tests.create_two_archives();

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select id from public.ingested_items where id = tests.id('ingested_item', 'alice') $$, '42501', null, 'ingested_items select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ select id from public.ingested_items where id = tests.id('ingested_item', 'alice') $$, 'ingested_items select by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ select id from public.ingested_items where id = tests.id('ingested_item', 'alice') $$, 'ingested_items select by another user (bob): no row');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select id from public.ingested_items where id = tests.id('ingested_item', 'alice') $$, 'ingested_items select by service_role: allowed');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select is_empty($$ select id from public.ingested_items where user_id is distinct from (select auth.uid()) $$, 'ingested_items: a user sees no row of anybody else');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.ingested_items (source, platform, account_id, event_type, payload) values ('fetch', 'strava', tests.id('account', 'alice'), 'by anon', '{}') returning id $$, '42501', null, 'ingested_items insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.ingested_items (source, platform, account_id, event_type, payload) values ('fetch', 'strava', tests.id('account', 'alice'), 'by alice', '{}') returning id $$, '42501', null, 'ingested_items insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.ingested_items (source, platform, account_id, event_type, payload) values ('fetch', 'strava', tests.id('account', 'alice'), 'by bob', '{}') returning id $$, '42501', null, 'ingested_items insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.ingested_items (source, platform, account_id, event_type, payload) values ('fetch', 'strava', tests.id('account', 'alice'), 'by service', '{}') returning id $$, 'ingested_items insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.ingested_items set event_type = 'changed by anon' where id = tests.id('ingested_item', 'alice') returning id $$, '42501', null, 'ingested_items update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ update public.ingested_items set event_type = 'changed by alice' where id = tests.id('ingested_item', 'alice') returning id $$, '42501', null, 'ingested_items update by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ update public.ingested_items set event_type = 'changed by bob' where id = tests.id('ingested_item', 'alice') returning id $$, '42501', null, 'ingested_items update by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.ingested_items set event_type = 'changed by service' where id = tests.id('ingested_item', 'alice') returning id $$, 'ingested_items update by service_role: allowed');
select tests.clear_authentication();

-- delete (the owner's own delete last: it cascades)
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.ingested_items where id = tests.id('ingested_item', 'alice') returning id $$, '42501', null, 'ingested_items delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ delete from public.ingested_items where id = tests.id('ingested_item', 'alice') returning id $$, '42501', null, 'ingested_items delete by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ delete from public.ingested_items where id = tests.id('ingested_item', 'alice') returning id $$, '42501', null, 'ingested_items delete by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.ingested_items where id = tests.id('ingested_item', 'alice') returning id $$, 'ingested_items delete by service_role: allowed');
select tests.clear_authentication();

select finish();
rollback;
