-- RLS matrix for public.sync_logs (tests.rls_matrix): select/insert/update/delete by anon, the owner (alice),
-- another user (bob) and service_role, each cell asserted. The owner reads her sync logs; only the service writes.
begin;
select plan(17);

select tests.create_two_archives();

select * from tests.rls_matrix(
    'sync_logs',
    p_row => $$ id = tests.id('sync_log', 'alice') $$,
    p_insert => $$ insert into public.sync_logs (account_id, sync_type) values (tests.id('account', 'alice'), 'manual') $$,
    p_update => $$ error_message = 'changed by {actor}' $$
);

select finish();
rollback;
