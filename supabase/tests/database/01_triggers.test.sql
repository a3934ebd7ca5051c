-- Every trigger's behaviour, and the check constraints that guard ranges.
begin;
select plan(57);

select tests.create_two_archives();

-- Exactly these triggers exist; each one's behaviour is asserted below.
select triggers_are('auth', 'users', array['on_auth_user_saved'], 'auth.users triggers');
select triggers_are(
    'public', 'users', array['users_set_updated_at', 'users_bump_archive_version_on_display_name'], 'users triggers'
);
select triggers_are('public', 'connected_accounts', array['connected_accounts_set_updated_at', 'connected_accounts_wipe_token_binding'], 'connected_accounts triggers');
select triggers_are(
    'public', 'ingested_items', array['ingested_items_notify_work', 'ingested_items_set_updated_at', 'ingested_items_user_id_from_account'],
    'ingested_items triggers'
);
select triggers_are(
    'public', 'ingested_posts',
    array[
        'ingested_posts_bump_archive_versions_delete', 'ingested_posts_bump_archive_versions_insert', 'ingested_posts_bump_archive_versions_update',
        'ingested_posts_mark_public_posts_stale', 'ingested_posts_notify_work', 'ingested_posts_set_updated_at', 'ingested_posts_user_id_from_account'
    ],
    'ingested_posts triggers'
);
select triggers_are(
    'public', 'posts', array[
        'posts_bump_archive_versions_delete', 'posts_bump_archive_versions_insert', 'posts_bump_archive_versions_update',
        'posts_check_account', 'posts_mark_public_posts_stale', 'posts_set_search_vector', 'posts_set_updated_at'
    ], 'posts triggers'
);
select triggers_are(
    'public', 'sync_logs', array['sync_logs_complete', 'sync_logs_record_on_account', 'sync_logs_user_id_from_account'],
    'sync_logs triggers'
);
select triggers_are('public', 'engagement_history', array['engagement_history_user_id_from_post'], 'engagement_history triggers');
select triggers_are('public', 'media_downloads', array['media_downloads_bump_archive_version', 'media_downloads_link_to_post', 'media_downloads_mark_public_posts_stale', 'media_downloads_notify_work'], 'media_downloads triggers');
select triggers_are(
    'public', 'post_media', array[
        'post_media_bump_archive_versions_delete', 'post_media_bump_archive_versions_insert', 'post_media_bump_archive_versions_update',
        'post_media_mark_public_posts_stale'
    ], 'post_media triggers'
);
select triggers_are('public', 'api_keys', array['api_keys_revocation_is_final'], 'api_keys triggers');
select triggers_are(
    'public', 'sync_requests',
    array['sync_requests_notify_work', 'sync_requests_set_updated_at', 'sync_requests_user_id_from_account'],
    'sync_requests triggers'
);
select triggers_are(
    'public', 'webhook_subscriptions', array['webhook_subscriptions_set_updated_at'], 'webhook_subscriptions triggers'
);
select triggers_are('public', 'oauth_states', array[]::name[], 'oauth_states has no triggers');
select triggers_are('public', 'stream_cursors', array[]::name[], 'stream_cursors has no triggers');
select triggers_are('public', 'rate_limit_budgets', array['rate_limit_budgets_set_updated_at'], 'rate_limit_budgets triggers');

-- auth.users -> public.users
select is(
    (
        select email from public.users
        where id = tests.id('user', 'alice')
    ),
    'alice@test.trove.local',
    'signing up through Auth creates the users row with its email'
);
update auth.users set email = 'alice@new.example'
where id = tests.id('user', 'alice');
select is(
    (
        select email from public.users
        where id = tests.id('user', 'alice')
    ),
    'alice@new.example',
    'changing the email in Auth changes it in users'
);
insert into auth.users (id, aud, role, phone) values ('00000000-0000-4000-8000-0000000000aa', 'authenticated', 'authenticated', '+15550001');
select is(
    (
        select count(*)::int from public.users
        where id = '00000000-0000-4000-8000-0000000000aa' and email is null
    ),
    1,
    'a phone-only sign-up gets a users row without email'
);
delete from auth.users
where id = '00000000-0000-4000-8000-0000000000aa';
select is(
    (
        select count(*)::int from public.users
        where id = '00000000-0000-4000-8000-0000000000aa'
    ),
    0,
    'deleting the Auth user deletes the users row'
);

-- updated_at on every table that has it
update public.users set updated_at = '2000-01-01', display_name = 'x'
where id = tests.id('user', 'alice');
select ok((
    select updated_at > '2001-01-01' from public.users
    where id = tests.id('user', 'alice')
), 'users.updated_at is set on update');
update public.connected_accounts set updated_at = '2000-01-01', scope = 'read'
where id = tests.id('account', 'alice');
select ok((
    select updated_at > '2001-01-01' from public.connected_accounts
    where id = tests.id('account', 'alice')
), 'connected_accounts.updated_at is set on update');
update public.connected_accounts set access_token = 'a', refresh_token = 'r', token_binding = 'b'
where
    id = tests.id('account', 'alice');
