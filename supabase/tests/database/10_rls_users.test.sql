-- RLS matrix for public.users (tests.rls_matrix): select/insert/update/delete by anon, the owner (alice),
-- another user (bob) and service_role, each cell asserted. Users read and edit their own profile; rows come
-- from Auth (the trigger), so only the service inserts or deletes.
begin;
select plan(18);

select tests.create_two_archives();
-- An Auth user without a Trove row, for the inserts.
select tests.create_user('spare');
delete from public.users
where id = tests.id('user', 'spare');

select * from tests.rls_matrix(
    'users',
    p_row => $$ id = tests.id('user', 'alice') $$,
    p_insert => $$ insert into public.users (id, email) values (tests.id('user', 'spare'), 'spare-{actor}@x.test') $$,
    p_update => $$ display_name = 'changed by {actor}' $$,
    p_owner_may => array['select', 'update'],
    p_owner_column => 'id'
);

select finish();
rollback;
