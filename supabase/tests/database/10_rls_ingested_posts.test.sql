-- RLS matrix for public.ingested_posts (tests.rls_matrix): select/insert/update/delete by anon, the owner (alice),
-- another user (bob) and service_role, each cell asserted. The owner reads her raw posts; only the service writes.
begin;
select plan(17);

select tests.create_two_archives();

select * from tests.rls_matrix(
    'ingested_posts',
    p_row => $$ id = tests.id('ingested_post', 'alice') $$,
    p_insert => $$ insert into public.ingested_posts (platform, account_id, platform_post_id, post_data)
        values ('strava', tests.id('account', 'alice'), 'new-{actor}', '{}') $$,
    p_update => $$ post_data = '{"by": "{actor}"}' $$
);

select finish();
rollback;
