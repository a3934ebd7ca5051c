-- RLS matrix for public.webhook_inbox (tests.rls_matrix): webhook deliveries the Edge Function relay kept
-- while the service was away, unverified, for the service role only. Every cell asserted:
-- select/insert/update/delete by anon, alice, bob (all refused) and service_role.
begin;
select plan(16);

select tests.create_two_archives();
select trove_private.webhook_inbox_put('webhook-strava/seed', '', '{}', '\x7b7d');

select * from tests.rls_matrix(
    'webhook_inbox',
    p_row => $$ request_path = 'webhook-strava/seed' $$,
    p_insert => $$ insert into public.webhook_inbox (request_path, body)
        values ('webhook-strava/' || replace('by {actor}', ' ', '-'), '\x7b7d') $$,
    p_update => $$ outcome = 'stored' $$,
    p_owner_may => array[]::text[],
    p_key => 'id'
);

select finish();
rollback;
