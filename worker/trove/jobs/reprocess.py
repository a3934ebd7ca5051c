"""Reprocessing: stored raw posts set back to `pending` are normalized again into posts."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from trove.jobs import JobContext, process_items
from trove.platforms.base import Account
from trove.queries.ingest import RAW_POST_AND_ACCOUNT
from trove.store import store_post


async def reprocess_posts(ctx: JobContext, ids: list[str]) -> None:
    """Normalize stored raw posts again (e.g. after a normalizer change) into posts."""
    await process_items(ctx, "ingested_posts", ids, reprocess_post, together=True)


async def reprocess_post(ctx: JobContext, conn: AsyncConnection[Any], item_id: str) -> None:
    cur = await conn.execute(RAW_POST_AND_ACCOUNT, (item_id,))
    row = await cur.fetchone()
    if row is None:
        raise LookupError("the raw post has no connected account any more")
    post_data, account_id, user_id, platform, platform_user_id, username, state = row
    connector = ctx.connectors.get(platform)
    if connector is None:
        raise LookupError(f"no connector configured for {platform}")
    account = Account(account_id, user_id, platform, platform_user_id, username, None, state)
    await store_post(conn, account, connector.normalize(post_data), None)
