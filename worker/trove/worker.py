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
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from trove.connectors.base import (
    Account,
    AuthError,
    Confirmation,
    Connector,
    InvalidEventError,
    InvalidGrantError,
    SyncError,
    WebhookAction,
)
from trove.crypto import KeyRing
from trove.media.download import DownloadFailure, download
from trove.media.storage import Storage, storage_from_environment, storage_path
from trove.redact import redact
from trove.store import store_post
from trove.sync import SyncRequest, SyncRunner, record_rate_limits
from trove.tokens import fresh_account, load_account

log = logging.getLogger("trove.worker")


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
        self.host_slots: dict[str, asyncio.Semaphore] = {}
        self.storage: Storage | None = None
        self.http: httpx.AsyncClient | None = None

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
            self.storage = storage_from_environment(http)
            runner = SyncRunner(self.pool, self.connectors, self.ring, http, self.worker_id, self.lease, self.stopping)
            log.info("worker %s: started (platforms: %s)", self.worker_id, ", ".join(sorted(self.connectors)) or "-")
            failures = 0
            while not self.stopping.is_set():
                # Clear before claiming, not after: a NOTIFY that lands while we claim keeps the event set,
                # so the idle wait below returns at once instead of sleeping through it.
                self.wake.clear()
                try:
                    claimed = await self._claim_round(runner)
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
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await self.pool.close()
        log.info("worker %s: stopped", self.worker_id)

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
                    await conn.execute("listen trove_work")
                    await conn.execute("listen trove_health")
                    failures = 0
                    self.wake.set()  # anything sent while we were away
                    async for note in conn.notifies():
                        if note.channel == "trove_health":
                            self._log_health(note.payload)
                        self.wake.set()
            except (psycopg.OperationalError, psycopg.InterfaceError):
                failures += 1
                await self._sleep(min(2 ** min(failures, 5) * 0.25, 10.0))

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

    async def _claim_round(self, runner: SyncRunner) -> int:
        assert self.pool is not None
        claimed = 0
        platforms = list(self.connectors)
        if not platforms:
            return 0
        free = min(self._free_slots(), self.batch_size)
        if free <= 0:
            return 0
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select id::text, account_id::text, sync_type::text, sync_log_id::text,"
                " (select platform::text from public.connected_accounts where id = account_id)"
                " from trove_private.claim_sync_requests(%s, %s, %s)",
                (self.worker_id, free, self.lease),
            )
            requests = [SyncRequest(*row) for row in await cur.fetchall()]
        for request in requests:
            self._spawn(lambda r=request: self._run_sync(runner, r), request.platform)
        claimed += len(requests)

        free = min(self._free_slots(), self.batch_size)
        if free > 0:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "select trove_private.claim_work('ingested_posts', %s, %s, %s)", (self.worker_id, free, self.lease)
                )
                ids = [str(row[0]) for row in await cur.fetchall()]
            if ids:
                self._spawn(lambda batch=ids: self._reprocess_posts(batch), None)
            claimed += len(ids)
        free = min(self._free_slots(), self.batch_size)
        if free > 0:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "select trove_private.claim_work('media_downloads', %s, %s, %s)", (self.worker_id, free, self.lease)
                )
                media_ids = [str(row[0]) for row in await cur.fetchall()]
            for media_id in media_ids:
                self._spawn(lambda m=media_id: self._download(m), None)
            claimed += len(media_ids)
        free = min(self._free_slots(), self.batch_size)
        if free > 0:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "select trove_private.claim_work('ingested_items', %s, %s, %s)", (self.worker_id, free, self.lease)
                )
                item_ids = [str(row[0]) for row in await cur.fetchall()]
            if item_ids:
                self._spawn(lambda batch=item_ids: self._handle_items(batch), None)
            claimed += len(item_ids)
        return claimed

    # --- jobs ------------------------------------------------------------------------------------------
    async def _run_sync(self, runner: SyncRunner, request: SyncRequest) -> None:
        outcome = await runner.run(request)
        log.info("sync %s of account %s (%s): %s", request.id, request.account_id, request.sync_type, outcome)

    async def _process(
        self, queue: str, ids: list[str], handle: Callable[[AsyncConnection[Any], str], Awaitable[None]]
    ) -> None:
        """Each item's writes and its completion commit together, so a crash never leaves an item half-done
        or done twice. A failure is recorded on the item (LookupError, InvalidEventError: permanent, retrying
        cannot help); nothing is dropped."""
        assert self.pool is not None
        for item_id in ids:
            async with self.pool.connection() as conn:
                try:
                    async with conn.transaction():
                        await handle(conn, item_id)
                        await conn.execute(
                            "select trove_private.complete_work(%s, %s, %s)", (queue, item_id, self.worker_id)
                        )
                except Exception as error:
                    message = redact(f"{type(error).__name__}: {error}")
                    log.warning("%s %s failed: %s", queue, item_id, message)
                    await conn.execute(
                        "select trove_private.fail_work(%s, %s, %s, %s, %s)",
                        (queue, item_id, self.worker_id, message, isinstance(error, LookupError | InvalidEventError)),
                    )

    @contextlib.asynccontextmanager
    async def _heartbeat(self, queue: str, item_id: str) -> AsyncIterator[None]:
        """Keep the lease of a long job (a big download) alive while it runs."""

        async def beat() -> None:
            assert self.pool is not None
            while True:
                await asyncio.sleep(self.lease.total_seconds() / 3)
                with contextlib.suppress(psycopg.Error):
                    async with self.pool.connection() as conn:
                        await conn.execute(
                            "select trove_private.extend_lease(%s, %s, %s, %s)",
                            (queue, item_id, self.worker_id, self.lease),
                        )

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _download(self, media_id: str) -> None:
        """Copy one media file into storage: 404/410 -> unavailable; 403 -> ask the connector for a fresh URL
        and try once more; oversize or not media -> failed at once; other trouble -> backoff, then failed."""
        assert self.pool is not None and self.http is not None and self.storage is not None
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select md.user_id::text, md.platform::text, md.media_key, md.original_url, ip.post_data,"
                " ip.account_id::text from public.media_downloads as md"
                " join public.ingested_posts as ip on ip.id = md.ingested_post_id where md.id = %s",
                (media_id,),
            )
            row = await cur.fetchone()
        if row is None:
            return
        user_id, platform, media_key, url, post_data, account_id = row
        host = urlsplit(url).hostname or ""
        semaphore = self.host_slots.setdefault(host, asyncio.Semaphore(self.per_host))
        outcome: tuple[str, str] | None = None
        async with semaphore, self._heartbeat("media_downloads", media_id):
            for attempt in (1, 2):
                try:
                    done = await download(
                        self.http, self.storage, url, lambda ext: storage_path(user_id, platform, media_key, ext)
                    )
                except DownloadFailure as failure:
                    if failure.kind == "expired" and attempt == 1:
                        fresh = await self._fresh_media_url(user_id, platform, account_id, post_data, media_key)
                        if fresh:
                            url = fresh
                            continue
                        outcome = ("gone", f"{failure}; the platform has no fresh URL for it")
                    else:
                        outcome = (failure.kind, str(failure))
                    break
                async with self.pool.connection() as conn, conn.transaction():
                    await conn.execute(
                        "update public.media_downloads set storage_path = %s, content_type = %s, byte_size = %s,"
                        " content_sha256 = %s, downloaded_at = now(), original_url = %s where id = %s",
                        (done.path, done.content_type, done.size, done.sha256, url, media_id),
                    )
                    await conn.execute(
                        "select trove_private.complete_work('media_downloads', %s, %s)", (media_id, self.worker_id)
                    )
                return
        kind, message = outcome or ("transient", "no outcome")
        message = redact(message)
        log.info("media %s (%s): %s", media_id, kind, message)
        async with self.pool.connection() as conn:
            if kind == "rejected":
                await conn.execute(
                    "select trove_private.give_up_work('media_downloads', %s, %s, %s)",
                    (media_id, self.worker_id, message),
                )
            else:
                await conn.execute(
                    "select trove_private.fail_work('media_downloads', %s, %s, %s, %s)",
                    (media_id, self.worker_id, message, kind == "gone"),
                )

    async def _fresh_media_url(
        self, user_id: str, platform: str, account_id: str, post_data: dict[str, Any], media_key: str
    ) -> str | None:
        connector = self.connectors.get(platform)
        if connector is None or self.pool is None or self.http is None:
            return None
        try:
            async with self.pool.connection() as conn:
                account = await fresh_account(conn, self.ring, connector, self.http, account_id)
            fresh = await connector.refresh_media_url(self.http, account, post_data, media_key)
        except (SyncError, httpx.HTTPError, LookupError) as error:
            log.info("media: could not refresh the URL of %s: %s", media_key, redact(str(error)))
            return None
        if fresh:
            async with self.pool.connection() as conn:
                await conn.execute(
                    "update public.media_downloads set original_url = %s"
                    " where user_id = %s and platform = %s and media_key = %s",
                    (fresh, user_id, platform, media_key),
                )
        return fresh

    @staticmethod
    async def _record_outcome(
        conn: AsyncConnection[Any], item_id: str, outcome: str, reason: str | None = None
    ) -> None:
        await conn.execute(
            "update public.ingested_items set outcome = %s,"
            " error_details = case when %s::text is null then error_details"
            " else coalesce(error_details, '{}') || jsonb_build_object('not_confirmed', %s::text) end"
            " where id = %s",
            (outcome, reason, reason, item_id),
        )

    async def _confirm(self, connector: Connector, account_id: str, action: WebhookAction) -> Confirmation:
        """Ask the platform whether a destructive event is true. Runs on its own connection, so a refreshed
        (rotated) token is committed at once, whatever happens to the event afterwards. Transient trouble
        raises: the event is retried with backoff."""
        assert self.pool is not None and self.http is not None
        async with self.pool.connection() as conn:
            account = await load_account(conn, self.ring, account_id)
            if account.access_token is None:
                return Confirmation(False, "the account has no token to check with (already disconnected)")
            if action.kind == "deauthorize":
                # Believed only when our token is refused: first the refresh, then the API with the new token.
                try:
                    account = await fresh_account(
                        conn, self.ring, connector, self.http, account_id, rejected_token=account.access_token
                    )
                except InvalidGrantError:
                    return Confirmation(True, "the platform refused our refresh token")
                except AuthError:
                    pass  # no refresh token: the API call below decides
            else:
                account = await fresh_account(conn, self.ring, connector, self.http, account_id)
            confirmation = await connector.confirm(self.http, account, action)
            await record_rate_limits(conn, connector.platform, confirmation.rate_limits)
        return confirmation

    async def _reprocess_posts(self, ids: list[str]) -> None:
        """Normalize stored raw posts again (e.g. after a normalizer change) into posts."""
        await self._process("ingested_posts", ids, self._reprocess_post)

    async def _reprocess_post(self, conn: AsyncConnection[Any], item_id: str) -> None:
        cur = await conn.execute(
            "select ip.post_data, ca.id::text, ca.user_id::text, ca.platform::text, ca.platform_user_id,"
            " ca.username, ca.sync_state from public.ingested_posts as ip"
            " join public.connected_accounts as ca on ca.id = ip.account_id where ip.id = %s",
            (item_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise LookupError("the raw post has no connected account any more")
        post_data, account_id, user_id, platform, platform_user_id, username, state = row
        connector = self.connectors.get(platform)
        if connector is None:
            raise LookupError(f"no connector configured for {platform}")
        account = Account(account_id, user_id, platform, platform_user_id, username, None, state)
        await store_post(conn, account, connector.normalize(post_data), None)

    async def _handle_items(self, ids: list[str]) -> None:
        """Stored webhook events: the connector says whose account an event concerns; that account syncs."""
        await self._process("ingested_items", ids, self._handle_item)

    async def _handle_item(self, conn: AsyncConnection[Any], item_id: str) -> None:
        cur = await conn.execute(
            "select platform::text, event_type, payload from public.ingested_items where id = %s", (item_id,)
        )
        row = await cur.fetchone()
        if row is None:
            return
        platform, event_type, payload = row
        connector = self.connectors.get(platform)
        if connector is None:
            raise LookupError(f"no connector configured for {platform}")
        action = connector.handle_event(event_type, payload)  # InvalidEventError: dead-lettered with the reason
        if action.platform_user_id is None or action.kind == "ignore":
            await self._record_outcome(conn, item_id, "ignored")
            return
        cur = await conn.execute(
            "select id::text from public.connected_accounts where platform = %s and platform_user_id = %s",
            (platform, action.platform_user_id),
        )
        found = await cur.fetchone()
        if found is None:  # kept and marked (dead-lettered), never dropped
            raise LookupError(f"no connected account for {platform} owner {action.platform_user_id}")
        account_id = found[0]
        if action.kind in ("deauthorize", "delete_post"):
            # An event is a hint, never the truth: a forged one must not disconnect or delete anything. Asked
            # before this transaction writes: its foreign-key lock on the account would block the token refresh.
            confirmation = await self._confirm(connector, account_id, action)
        else:
            confirmation = Confirmation(True, "not a destructive change")
        await conn.execute("update public.ingested_items set account_id = %s where id = %s", (account_id, item_id))
        if not confirmation.confirmed:
            log.warning("%s event %s not confirmed (%s): nothing changed", platform, item_id, confirmation.reason)
            await self._record_outcome(conn, item_id, "not_confirmed", confirmation.reason)
            return
        await self._record_outcome(conn, item_id, "applied")
        if action.kind == "deauthorize":
            await conn.execute("select trove_private.deauthorize_account(%s)", (account_id,))
            return
        if action.kind == "delete_post":
            await conn.execute(
                "update public.posts set deleted_on_platform = true"
                " where platform = %s and platform_post_id = %s and account_id = %s",
                (platform, action.platform_post_id, account_id),
            )
            return
        if action.kind == "refresh_post":
            # The sync's detail step fetches it (again); a post not archived yet starts as the connector's stub.
            await conn.execute(
                "insert into public.ingested_posts (platform, account_id, platform_post_id, post_data, status,"
                " attempts, completed_at, detail_pending) values (%s, %s, %s, %s, 'completed', 1, now(), true)"
                " on conflict (platform, platform_post_id) do update set detail_pending = true",
                (platform, account_id, action.platform_post_id, Jsonb(action.post_stub or {})),
            )
        await conn.execute("select trove_private.enqueue_sync(%s, 'webhook', %s)", (account_id, event_type))
