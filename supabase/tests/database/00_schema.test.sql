-- What a test should pin about the schema; supabase/schema.sql (checked by tests/test_schema_dump.py) pins the
-- rest, every column, constraint and index. Here: the enums, exactly which tables and views exist, row level
-- security on every table, and the functions clients call with their signatures (PostgREST calls RPCs by
-- argument name). Privileges and policies are in 02_privileges. A change here is a decision: update it with
-- the migration.
begin;
select plan(45);

-- Enums
select enum_has_labels('public', 'account_status_enum', array['active', 'error', 'disconnected', 'token_expired'], 'enum account_status_enum has the expected labels');
select enum_has_labels('public', 'content_type_enum', array['post', 'activity', 'story', 'reel', 'reply', 'repost', 'article'], 'enum content_type_enum has the expected labels');
select enum_has_labels('public', 'download_status_enum', array['pending', 'downloading', 'downloaded', 'failed', 'unavailable'], 'enum download_status_enum has the expected labels');
select enum_has_labels('public', 'ingestion_source_enum', array['webhook', 'fetch', 'backfill', 'retry', 'stream', 'import'], 'enum ingestion_source_enum has the expected labels');
select enum_has_labels('public', 'platform_enum', array['bluesky', 'strava', 'instagram'], 'enum platform_enum has the expected labels');
select enum_has_labels('public', 'processing_status_enum', array['pending', 'processing', 'completed', 'failed', 'dead_letter'], 'enum processing_status_enum has the expected labels');
select enum_has_labels('public', 'sync_status_enum', array['queued', 'running', 'success', 'partial', 'failed', 'cancelled'], 'enum sync_status_enum has the expected labels');
select enum_has_labels('public', 'sync_type_enum', array['webhook', 'manual', 'scheduled', 'backfill', 'token_refresh', 'import'], 'enum sync_type_enum has the expected labels');

-- Relations: every table has RLS. A plain view would read the tables with its owner's rights, around RLS, so
-- there is none; the one materialized view is for the service role only (02_privileges).
select tables_are('public', array['users', 'connected_accounts', 'posts', 'ingested_items', 'ingested_posts', 'media_downloads', 'sync_logs', 'engagement_history', 'notifications', 'sync_requests', 'rate_limit_budgets', 'health_checks', 'oauth_states', 'webhook_subscriptions', 'api_keys', 'materialized_view_state', 'archive_versions', 'post_media', 'stream_cursors', 'post_interactions', 'imports', 'webhook_inbox'], 'public has exactly the archive tables');
select views_are('public', array[]::name[], 'public has no plain view (a view would bypass RLS)');
select materialized_views_are('public', array['public_posts'], 'public has exactly the public_posts materialized view');
select ok(tests.rls_enabled('public.users'), 'users has row level security enabled');
select ok(tests.rls_enabled('public.connected_accounts'), 'connected_accounts has row level security enabled');
select ok(tests.rls_enabled('public.posts'), 'posts has row level security enabled');
select ok(tests.rls_enabled('public.ingested_items'), 'ingested_items has row level security enabled');
select ok(tests.rls_enabled('public.ingested_posts'), 'ingested_posts has row level security enabled');
select ok(tests.rls_enabled('public.media_downloads'), 'media_downloads has row level security enabled');
select ok(tests.rls_enabled('public.sync_logs'), 'sync_logs has row level security enabled');
select ok(tests.rls_enabled('public.engagement_history'), 'engagement_history has row level security enabled');
select ok(tests.rls_enabled('public.notifications'), 'notifications has row level security enabled');
select ok(tests.rls_enabled('public.sync_requests'), 'sync_requests has row level security enabled');
select ok(tests.rls_enabled('public.rate_limit_budgets'), 'rate_limit_budgets has row level security enabled');
select ok(tests.rls_enabled('public.health_checks'), 'health_checks has row level security enabled');
select ok(tests.rls_enabled('public.oauth_states'), 'oauth_states has row level security enabled');
select ok(tests.rls_enabled('public.stream_cursors'), 'stream_cursors has row level security enabled');
select ok(tests.rls_enabled('public.post_interactions'), 'post_interactions has row level security enabled');
select ok(tests.rls_enabled('public.imports'), 'imports has row level security enabled');
select ok(tests.rls_enabled('public.webhook_inbox'), 'webhook_inbox has row level security enabled');
select ok(tests.rls_enabled('public.webhook_subscriptions'), 'webhook_subscriptions has row level security enabled');
select ok(tests.rls_enabled('public.api_keys'), 'api_keys has row level security enabled');
select ok(tests.rls_enabled('public.materialized_view_state'), 'materialized_view_state has row level security enabled');
select ok(tests.rls_enabled('public.archive_versions'), 'archive_versions has row level security enabled');
select ok(tests.rls_enabled('public.post_media'), 'post_media has row level security enabled');
select is_empty(
    $$ select c.relname from pg_catalog.pg_class as c
       where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and not c.relrowsecurity $$,
    'every table in public has row level security enabled (tables added later too)'
);

