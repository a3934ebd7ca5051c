-- Privileges: explicit grants per table (Supabase's blanket defaults revoked), token columns unreadable by
-- the API roles even on their own rows, private functions out of reach, policies written the fast way.
begin;
select plan(109);

select tests.create_two_archives();

-- Table privileges, per role
select table_privs_are('public', 'users', 'anon', array[]::text[], 'anon has no privilege on users');
select table_privs_are('public', 'connected_accounts', 'anon', array[]::text[], 'anon has no privilege on connected_accounts');
select table_privs_are('public', 'posts', 'anon', array[]::text[], 'anon has no privilege on posts');
select table_privs_are('public', 'ingested_items', 'anon', array[]::text[], 'anon has no privilege on ingested_items');
select table_privs_are('public', 'ingested_posts', 'anon', array[]::text[], 'anon has no privilege on ingested_posts');
select table_privs_are('public', 'media_downloads', 'anon', array[]::text[], 'anon has no privilege on media_downloads');
select table_privs_are('public', 'sync_logs', 'anon', array[]::text[], 'anon has no privilege on sync_logs');
select table_privs_are('public', 'engagement_history', 'anon', array[]::text[], 'anon has no privilege on engagement_history');

select table_privs_are('public', 'users', 'authenticated', array['SELECT'], 'authenticated may only select users (and update profile columns)');
select table_privs_are('public', 'connected_accounts', 'authenticated', array['DELETE'], 'authenticated may delete accounts; select and update are per column');
select table_privs_are('public', 'posts', 'authenticated', array['SELECT'], 'authenticated may only select posts');
select table_privs_are('public', 'ingested_items', 'authenticated', array['SELECT'], 'authenticated may only select ingested_items');
select table_privs_are('public', 'ingested_posts', 'authenticated', array['SELECT'], 'authenticated may only select ingested_posts');
select table_privs_are('public', 'media_downloads', 'authenticated', array['SELECT'], 'authenticated may only select media_downloads');
select table_privs_are('public', 'sync_logs', 'authenticated', array['SELECT'], 'authenticated may only select sync_logs');
select table_privs_are('public', 'engagement_history', 'authenticated', array['SELECT'], 'authenticated may only select engagement_history');

select table_privs_are('public', 'users', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes users');
select table_privs_are('public', 'connected_accounts', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes connected_accounts');
select table_privs_are('public', 'posts', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes posts');
select table_privs_are('public', 'ingested_items', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes ingested_items');
select table_privs_are('public', 'ingested_posts', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes ingested_posts');
select table_privs_are('public', 'media_downloads', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes media_downloads');
select table_privs_are('public', 'sync_logs', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes sync_logs');
select table_privs_are('public', 'engagement_history', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes engagement_history');

select table_privs_are('public', 'notifications', 'anon', array[]::text[], 'anon has no privilege on notifications');
select table_privs_are('public', 'sync_requests', 'anon', array[]::text[], 'anon has no privilege on sync_requests');
select table_privs_are('public', 'rate_limit_budgets', 'anon', array[]::text[], 'anon has no privilege on rate_limit_budgets');
select table_privs_are('public', 'health_checks', 'anon', array[]::text[], 'anon has no privilege on health_checks');
select table_privs_are(
    'public', 'notifications', 'authenticated', array['SELECT', 'DELETE'],
    'authenticated reads and deletes notifications (and marks them read)'
);
select table_privs_are('public', 'sync_requests', 'authenticated', array['SELECT'], 'authenticated may only select sync_requests');
select table_privs_are(
    'public', 'rate_limit_budgets', 'authenticated', array[]::text[], 'authenticated has no privilege on rate_limit_budgets'
);
select table_privs_are('public', 'health_checks', 'authenticated', array[]::text[], 'authenticated has no privilege on health_checks');
select table_privs_are('public', 'notifications', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes notifications');
select table_privs_are('public', 'sync_requests', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes sync_requests');
select table_privs_are(
    'public', 'rate_limit_budgets', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes rate_limit_budgets'
);
select table_privs_are('public', 'health_checks', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes health_checks');
select ok(has_column_privilege('authenticated', 'public.notifications', 'read_at', 'update'), 'authenticated may mark notifications read');
select ok(not has_column_privilege('authenticated', 'public.notifications', 'body', 'update'), 'authenticated cannot rewrite notifications');

select table_privs_are('public', 'oauth_states', 'anon', array[]::text[], 'anon has no privilege on oauth_states');
select table_privs_are('public', 'oauth_states', 'authenticated', array[]::text[], 'authenticated has no privilege on oauth_states');
select table_privs_are(
    'public', 'oauth_states', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes oauth_states'
);
select table_privs_are('public', 'webhook_subscriptions', 'anon', array[]::text[], 'anon has no privilege on webhook_subscriptions');
select table_privs_are(
    'public', 'webhook_subscriptions', 'authenticated', array[]::text[], 'authenticated has no privilege on webhook_subscriptions'
);
select table_privs_are(
    'public', 'webhook_subscriptions', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
    'service_role writes webhook_subscriptions'
);
select policies_are('public', 'oauth_states', array[]::name[], 'oauth_states: no policy, service role only');
select table_privs_are('public', 'stream_cursors', 'anon', array[]::text[], 'anon has no privilege on stream_cursors');
select table_privs_are('public', 'stream_cursors', 'authenticated', array[]::text[], 'authenticated has no privilege on stream_cursors');
select table_privs_are(
    'public', 'stream_cursors', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role writes stream_cursors'
);
select policies_are('public', 'stream_cursors', array[]::name[], 'stream_cursors: no policy, service role only');
select policies_are('public', 'webhook_subscriptions', array[]::name[], 'webhook_subscriptions: no policy, service role only');

select table_privs_are('public', 'api_keys', 'anon', array[]::text[], 'anon has no privilege on api_keys');
select table_privs_are(
    'public', 'api_keys', 'authenticated', array['DELETE'],
    'authenticated deletes its keys; reads and renames them per column'
);
select ok(not has_column_privilege('authenticated', 'public.api_keys', 'key_hash', 'select'), 'nobody reads key hashes');
select ok(has_column_privilege('authenticated', 'public.api_keys', 'name', 'update'), 'the owner renames her keys');
select ok(
    not has_column_privilege('authenticated', 'public.api_keys', 'revoked_at', 'update'),
    'only the service writes revoked_at (a revocation cannot be taken back through the grant)'
);
select ok(not has_column_privilege('authenticated', 'public.api_keys', 'user_id', 'update'), 'a key cannot be moved');
select ok(
    not has_table_privilege('authenticated', 'public.public_posts', 'select')
    and not has_table_privilege('anon', 'public.public_posts', 'select'),
    'public_posts (no RLS on materialized views) is not readable by the API roles'
);
select ok(has_table_privilege('service_role', 'public.public_posts', 'select'), 'the service role reads public_posts');
select ok(
    has_function_privilege(
        'authenticated', 'public.feed(public.platform_enum[], public.content_type_enum[], timestamptz,'
        || ' timestamptz, text, integer, text, integer, boolean)', 'execute'
    )
    and not has_function_privilege(
        'anon', 'public.feed(public.platform_enum[], public.content_type_enum[], timestamptz,'
        || ' timestamptz, text, integer, text, integer, boolean)', 'execute'
    ),
    'the feed RPC is for signed-in users, not anon'
);
select ok(
    not has_function_privilege('anon', 'public.search_posts(text, public.platform_enum[], integer, integer)', 'execute')
    and not has_function_privilege('anon', 'public.account_stats()', 'execute'),
    'search and stats are not for anon'
);
select policies_are(
    'public', 'api_keys', array['api_keys_select_own', 'api_keys_update_own', 'api_keys_delete_own'], 'api_keys policies'
);
select policies_are('public', 'materialized_view_state', array[]::name[], 'materialized_view_state: service role only');

select table_privs_are('public', 'archive_versions', 'anon', array[]::text[], 'anon has no privilege on archive_versions');
select table_privs_are('public', 'archive_versions', 'authenticated', array['SELECT'], 'authenticated reads its archive version');
select policies_are('public', 'archive_versions', array['archive_versions_select_own'], 'archive_versions policies');

-- Token columns
select ok(not has_column_privilege('authenticated', 'public.connected_accounts', 'access_token', 'select'), 'authenticated cannot read access_token');
select ok(not has_column_privilege('authenticated', 'public.connected_accounts', 'refresh_token', 'select'), 'authenticated cannot read refresh_token');
select ok(not has_column_privilege('anon', 'public.connected_accounts', 'access_token', 'select'), 'anon cannot read access_token');
select ok(not has_column_privilege('anon', 'public.connected_accounts', 'refresh_token', 'select'), 'anon cannot read refresh_token');
select ok(not has_column_privilege('authenticated', 'public.connected_accounts', 'access_token', 'update'), 'authenticated cannot write access_token');
select ok(not has_column_privilege('authenticated', 'public.connected_accounts', 'refresh_token', 'update'), 'authenticated cannot write refresh_token');
select ok(not has_column_privilege('authenticated', 'public.connected_accounts', 'token_binding', 'select'), 'authenticated cannot read token_binding');
select ok(not has_column_privilege('anon', 'public.connected_accounts', 'token_binding', 'select'), 'anon cannot read token_binding');
select ok(not has_column_privilege('authenticated', 'public.oauth_states', 'session', 'select'), 'authenticated cannot read an OAuth session');
select ok(has_column_privilege('service_role', 'public.connected_accounts', 'access_token', 'select'), 'service_role reads access_token');
select ok(has_column_privilege('service_role', 'public.connected_accounts', 'refresh_token', 'update'), 'service_role writes refresh_token');
select ok(has_column_privilege('authenticated', 'public.connected_accounts', 'username', 'select'), 'authenticated reads the other account columns');
select ok(has_column_privilege('authenticated', 'public.connected_accounts', 'sync_enabled', 'update'), 'authenticated may toggle sync_enabled');

select tests.authenticate_as('alice');
select throws_ok($$ select access_token from public.connected_accounts $$, '42501', null, 'the owner cannot read her own access_token');
select throws_ok($$ select refresh_token from public.connected_accounts $$, '42501', null, 'the owner cannot read her own refresh_token');
select throws_ok($$ select * from public.connected_accounts $$, '42501', null, 'select * is refused: the columns must be listed');
select results_eq(
    $$ select username, sync_enabled from public.connected_accounts $$,
    $$ values ('alice', true) $$,
    'the owner lists her accounts by naming the columns'
);
select throws_ok(
    $$ update public.connected_accounts set status = 'active', error_count = 0 where user_id = (select auth.uid()) $$,
    '42501', null, 'the owner cannot change sync state (only sync_enabled)'
);
select throws_ok(
    $$ update public.connected_accounts set user_id = tests.id('user', 'bob') $$,
    '42501', null, 'the owner cannot give her account to someone else'
);
select throws_ok(
    $$ update public.connected_accounts set access_token = 'x' $$,
    '42501', null, 'the owner cannot overwrite the token'
);
select throws_ok(
    $$ update public.users set email = 'alice@elsewhere.test' where id = (select auth.uid()) $$,
    '42501', null, 'email is managed by Auth, not updated directly'
);
select isnt_empty(
    $$ update public.users set timezone = 'Europe/Berlin' where id = (select auth.uid()) returning id $$,
    'a user edits her own profile fields'
);
select tests.clear_authentication();

-- Schemas and functions
select schema_privs_are('trove_private', 'anon', array[]::text[], 'anon has no access to trove_private');
select schema_privs_are('trove_private', 'authenticated', array[]::text[], 'authenticated has no access to trove_private');
select schema_privs_are('trove_private', 'public', array[]::text[], 'PUBLIC has no access to trove_private');
select is_empty(
    $$ select p.proname from pg_proc as p
       where p.pronamespace = 'trove_private'::regnamespace
           and (has_function_privilege('anon', p.oid, 'execute') or has_function_privilege('authenticated', p.oid, 'execute')) $$,
    'no trove_private function is executable by anon or authenticated'
);
select is_empty(
    $$ select p.proname from pg_proc as p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) as acl
       where p.pronamespace = 'trove_private'::regnamespace and acl.grantee = 0 $$,
    'EXECUTE is revoked from PUBLIC on every trove_private function'
);
select is_empty(
    $$ select p.proname from pg_proc as p where p.prosecdef and p.pronamespace = 'public'::regnamespace $$,
    'no SECURITY DEFINER function lives in the exposed public schema'
);
select is_empty(
    $$ select p.proname from pg_proc as p
       where p.prosecdef and p.pronamespace in ('public'::regnamespace, 'trove_private'::regnamespace)
           and not coalesce(p.proconfig @> array['search_path=""'], false) $$,
    'every SECURITY DEFINER function pins search_path to empty'
);
select is_empty(
    $$ select p.proname from pg_proc as p
       where p.pronamespace = 'trove_private'::regnamespace and not coalesce(p.proconfig @> array['search_path=""'], false) $$,
    'every trove_private function pins search_path to empty'
);

-- Policies: Supabase's fast form, scoped to authenticated, one per allowed user operation
select is_empty(
    $$ select policyname from pg_policies
       where schemaname = 'public' and (qual ~ 'auth\.uid\(\)' or with_check ~ 'auth\.uid\(\)')
           and not (coalesce(qual, '') || coalesce(with_check, '')) ~ 'SELECT auth\.uid\(\)' $$,
    'every policy wraps auth.uid() in a subselect (evaluated once per statement)'
);
select is_empty(
    $$ select policyname from pg_policies where schemaname = 'public' and roles <> '{authenticated}' $$,
    'every policy is scoped TO authenticated'
);
select policies_are('public', 'users', array['users_select_own', 'users_update_own'], 'users policies');
select policies_are(
    'public', 'connected_accounts',
    array['connected_accounts_select_own', 'connected_accounts_update_own', 'connected_accounts_delete_own'],
    'connected_accounts policies'
);
select policies_are('public', 'posts', array['posts_select_own'], 'posts policies');
select policies_are('public', 'ingested_items', array['ingested_items_select_own'], 'ingested_items policies');
select policies_are('public', 'ingested_posts', array['ingested_posts_select_own'], 'ingested_posts policies');
select policies_are('public', 'media_downloads', array['media_downloads_select_own'], 'media_downloads policies');
select policies_are('public', 'sync_logs', array['sync_logs_select_own'], 'sync_logs policies');
select policies_are('public', 'engagement_history', array['engagement_history_select_own'], 'engagement_history policies');
select policies_are(
    'public', 'notifications',
    array['notifications_select_own', 'notifications_update_own', 'notifications_delete_own'],
    'notifications policies'
);
select policies_are('public', 'sync_requests', array['sync_requests_select_own'], 'sync_requests policies');
select policies_are('public', 'rate_limit_budgets', array[]::name[], 'rate_limit_budgets: no policy, service role only');
select policies_are('public', 'health_checks', array[]::name[], 'health_checks: no policy, service role only');

select finish();
rollback;
