"""Real-time event streams in the worker (an AT Protocol Jetstream, say): one consumer per platform that has
a `Stream`, across every worker process (an advisory lock decides which worker runs it; the others stand by and take
over when it goes away). The consumer (in the platform's package) talks to the stream; this host gives it
the accounts to follow and stores what it receives: raw events and the cursor they reach in one transaction,
so a restart resumes exactly where the archive is, and a replay stores nothing twice. The stored events are
then work for the `ingested_items` queue like webhook events (`Connector.handle_event`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx
import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from trove.platforms.base import InboundEvent, Stream
from trove.queries.streams import (
    CATCH_UP_SYNC,
    FOLLOWED_ACCOUNTS,
    INSERT_STREAM_ITEM,
    LOAD_STREAM_CURSOR,
    SAVE_STREAM_CURSOR,
    TRY_STREAM_LOCK,
)
from trove.redact import redact

log = logging.getLogger("trove.streams")

FOLLOWED_POLL_SECONDS = 2.0  # how soon a newly connected account is followed
STANDBY_SECONDS = 10.0  # how often a standby worker tries to take the stream over
# The lock lives as long as its connection: a half-open one must be noticed (and its lock let go by the
# server) within about a minute, not after the kernel's two hours.
LOCK_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 15, "keepalives_interval": 5, "keepalives_count": 3}
LOCK_CHECK_SECONDS = 10.0


class PostgresStreamHost:
    """`base.StreamHost` on the worker's pool, for one platform."""

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Any]], platform: str, stopping: asyncio.Event) -> None:
        self.pool = pool
        self.platform = platform
        self.stopping = stopping
        self._last_followed: frozenset[str] | None = None

    async def followed(self) -> frozenset[str]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(FOLLOWED_ACCOUNTS, (self.platform,))
            self._last_followed = frozenset(row[0] for row in await cur.fetchall())
        return self._last_followed

    async def followed_changed(self) -> None:
        last = self._last_followed
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=FOLLOWED_POLL_SECONDS)
            try:
                async with self.pool.connection() as conn:
                    cur = await conn.execute(FOLLOWED_ACCOUNTS, (self.platform,))
                    now = frozenset(row[0] for row in await cur.fetchall())
            except psycopg.OperationalError:
                continue  # the database is away: nothing known to have changed
            if now != last:
                return

    async def catch_up(self, platform_user_ids: frozenset[str]) -> None:
        for platform_user_id in sorted(platform_user_ids):
            try:
                async with self.pool.connection() as conn:
                    await conn.execute(CATCH_UP_SYNC, (self.platform, platform_user_id))
            except psycopg.errors.ObjectNotInPrerequisiteState:
                continue  # disconnected meanwhile: nothing to catch up

    async def load_cursor(self, consumer: str) -> int | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(LOAD_STREAM_CURSOR, (self.platform, consumer))
            row = await cur.fetchone()
        return int(row[0]) if row else None

    async def store(self, consumer: str, events: list[InboundEvent], cursor: int | None) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            async with conn.cursor() as cur:
                await cur.executemany(
                    INSERT_STREAM_ITEM,
                    [(self.platform, event.event_type, event.identity, Jsonb(event.payload)) for event in events],
                )
            if cursor is not None:
                await conn.execute(SAVE_STREAM_CURSOR, (self.platform, consumer, cursor))


async def run_stream(
    conninfo: str,
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    http: httpx.AsyncClient,
    platform: str,
    stream: Stream,
    stopping: asyncio.Event,
) -> None:
    """Hold the platform's stream lock and run its consumer until stopping; stand by while another worker
    holds it; start again after a crash or a lost database (the lock goes with the connection)."""
    failures = 0
    while not stopping.is_set():
        try:
            async with await AsyncConnection.connect(conninfo, autocommit=True, **LOCK_KEEPALIVES) as lock_conn:
                cur = await lock_conn.execute(TRY_STREAM_LOCK, (platform,))
                row = await cur.fetchone()
                if not (row and row[0]):
                    await _sleep(stopping, STANDBY_SECONDS)
                    continue
                log.info("%s stream: consuming in this worker", platform)
                host = PostgresStreamHost(pool, platform, stopping)
                consumer = asyncio.create_task(stream.run(http, host))
                watch = asyncio.create_task(_lock_lost(lock_conn, stopping))
                done, _ = await asyncio.wait({consumer, watch}, return_when=asyncio.FIRST_COMPLETED)
                for task in (consumer, watch):
                    if task not in done:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await task
                crashed = consumer.exception() if consumer in done else None
                if crashed is not None:
                    raise crashed
                lost = watch.exception() if watch in done else None
                if lost is not None:  # the lock went with its connection: take it again (or stand by)
                    raise psycopg.OperationalError(f"the stream lock's connection was lost ({type(lost).__name__})")
                failures = 0
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            failures += 1
            log.warning("%s stream: database unavailable (%s)", platform, error)
            await _sleep(stopping, min(2 ** min(failures, 5) * 0.25, 10.0))
        except Exception as error:  # a consumer bug must not take the worker down: log and start again
            failures += 1
            log.error("%s stream: consumer stopped (%s); starting again", platform, redact(repr(error)))
            await _sleep(stopping, min(2 ** min(failures, 5) * 0.5, 30.0))


async def _lock_lost(conn: AsyncConnection[Any], stopping: asyncio.Event) -> None:
    """Returns when the lock's connection is gone (then the lock is too) or the worker stops."""
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=5.0)
        if stopping.is_set():
            return
        # Raises when the database went away; a check that hangs is a lost connection too.
        await asyncio.wait_for(conn.execute("select 1"), timeout=LOCK_CHECK_SECONDS)


async def _sleep(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
