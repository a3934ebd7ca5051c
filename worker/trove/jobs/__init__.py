"""The worker's jobs, one module per queue: webhook events (`events`), reprocessing raw posts
(`reprocess`) and media copies (`media`); a sync run is `trove.sync.SyncRunner`. Each job gets the
worker's shared resources in a `JobContext`; `trove.worker` claims the work and spawns the jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from trove.crypto import KeyRing
from trove.media.storage import Storage
from trove.platforms.base import Connector, InvalidEventError
from trove.queries.queue import COMPLETE_WORK, EXTEND_LEASE, FAIL_WORK
from trove.redact import redact

log = logging.getLogger("trove.worker")


@dataclass
class JobContext:
    pool: AsyncConnectionPool[AsyncConnection[Any]]
    http: httpx.AsyncClient
    storage: Storage
    ring: KeyRing
    connectors: dict[str, Connector]
    worker_id: str
    lease: timedelta
    per_host: int = 4
    host_slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)


async def process_items(
    ctx: JobContext,
    queue: str,
    ids: list[str],
    handle: Callable[[JobContext, AsyncConnection[Any], str], Awaitable[None]],
) -> None:
    """Each item's writes and its completion commit together, so a crash never leaves an item half-done
    or done twice. A failure is recorded on the item (LookupError, InvalidEventError: permanent, retrying
    cannot help); nothing is dropped."""
    for item_id in ids:
        async with ctx.pool.connection() as conn:
            try:
                async with conn.transaction():
                    await handle(ctx, conn, item_id)
                    await conn.execute(COMPLETE_WORK, (queue, item_id, ctx.worker_id))
            except Exception as error:
                message = redact(f"{type(error).__name__}: {error}")
                log.warning("%s %s failed: %s", queue, item_id, message)
                await conn.execute(
                    FAIL_WORK,
                    (queue, item_id, ctx.worker_id, message, isinstance(error, LookupError | InvalidEventError)),
                )


@contextlib.asynccontextmanager
async def heartbeat(ctx: JobContext, queue: str, item_id: str) -> AsyncIterator[None]:
    """Keep the lease of a long job (a big download) alive while it runs."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(ctx.lease.total_seconds() / 3)
            with contextlib.suppress(psycopg.Error):
                async with ctx.pool.connection() as conn:
                    await conn.execute(EXTEND_LEASE, (queue, item_id, ctx.worker_id, ctx.lease))

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
