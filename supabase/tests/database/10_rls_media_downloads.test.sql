-- RLS matrix for public.media_downloads (tests.rls_matrix): select/insert/update/delete by anon, the owner (alice),
-- another user (bob) and service_role, each cell asserted. The owner reads her media rows; only the service writes.
begin;
select plan(17);

select tests.create_two_archives();

select * from tests.rls_matrix(
    'media_downloads',
    p_row => $$ id = tests.id('media_download', 'alice') $$,
    p_insert => $$ insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url)
        values (
            tests.id('ingested_post', 'alice'), tests.id('user', 'alice'), 'strava', 'new-{actor}',
            'https://media.example.test/{actor}.jpg'
        ) $$,
    p_update => $$ error = 'changed by {actor}' $$
);

select finish();
rollback;
