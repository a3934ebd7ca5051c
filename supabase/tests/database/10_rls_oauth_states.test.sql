-- RLS matrix for public.oauth_states (tests.rls_matrix): application state, for the service role only. Every
-- cell asserted: select/insert/update/delete by anon, alice, bob (all refused) and service_role. Then the
-- browser binding: a state always names a browser (a row written without one is bound to a random value nobody
-- holds).
begin;
select plan(20);

select tests.create_two_archives();
select trove_private.record_rate_limit('strava', '15min', '15 minutes', 100, 10);
select trove_private.run_health_check();
insert into public.oauth_states (state_hash, user_id, platform) values ('seed', tests.id('user', 'alice'), 'strava');
insert into public.webhook_subscriptions (platform, subscription_id, callback_url, verify_token_hash)
values ('strava', '1', 'https://x.test/', 'h');

select * from tests.rls_matrix(
    'oauth_states',
    p_row => null,
    p_insert => $$ insert into public.oauth_states (state_hash, user_id, platform)
        values ('h-{actor}', tests.id('user', 'alice'), 'strava') $$,
    p_update => $$ used_at = now() $$,
    p_owner_may => array[]::text[],
    p_key => 'state_hash'
);

-- browser binding
insert into public.oauth_states (state_hash, user_id, platform) values ('unbound-1', tests.id('user', 'alice'), 'strava');
insert into public.oauth_states (state_hash, user_id, platform) values ('unbound-2', tests.id('user', 'alice'), 'strava');
select results_eq($$ select browser_hash ~ '^[0-9a-f]{64}$' from public.oauth_states where state_hash in ('unbound-1', 'unbound-2') $$, $$ values (true), (true) $$, 'oauth_states: a state written without a browser hash gets a random one');
select results_ne($$ select browser_hash from public.oauth_states where state_hash = 'unbound-1' $$, $$ select browser_hash from public.oauth_states where state_hash = 'unbound-2' $$, 'oauth_states: each unbound state gets its own random browser hash');
select throws_ok($$ insert into public.oauth_states (state_hash, user_id, platform, browser_hash) values ('h-bad', tests.id('user', 'alice'), 'strava', 'not-a-sha256') $$, '23514', null, 'oauth_states: a browser hash that is not a hex SHA-256 is refused (23514)');
select throws_ok($$ insert into public.oauth_states (state_hash, user_id, platform, browser_hash) values ('h-null', tests.id('user', 'alice'), 'strava', null) $$, '23502', null, 'oauth_states: a state without a browser is refused (23502)');

select finish();
rollback;
