-- RLS matrix for public.health_checks (tests.rls_matrix): the health checks, for the service role only. Every
-- cell asserted: select/insert/update/delete by anon, alice, bob (all refused) and service_role.
begin;
select plan(16);

select tests.create_two_archives();
select trove_private.record_rate_limit('strava', '15min', '15 minutes', 100, 10);
select trove_private.run_health_check();

select * from tests.rls_matrix(
    'health_checks',
    p_row => null,
    p_insert => $$ insert into public.health_checks (accounts_in_error, accounts_not_synced_24h, media_pending_over_1h, healthy)
        values (0, 0, 0, true) $$,
    p_update => $$ healthy = false $$,
    p_owner_may => array[]::text[],
    p_key => 'id'
);

select finish();
rollback;
