-- RLS matrix for public.post_media (tests.rls_matrix): select/insert/update/delete by anon, the owner
-- (alice), another user (bob) and service_role, each cell asserted. The owner reads which media her posts
-- show; links are written by the service (and the trigger that links a new media row to its post).
begin;
select plan(19);

select tests.create_two_archives();

-- A second post of alice's, to link her photo to as well.
with second_post as (
    insert into public.ingested_posts (ingested_item_id, platform, account_id, platform_post_id, post_data)
    values (tests.id('ingested_item', 'alice'), 'strava', tests.id('account', 'alice'), 'alice-post-2', '{}')
    returning id
)

insert into tests.fixtures (kind, owner_name, id)
select
    'second_ingested_post' as kind,
    'alice' as owner_name,
    id
from second_post;

select is(
    (
        select array_agg(pm.ingested_post_id) from public.post_media as pm
        where pm.media_download_id = tests.id('media_download', 'alice')
    ),
    array[tests.id('ingested_post', 'alice')],
    'a new media row is linked to the post that brought it'
);
select is(
    (
        select position from public.post_media
        where media_download_id = tests.id('media_download', 'alice')
    ),
    0,
    'the first media of a post comes first'
);

select * from tests.rls_matrix(
    'post_media',
    p_row => $$ media_download_id = tests.id('media_download', 'alice') $$,
    p_insert => $$ insert into public.post_media (ingested_post_id, media_download_id, user_id)
        values (
            tests.id('second_ingested_post', 'alice'), tests.id('media_download', 'alice'), tests.id('user', 'alice')
        ) $$,
    p_update => $$ position = 1 $$,
    p_key => 'position'
);

select finish();
rollback;
