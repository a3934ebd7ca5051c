"""The worker's jobs, one module per queue: webhook events (`events`), reprocessing raw posts
(`reprocess`) and media copies (`media`); a sync run is `trove.sync.SyncRunner`. Each job gets the
worker's shared resources in a `JobContext`; `trove.worker` claims the work and spawns the jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
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
from trove.queries.queue import (
    COMPLETE_WORK,
    COMPLETE_WORK_BATCH,
    EXTEND_LEASE,
    FAIL_WORK,
    FAIL_WORK_BATCH,
    HOLD_WORK,
    RELEASE_WORK,
)
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
    *,
    together: bool = False,
) -> None:
    """Each item's writes and its completion commit together, so a crash never leaves an item half-done
    or done twice; an item whose lease was lost meanwhile (another worker has it now) commits nothing. A
    failure is recorded on the item (LookupError, InvalidEventError: permanent, retrying cannot help);
    nothing is dropped.

    `together`: the whole batch is one transaction, completed in one statement (see _process_together).
    Only for handlers that make no outside call that could wait on another connection (a webhook event
    confirms with the platform, which may refresh a token under the account's row lock: those run one
    transaction per item)."""
    if together and len(ids) > 1:
        await _process_together(ctx, queue, ids, handle)
        return
    for item_id in ids:
        async with ctx.pool.connection() as conn:
            try:
                async with conn.transaction():
                    await handle(ctx, conn, item_id)
                    completed = await (await conn.execute(COMPLETE_WORK, (queue, item_id, ctx.worker_id))).fetchone()
                    if not (completed and completed[0]):
                        raise LeaseLost(item_id)
            except LeaseLost:
                log.warning(
                    "%s %s: the lease ran out and another worker has it; nothing of this run is kept", queue, item_id
                )
            except Exception as error:
                if connection_lost(conn, error):
                    raise  # its lease brings the item back
                message = failure(queue, item_id, error)
                await conn.execute(FAIL_WORK, (queue, item_id, ctx.worker_id, message, permanent(error)))


class LeaseLost(Exception):
    """This worker no longer holds the item: its writes are rolled back, the holder will do it."""


def connection_lost(conn: AsyncConnection[Any], error: Exception) -> bool:
    """The connection is gone (not a statement that failed: a deadlock, a timeout or a serialization
    failure is an OperationalError too, and is the item's failure)."""
    return isinstance(error, psycopg.InterfaceError) or conn.broken or conn.closed


def id_array(ids: Iterable[str]) -> str:
    """Work item ids as one uuid[] literal, each checked and written canonically: psycopg would quote each
    element of a list on its own (a regular expression per id), and a batch is up to 256 of them."""
    return "{" + ",".join(str(uuid.UUID(item)) for item in ids) + "}"


def failure(queue: str, item_id: str, error: Exception) -> str:
    message = redact(f"{type(error).__name__}: {error}")
    log.warning("%s %s failed: %s", queue, item_id, message)
    return message


def permanent(error: Exception) -> bool:
    return isinstance(error, LookupError | InvalidEventError)


async def _process_together(
    ctx: JobContext,
    queue: str,
    ids: list[str],
    handle: Callable[[JobContext, AsyncConnection[Any], str], Awaitable[None]],
) -> None:
    """One transaction for the batch. hold_work locks the items this worker still holds (a lease that runs
    out meanwhile cannot hand one to anyone else); an item it could not lock (another transaction has it)
    goes back to the queue without counting the attempt. Optimistic: the handlers run without a savepoint
    each (two round trips an item); when one fails, the batch is undone to the savepoint before it and
    done again with a savepoint per item, still in the same transaction, so the locks are never let go;
    the failures are recorded in one statement, the rest completed in one."""
    batch = list(dict.fromkeys(str(uuid.UUID(item)) for item in ids))
    async with ctx.pool.connection() as conn:
        async with conn.transaction():
            cur = await conn.execute(HOLD_WORK, (queue, id_array(batch), ctx.worker_id))
            held = {row[0] for row in await cur.fetchall()}
            mine = [item for item in batch if item in held]
            done: list[str] = []
            failed: list[tuple[str, str, bool]] = []
            try:
                async with conn.transaction():  # one savepoint for the optimistic run
                    for item_id in mine:
                        await handle(ctx, conn, item_id)
                done = mine
            except Exception as error:
                if connection_lost(conn, error):
                    raise  # the batch's leases bring every item back
                for item_id in mine:
                    try:
                        async with conn.transaction():  # a savepoint: this item's writes, or none of them
                            await handle(ctx, conn, item_id)
                        done.append(item_id)
                    except Exception as item_error:
                        if connection_lost(conn, item_error):
                            raise
                        failed.append((item_id, failure(queue, item_id, item_error), permanent(item_error)))
            if done:
                await conn.execute(COMPLETE_WORK_BATCH, (queue, id_array(done), ctx.worker_id))
            if failed:
                failed_ids, messages, flags = (list(column) for column in zip(*failed, strict=True))
                await conn.execute(FAIL_WORK_BATCH, (queue, id_array(failed_ids), ctx.worker_id, messages, flags))
        for item_id in (item for item in batch if item not in held):  # no-ops for leases already lost
            await conn.execute(RELEASE_WORK, (queue, item_id, ctx.worker_id))


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
