-- RLS matrix for public.archive_versions (tests.rls_matrix): select/insert/update/delete by anon, the owner
-- (alice), another user (bob) and service_role, each cell asserted. The owner reads her version; rows are
-- written by triggers (and the service) only.
begin;
select plan(17);

select tests.create_two_archives();
-- A user without an archive yet (no version row), for the inserts.
select tests.create_user('carol');

select * from tests.rls_matrix(
    'archive_versions',
    p_row => $$ user_id = tests.id('user', 'alice') $$,
    p_insert => $$ insert into public.archive_versions (user_id) values (tests.id('user', 'carol')) $$,
    p_update => $$ version = version + 1 $$,
    p_key => 'version'
);

select finish();
rollback;
