"""Stored webhook events: the connector says what an event asks for and whose account it concerns; that
account syncs. An event is a hint, never the truth: destructive ones are confirmed with the platform first."""

from __future__ import annotations

import logging
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from trove.jobs import JobContext, process_items
from trove.platforms.base import AuthError, Confirmation, Connector, Interaction, InvalidGrantError, WebhookAction
from trove.queries.accounts import (
    DEAUTHORIZE_ACCOUNT,
    PLATFORM_ACCOUNT_ID,
    SET_ACTIVE_AGAIN,
    SET_INACTIVE_ON_PLATFORM,
    SET_USERNAME,
)
from trove.queries.ingest import EVENT, REQUEST_DETAIL, SET_EVENT_ACCOUNT, SET_EVENT_OUTCOME, UPSERT_INTERACTION
from trove.queries.posts import MARK_DELETED
from trove.queries.queue import ENQUEUE_SYNC
from trove.sync import record_rate_limits
from trove.tokens import fresh_account, load_account

log = logging.getLogger("trove.worker")


async def handle_items(ctx: JobContext, ids: list[str]) -> None:
    """Stored webhook events: the connector says whose account an event concerns; that account syncs."""
    await process_items(ctx, "ingested_items", ids, handle_item)


async def handle_item(ctx: JobContext, conn: AsyncConnection[Any], item_id: str) -> None:
    cur = await conn.execute(EVENT, (item_id,))
    row = await cur.fetchone()
    if row is None:
        return
    platform, event_type, payload = row
    connector = ctx.connectors.get(platform)
    if connector is None:
        raise LookupError(f"no connector configured for {platform}")
    action = connector.handle_event(event_type, payload)  # InvalidEventError: dead-lettered with the reason
    if action.platform_user_id is None or action.kind == "ignore":
        await record_outcome(conn, item_id, "ignored")
        return
    cur = await conn.execute(PLATFORM_ACCOUNT_ID, (platform, action.platform_user_id))
    found = await cur.fetchone()
    if found is None:  # kept and marked (dead-lettered), never dropped
        raise LookupError(f"no connected account for {platform} owner {action.platform_user_id}")
    account_id = found[0]
    if action.kind in ("deauthorize", "delete_post", "update_account"):
        # An event is a hint, never the truth: a forged one must not disconnect or delete anything. Asked
        # before this transaction writes: its foreign-key lock on the account would block the token refresh.
        confirmation = await confirm(ctx, connector, account_id, action)
    else:
        confirmation = Confirmation(True, "not a destructive change")
    await conn.execute(SET_EVENT_ACCOUNT, (account_id, item_id))
    if not confirmation.confirmed:
        log.warning("%s event %s not confirmed (%s): nothing changed", platform, item_id, confirmation.reason)
        await record_outcome(conn, item_id, "not_confirmed", confirmation.reason)
        return
    await record_outcome(conn, item_id, "applied")
    if action.interaction is not None:
        await record_interaction(conn, platform, account_id, item_id, action.interaction)
    if action.kind == "record":
        return
    if action.kind == "deauthorize":
        await conn.execute(DEAUTHORIZE_ACCOUNT, (account_id,))
        return
    if action.kind == "delete_post":
        await conn.execute(MARK_DELETED, (platform, action.platform_post_id, account_id))
        return
    if action.kind == "update_account":
        if action.username:
            await conn.execute(SET_USERNAME, (action.username, account_id))
        if action.active is False:
            reason = action.status_reason or "inactive"
            message = f"The account is {reason} on {platform}; syncing resumes when it is active again."
            await conn.execute(SET_INACTIVE_ON_PLATFORM, (message, account_id))
        elif action.active is True:
            await conn.execute(SET_ACTIVE_AGAIN, (account_id,))
        return
    if action.kind == "refresh_post":
        # The sync's detail step fetches it (again); a post not archived yet starts as the connector's stub.
        await conn.execute(
            REQUEST_DETAIL, (platform, account_id, action.platform_post_id, Jsonb(action.post_stub or {}))
        )
    await conn.execute(ENQUEUE_SYNC, (account_id, "webhook", event_type))


async def record_interaction(
    conn: AsyncConnection[Any], platform: str, account_id: str, item_id: str, interaction: Interaction
) -> None:
    """An engagement record of the post the event concerns (linked by its platform id: the post may come later)."""
    await conn.execute(
        UPSERT_INTERACTION,
        {
            "account": account_id,
            "platform": platform,
            "post": interaction.platform_post_id,
            "kind": interaction.kind,
            "item": interaction.platform_item_id,
            "author": interaction.author,
            "text": interaction.text,
            "data": Jsonb(interaction.data),
            "occurred": interaction.occurred_at,
            "ingested_item": item_id,
        },
    )


async def record_outcome(conn: AsyncConnection[Any], item_id: str, outcome: str, reason: str | None = None) -> None:
    await conn.execute(SET_EVENT_OUTCOME, {"outcome": outcome, "reason": reason, "item": item_id})


async def confirm(ctx: JobContext, connector: Connector, account_id: str, action: WebhookAction) -> Confirmation:
    """Ask the platform whether a destructive event is true. Runs on its own connection, so a refreshed
    (rotated) token is committed at once, whatever happens to the event afterwards. Transient trouble
    raises: the event is retried with backoff."""
    async with ctx.pool.connection() as conn:
        account = await load_account(conn, ctx.ring, account_id)
        if account.access_token is None:
            return Confirmation(False, "the account has no token to check with (already disconnected)")
        if action.kind == "deauthorize":
            # Believed only when our token is refused: first the refresh, then the API with the new token.
            try:
                account = await fresh_account(
                    conn, ctx.ring, connector, ctx.http, account_id, rejected_token=account.access_token
                )
            except InvalidGrantError:
                return Confirmation(True, "the platform refused our refresh token")
            except AuthError:
                pass  # no refresh token: the API call below decides
        else:
            account = await fresh_account(conn, ctx.ring, connector, ctx.http, account_id)
        confirmation = await connector.confirm(ctx.http, account, action)
        await record_rate_limits(conn, connector.platform, confirmation.rate_limits)
    return confirmation
