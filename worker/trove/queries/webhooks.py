"""A platform's push subscription (`public.webhook_subscriptions`, one row per platform): what the webhook
ingress checks events against, and what `trove <platform> subscribe|unsubscribe|status` keeps. Only hashes of
the callback secret and the verify token are stored. Storing the events themselves is `ingest`."""

# What the ingress checks a handshake or an event against. Parameters: platform.
# Columns: subscription_id, callback_secret_hash, verify_token_hash.
SUBSCRIPTION = """
    select subscription_id, callback_secret_hash, verify_token_hash
    from public.webhook_subscriptions
    where platform::text = %s
"""

# The platform's live subscription id (none while a subscription is being set up). Parameters: platform.
LIVE_SUBSCRIPTION_ID = """
    select subscription_id from public.webhook_subscriptions
    where platform = %s and subscription_id is not null
"""

# The platform's subscription id, live or being set up (null then). Parameters: platform.
SUBSCRIPTION_ID = "select subscription_id from public.webhook_subscriptions where platform = %s"

# The subscription as `status` shows it (the stored URL never holds the secret). Parameters: platform.
# Columns: subscription_id, callback_url.
SUBSCRIPTION_STATUS = "select subscription_id, callback_url from public.webhook_subscriptions where platform = %s"

# Stored before asking the platform, which checks them against our endpoint before it answers; replaces any
# earlier row. Parameters: platform, callback URL, verify token hash, callback secret hash.
STAGE_SUBSCRIPTION = """
    insert into public.webhook_subscriptions
        (platform, subscription_id, callback_url, verify_token_hash, callback_secret_hash)
    values (%s, null, %s, %s, %s)
    on conflict (platform) do update
    set subscription_id = null, callback_url = excluded.callback_url,
        verify_token_hash = excluded.verify_token_hash, callback_secret_hash = excluded.callback_secret_hash
"""

# The platform refused the subscription: forget the staged row. Parameters: platform.
DROP_STAGED_SUBSCRIPTION = """
    delete from public.webhook_subscriptions where platform = %s and subscription_id is null
"""

# The platform accepted: its subscription id. Parameters: subscription id, platform.
CONFIRM_SUBSCRIPTION = "update public.webhook_subscriptions set subscription_id = %s where platform = %s"

# Unsubscribed at the platform. Parameters: platform.
DELETE_SUBSCRIPTION = "delete from public.webhook_subscriptions where platform = %s"

# The platform's connected accounts (not disconnected ones) now get events. Parameters: subscription id,
# platform.
MARK_ACCOUNTS_SUBSCRIBED = """
    update public.connected_accounts set webhook_subscribed = true, webhook_subscription_id = %s
    where platform = %s and status <> 'disconnected'
"""

# No account of the platform gets events any more. Parameters: platform.
MARK_ACCOUNTS_UNSUBSCRIBED = """
    update public.connected_accounts set webhook_subscribed = false, webhook_subscription_id = null
    where platform = %s
"""

# --- the inbox: deliveries the Edge Function relay kept while the service was away (webhook_inbox) ----------

# One kept delivery. Parameters: inbox id. Columns: path (webhook-<platform>[/<secret>]), headers, body.
INBOX_DELIVERY = "select request_path, headers, body from public.webhook_inbox where id = %s"

# What replaying it came to: 'stored', 'duplicate', or why it was rejected. The delivery is done with: its
# body and headers are dropped and its path loses the secret segment. Only while this worker holds it.
# Parameters: outcome, inbox id, worker.
SET_INBOX_OUTCOME = """
    update public.webhook_inbox
    set outcome = %s, body = ''::bytea, headers = '{}', request_path = split_part(request_path, '/', 1)
    where id = %s and locked_by = %s and status = 'processing'
"""
