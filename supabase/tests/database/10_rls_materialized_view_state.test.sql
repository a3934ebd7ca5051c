-- RLS matrix for public.materialized_view_state (tests.rls_matrix): bookkeeping of the materialized views, for the service role only. Every
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
    'materialized_view_state',
    p_row => null,
    p_insert => $$ insert into public.materialized_view_state (name) values ('by {actor}') $$,
    p_update => $$ stale = true $$,
    p_owner_may => array[]::text[],
    p_key => 'name'
);

select finish();
rollback;
