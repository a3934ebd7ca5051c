"""Real-time stream consumers (`trove.streams`): who to follow, where each consumer left off, and the raw
events they store."""

# The accounts a platform's stream follows: connected ones, in error too (an account inactive on the
# platform must still be heard coming back). Parameters: platform. Columns: platform_user_id.
FOLLOWED_ACCOUNTS = """
    select platform_user_id from public.connected_accounts
    where platform = %s and status in ('active', 'error') and sync_enabled
"""

# Where a consumer left off. Parameters: platform, consumer. Columns: resume_from.
LOAD_STREAM_CURSOR = "select resume_from from public.stream_cursors where platform = %s and consumer = %s"

# Advance a consumer's cursor (never backwards). Parameters: platform, consumer, resume_from.
SAVE_STREAM_CURSOR = """
    insert into public.stream_cursors (platform, consumer, resume_from) values (%s, %s, %s)
    on conflict (platform, consumer) do update
    set resume_from = greatest(public.stream_cursors.resume_from, excluded.resume_from), updated_at = now()
"""

# Store a stream event for the worker, once: a replayed event (same identity) stores nothing.
# Parameters: platform, event type, external id (the event's identity), payload (Jsonb).
INSERT_STREAM_ITEM = """
    insert into public.ingested_items (source, platform, event_type, external_id, payload)
    values ('stream', %s, %s, %s, %s)
    on conflict do nothing
"""

# One consumer per platform across every worker process: a session-level advisory lock held while it runs.
# Parameters: the platform's name. Columns: acquired.
TRY_STREAM_LOCK = "select pg_try_advisory_lock(hashtext('trove-stream'), hashtext(%s))"

# A poll of a newly followed account (what it did before the stream followed it). Parameters: platform,
# platform user id. Raises ObjectNotInPrerequisiteState for an account that must be reconnected first.
CATCH_UP_SYNC = """
    select trove_private.enqueue_sync(ca.id, 'scheduled', 'followed on the stream')
    from public.connected_accounts as ca
    where ca.platform = %s and ca.platform_user_id = %s and ca.status in ('active', 'error')
"""
