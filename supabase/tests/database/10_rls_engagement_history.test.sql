-- RLS matrix for public.engagement_history (tests.rls_matrix): select/insert/update/delete by anon, the owner (alice),
-- another user (bob) and service_role, each cell asserted. The owner reads her engagement history; only the service writes.
begin;
select plan(17);

select tests.create_two_archives();

select * from tests.rls_matrix(
    'engagement_history',
    p_row => $$ id = tests.id('engagement', 'alice') $$,
    p_insert => $$ insert into public.engagement_history (post_id, engagement_stats, recorded_at)
        values (tests.id('post', 'alice'), '{"by": "{actor}"}', now() - interval '1 day') $$,
    p_update => $$ engagement_stats = '{"by": "{actor}"}' $$
);

select finish();
rollback;
