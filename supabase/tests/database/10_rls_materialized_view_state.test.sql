-- RLS matrix for public.materialized_view_state: application state, for the service role only. Every cell asserted:
-- select/insert/update/delete by anon, alice, bob (all refused) and service_role.
begin;
select plan(16);

select tests.create_two_archives();
select trove_private.record_rate_limit('strava', '15min', '15 minutes', 100, 10);
select trove_private.run_health_check();
insert into public.oauth_states (state_hash, user_id, platform) values ('seed', tests.id('user', 'alice'), 'strava');
insert into public.webhook_subscriptions (platform, subscription_id, callback_url, verify_token_hash) values ('strava', '1', 'https://x.test/', 'h');

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select name from public.materialized_view_state $$, '42501', null, 'materialized_view_state select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ select name from public.materialized_view_state $$, '42501', null, 'materialized_view_state select by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ select name from public.materialized_view_state $$, '42501', null, 'materialized_view_state select by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select name from public.materialized_view_state $$, 'materialized_view_state select by service_role: allowed');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.materialized_view_state (name) values ('by anon') returning name $$, '42501', null, 'materialized_view_state insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.materialized_view_state (name) values ('by alice') returning name $$, '42501', null, 'materialized_view_state insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.materialized_view_state (name) values ('by bob') returning name $$, '42501', null, 'materialized_view_state insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.materialized_view_state (name) values ('by service') returning name $$, 'materialized_view_state insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.materialized_view_state set stale = true returning name $$, '42501', null, 'materialized_view_state update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ update public.materialized_view_state set stale = true returning name $$, '42501', null, 'materialized_view_state update by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ update public.materialized_view_state set stale = true returning name $$, '42501', null, 'materialized_view_state update by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.materialized_view_state set stale = true returning name $$, 'materialized_view_state update by service_role: allowed');
select tests.clear_authentication();

-- delete
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.materialized_view_state returning name $$, '42501', null, 'materialized_view_state delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ delete from public.materialized_view_state returning name $$, '42501', null, 'materialized_view_state delete by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ delete from public.materialized_view_state returning name $$, '42501', null, 'materialized_view_state delete by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.materialized_view_state returning name $$, 'materialized_view_state delete by service_role: allowed');
select tests.clear_authentication();

select finish();
rollback;
