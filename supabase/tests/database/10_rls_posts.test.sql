-- RLS matrix for public.posts (tests.rls_matrix): select/insert/update/delete by anon, the owner (alice),
-- another user (bob) and service_role, each cell asserted. The owner reads her posts; only the service writes.
begin;
select plan(17);

select tests.create_two_archives();

select * from tests.rls_matrix(
    'posts',
    p_row => $$ id = tests.id('post', 'alice') $$,
    p_insert => $$ insert into public.posts (account_id, platform, platform_post_id, created_at_platform)
        values (tests.id('account', 'alice'), 'strava', 'new-{actor}', now()) $$,
    p_update => $$ text_content = 'changed by {actor}' $$
);

select finish();
rollback;
