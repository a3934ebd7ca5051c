-- RLS matrix for public.health_checks: application state, for the service role only. Every cell asserted:
-- select/insert/update/delete by anon, alice, bob (all refused) and service_role.
begin;
select plan(16);

select tests.create_two_archives();
select trove_private.record_rate_limit('strava', '15min', '15 minutes', 100, 10);
select trove_private.run_health_check();

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select id from public.health_checks $$, '42501', null, 'health_checks select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ select id from public.health_checks $$, '42501', null, 'health_checks select by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ select id from public.health_checks $$, '42501', null, 'health_checks select by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select id from public.health_checks $$, 'health_checks select by service_role: allowed');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.health_checks (accounts_in_error, accounts_not_synced_24h, media_pending_over_1h, healthy) values (0, 0, 0, true) returning id $$, '42501', null, 'health_checks insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.health_checks (accounts_in_error, accounts_not_synced_24h, media_pending_over_1h, healthy) values (0, 0, 0, true) returning id $$, '42501', null, 'health_checks insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.health_checks (accounts_in_error, accounts_not_synced_24h, media_pending_over_1h, healthy) values (0, 0, 0, true) returning id $$, '42501', null, 'health_checks insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.health_checks (accounts_in_error, accounts_not_synced_24h, media_pending_over_1h, healthy) values (0, 0, 0, true) returning id $$, 'health_checks insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.health_checks set healthy = false returning id $$, '42501', null, 'health_checks update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ update public.health_checks set healthy = false returning id $$, '42501', null, 'health_checks update by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ update public.health_checks set healthy = false returning id $$, '42501', null, 'health_checks update by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.health_checks set healthy = false returning id $$, 'health_checks update by service_role: allowed');
select tests.clear_authentication();

-- delete
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.health_checks returning id $$, '42501', null, 'health_checks delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ delete from public.health_checks returning id $$, '42501', null, 'health_checks delete by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ delete from public.health_checks returning id $$, '42501', null, 'health_checks delete by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.health_checks returning id $$, 'health_checks delete by service_role: allowed');
select tests.clear_authentication();

select finish();
rollback;