-- public_posts: what the HTTP service reads for public mode
select columns_are(
    'public', 'public_posts',
    array['id', 'user_id', 'platform', 'content_type', 'text_content', 'created_at_platform', 'post_data', 'media'],
    'public_posts has exactly the expected columns'
);

-- Functions in public: each one is an RPC endpoint of the API
select functions_are(
    'public',
    array['account_stats', 'feed', 'feed_cursor', 'post_is_public', 'search_facets', 'search_posts'],
    'public has exactly the expected functions (each is a PostgREST RPC)'
);
select is(
    pg_get_function_arguments('public.feed'::regproc),
    'p_platforms platform_enum[] DEFAULT NULL::platform_enum[], p_types content_type_enum[] DEFAULT NULL::content_type_enum[], '
    || 'p_since timestamp with time zone DEFAULT NULL::timestamp with time zone, '
    || 'p_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_query text DEFAULT NULL::text, '
    || 'p_limit integer DEFAULT 20, p_cursor text DEFAULT NULL::text, p_offset integer DEFAULT NULL::integer, '
    || 'p_public_only boolean DEFAULT false',
    'feed: arguments'
);
select is(
    pg_get_function_result('public.feed'::regproc),
    'TABLE(id uuid, platform platform_enum, content_type content_type_enum, text_content text, '
    || 'created_at_platform timestamp with time zone, updated_at_platform timestamp with time zone, post_data jsonb, '
    || 'media jsonb, cursor text, permalink text)',
    'feed: result'
);
select is(
    pg_get_function_arguments('public.search_posts'::regproc),
    'p_query text, p_platforms platform_enum[] DEFAULT NULL::platform_enum[], p_limit integer DEFAULT 20, '
    || 'p_offset integer DEFAULT 0',
    'search_posts: arguments'
);
select is(
    pg_get_function_result('public.search_posts'::regproc),
    'TABLE(id uuid, platform platform_enum, content_type content_type_enum, text_content text, '
    || 'created_at_platform timestamp with time zone, rank real, headline text)',
    'search_posts: result'
);
select is(pg_get_function_arguments('public.search_facets'::regproc), 'p_query text', 'search_facets: arguments');
select is(
    pg_get_function_result('public.search_facets'::regproc),
    'TABLE(platform platform_enum, matches bigint)',
    'search_facets: result'
);
select is(pg_get_function_arguments('public.account_stats'::regproc), '', 'account_stats: no arguments');
select is(
    pg_get_function_result('public.account_stats'::regproc),
    'TABLE(account_id uuid, platform platform_enum, username text, content_type content_type_enum, posts bigint, '
    || 'first_post_at timestamp with time zone, last_post_at timestamp with time zone, '
    || 'last_sync_at timestamp with time zone)',
    'account_stats: result'
);

-- No platform rule lives in SQL: the platforms' normalizers decide what is public, its public fields and
-- its search terms (issue 11). A platform added later needs no migration for its rules.
select is(
    (
        select array_agg(n.nspname || '.' || p.proname order by n.nspname, p.proname)
        from pg_proc as p
        inner join pg_namespace as n on p.pronamespace = n.oid
        where
            n.nspname in ('public', 'trove_private')
            and p.prosrc ~* (
                select string_agg(e.enumlabel, '|')
                from pg_enum as e
                where e.enumtypid = 'public.platform_enum'::regtype
            )
    ),
    null,
    'no function in public or trove_private names a platform in its body'
);

select finish();
rollback;
