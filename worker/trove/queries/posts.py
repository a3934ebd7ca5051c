"""Normalized posts (`public.posts`) that the engine looks up or marks; writing them from a connector's
normalized form is `trove.store`."""

# An event confirmed by the platform: the account's post was deleted there (the archive keeps it).
# Parameters: platform, platform post id, account id.
MARK_DELETED = """
    update public.posts set deleted_on_platform = true
    where platform = %s and platform_post_id = %s and account_id = %s
"""

# The account's archived posts (p) that a complete listing (base.Listing) covers but left out (a post known
# only from an export, 'export:...', is never in a platform's listing). Ids compared
# bytewise (collate "C"), as platforms order ids. Parameters: account, prefix, from_id, before_id, after,
# until (timestamptz), types (text[]), ids (text[]); None: no bound.
_UNLISTED = """
    p.account_id = %(account)s and not p.deleted_on_platform
    and starts_with(p.platform_post_id, %(prefix)s)
    and not starts_with(p.platform_post_id, 'export:')
    and (%(from_id)s::text is null or p.platform_post_id collate "C" >= %(from_id)s::text collate "C")
    and (%(before_id)s::text is null or p.platform_post_id collate "C" < %(before_id)s::text collate "C")
    and (%(after)s::timestamptz is null or p.created_at_platform > %(after)s::timestamptz)
    and (%(until)s::timestamptz is null or p.created_at_platform <= %(until)s::timestamptz)
    and (%(types)s::text[] is null or p.content_type::text = any(%(types)s::text[]))
    and p.platform_post_id <> all(%(ids)s::text[])
"""

# Those are gone on the platform.
MARK_UNLISTED_DELETED = f"update public.posts as p set deleted_on_platform = true where {_UNLISTED}"

# Those are to be checked with the platform (Listing.confirm): their detail is asked for again, and the
# detail fetch marks them deleted only when the platform says so.
CHECK_UNLISTED = f"""
    update public.ingested_posts as ip set detail_pending = true
    from public.posts as p
    where ip.platform = p.platform and ip.platform_post_id = p.platform_post_id and not ip.detail_pending
      and {_UNLISTED}
"""

# ... and what such a listing names is not gone (any more). Parameters: account, ids (text[]).
MARK_LISTED_PRESENT = """
    update public.posts set deleted_on_platform = false
    where account_id = %(account)s and deleted_on_platform and platform_post_id = any(%(ids)s::text[])
"""

# The platform says a post whose detail was pending is gone. Parameters: ingested post id.
MARK_DELETED_BY_RAW_POST = """
    update public.posts as p set deleted_on_platform = true
    from public.ingested_posts as ip
    where ip.id = %s and p.platform = ip.platform and p.platform_post_id = ip.platform_post_id
"""

# The post, when the reader may see it: run as the user (RLS), another user's post is no row.
# Parameters: post id (text: a malformed id is no row, not an error).
VISIBLE_POST = "select id from public.posts where id::text = %s"


# Insert or update the normalized post; an update only when something in it changed (so an unchanged page
# writes nothing and bumps no archive version). The account writing it owns it: a post the platform's API
# returns to its connected account moves there from an account known only from an (unverifiable) export.
# Parameters: account, platform, post_id, type, text, html, created, updated, published, deleted, visibility,
# public_data (Jsonb), author_handle, keywords, permalink.
# Columns: id, inserted (a new post), deleted_on_platform; no row when nothing changed.
UPSERT_POST = """
    insert into public.posts (account_id, platform, platform_post_id, content_type, text_content, html_content,
                              created_at_platform, updated_at_platform, published, deleted_on_platform,
                              visibility, public_data, author_handle, search_keywords, permalink)
    values (%(account)s, %(platform)s, %(post_id)s, %(type)s, %(text)s, %(html)s, %(created)s, %(updated)s,
            %(published)s, %(deleted)s, %(visibility)s, %(public_data)s, %(author_handle)s, %(keywords)s,
            %(permalink)s)
    on conflict (platform, platform_post_id) do update
    set account_id = excluded.account_id,
        content_type = excluded.content_type,
        text_content = excluded.text_content,
        html_content = excluded.html_content,
        created_at_platform = excluded.created_at_platform,
        updated_at_platform = excluded.updated_at_platform,
        published = excluded.published,
        deleted_on_platform = excluded.deleted_on_platform,
        visibility = excluded.visibility,
        public_data = excluded.public_data,
        author_handle = excluded.author_handle,
        search_keywords = excluded.search_keywords,
        permalink = excluded.permalink
    where (posts.account_id, posts.content_type, posts.text_content, posts.html_content,
           posts.created_at_platform, posts.updated_at_platform, posts.published, posts.deleted_on_platform,
           posts.visibility, posts.public_data, posts.author_handle, posts.search_keywords, posts.permalink)
        is distinct from
          (excluded.account_id, excluded.content_type, excluded.text_content, excluded.html_content,
           excluded.created_at_platform, excluded.updated_at_platform, excluded.published,
           excluded.deleted_on_platform, excluded.visibility, excluded.public_data, excluded.author_handle,
           excluded.search_keywords, excluded.permalink)
    returning id, (xmax = 0) as inserted, deleted_on_platform
"""

# A post's id by its platform post. Parameters: platform, platform post id.
POST_ID = "select id from public.posts where platform = %s and platform_post_id = %s"

# An engagement snapshot, only when the numbers changed since the last one. Parameters: post, stats (Jsonb).
SNAPSHOT_ENGAGEMENT = """
    insert into public.engagement_history (post_id, engagement_stats)
    select %(post)s, %(stats)s
    where %(stats)s is distinct from (
        select eh.engagement_stats from public.engagement_history as eh
        where eh.post_id = %(post)s order by eh.recorded_at desc limit 1
    )
    on conflict (post_id, recorded_at) do nothing
"""
