-- RLS matrix for public.connected_accounts (tests.rls_matrix): select/insert/update/delete by anon, the owner
-- (alice), another user (bob) and service_role, each cell asserted. The owner reads her accounts, pauses or
-- resumes syncing and disconnects (deletes) them; only the OAuth callback (the service) creates them.
begin;
select plan(18);

select tests.create_two_archives();

select * from tests.rls_matrix(
    'connected_accounts',
    p_row => $$ id = tests.id('account', 'alice') $$,
    p_insert => $$ insert into public.connected_accounts (user_id, platform, platform_user_id, username)
        values (tests.id('user', 'alice'), 'bluesky', 'did:plc:{actor}', '{actor}.test') $$,
    p_update => $$ sync_enabled = ('{actor}' <> 'alice') $$,
    p_owner_may => array['select', 'update', 'delete'],
    p_other_row => $$ id = tests.id('account', 'bob') $$
);

select finish();
rollback;
