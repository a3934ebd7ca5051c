-- RLS matrix for public.posts: select/insert/update/delete by anon, the owner (alice), another
-- user (bob) and service_role, each cell asserted. PostgREST is emulated: set local role + JWT claims.
begin;
select plan(17);

select tests.create_two_archives();

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select id from public.posts where id = tests.id('post', 'alice') $$, '42501', null, 'posts select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ select id from public.posts where id = tests.id('post', 'alice') $$, 'posts select by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ select id from public.posts where id = tests.id('post', 'alice') $$, 'posts select by another user (bob): no row');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select id from public.posts where id = tests.id('post', 'alice') $$, 'posts select by service_role: allowed');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select is_empty($$ select id from public.posts where user_id is distinct from (select auth.uid()) $$, 'posts: a user sees no row of anybody else');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.posts (account_id, platform, platform_post_id, created_at_platform) values (tests.id('account', 'alice'), 'strava', 'new-anon', now()) returning id $$, '42501', null, 'posts insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.posts (account_id, platform, platform_post_id, created_at_platform) values (tests.id('account', 'alice'), 'strava', 'new-alice', now()) returning id $$, '42501', null, 'posts insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.posts (account_id, platform, platform_post_id, created_at_platform) values (tests.id('account', 'alice'), 'strava', 'new-bob', now()) returning id $$, '42501', null, 'posts insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.posts (account_id, platform, platform_post_id, created_at_platform) values (tests.id('account', 'alice'), 'strava', 'new-service', now()) returning id $$, 'posts insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.posts set text_content = 'changed by anon' where id = tests.id('post', 'alice') returning id $$, '42501', null, 'posts update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ update public.posts set text_content = 'changed by alice' where id = tests.id('post', 'alice') returning id $$, '42501', null, 'posts update by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ update public.posts set text_content = 'changed by bob' where id = tests.id('post', 'alice') returning id $$, '42501', null, 'posts update by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.posts set text_content = 'changed by service' where id = tests.id('post', 'alice') returning id $$, 'posts update by service_role: allowed');
select tests.clear_authentication();

-- delete (the owner's own delete last: it cascades)
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.posts where id = tests.id('post', 'alice') returning id $$, '42501', null, 'posts delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ delete from public.posts where id = tests.id('post', 'alice') returning id $$, '42501', null, 'posts delete by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ delete from public.posts where id = tests.id('post', 'alice') returning id $$, '42501', null, 'posts delete by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.posts where id = tests.id('post', 'alice') returning id $$, 'posts delete by service_role: allowed');
select tests.clear_authentication();

select finish();
rollback;
