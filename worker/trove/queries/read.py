"""The read API (seed 7): `public.feed` (in supabase/migrations/) filters, searches and pages what the user
may see; everything here runs as the reader (RLS decides)."""

# A page of the feed as its reader sees it (RLS decides), in one statement: trove_private.feed_for_reader acts as
# the user and calls public.feed. Parameters: user id, platforms (or None), types (or None), since, until,
# query, limit, cursor, offset, public only. Columns: id, platform, content_type, text_content,
# created_at_platform, updated_at_platform, post_data, media, cursor, permalink.
FEED_FOR_READER = """
    select id::text, platform::text, content_type::text, text_content, created_at_platform, updated_at_platform,
           post_data, media, cursor, permalink
    from trove_private.feed_for_reader(%s::uuid, %s::public.platform_enum[], %s::public.content_type_enum[],
                                       %s, %s, %s, %s::integer, %s, %s::integer, %s)
"""

# The user's archive version: bumped by any change a reader can see, so it keys the feed cache.
# Parameters: user id.
ARCHIVE_VERSION = "select version from public.archive_versions where user_id = %s"

# Every platform the archive can hold (platform_enum's labels).
PLATFORM_NAMES = "select enum_range(null::public.platform_enum)::text[]"

# The feed's author: the reader's own profile (RLS: a user reads only their own row). Parameters: none.
FEED_AUTHOR = "select display_name from public.users where id = (select auth.uid())"

# Archive changes are announced on this channel with the user's id (a trigger on archive_versions); the HTTP
# processes forget that user's version when told (trove.http.versions).
ARCHIVE_CHANGED = "trove_archive_changed"
LISTEN_ARCHIVE_CHANGED = "listen trove_archive_changed"
# An announcement of the listener's own, proving the channel delivers to it. Parameters: payload.
NOTIFY_ARCHIVE_CHANGED = "select pg_notify('trove_archive_changed', %s)"
