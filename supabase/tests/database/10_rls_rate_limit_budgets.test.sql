-- RLS matrix for public.rate_limit_budgets: application state, for the service role only. Every cell asserted:
-- select/insert/update/delete by anon, alice, bob (all refused) and service_role.
begin;
select plan(16);

select tests.create_two_archives();
select trove_private.record_rate_limit('strava', '15min', '15 minutes', 100, 10);
select trove_private.run_health_check();

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select platform from public.rate_limit_budgets where platform = 'strava' $$, '42501', null, 'rate_limit_budgets select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ select platform from public.rate_limit_budgets where platform = 'strava' $$, '42501', null, 'rate_limit_budgets select by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ select platform from public.rate_limit_budgets where platform = 'strava' $$, '42501', null, 'rate_limit_budgets select by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select platform from public.rate_limit_budgets where platform = 'strava' $$, 'rate_limit_budgets select by service_role: allowed');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.rate_limit_budgets (platform, window_name, window_length, request_limit, resets_at) values ('strava', 'by anon', '15 minutes', 100, now()) returning platform $$, '42501', null, 'rate_limit_budgets insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.rate_limit_budgets (platform, window_name, window_length, request_limit, resets_at) values ('strava', 'by alice', '15 minutes', 100, now()) returning platform $$, '42501', null, 'rate_limit_budgets insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.rate_limit_budgets (platform, window_name, window_length, request_limit, resets_at) values ('strava', 'by bob', '15 minutes', 100, now()) returning platform $$, '42501', null, 'rate_limit_budgets insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.rate_limit_budgets (platform, window_name, window_length, request_limit, resets_at) values ('strava', 'by service', '15 minutes', 100, now()) returning platform $$, 'rate_limit_budgets insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.rate_limit_budgets set used = 1 where platform = 'strava' returning platform $$, '42501', null, 'rate_limit_budgets update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ update public.rate_limit_budgets set used = 1 where platform = 'strava' returning platform $$, '42501', null, 'rate_limit_budgets update by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ update public.rate_limit_budgets set used = 1 where platform = 'strava' returning platform $$, '42501', null, 'rate_limit_budgets update by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.rate_limit_budgets set used = 1 where platform = 'strava' returning platform $$, 'rate_limit_budgets update by service_role: allowed');
select tests.clear_authentication();

-- delete
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.rate_limit_budgets where platform = 'strava' returning platform $$, '42501', null, 'rate_limit_budgets delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ delete from public.rate_limit_budgets where platform = 'strava' returning platform $$, '42501', null, 'rate_limit_budgets delete by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ delete from public.rate_limit_budgets where platform = 'strava' returning platform $$, '42501', null, 'rate_limit_budgets delete by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.rate_limit_budgets where platform = 'strava' returning platform $$, 'rate_limit_budgets delete by service_role: allowed');
select tests.clear_authentication();

select finish();
rollback;
