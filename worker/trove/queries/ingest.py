"""The raw archive: `ingested_items` keeps every API page and webhook body as it came, forever;
`ingested_posts` keeps the latest raw form of each post (and whether its detail is still to fetch).
Both are also work queues (see `queue`): a stored webhook event is processed, a raw post reprocessed."""

# --- ingested_items ---------------------------------------------------------------------------------------

# Archive a payload fetched from the platform (an API page, a post's detail), already processed; its id.
# Parameters: source ('fetch', 'backfill'), platform, account id, event type, payload (Jsonb).
INSERT_FETCHED_ITEM = """
    insert into public.ingested_items (source, platform, account_id, event_type, payload, status, attempts,
                                       completed_at)
    values (%s, %s, %s, %s, %s, 'completed', 1, now())
    returning id
"""

# Store a webhook event for the worker, once: a retried delivery (same external id) returns no row.
# Parameters: platform, event type, external id (the event's identity), payload (Jsonb).
INSERT_WEBHOOK_ITEM = """
    insert into public.ingested_items (source, platform, event_type, external_id, payload)
    values ('webhook', %s, %s, %s, %s)
    on conflict do nothing
    returning id
"""

# A stored event. Parameters: item id. Columns: platform, event_type, payload.
EVENT = "select platform::text, event_type, payload from public.ingested_items where id = %s"

# Attach an event to the account it concerns. Parameters: account id, item id.
SET_EVENT_ACCOUNT = "update public.ingested_items set account_id = %s where id = %s"

# What processing an event did (applied, ignored, not_confirmed); a reason, when given, is kept in
# error_details.not_confirmed. Parameters: outcome, reason (or None), item.
SET_EVENT_OUTCOME = """
    update public.ingested_items
    set outcome = %(outcome)s,
        error_details = case when %(reason)s::text is null then error_details
                        else coalesce(error_details, '{}') || jsonb_build_object('not_confirmed', %(reason)s::text)
                        end
    where id = %(item)s
"""

# --- ingested_posts ---------------------------------------------------------------------------------------

# Ask for a post's detail (again) because an event says it changed; a post not archived yet starts as the
# connector's stub, and an archived one of the same account takes the stub's keys (an event carrying the
# edited record: the detail fetch starts from it). Parameters: platform, account id, platform post id, stub.
REQUEST_DETAIL = """
    insert into public.ingested_posts (platform, account_id, platform_post_id, post_data, status, attempts,
                                       completed_at, detail_pending)
    values (%s, %s, %s, %s, 'completed', 1, now(), true)
    on conflict (platform, platform_post_id) do update
    set detail_pending = true,
        post_data = case
            when ingested_posts.account_id = excluded.account_id
                then ingested_posts.post_data || excluded.post_data
            else ingested_posts.post_data
        end
"""

# The next posts whose detail is still to fetch, newest first. Parameters: account id.
# Columns: id, post_data.
PENDING_DETAILS = """
    select id::text, post_data from public.ingested_posts
    where account_id = %s and detail_pending
    order by received_at desc, platform_post_id desc
    limit 50
"""

# The post's detail is settled (stored, gone, refused or not the account's). Parameters: ingested post id.
DETAIL_DONE = "update public.ingested_posts set detail_pending = false where id = %s"

# A raw post to normalize again, with its account. Parameters: ingested post id.
# Columns: post_data, account id, user_id, platform, platform_user_id, username, sync_state.
RAW_POST_AND_ACCOUNT = """
    select ip.post_data, ca.id::text, ca.user_id::text, ca.platform::text, ca.platform_user_id, ca.username,
           ca.sync_state
    from public.ingested_posts as ip
    join public.connected_accounts as ca on ca.id = ip.account_id
    where ip.id = %s
"""


# The stored raw post of a platform post, locked while a new form of it is stored. Parameters: platform,
# platform post id. Columns: id, post_data, detail_pending, the user whose archive it is in (kept when the
# account was deleted).
LOCK_RAW_POST = """
    select ip.id, ip.post_data, ip.detail_pending, coalesce(ca.user_id, ip.user_id)::text
    from public.ingested_posts as ip
    left join public.connected_accounts as ca on ca.id = ip.account_id
    where ip.platform = %s and ip.platform_post_id = %s
    for update of ip
"""

# A raw post seen for the first time; its id. Parameters: ingested item id (or None), platform, account id,
# platform post id, post data (Jsonb), detail pending.
INSERT_RAW_POST = """
    insert into public.ingested_posts (ingested_item_id, platform, account_id, platform_post_id, post_data,
                                       status, attempts, completed_at, detail_pending)
    values (%s, %s, %s, %s, %s, 'completed', 1, now(), %s)
    returning id
"""

# A newer form of a stored raw post. Parameters: post data (Jsonb), detail pending, account id, ingested item id
# (or None: keep the one it has), raw post id.
UPDATE_RAW_POST = """
    update public.ingested_posts
    set post_data = %s, detail_pending = %s, account_id = %s, ingested_item_id = coalesce(%s, ingested_item_id)
    where id = %s
"""

# --- post_interactions ------------------------------------------------------------------------------------

# What others did with a post (base.Interaction), kept once per account, kind and item; a repeated event
# updates it (a story's insights grow until it ends). Parameters: account, platform, post, kind, item, author,
# text, data (Jsonb), occurred, ingested item id.
UPSERT_INTERACTION = """
    insert into public.post_interactions (account_id, platform, platform_post_id, kind, platform_item_id,
                                          author_handle, text_content, details, occurred_at, ingested_item_id)
    values (%(account)s, %(platform)s, %(post)s, %(kind)s, %(item)s, %(author)s, %(text)s, %(data)s,
            %(occurred)s, %(ingested_item)s)
    on conflict (account_id, kind, platform_item_id) do update
    set platform_post_id = excluded.platform_post_id, author_handle = excluded.author_handle,
        text_content = excluded.text_content, details = excluded.details, occurred_at = excluded.occurred_at,
        ingested_item_id = excluded.ingested_item_id
    where (post_interactions.platform_post_id, post_interactions.author_handle, post_interactions.text_content,
           post_interactions.details, post_interactions.occurred_at)
        is distinct from (excluded.platform_post_id, excluded.author_handle, excluded.text_content,
                          excluded.details, excluded.occurred_at)
"""
