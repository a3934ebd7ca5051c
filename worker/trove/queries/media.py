"""`media_downloads` (one row per stable media key and user) and `post_media` (which post shows which file):
the worker's copy jobs, and a post's media for its reader."""

# What a copy job needs: the file, and the raw post and account to ask the platform for a fresh URL.
# Parameters: media id. Columns: user_id, platform, media_key, original_url, post_data, account_id.
MEDIA_JOB = """
    select md.user_id::text, md.platform::text, md.media_key, md.original_url, ip.post_data, ip.account_id::text
    from public.media_downloads as md
    join public.ingested_posts as ip on ip.id = md.ingested_post_id
    where md.id = %s
"""

# The copy is in storage (the job completes in the same transaction). Parameters: storage path, content
# type, byte size, content sha256, the URL it came from, media id.
# The user's archive version, locked before a copy is recorded: recording it bumps the version (a trigger),
# and a sync's page locks the version (its posts) before the media rows; taking them in that same order
# keeps a copy and a sync of the same user from deadlocking. Parameters: user id.
LOCK_ARCHIVE_VERSION = "select 1 from public.archive_versions where user_id = %s for update"

MEDIA_COPIED = """
    update public.media_downloads
    set storage_path = %s, content_type = %s, byte_size = %s, content_sha256 = %s, downloaded_at = now(),
        original_url = %s
    where id = %s
"""

# The platform's fresh URL for an expired one. Parameters: URL, user id, platform, media key.
FRESH_MEDIA_URL = """
    update public.media_downloads set original_url = %s
    where user_id = %s and platform = %s and media_key = %s
"""

# A post's media in display order, run as the reader (RLS). Parameters: post id.
# Columns: id, media_key, status, original_url, storage_path, content_type, byte_size.
MEDIA_FOR_POST = """
    select md.id::text, md.media_key, md.status::text, md.original_url, md.storage_path, md.content_type,
           md.byte_size
    from public.posts as p
    join public.ingested_posts as ip on ip.platform = p.platform and ip.platform_post_id = p.platform_post_id
    join public.post_media as pm on pm.ingested_post_id = ip.id
    join public.media_downloads as md on md.id = pm.media_download_id
    where p.id = %s
    order by pm.position, md.created_at, md.media_key
"""


# Same stable key = same file: keep the row, take the fresh (re-signed) URL. Parameters: post (raw post id),
# user, platform, key (the media key), url.
UPSERT_MEDIA = """
    insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url)
    values (%(post)s, %(user)s, %(platform)s, %(key)s, %(url)s)
    on conflict (user_id, platform, media_key) do update
    set original_url = excluded.original_url,
        -- a file the platform withheld (no URL) and now gives: download it after all
        status = case when media_downloads.original_url = '' then 'pending' else media_downloads.status end,
        attempts = case when media_downloads.original_url = '' then 0 else media_downloads.attempts end,
        error = case when media_downloads.original_url = '' then null else media_downloads.error end,
        run_after = case when media_downloads.original_url = '' then now() else media_downloads.run_after end
    where media_downloads.original_url is distinct from excluded.original_url
"""

# A media file the platform lists but does not give (MediaRef.missing): unavailable, with the reason; a file
# already copied keeps its copy. Parameters: post, user, platform, key, reason.
UPSERT_MISSING_MEDIA = """
    insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url, status, error)
    values (%(post)s, %(user)s, %(platform)s, %(key)s, '', 'unavailable', %(reason)s)
    on conflict (user_id, platform, media_key) do update
    set error = excluded.error, status = 'unavailable', original_url = '', locked_by = null, locked_until = null
    where media_downloads.status not in ('downloaded', 'downloading')
      and media_downloads.error is distinct from excluded.error
"""

# Link a file to a raw post at its position (a file shared by two posts is one row, shown on both).
# Parameters: post (raw post id), user, platform, key, position.
LINK_MEDIA = """
    insert into public.post_media (ingested_post_id, media_download_id, user_id, position)
    select %(post)s, md.id, md.user_id, %(position)s
    from public.media_downloads as md
    where md.user_id = %(user)s and md.platform = %(platform)s and md.media_key = %(key)s
    on conflict (ingested_post_id, media_download_id) do update
    set position = excluded.position
    where post_media.position is distinct from excluded.position
"""
