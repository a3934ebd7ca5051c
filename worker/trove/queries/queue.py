"""The queues (supabase/migrations/*work_queues*, *sync_requests*): claiming, finishing and failing work.

A work queue is a table (ingested_items, ingested_posts, media_downloads) claimed through trove_private
functions with a lease; a sync run is a row of sync_requests with its own functions. Whatever finishes,
fails, extends or releases a claim names the worker: only the lease holder can."""

# The worker wakes on these NOTIFY channels: new work, and the health check's report (a JSON payload).
LISTEN_WORK = "listen trove_work"
LISTEN_HEALTH = "listen trove_health"

# --- work queues: (queue) is the table's name -------------------------------------------------------------

# Claim up to (limit) ready items for (worker) for (lease); one row per claimed id (as text).
# Parameters: queue, worker, limit, lease.
CLAIM_WORK = "select trove_private.claim_work(%s, %s, %s, %s)::text"

# The item is done (the caller commits it with the item's writes). Parameters: queue, id, worker.
COMPLETE_WORK = "select trove_private.complete_work(%s, %s, %s)"

# Lock the items of a claimed batch this worker still holds, for the transaction that works through them;
# the ids held. Parameters: queue, ids (a list), worker.
HOLD_WORK = "select trove_private.hold_work(%s, %s::uuid[], %s)::text"

# Items of one claimed batch done together (the caller commits them with their writes); the ids completed.
# Parameters: queue, ids (a list), worker.
COMPLETE_WORK_BATCH = "select trove_private.complete_work_batch(%s, %s::uuid[], %s)"

# Items of one batch failed, each with its message and whether retrying cannot help (lists, position by
# position). Parameters: queue, ids, worker, error messages, permanent flags.
FAIL_WORK_BATCH = "select * from trove_private.fail_work_batch(%s, %s::uuid[], %s, %s::text[], %s::boolean[])"

# The item failed: retried with backoff, or dead-lettered when (permanent) or out of attempts.
# Parameters: queue, id, worker, error message, permanent.
FAIL_WORK = "select trove_private.fail_work(%s, %s, %s, %s, %s)"

# The item can never succeed (an oversize or non-media file): failed at once, no attempts left.
# Parameters: queue, id, worker, error message.
GIVE_UP_WORK = "select trove_private.give_up_work(%s, %s, %s, %s)"

# Give one item back without counting the attempt (a batch could not lock it: another transaction had it).
# Parameters: queue, id, worker.
RELEASE_WORK = "select trove_private.release_work(%s, %s::uuid, %s)"

# Give back, without counting the attempt, every item of (queue) this worker still holds (a bounded drain
# that ran out of time). Parameters: queue, worker.
RELEASE_HELD = "select trove_private.release_held_work(%s, %s)"

# Keep a claim alive; false when another worker holds it now. Parameters: queue (also 'sync_requests'), id,
# worker, lease.
EXTEND_LEASE = "select trove_private.extend_lease(%s, %s, %s, %s)"

# --- the sync queue ---------------------------------------------------------------------------------------

# Claim up to (limit) due sync requests for (worker) for (lease), each with its account's platform.
# Parameters: worker, limit, lease. Columns: id, account_id, sync_type, sync_log_id, platform.
CLAIM_SYNC_REQUESTS = """
    select id::text, account_id::text, sync_type::text, sync_log_id::text,
           (select platform::text from public.connected_accounts where id = account_id)
    from trove_private.claim_sync_requests(%s, %s, %s)
"""

# Queue a sync of an account (or join the one already queued); its sync_logs id. Raises
# ObjectNotInPrerequisiteState when the account must be reconnected first.
# Parameters: account id, sync type (backfill, webhook, manual, scheduled), reason.
ENQUEUE_SYNC = "select trove_private.enqueue_sync(%s, %s, %s)::text"

# Give a claimed sync back to the queue to run again now (the worker is stopping). Parameters: request id,
# worker.
RELEASE_SYNC = "select trove_private.release_sync(%s, %s, now())"

# Give a claimed sync back to the queue to run at (run after): the platform's budget is spent until then.
# Parameters: request id, worker, run after.
RELEASE_SYNC_UNTIL = "select trove_private.release_sync(%s, %s, %s)"

# The sync ended (success or partial) and the next poll is due in (next sync in); false when the lease was
# lost. Parameters: request id, worker, status, next sync in.
FINISH_SYNC = "select trove_private.finish_sync(%s, %s, %s, %s)"

# The sync failed (seed 8.1): the account's next sync backs off (rate_limit: at retry at), and auth,
# not_found and invalid_grant mark it for reconnecting. Parameters: request id, worker, kind (rate_limit, auth,
# not_found, invalid_grant, transient), message, retry at (or None).
FAIL_SYNC = "select trove_private.fail_sync(%s, %s, %s, %s, %s)"
