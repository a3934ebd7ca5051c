-- RLS matrix for public.webhook_subscriptions (tests.rls_matrix): the application's push subscriptions, for the service role only. Every
-- cell asserted: select/insert/update/delete by anon, alice, bob (all refused) and service_role.
begin;
select plan(16);

select tests.create_two_archives();
select trove_private.record_rate_limit('strava', '15min', '15 minutes', 100, 10);
select trove_private.run_health_check();
insert into public.oauth_states (state_hash, user_id, platform) values ('seed', tests.id('user', 'alice'), 'strava');
insert into public.webhook_subscriptions (platform, subscription_id, callback_url, verify_token_hash)
values ('strava', '1', 'https://x.test/', 'h');

select * from tests.rls_matrix(
    'webhook_subscriptions',
    p_row => null,
    p_insert => $$ insert into public.webhook_subscriptions (platform, callback_url, verify_token_hash)
        values ('instagram', 'https://x.test/{actor}', 'h') $$,
    p_update => $$ subscription_id = '42' $$,
    p_owner_may => array[]::text[],
    p_key => 'platform'
);

select finish();
rollback;
