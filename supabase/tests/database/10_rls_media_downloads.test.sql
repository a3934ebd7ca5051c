-- RLS matrix for public.media_downloads: select/insert/update/delete by anon, the owner (alice), another
-- user (bob) and service_role, each cell asserted. PostgREST is emulated: set local role + JWT claims.
begin;
select plan(17);

select tests.create_two_archives();

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select id from public.media_downloads where id = tests.id('media_download', 'alice') $$, '42501', null, 'media_downloads select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ select id from public.media_downloads where id = tests.id('media_download', 'alice') $$, 'media_downloads select by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ select id from public.media_downloads where id = tests.id('media_download', 'alice') $$, 'media_downloads select by another user (bob): no row');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select id from public.media_downloads where id = tests.id('media_download', 'alice') $$, 'media_downloads select by service_role: allowed');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select is_empty($$ select id from public.media_downloads where user_id is distinct from (select auth.uid()) $$, 'media_downloads: a user sees no row of anybody else');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url) values (tests.id('ingested_post', 'alice'), tests.id('user', 'alice'), 'strava', 'new-anon', 'https://media.example.test/anon.jpg') returning id $$, '42501', null, 'media_downloads insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url) values (tests.id('ingested_post', 'alice'), tests.id('user', 'alice'), 'strava', 'new-alice', 'https://media.example.test/alice.jpg') returning id $$, '42501', null, 'media_downloads insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url) values (tests.id('ingested_post', 'alice'), tests.id('user', 'alice'), 'strava', 'new-bob', 'https://media.example.test/bob.jpg') returning id $$, '42501', null, 'media_downloads insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url) values (tests.id('ingested_post', 'alice'), tests.id('user', 'alice'), 'strava', 'new-service', 'https://media.example.test/service.jpg') returning id $$, 'media_downloads insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.media_downloads set error = 'changed by anon' where id = tests.id('media_download', 'alice') returning id $$, '42501', null, 'media_downloads update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ update public.media_downloads set error = 'changed by alice' where id = tests.id('media_download', 'alice') returning id $$, '42501', null, 'media_downloads update by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ update public.media_downloads set error = 'changed by bob' where id = tests.id('media_download', 'alice') returning id $$, '42501', null, 'media_downloads update by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.media_downloads set error = 'changed by service' where id = tests.id('media_download', 'alice') returning id $$, 'media_downloads update by service_role: allowed');
select tests.clear_authentication();

-- delete (the owner's own delete last: it cascades)
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.media_downloads where id = tests.id('media_download', 'alice') returning id $$, '42501', null, 'media_downloads delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ delete from public.media_downloads where id = tests.id('media_download', 'alice') returning id $$, '42501', null, 'media_downloads delete by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ delete from public.media_downloads where id = tests.id('media_download', 'alice') returning id $$, '42501', null, 'media_downloads delete by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.media_downloads where id = tests.id('media_download', 'alice') returning id $$, 'media_downloads delete by service_role: allowed');
select tests.clear_authentication();

select finish();
rollback;
