-- RLS matrix for public.post_media: select/insert/update/delete by anon, the owner (alice), another user
-- (bob) and service_role, each cell asserted. PostgREST is emulated: set local role + JWT claims.
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

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select position from public.post_media where media_download_id = tests.id('media_download', 'alice') $$, '42501', null, 'post_media select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ select position from public.post_media where media_download_id = tests.id('media_download', 'alice') $$, 'post_media select by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ select position from public.post_media where media_download_id = tests.id('media_download', 'alice') $$, 'post_media select by another user (bob): no row');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select position from public.post_media where media_download_id = tests.id('media_download', 'alice') $$, 'post_media select by service_role: allowed');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select is_empty($$ select position from public.post_media where user_id is distinct from (select auth.uid()) $$, 'post_media: a user sees no row of anybody else');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.post_media (ingested_post_id, media_download_id, user_id) values (tests.id('second_ingested_post', 'alice'), tests.id('media_download', 'alice'), tests.id('user', 'alice')) returning position $$, '42501', null, 'post_media insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.post_media (ingested_post_id, media_download_id, user_id) values (tests.id('second_ingested_post', 'alice'), tests.id('media_download', 'alice'), tests.id('user', 'alice')) returning position $$, '42501', null, 'post_media insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.post_media (ingested_post_id, media_download_id, user_id) values (tests.id('second_ingested_post', 'alice'), tests.id('media_download', 'alice'), tests.id('user', 'alice')) returning position $$, '42501', null, 'post_media insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.post_media (ingested_post_id, media_download_id, user_id) values (tests.id('second_ingested_post', 'alice'), tests.id('media_download', 'alice'), tests.id('user', 'alice')) returning position $$, 'post_media insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.post_media set position = 1 where media_download_id = tests.id('media_download', 'alice') returning position $$, '42501', null, 'post_media update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ update public.post_media set position = 1 where media_download_id = tests.id('media_download', 'alice') returning position $$, '42501', null, 'post_media update by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ update public.post_media set position = 1 where media_download_id = tests.id('media_download', 'alice') returning position $$, '42501', null, 'post_media update by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.post_media set position = 1 where media_download_id = tests.id('media_download', 'alice') returning position $$, 'post_media update by service_role: allowed');
select tests.clear_authentication();

-- delete
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.post_media where media_download_id = tests.id('media_download', 'alice') returning position $$, '42501', null, 'post_media delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ delete from public.post_media where media_download_id = tests.id('media_download', 'alice') returning position $$, '42501', null, 'post_media delete by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ delete from public.post_media where media_download_id = tests.id('media_download', 'alice') returning position $$, '42501', null, 'post_media delete by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.post_media where media_download_id = tests.id('media_download', 'alice') returning position $$, 'post_media delete by service_role: allowed');
select tests.clear_authentication();

select finish();
rollback;
