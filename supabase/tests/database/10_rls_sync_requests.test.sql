-- RLS matrix for public.sync_requests (tests.rls_matrix): select/insert/update/delete by anon, the owner (alice),
-- another user (bob) and service_role, each cell asserted. The owner reads her queued syncs; only the service writes.
begin;
select plan(17);

select tests.create_two_archives();

select * from tests.rls_matrix(
    'sync_requests',
    p_row => $$ id = tests.id('sync_request', 'alice') $$,
    p_insert => $$ insert into public.sync_requests (account_id, sync_type, status)
        values (tests.id('account', 'alice'), 'manual', 'completed') $$,
    p_update => $$ priority = 9 $$
);

select finish();
rollback;
