"""A sync run's log (`public.sync_logs`): what a run fetched and wrote, its problems, and its status for
whoever asked for it. Queued, finished and failed through the sync queue's functions (see `queue`)."""

# A committed page's counts and position, added to the run's. Parameters: fetched, created, updated,
# deleted, mode, cursor (Jsonb), remaining (the tightest rate-limit window's), log.
COUNT_PAGE = """
    update public.sync_logs
    set posts_fetched = posts_fetched + %(fetched)s, posts_created = posts_created + %(created)s,
        posts_updated = posts_updated + %(updated)s, posts_deleted = posts_deleted + %(deleted)s,
        metadata = metadata || jsonb_build_object(
            'mode', %(mode)s::text, 'cursor', %(cursor)s::jsonb,
            'page_count', coalesce((metadata ->> 'page_count')::int, 0) + 1,
            'rate_limit_remaining', %(remaining)s::int)
    where id = %(log)s
"""

# A post's detail stored. Parameters: posts updated (0 or 1), log.
COUNT_DETAIL = """
    update public.sync_logs
    set posts_updated = posts_updated + %s,
        metadata = metadata || jsonb_build_object('details_fetched',
                                                  coalesce((metadata ->> 'details_fetched')::int, 0) + 1)
    where id = %s
"""

# Posts that could not be stored (the run ends partial). Parameters: message, details (Jsonb), log.
RECORD_POST_ERRORS = "update public.sync_logs set error_message = %s, error_details = %s where id = %s"

# A run's progress, run as the user (RLS: only the owner's logs exist). Parameters: log id (a malformed id
# raises InvalidTextRepresentation). Columns: see http/sync.py.
SYNC_STATUS = """
    select status::text, sync_type::text, posts_fetched, posts_created, posts_updated, posts_deleted,
           media_downloaded, media_failed, started_at, completed_at, duration_ms, error_message, metadata
    from public.sync_logs
    where id = %s::uuid
"""

# A run's status (queued, running, success, ...). Parameters: log id.
SYNC_LOG_STATE = "select status::text from public.sync_logs where id = %s"
