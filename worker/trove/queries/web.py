"""The web app's reads (trove.web). Each runs inside a transaction that acts as the signed-in user
(`trove.http.auth.as_user`): RLS decides what exists, exactly as for the read API."""

# The user's connected accounts with their sync health. Columns: id, platform, username, display_name, status,
# last_sync_at, last_sync_status, next_sync_at, error_message, error_count, sync_enabled, token_expires_at,
# webhook_subscribed, avatar_url.
ACCOUNTS = """
    select id::text, platform::text, username, display_name, status::text, last_sync_at, last_sync_status,
           next_sync_at, error_message, error_count, sync_enabled, token_expires_at, webhook_subscribed, avatar_url
    from public.connected_accounts
    order by platform, username
"""

# Each account's latest sync. Columns: account id, sync log id, status, sync type, posts fetched, created,
# updated, media downloaded, media failed, pages (the sync's page_count), started_at, completed_at, error message.
LATEST_SYNCS = """
    select distinct on (account_id) account_id::text, id::text, status::text, sync_type::text, posts_fetched,
           posts_created, posts_updated, media_downloaded, media_failed,
           case when jsonb_typeof(metadata -> 'page_count') = 'number'
               then least(greatest((metadata ->> 'page_count')::numeric, 0), 1e12)::bigint end,
           started_at, completed_at, error_message
    from public.sync_logs
    where account_id is not null
    order by account_id, started_at desc
"""

# One sync's progress. Parameters: sync log id. Columns as LATEST_SYNCS.
SYNC_PROGRESS = """
    select account_id::text, id::text, status::text, sync_type::text, posts_fetched, posts_created, posts_updated,
           media_downloaded, media_failed,
           case when jsonb_typeof(metadata -> 'page_count') = 'number'
               then least(greatest((metadata ->> 'page_count')::numeric, 0), 1e12)::bigint end,
           started_at, completed_at, error_message
    from public.sync_logs
    where id = %s::uuid
"""

# Unread notifications, newest first. Columns: id, account id, kind, title, body, created_at.
NOTIFICATIONS = """
    select id::text, account_id::text, kind, title, body, created_at
    from public.notifications
    where read_at is null
    order by created_at desc
    limit 20
"""

# Marks a notification read (RLS: only the user's own). Parameters: notification id.
READ_NOTIFICATION = "update public.notifications set read_at = now() where id = %s::uuid and read_at is null"

# The archive's matches per platform for a search. Parameters: query. Columns: platform, matches.
SEARCH_FACETS = "select platform::text, matches from public.search_facets(%s)"

# What an archive page shows beyond the feed's rows, for all of its posts at once: the post's HTML, its public
# projection (media descriptions), its latest engagement and, for a search, the text with the matched words
# between \x01 and \x02 (escaped, then marked up, by the app). Parameters: query (or None), post ids. Columns:
# id, html, public data, latest engagement, highlighted text.
PAGE_EXTRAS = """
    select p.id::text, p.html_content, p.public_data,
           (select eh.engagement_stats from public.engagement_history as eh
            where eh.post_id = p.id order by eh.recorded_at desc limit 1),
           case when %(q)s::text is not null then
               ts_headline('english', coalesce(p.text_content, ''), websearch_to_tsquery('english', %(q)s::text),
                           'StartSel=' || chr(1) || ', StopSel=' || chr(2) || ', HighlightAll=true')
           end
    from public.posts as p
    where p.id = any(%(ids)s::uuid [])
"""

# The account, if the user can see it (RLS). Parameters: account id.
VISIBLE_ACCOUNT = "select id::text, platform::text from public.connected_accounts where id = %s::uuid"

# The owner disconnects an account: tokens wiped, syncing stops, the archive stays. Parameters: account id.
DISCONNECT_ACCOUNT = "select trove_private.disconnect_account(%s::uuid)"

# One post as its owner sees it. Parameters: post id. Columns: id, platform, content_type, text_content,
# html_content, created_at_platform, updated_at_platform, published, deleted_on_platform, visibility, permalink,
# author_handle, username, created_at, updated_at, latest raw payload, ingested post id, account id,
# platform post id, public data.
POST = """
    select p.id::text, p.platform::text, p.content_type::text, p.text_content, p.html_content,
           p.created_at_platform, p.updated_at_platform, p.published, p.deleted_on_platform, p.visibility,
           p.permalink, p.author_handle, ca.username, p.created_at, p.updated_at, ip.post_data, ip.id::text,
           p.account_id::text, p.platform_post_id, p.public_data
    from public.posts as p
    left join public.connected_accounts as ca on ca.id = p.account_id
    left join public.ingested_posts as ip on ip.platform = p.platform and ip.platform_post_id = p.platform_post_id
    where p.id = %s::uuid
"""

# A post's media in order. Parameters: ingested post id. Columns: media key, status, original url, storage
# path, content type, byte size, error.
POST_MEDIA = """
    select md.media_key, md.status::text, md.original_url, md.storage_path, md.content_type, md.byte_size, md.error
    from public.post_media as pm
    inner join public.media_downloads as md on md.id = pm.media_download_id
    where pm.ingested_post_id = %s::uuid
    order by pm.position, md.created_at
"""

# A post's engagement over time, oldest first. Parameters: post id. Columns: recorded_at, stats.
ENGAGEMENT = """
    select recorded_at, engagement_stats
    from public.engagement_history
    where post_id = %s::uuid
    order by recorded_at
    limit 500
"""

# The raw payloads a post came from: every event and page that names it (webhooks, stream frames) and the
# stored items of its account that hold it. Parameters: account id, platform post id. Columns: id, source,
# event type, received_at, status, outcome, payload.
POST_EVENTS = """
    select ii.id::text, ii.source::text, ii.event_type, ii.received_at, ii.status::text, ii.outcome, ii.payload
    from public.ingested_items as ii
    where ii.account_id = %s::uuid and ii.external_id = %s
    order by ii.received_at
    limit 50
"""

# Comments, replies and other interactions on a post. Parameters: account id, platform post id. Columns: kind,
# author handle, text, occurred_at.
POST_INTERACTIONS = """
    select kind, author_handle, text_content, occurred_at
    from public.post_interactions
    where account_id = %s::uuid and platform_post_id = %s
    order by occurred_at nulls last
    limit 200
"""

# Posts per day over a window, every platform. Parameters: since. Columns: day, platform, posts.
POSTS_PER_DAY = """
    select (created_at_platform at time zone 'UTC')::date, platform::text, count(*)
    from public.posts
    where not deleted_on_platform and created_at_platform >= %s
    group by 1, 2
"""

# Totals per platform and type. Columns: platform, content type, posts, first, last.
TOTALS = """
    select platform::text, content_type::text, count(*), min(created_at_platform), max(created_at_platform)
    from public.posts
    where not deleted_on_platform
    group by 1, 2
    order by 1, 2
"""

# The copied media: count and bytes per platform, and what is still waiting or failed. Columns: platform,
# status, files, bytes.
MEDIA_TOTALS = """
    select platform::text, status::text, count(*), coalesce(sum(byte_size), 0)
    from public.media_downloads
    group by 1, 2
    order by 1, 2
"""

# The user's imports, newest first. Columns: id, platform, file name, status, byte size, created_at, error.
IMPORTS = """
    select id::text, platform::text, file_name, status::text, byte_size, created_at, error_message
    from public.imports
    order by created_at desc
    limit 50
"""
