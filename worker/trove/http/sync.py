"""Sync now (seed 4.3): the owner asks for a sync of one account and follows its progress. Ownership is
decided by RLS (the query runs as the user); only then does the service queue the sync."""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request
from psycopg_pool import AsyncConnectionPool

from trove.http.auth import User, as_user, current_user, known_user
from trove.queries.accounts import VISIBLE_ACCOUNT
from trove.queries.auth import RESET_ROLE
from trove.queries.queue import ENQUEUE_SYNC
from trove.queries.sync_logs import SYNC_STATUS

router = APIRouter(prefix="/api")


@router.post("/sync/{account_id}", status_code=202)
async def request_sync(account_id: str, request: Request, user: Annotated[User, Depends(known_user)]) -> dict[str, Any]:
    sync_log_id = await queue_sync_now(request.app.state.pool, user.id, account_id)
    return {"sync_log_id": sync_log_id, "status_url": f"/api/sync/{sync_log_id}/status"}


async def queue_sync_now(pool: AsyncConnectionPool[Any], user_id: str, account_id: str) -> str:
    """Queue a manual sync of one of the user's accounts (the API's and the web app's "Sync now"): its sync
    log id. 404 for an account the user cannot see, 409 for one that must be reconnected first."""
    async with pool.connection() as conn, conn.transaction():
        await as_user(conn, user_id)  # RLS: someone else's account looks exactly like a missing one
        try:
            cur = await conn.execute(VISIBLE_ACCOUNT, (account_id,))
        except psycopg.errors.InvalidTextRepresentation as error:
            raise HTTPException(404, "no such account") from error
        if await cur.fetchone() is None:
            raise HTTPException(404, "no such account")
        await conn.execute(RESET_ROLE)  # queueing is the service's
        try:
            cur = await conn.execute(ENQUEUE_SYNC, (account_id, "manual", "sync now"))
        except psycopg.errors.ObjectNotInPrerequisiteState as error:
            raise HTTPException(409, "this account must be reconnected before it can sync") from error
        row = await cur.fetchone()
    assert row is not None
    return str(row[0])


@router.get("/sync/{sync_log_id}/status")
async def sync_status(
    sync_log_id: str, request: Request, user: Annotated[User, Depends(current_user)]
) -> dict[str, Any]:
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await as_user(conn, user.id)  # RLS: only the owner's logs exist here
        try:
            cur = await conn.execute(SYNC_STATUS, (sync_log_id,))
        except psycopg.errors.InvalidTextRepresentation as error:
            raise HTTPException(404, "no such sync") from error
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(404, "no such sync")
    names = [
        "status",
        "sync_type",
        "posts_fetched",
        "posts_created",
        "posts_updated",
        "posts_deleted",
        "media_downloaded",
        "media_failed",
        "started_at",
        "completed_at",
        "duration_ms",
        "error_message",
        "metadata",
    ]
    result = dict(zip(names, row, strict=True))
    for field in ("started_at", "completed_at"):
        if result[field] is not None:
            result[field] = result[field].isoformat()
    return result
