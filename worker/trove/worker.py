"""`trove worker`: drains the queues in SQL with bounded concurrency.

Claims go through the SQL queue functions (FOR UPDATE SKIP LOCKED plus a lease), so any number of worker
processes can run at once without double work. A worker wakes on NOTIFY trove_work and also polls (a
NOTIFY is lost while disconnected), stops claiming on SIGTERM/SIGINT, finishes or releases what it holds,
and keeps going through database restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from trove.crypto import KeyRing
from trove.jobs import JobContext
from trove.jobs.events import handle_items
from trove.jobs.imports import run_imports
from trove.jobs.inbox import replay_inbox
from trove.jobs.media import copy_media_files
from trove.jobs.reprocess import reprocess_posts
from trove.media.storage import Storage, storage_from_environment
from trove.platforms.base import Connector, Stream
from trove.queries.queue import CLAIM_SYNC_REQUESTS, CLAIM_WORK, LISTEN_HEALTH, LISTEN_WORK, RELEASE_HELD
from trove.redact import redact
from trove.streams import run_stream
from trove.sync import SyncRequest, SyncRunner

log = logging.getLogger("trove.worker")
DRAIN_GRACE = 5.0  # seconds a bounded drain waits past its budget for syncs to give their runs back


class Worker:
    def __init__(
        self,
        conninfo: str,
        connectors: dict[str, Connector],
        ring: KeyRing,
        *,
        worker_id: str | None = None,
        concurrency: int = 8,
        per_platform: int = 4,
        batch_size: int = 16,
        lease: timedelta = timedelta(minutes=2),
        poll_interval: float = 5.0,
        shutdown_grace: float = 30.0,
        per_host: int = 4,
        streams: dict[str, Stream] | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.connectors = connectors
        self.ring = ring
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.lease = lease
        self.poll_interval = poll_interval
        self.shutdown_grace = shutdown_grace
        self.stopping = asyncio.Event()
        self.wake = asyncio.Event()
        self.slots = asyncio.Semaphore(concurrency)
        self.platform_slots = {name: asyncio.Semaphore(per_platform) for name in connectors}
        self.tasks: set[asyncio.Task[None]] = set()
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self.per_host = per_host
        self.streams = streams or {}
        self.host_slots: dict[str, asyncio.Semaphore] = {}
        self.storage: Storage | None = None
        self.http: httpx.AsyncClient | None = None
        # How many items the next claim of each batch queue asks for: it grows while the queue is deep (a
        # claim comes back full) and shrinks to what came back when it is shallow.
        self.claim_sizes: dict[str, int] = {}

    # --- lifecycle -------------------------------------------------------------------------------------
    def request_stop(self) -> None:
        if not self.stopping.is_set():
            log.info("worker %s: stopping (no new claims; finishing or releasing held work)", self.worker_id)
        self.stopping.set()
        self.wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        self.pool = AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            # A job may hold two connections (a webhook event and the confirmation of it): never starved.
            max_size=2 * self.concurrency + 2,
            kwargs={"autocommit": True},
            open=False,
            reconnect_timeout=float("inf"),
        )
        await self.pool.open(wait=False)
        listener = asyncio.create_task(self._listen())
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as http:
            self.http = http
            self.storage = storage = storage_from_environment(http)
            runner = SyncRunner(self.pool, self.connectors, self.ring, http, self.worker_id, self.lease, self.stopping)
            ctx = JobContext(
                self.pool, http, storage, self.ring, self.connectors, self.worker_id, self.lease, self.per_host
            )
            log.info("worker %s: started (platforms: %s)", self.worker_id, ", ".join(sorted(self.connectors)) or "-")
            streams = [
                asyncio.create_task(run_stream(self.conninfo, self.pool, http, name, stream, self.stopping))
                for name, stream in self.streams.items()
            ]
            failures = 0
            while not self.stopping.is_set():
                # Clear before claiming, not after: a NOTIFY that lands while we claim keeps the event set,
                # so the idle wait below returns at once instead of sleeping through it.
                self.wake.clear()
                try:
                    claimed = await self._claim_round(runner, ctx)
                    failures = 0
                except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                    failures += 1
                    delay = min(2 ** min(failures, 5) * 0.25, 10.0)
                    log.warning("worker %s: database unavailable (%s); retrying in %.1fs", self.worker_id, error, delay)
                    await self._sleep(delay)
                    continue
                if not claimed:
                    await self._idle()
            await self._drain_tasks()
            await asyncio.gather(*streams, return_exceptions=True)
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await self.pool.close()
        log.info("worker %s: stopped", self.worker_id)

    async def drain(self, budget_seconds: float, max_items: int) -> int:
        """One bounded pass for the wake endpoint (a worker the database starts, through pg_net): claim and
        run work until none is left, `max_items` were claimed or the budget is spent, then wait for what was
        started (past the budget, a job is left to its lease). No LISTEN, no streams. Items claimed."""
        deadline = asyncio.get_running_loop().time() + budget_seconds
        self.pool = AsyncConnectionPool(
            self.conninfo, min_size=1, max_size=2 * self.concurrency + 2, kwargs={"autocommit": True}, open=False
        )
        await self.pool.open()
        claimed = 0
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as http:
                self.http = http
                self.storage = storage = storage_from_environment(http)
                runner = SyncRunner(
                    self.pool, self.connectors, self.ring, http, self.worker_id, self.lease, self.stopping
                )
                ctx = JobContext(
                    self.pool, http, storage, self.ring, self.connectors, self.worker_id, self.lease, self.per_host
                )
                while claimed < max_items and asyncio.get_running_loop().time() < deadline:
                    self.wake.clear()
                    got = await self._claim_round(runner, ctx)
                    claimed += got
                    if not got:
                        if not self.tasks:
                            break
                        with contextlib.suppress(TimeoutError):  # a slot frees up, or new work may follow
                            await asyncio.wait_for(self.wake.wait(), timeout=0.5)
                left = max(deadline - asyncio.get_running_loop().time(), 1.0)
                if self.tasks:
                    await asyncio.wait(self.tasks, timeout=left)
                if self.tasks:  # past the budget: a sync stops at its next page and gives its run back
                    self.stopping.set()
                    _, pending = await asyncio.wait(self.tasks, timeout=min(self.shutdown_grace, DRAIN_GRACE))
                    for task in pending:
                        task.cancel()
                    if pending:
                        await asyncio.wait(pending)
                        # What was cut off goes back without counting the attempt (a long download would
                        # otherwise use its attempts up, one wake-up at a time).
                        async with self.pool.connection() as conn:
                            for queue in QUEUES:
                                await conn.execute(RELEASE_HELD, (queue.name, self.worker_id))
        finally:
            await self.pool.close()
        return claimed

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=self.poll_interval)

    async def _drain_tasks(self) -> None:
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=self.shutdown_grace)
            for task in pending:  # past the grace period: their leases bring the work back
                task.cancel()

    async def _listen(self) -> None:
        """LISTEN on a dedicated connection (a pooler in transaction mode would not deliver)."""
        failures = 0
        while not self.stopping.is_set():
            try:
                async with await AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                    await conn.execute(LISTEN_WORK)
                    await conn.execute(LISTEN_HEALTH)
                    if failures:
                        log.info("worker %s: database reachable again", self.worker_id)
                    failures = 0
                    self.wake.set()  # anything sent while we were away
                    async for note in conn.notifies():
                        if note.channel == "trove_health":
                            self._log_health(note.payload)
                        self.wake.set()
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                failures += 1
                delay = min(2 ** min(failures, 5) * 0.25, 10.0)
                # The listener holds the one connection that is always open, so it is the first to see an
                # outage even when the worker is idle (the claim loop would only notice at its next claim).
                if failures == 1:
                    log.warning(
                        "worker %s: database unavailable (%s); listening again in %.1fs", self.worker_id, error, delay
                    )
                await self._sleep(delay)

    @staticmethod
    def _log_health(payload: str) -> None:
        try:
            check = json.loads(payload)
        except ValueError:
            return
        level = logging.INFO if check.get("healthy") else logging.WARNING
        log.log(
            level,
            "health check: %s accounts in error, %s not synced for 24h, %s media pending over 1h",
            check.get("accounts_in_error"),
            check.get("accounts_not_synced_24h"),
            check.get("media_pending_over_1h"),
        )

    # --- claiming --------------------------------------------------------------------------------------
    def _free_slots(self) -> int:
        return self.concurrency - len(self.tasks)

    def _spawn(self, job: Callable[[], Awaitable[None]], platform: str | None) -> None:
        async def guarded() -> None:
            async with self.slots:
                semaphore = self.platform_slots.get(platform) if platform else None
                if semaphore is None:
                    await job()
                else:
                    async with semaphore:
                        await job()

        task = asyncio.create_task(guarded())
        self.tasks.add(task)
        task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.wake.set()  # a slot is free: claim again
        if not task.cancelled() and task.exception() is not None:
            log.error("job failed unexpectedly: %s", redact(repr(task.exception())))

    async def _claim_round(self, runner: SyncRunner, ctx: JobContext) -> int:
        """One pass over the queues: sync runs first (each under its platform's slots), then the item queues
        of QUEUES, each claimed only as far as free slots allow."""
        assert self.pool is not None
        if not self.connectors:
            return 0
        free = min(self._free_slots(), self.batch_size)
        if free <= 0:
            return 0
        async with self.pool.connection() as conn:
            cur = await conn.execute(CLAIM_SYNC_REQUESTS, (self.worker_id, free, self.lease))
            requests = [SyncRequest(*row) for row in await cur.fetchall()]
        for request in requests:
            self._spawn(lambda r=request: self._run_sync(runner, r), request.platform)
        claimed = len(requests)
        for queue in QUEUES:
            free = self._free_slots()
            if free <= 0:
                break
            # Only a queue whose jobs finish a batch in one transaction claims more than it can start now:
            # items of the others wait their turn in a job one by one, while their leases run.
            asked = (
                self.claim_sizes.get(queue.name, min(free, self.batch_size))
                if queue.grows
                else min(free, self.batch_size)
            )
            async with self.pool.connection() as conn:
                cur = await conn.execute(CLAIM_WORK, (queue.name, self.worker_id, asked, self.lease))
                ids = [str(row[0]) for row in await cur.fetchall()]
            if queue.grows:
                self.claim_sizes[queue.name] = (
                    min(asked * 2, MAX_CLAIM) if len(ids) == asked else max(len(ids), MIN_CLAIM)
                )
            for batch in split(ids, 1 if queue.one_per_job else max(-(-len(ids) // free), MIN_JOB)):
                self._spawn(lambda job=queue.job, b=batch: job(ctx, b), None)
            claimed += len(ids)
        return claimed

    async def _run_sync(self, runner: SyncRunner, request: SyncRequest) -> None:
        outcome = await runner.run(request)
        log.info("sync %s of account %s (%s): %s", request.id, request.account_id, request.sync_type, outcome)


MIN_CLAIM, MAX_CLAIM = 4, 256  # the bounds of a batch queue's claim size
MIN_JOB = 32  # a claim is split into a job per free slot, but no job smaller than this (each is a transaction)


def split(ids: list[str], size: int) -> list[list[str]]:
    """`ids` in runs of `size` (the jobs a claim makes: a run each)."""
    return [ids[at : at + size] for at in range(0, len(ids), max(size, 1))]


@dataclass(frozen=True)
class Queue:
    """A work table claimed through trove_private.claim_work, and the job that drains what was claimed."""

    name: str
    job: Callable[[JobContext, list[str]], Awaitable[None]]
    one_per_job: bool  # a job per item (long downloads run side by side), else one job per claimed batch
    grows: bool = False  # its job does a batch in one transaction: claims grow while the queue is deep


QUEUES = (
    Queue("ingested_posts", reprocess_posts, one_per_job=False, grows=True),
    Queue("media_downloads", copy_media_files, one_per_job=True),
    Queue("ingested_items", handle_items, one_per_job=False),
    Queue("imports", run_imports, one_per_job=True),
    Queue("webhook_inbox", replay_inbox, one_per_job=False),
)
