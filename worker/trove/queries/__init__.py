"""Every SQL statement the Python code sends, by name: one module per concern, each a set of string constants
with a comment saying what the statement does and what its parameters are. Call sites import the constant
(`from trove.queries.queue import COMPLETE_WORK`) and never write SQL of their own, so a statement is written
once however many places send it, and `grep NAME` finds the text and every caller.

    accounts     connected accounts: connecting, tokens (load, refresh, rotate), sync state, deauthorizing
    auth         users and running a request as one (the PostgREST role and claims)
    demo         what `trove run` reports about the demo archive
    health       the service's database check
    ingest       the raw archive: ingested_items (pages, webhook events) and ingested_posts
    keys         personal API keys
    media        media_downloads: the copy jobs and a post's media for readers
    migrations   the migration runner's history table and lock
    oauth        oauth_states: the connect flow's single-use states
    posts        normalized posts the engine marks or looks up
    queue        the work queues, the sync queue and the worker's NOTIFY channels
    rate_limits  the platforms' shared request budgets
    read         the read API: the feed, the archive version, the platform names
    sync_logs    a sync run's log: counts, problems, status
    webhooks     webhook_subscriptions: a platform's push subscription

The SQL functions these call (trove_private.*, public.feed) live in supabase/migrations/.
"""
