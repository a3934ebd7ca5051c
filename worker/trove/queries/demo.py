"""What `trove run` reports once the demo account's backfill is done."""

# What was archived for the demo account. Parameters: account (id), platform.
# Columns: posts, raw posts with their detail, media files.
ARCHIVED = """
    select (select count(*) from public.posts where account_id = %(account)s),
           (select count(*) from public.ingested_posts where account_id = %(account)s and not detail_pending),
           (select count(*) from public.media_downloads where platform::text = %(platform)s)
"""

# Media copies not finished yet, any platform.
MEDIA_WAITING = "select count(*) from public.media_downloads where status in ('pending', 'downloading')"

# Media copied into storage. Parameters: platform.
MEDIA_COPIED = "select count(*) from public.media_downloads where status = 'downloaded' and platform::text = %s"
