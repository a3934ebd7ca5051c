-- RLS matrix for public.ingested_posts: select/insert/update/delete by anon, the owner (alice), another
-- user (bob) and service_role, each cell asserted. PostgREST is emulated: set local role + JWT claims.
begin;
select plan(17);

select tests.create_two_archives();

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select id from public.ingested_posts where id = tests.id('ingested_post', 'alice') $$, '42501', null, 'ingested_posts select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ select id from public.ingested_posts where id = tests.id('ingested_post', 'alice') $$, 'ingested_posts select by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ select id from public.ingested_posts where id = tests.id('ingested_post', 'alice') $$, 'ingested_posts select by another user (bob): no row');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select id from public.ingested_posts where id = tests.id('ingested_post', 'alice') $$, 'ingested_posts select by service_role: allowed');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select is_empty($$ select id from public.ingested_posts where user_id is distinct from (select auth.uid()) $$, 'ingested_posts: a user sees no row of anybody else');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.ingested_posts (platform, account_id, platform_post_id, post_data) values ('strava', tests.id('account', 'alice'), 'new-anon', '{}') returning id $$, '42501', null, 'ingested_posts insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.ingested_posts (platform, account_id, platform_post_id, post_data) values ('strava', tests.id('account', 'alice'), 'new-alice', '{}') returning id $$, '42501', null, 'ingested_posts insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.ingested_posts (platform, account_id, platform_post_id, post_data) values ('strava', tests.id('account', 'alice'), 'new-bob', '{}') returning id $$, '42501', null, 'ingested_posts insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.ingested_posts (platform, account_id, platform_post_id, post_data) values ('strava', tests.id('account', 'alice'), 'new-service', '{}') returning id $$, 'ingested_posts insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.ingested_posts set post_data = '{"by": "anon"}' where id = tests.id('ingested_post', 'alice') returning id $$, '42501', null, 'ingested_posts update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ update public.ingested_posts set post_data = '{"by": "alice"}' where id = tests.id('ingested_post', 'alice') returning id $$, '42501', null, 'ingested_posts update by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ update public.ingested_posts set post_data = '{"by": "bob"}' where id = tests.id('ingested_post', 'alice') returning id $$, '42501', null, 'ingested_posts update by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.ingested_posts set post_data = '{"by": "service"}' where id = tests.id('ingested_post', 'alice') returning id $$, 'ingested_posts update by service_role: allowed');
select tests.clear_authentication();

-- delete (the owner's own delete last: it cascades)
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.ingested_posts where id = tests.id('ingested_post', 'alice') returning id $$, '42501', null, 'ingested_posts delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ delete from public.ingested_posts where id = tests.id('ingested_post', 'alice') returning id $$, '42501', null, 'ingested_posts delete by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ delete from public.ingested_posts where id = tests.id('ingested_post', 'alice') returning id $$, '42501', null, 'ingested_posts delete by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.ingested_posts where id = tests.id('ingested_post', 'alice') returning id $$, 'ingested_posts delete by service_role: allowed');
select tests.clear_authentication();

select finish();
rollback;