update public.connected_accounts set scope = 'read write'
where id = tests.id('account', 'alice');
select is(
    (
        select token_binding from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    'b',
    'connected_accounts: the token binding stays while the tokens do'
);
update public.connected_accounts set access_token = null, refresh_token = null
where id = tests.id('account', 'alice');
select is(
    (
        select token_binding from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    null,
    'connected_accounts: wiping the tokens wipes their binding (a DPoP key) too'
);
update public.posts set updated_at = '2000-01-01', published = false
where id = tests.id('post', 'alice');
select ok((
    select updated_at > '2001-01-01' from public.posts
    where id = tests.id('post', 'alice')
), 'posts.updated_at is set on update');
update public.ingested_items set updated_at = '2000-01-01', attempts = 1
where id = tests.id('ingested_item', 'alice');
select ok((
    select updated_at > '2001-01-01' from public.ingested_items
    where id = tests.id('ingested_item', 'alice')
), 'ingested_items.updated_at is set on update');
update public.ingested_posts set updated_at = '2000-01-01', attempts = 1
where id = tests.id('ingested_post', 'alice');
select ok((
    select updated_at > '2001-01-01' from public.ingested_posts
    where id = tests.id('ingested_post', 'alice')
), 'ingested_posts.updated_at is set on update');

-- user_id follows the account (posts, ingested_items, ingested_posts, sync_logs) or the post (engagement)
select is(
    (
        select user_id from public.posts
        where id = tests.id('post', 'alice')
    ),
    tests.id('user', 'alice'),
    'posts.user_id is taken from the account'
);
insert into public.posts (account_id, user_id, platform, platform_post_id, created_at_platform)
values (tests.id('account', 'alice'), tests.id('user', 'bob'), 'strava', 'forged-owner', now());
select is(
    (
        select user_id from public.posts
        where platform_post_id = 'forged-owner'
    ),
    tests.id('user', 'alice'),
    'a post written with another user_id is still filed under the account''s user'
);
select throws_ok(
    $$ insert into public.posts (account_id, platform, platform_post_id, created_at_platform)
       values (tests.id('account', 'alice'), 'bluesky', 'wrong-platform', now()) $$,
    '23514',
    null,
    'a post on another platform than its account is refused'
);
select is(
    (
        select user_id from public.ingested_items
        where id = tests.id('ingested_item', 'alice')
    ),
    tests.id('user', 'alice'),
    'ingested_items.user_id is taken from the account'
);
insert into public.ingested_items (source, platform, event_type, payload)
values ('webhook', 'strava', 'activity.create', '{"owner_id": 999}');
select is(
    (
        select user_id from public.ingested_items
        where payload = '{"owner_id": 999}'
    ),
    null,
    'an ingested item with no account (unknown owner) is kept with no user'
);
select is(
    (
        select user_id from public.ingested_posts
        where id = tests.id('ingested_post', 'alice')
    ),
    tests.id('user', 'alice'),
    'ingested_posts.user_id is taken from the account'
);
select is(
    (
        select user_id from public.sync_logs
        where id = tests.id('sync_log', 'alice')
    ),
    tests.id('user', 'alice'),
    'sync_logs.user_id is taken from the account'
);
select is(
    (
        select user_id from public.engagement_history
        where id = tests.id('engagement', 'alice')
    ),
    tests.id('user', 'alice'),
    'engagement_history.user_id is taken from the post'
);

-- search_vector: text, author handle, keywords (what the platform's normalizer stored on the post)
select ok(
    (
        select search_vector @@ to_tsquery('english', 'morning & run') from public.posts
        where id = tests.id('post', 'alice')
    ),
    'search_vector matches the post text'
);
select ok(
    (
        select search_vector @@ to_tsquery('english', 'trailrun') from public.posts
        where id = tests.id('post', 'alice')
    ),
    'search_vector matches the keywords the normalizer stored (the activity type)'
);
select ok(
    (
        select search_vector @@ to_tsquery('simple', 'alice') from public.posts
        where id = tests.id('post', 'alice')
    ),
    'search_vector matches the author handle (the account username when the post names none)'
);
update public.posts set text_content = 'evening swim'
where id = tests.id('post', 'alice');
select ok(
    (
        select search_vector @@ to_tsquery('english', 'swim') and not search_vector @@ to_tsquery('english', 'morning')
        from public.posts
        where id = tests.id('post', 'alice')
    ),
    'search_vector follows an edited text'
);
update public.posts set search_keywords = 'Kayaking'
where id = tests.id('post', 'alice');
select ok(
    (
        select search_vector @@ to_tsquery('english', 'kayaking') from public.posts
        where id = tests.id('post', 'alice')
    ),
    'search_vector follows new keywords (activity type changed)'
);
insert into public.connected_accounts (user_id, platform, platform_user_id, username)
values (tests.id('user', 'bob'), 'bluesky', 'did:plc:bob', 'bob');
insert into public.posts (account_id, platform, platform_post_id, text_content, created_at_platform, author_handle)
values (
    (
        select id from public.connected_accounts
        where platform_user_id = 'did:plc:bob'
    ), 'bluesky',
    'at://did:plc:bob/app.bsky.feed.post/1', 'hello world', now(), 'bob.bsky.social'
);
select ok(
    (
        select search_vector @@ to_tsquery('simple', 'bob.bsky.social') from public.posts
        where platform_post_id = 'at://did:plc:bob/app.bsky.feed.post/1'
    ),
    'search_vector holds the author handle the normalizer stored'
);

-- sync_logs: completion stamps duration and the account
select is(
    (
        select completed_at from public.sync_logs
        where id = tests.id('sync_log', 'alice')
    ),
    null,
    'a running sync has no completed_at'
);
update public.sync_logs
set started_at = now() - interval '1500 milliseconds', completed_at = now(), status = 'success', posts_fetched = 7
where id = tests.id('sync_log', 'alice');
select is(
    (
        select duration_ms from public.sync_logs
        where id = tests.id('sync_log', 'alice')
    ),
    1500,
    'duration_ms is computed on completion'
);
select is(
    (
        select last_sync_status from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    'success',
    'completion records last_sync_status on the account'
);
select is(
    (
        select last_sync_at from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    (
        select completed_at from public.sync_logs
        where id = tests.id('sync_log', 'alice')
    ),
    'completion records last_sync_at on the account'
);
update public.sync_logs set status = 'failed'
where id = tests.id('sync_log', 'bob');
select isnt(
    (
        select completed_at from public.sync_logs
        where id = tests.id('sync_log', 'bob')
    ),
    null,
    'a sync that fails without completed_at gets one'
);
select is(
    (
        select last_sync_status from public.connected_accounts
        where id = tests.id('account', 'bob')
    ),
    'failed',
    'a failed sync is recorded on the account'
);
insert into public.sync_logs (account_id, sync_type, status) values (tests.id('account', 'bob'), 'manual', 'cancelled');
select is(
    (
        select last_sync_status from public.connected_accounts
        where id = tests.id('account', 'bob')
    ),
    'failed',
    'a cancelled sync leaves last_sync_status as it was'
);

-- Check constraints
select throws_ok(
    $$ update public.connected_accounts set error_count = -1 where id = tests.id('account', 'alice') $$,
    '23514', null, 'error_count cannot be negative'
);
select throws_ok(
    $$ update public.ingested_items set attempts = -1 where id = tests.id('ingested_item', 'alice') $$,
    '23514', null, 'ingested_items.attempts cannot be negative'
);
select throws_ok(
    $$ update public.ingested_posts set attempts = -1 where id = tests.id('ingested_post', 'alice') $$,
    '23514', null, 'ingested_posts.attempts cannot be negative'
);
select throws_ok(
    $$ update public.media_downloads set attempts = -1 where id = tests.id('media_download', 'alice') $$,
    '23514', null, 'media_downloads.attempts cannot be negative'
);
select throws_ok(
    $$ update public.media_downloads set original_url = 'file:///etc/passwd' where id = tests.id('media_download', 'alice') $$,
    '23514', null, 'a media URL must be http(s)'
);
select throws_ok(
    $$ update public.sync_logs set posts_created = -5 where id = tests.id('sync_log', 'alice') $$,
    '23514', null, 'sync metrics cannot be negative'
);
select throws_ok(
    $$ update public.connected_accounts set last_sync_status = 'great' where id = tests.id('account', 'alice') $$,
    '23514', null, 'last_sync_status is success, failed or partial'
);
select throws_ok(
    $$ insert into public.connected_accounts (user_id, platform, platform_user_id, username)
       values (tests.id('user', 'bob'), 'strava', 'alice-athlete', 'impostor') $$,
    '23505', null, 'a platform account belongs to one Trove user only'
);
select throws_ok(
    $$ insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url)
       values (tests.id('ingested_post', 'alice'), tests.id('user', 'alice'), 'strava', 'alice-photo-1',
               'https://media.example.test/new-signature.jpg') $$,
    '23505', null, 'the same media key is one download, whatever its URL'
);

select finish();
rollback;
