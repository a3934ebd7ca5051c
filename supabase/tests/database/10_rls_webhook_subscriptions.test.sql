-- RLS matrix for public.webhook_subscriptions: application state, for the service role only. Every cell asserted:
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
select throws_ok($$ select platform from public.webhook_subscriptions $$, '42501', null, 'webhook_subscriptions select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ select platform from public.webhook_subscriptions $$, '42501', null, 'webhook_subscriptions select by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ select platform from public.webhook_subscriptions $$, '42501', null, 'webhook_subscriptions select by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select platform from public.webhook_subscriptions $$, 'webhook_subscriptions select by service_role: allowed');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.webhook_subscriptions (platform, callback_url, verify_token_hash) values ('instagram', 'https://x.test/anon', 'h') returning platform $$, '42501', null, 'webhook_subscriptions insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.webhook_subscriptions (platform, callback_url, verify_token_hash) values ('instagram', 'https://x.test/alice', 'h') returning platform $$, '42501', null, 'webhook_subscriptions insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.webhook_subscriptions (platform, callback_url, verify_token_hash) values ('instagram', 'https://x.test/bob', 'h') returning platform $$, '42501', null, 'webhook_subscriptions insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.webhook_subscriptions (platform, callback_url, verify_token_hash) values ('instagram', 'https://x.test/service', 'h') returning platform $$, 'webhook_subscriptions insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.webhook_subscriptions set subscription_id = '42' returning platform $$, '42501', null, 'webhook_subscriptions update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ update public.webhook_subscriptions set subscription_id = '42' returning platform $$, '42501', null, 'webhook_subscriptions update by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ update public.webhook_subscriptions set subscription_id = '42' returning platform $$, '42501', null, 'webhook_subscriptions update by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.webhook_subscriptions set subscription_id = '42' returning platform $$, 'webhook_subscriptions update by service_role: allowed');
select tests.clear_authentication();

-- delete
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.webhook_subscriptions returning platform $$, '42501', null, 'webhook_subscriptions delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ delete from public.webhook_subscriptions returning platform $$, '42501', null, 'webhook_subscriptions delete by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ delete from public.webhook_subscriptions returning platform $$, '42501', null, 'webhook_subscriptions delete by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.webhook_subscriptions returning platform $$, 'webhook_subscriptions delete by service_role: allowed');
select tests.clear_authentication();

select finish();
rollback;
