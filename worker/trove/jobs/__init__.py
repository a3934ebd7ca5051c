"""The worker's jobs, one module per queue: webhook events (`events`), reprocessing raw posts
(`reprocess`) and media copies (`media`); a sync run is `trove.sync.SyncRunner`. Each job gets the
worker's shared resources in a `JobContext`; `trove.worker` claims the work and spawns the jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
    or done twice. A failure is recorded on the item (LookupError, InvalidEventError: permanent, retrying
    cannot help); nothing is dropped.

    `together`: the whole batch is one transaction, completed in one statement (when an item fails, the
    batch is redone one item at a time). Only for handlers that make no outside call that could wait on
    another connection (a webhook event confirms with the platform, which may
    refresh a token under the account's row lock: those run one transaction per item)."""
    if together and len(ids) > 1:
        await _process_together(ctx, queue, ids, handle)
        return
    for item_id in ids:
        async with ctx.pool.connection() as conn:
            try:
                async with conn.transaction():
                    await handle(ctx, conn, item_id)
                    await conn.execute(COMPLETE_WORK, (queue, item_id, ctx.worker_id))
            except Exception as error:
                message = failure(queue, item_id, error)
                await conn.execute(FAIL_WORK, (queue, item_id, ctx.worker_id, message, permanent(error)))


def id_array(ids: Iterable[str]) -> str:
    """Work item ids as one uuid[] literal: psycopg would check and quote each element of a list on its own
    (a regular expression per id), and a batch is up to 256 of them. Ids come from the database as UUIDs,
    so they hold nothing to quote; one that is not a UUID fails the cast, as it should."""
    return "{" + ",".join(ids) + "}"


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
    """Optimistic: the whole batch in one transaction without a savepoint per item (two round trips each).
    When an item fails, that transaction is undone and the batch is done again with a savepoint per item,
    so the failing items are recorded (in one statement) and the others done; the leases were held all
    along."""
    try:
        async with ctx.pool.connection() as conn, conn.transaction():
            held = {
                row[0]
                for row in await (await conn.execute(HOLD_WORK, (queue, id_array(ids), ctx.worker_id))).fetchall()
            }
            for item_id in (item for item in ids if item in held):  # a lost lease: another worker has it
                await handle(ctx, conn, item_id)
            if held:
                await conn.execute(COMPLETE_WORK_BATCH, (queue, id_array(held), ctx.worker_id))
    except (psycopg.OperationalError, psycopg.InterfaceError):
        raise  # the connection is gone: the batch's leases bring every item back
    except Exception:
        await _process_with_savepoints(ctx, queue, ids, handle)


async def _process_with_savepoints(
    ctx: JobContext,
    queue: str,
    ids: list[str],
    handle: Callable[[JobContext, AsyncConnection[Any], str], Awaitable[None]],
) -> None:
    done: list[str] = []
    failed: list[tuple[str, str, bool]] = []
    async with ctx.pool.connection() as conn, conn.transaction():
        held = {
            row[0] for row in await (await conn.execute(HOLD_WORK, (queue, id_array(ids), ctx.worker_id))).fetchall()
        }
        for item_id in (item for item in ids if item in held):
            try:
                async with conn.transaction():  # a savepoint: this item's writes, or none of them
                    await handle(ctx, conn, item_id)
                done.append(item_id)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise
            except Exception as error:
                failed.append((item_id, failure(queue, item_id, error), permanent(error)))
        if done:
            await conn.execute(COMPLETE_WORK_BATCH, (queue, id_array(done), ctx.worker_id))
        if failed:
            failed_ids, messages, flags = (list(column) for column in zip(*failed, strict=True))
            await conn.execute(FAIL_WORK_BATCH, (queue, id_array(failed_ids), ctx.worker_id, messages, flags))


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
