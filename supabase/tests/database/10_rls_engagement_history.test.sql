-- RLS matrix for public.engagement_history: select/insert/update/delete by anon, the owner (alice), another
-- user (bob) and service_role, each cell asserted. PostgREST is emulated: set local role + JWT claims.
begin;
select plan(17);

select tests.create_two_archives();

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select id from public.engagement_history where id = tests.id('engagement', 'alice') $$, '42501', null, 'engagement_history select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ select id from public.engagement_history where id = tests.id('engagement', 'alice') $$, 'engagement_history select by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ select id from public.engagement_history where id = tests.id('engagement', 'alice') $$, 'engagement_history select by another user (bob): no row');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select id from public.engagement_history where id = tests.id('engagement', 'alice') $$, 'engagement_history select by service_role: allowed');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select is_empty($$ select id from public.engagement_history where user_id is distinct from (select auth.uid()) $$, 'engagement_history: a user sees no row of anybody else');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.engagement_history (post_id, engagement_stats, recorded_at) values (tests.id('post', 'alice'), '{"by": "anon"}', now() - interval '1 day') returning id $$, '42501', null, 'engagement_history insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.engagement_history (post_id, engagement_stats, recorded_at) values (tests.id('post', 'alice'), '{"by": "alice"}', now() - interval '1 day') returning id $$, '42501', null, 'engagement_history insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.engagement_history (post_id, engagement_stats, recorded_at) values (tests.id('post', 'alice'), '{"by": "bob"}', now() - interval '1 day') returning id $$, '42501', null, 'engagement_history insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.engagement_history (post_id, engagement_stats, recorded_at) values (tests.id('post', 'alice'), '{"by": "service"}', now() - interval '1 day') returning id $$, 'engagement_history insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.engagement_history set engagement_stats = '{"by": "anon"}' where id = tests.id('engagement', 'alice') returning id $$, '42501', null, 'engagement_history update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ update public.engagement_history set engagement_stats = '{"by": "alice"}' where id = tests.id('engagement', 'alice') returning id $$, '42501', null, 'engagement_history update by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ update public.engagement_history set engagement_stats = '{"by": "bob"}' where id = tests.id('engagement', 'alice') returning id $$, '42501', null, 'engagement_history update by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.engagement_history set engagement_stats = '{"by": "service"}' where id = tests.id('engagement', 'alice') returning id $$, 'engagement_history update by service_role: allowed');
select tests.clear_authentication();

-- delete (the owner's own delete last: it cascades)
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.engagement_history where id = tests.id('engagement', 'alice') returning id $$, '42501', null, 'engagement_history delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ delete from public.engagement_history where id = tests.id('engagement', 'alice') returning id $$, '42501', null, 'engagement_history delete by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ delete from public.engagement_history where id = tests.id('engagement', 'alice') returning id $$, '42501', null, 'engagement_history delete by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.engagement_history where id = tests.id('engagement', 'alice') returning id $$, 'engagement_history delete by service_role: allowed');
select tests.clear_authentication();

select finish();
rollback;
