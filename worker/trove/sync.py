"""One sync run of one account: tokens, the shared rate-limit budget, pages committed one by one with the
cursor, and the outcome recorded the seed-8.1 way (finish_sync / fail_sync in SQL)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from psycopg import AsyncConnection, errors
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from trove.crypto import KeyRing
from trove.platforms.base import (
    Account,
    AuthError,
    Connector,
    Enrichment,
    Page,
    RateLimitedError,
    RateLimitReading,
    SyncError,
    SyncMode,
)
from trove.queries.accounts import SET_SYNC_STATE
from trove.queries.ingest import DETAIL_DONE, INSERT_FETCHED_ITEM, PENDING_DETAILS
from trove.queries.posts import CHECK_UNLISTED, MARK_DELETED_BY_RAW_POST, MARK_LISTED_PRESENT, MARK_UNLISTED_DELETED
from trove.queries.queue import EXTEND_LEASE, FAIL_SYNC, FINISH_SYNC, RELEASE_SYNC, RELEASE_SYNC_UNTIL
from trove.queries.rate_limits import RECORD_RATE_LIMIT, TAKE_RATE_LIMIT
from trove.queries.sync_logs import COUNT_DETAIL, COUNT_PAGE, RECORD_POST_ERRORS
from trove.redact import redact
from trove.store import Counts, store_post, store_raw_page
from trove.tokens import fresh_account

log = logging.getLogger("trove.sync")


class LeaseLost(Exception):
    """Another worker holds the request now (our lease expired): stop without writing anything more."""


@dataclass
class SyncRequest:
    id: str
    account_id: str
    sync_type: str
    sync_log_id: str
    platform: str


def choose_mode(sync_type: str, state: dict[str, Any]) -> SyncMode:
    """A backfill until it is done (any sync of the account continues an unfinished one), then polling."""
    if sync_type == "backfill" and not state.get("backfill_done"):
        return "backfill"
    if state.get("backfill_cursor") and not state.get("backfill_done"):
        return "backfill"
    return "poll"


def _instant(state: dict[str, Any], key: str) -> datetime | None:
    value = state.get(key)
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def ephemeral_due(connector: Connector, state: dict[str, Any]) -> datetime:
    """When the account's content that vanishes is to be read next (long ago: now; never: far ahead)."""
    if getattr(connector, "ephemeral_interval", None) is None:
        return datetime.max.replace(tzinfo=UTC)
    return _instant(state, "ephemeral_due_at") or datetime.min.replace(tzinfo=UTC)


def poll_due(connector: Connector, state: dict[str, Any]) -> bool:
    """Whether a scheduled run reads the feed: always, unless the account is woken more often than its feed is
    polled (for its content that vanishes) and the feed's time has not come (a minute early counts: the
    scheduler runs each minute)."""
    if getattr(connector, "ephemeral_interval", None) is None:
        return True
    due = _instant(state, "poll_due_at")
    return due is None or due <= utcnow() + timedelta(minutes=1)


def next_sync_in(connector: Connector) -> timedelta:
    """When the scheduler wakes the account next: its feed's poll interval, or sooner for what vanishes."""
    ephemeral: timedelta | None = getattr(connector, "ephemeral_interval", None)
    return min(connector.poll_interval, ephemeral) if ephemeral else connector.poll_interval


def next_state(state: dict[str, Any], mode: str, page: Page) -> dict[str, Any]:
    updated = {**state, **page.state}
    updated[f"{mode}_cursor"] = page.next_cursor
    if page.next_cursor is None and mode == "backfill":
        updated["backfill_done"] = True
    return updated


async def record_rate_limits(conn: AsyncConnection[Any], platform: str, readings: list[RateLimitReading]) -> None:
    """Call it outside a longer transaction: each reading locks its window's row, which every sync of the
    platform takes (in window-name order) before each request."""
    for reading in sorted(readings, key=lambda r: r.window_name):
        await conn.execute(
            RECORD_RATE_LIMIT, (platform, reading.window_name, reading.window_length, reading.limit, reading.used)
        )


class SyncRunner:
    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        connectors: dict[str, Connector],
        ring: KeyRing,
        http: httpx.AsyncClient,
        worker_id: str,
        lease: timedelta,
        stopping: asyncio.Event,
    ) -> None:
        self.pool = pool
        self.connectors = connectors
        self.ring = ring
        self.http = http
        self.worker_id = worker_id
        self.lease = lease
        self.stopping = stopping

    async def _call(self, sql: str, params: tuple[Any, ...]) -> Any:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            row = await cur.fetchone()
            return row[0] if row else None

    async def run(self, request: SyncRequest) -> str:
        """Returns the outcome: success, partial, failed, released, deferred or lost."""
        connector = self.connectors.get(request.platform)
        if connector is None:
            await self._fail(request, "transient", f"no connector configured for {request.platform}")
            return "failed"
        try:
            return await self._run(request, connector)
        except LeaseLost:
            log.warning("sync %s: lease lost to another worker, stopping", request.id)
            return "lost"
        except SyncError as error:
            retry_at = error.retry_at if isinstance(error, RateLimitedError) else None
            await self._fail(request, error.kind, str(error) or type(error).__name__, retry_at)
            return "failed"
        except httpx.HTTPError as error:
            await self._fail(request, "transient", f"{type(error).__name__}: {error}")
            return "failed"
        except LookupError as error:  # the account was deleted while queued
            await self._fail(request, "not_found", str(error))
            return "failed"
        except (errors.DeadlockDetected, errors.SerializationFailure) as error:
            # Postgres broke a lock cycle: what was committed stays (a page is one transaction), so the run is
            # released to be claimed again at once instead of waiting out its lease
            log.warning("sync %s: %s, released to run again", request.id, type(error).__name__)
            await self._call(RELEASE_SYNC, (request.id, self.worker_id))
            return "released"
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise  # the database is away: the lease brings the request back
        except Exception as error:  # anything else (a payload Postgres refused, a bug): failed with backoff,
            log.exception("sync %s: unexpected failure", request.id)  # never re-claimed forever unrecorded
            await self._fail(request, "transient", f"{type(error).__name__}: {error}")
            return "failed"

    async def _run(self, request: SyncRequest, connector: Connector) -> str:
        async with self.pool.connection() as conn:
            # Renews the token first when it is due (TokenSet.refresh_at), whatever else this run does.
            account = await fresh_account(conn, self.ring, connector, self.http, request.account_id)
        problems: list[str] = []
        if request.sync_type == "token_refresh":
            return await self._finish(request, connector, problems)
        mode = choose_mode(request.sync_type, account.sync_state)
        cursor = account.sync_state.get(f"{mode}_cursor")
        budget_class = "bulk" if mode == "backfill" else "interactive"
        # A sync an event asked for, on a platform whose events carry the records: the details only.
        pages = not (request.sync_type == "webhook" and mode == "poll" and not connector.poll_on_event)
        if request.sync_type == "scheduled" and mode == "poll" and not poll_due(connector, account.sync_state):
            pages = False  # woken for the content that vanishes, the feed is not due yet
        account, wait_until = await self._read_ephemeral(request, connector, account, problems)
        if wait_until is not None:
            return await self._defer(request, wait_until)
        while pages:
            if self.stopping.is_set():
                await self._call(RELEASE_SYNC, (request.id, self.worker_id))
                return "released"
            # A long backfill still reads the content that vanishes when it is due.
            account, wait_until = await self._read_ephemeral(request, connector, account, problems)
            if wait_until is None:
                wait_until = await self._call(TAKE_RATE_LIMIT, (request.platform, budget_class))
            if wait_until is not None:
                # The app-wide budget is spent: not a failure, come back when the window resets, or earlier
                # when the content that vanishes is due before that.
                return await self._defer(request, min(wait_until, ephemeral_due(connector, account.sync_state)))
            account, page = await self._fetch(
                request, connector, account, lambda acc, at=cursor: connector.fetch_page(self.http, acc, mode, at)
            )
            account = await self._commit_page(request, connector, account, mode, page, problems)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        if pages and mode == "poll":
            account = await self._set_state(account, {"poll_due_at": (utcnow() + connector.poll_interval).isoformat()})
        await self._enrich(request, connector, account, problems)
        return await self._finish(request, connector, problems)

    async def _defer(self, request: SyncRequest, until: datetime) -> str:
        log.info("sync %s: %s budget spent, deferred until %s", request.id, request.platform, until)
        await self._call(RELEASE_SYNC_UNTIL, (request.id, self.worker_id, until))
        return "deferred"

    async def _fetch(
        self, request: SyncRequest, connector: Connector, account: Account, fetch: Callable[[Account], Awaitable[Page]]
    ) -> tuple[Account, Page]:
        """One page; when the platform refuses the token, once more with a refreshed one."""
        try:
            return account, await fetch(account)
        except AuthError:
            async with self.pool.connection() as conn:
                account = await fresh_account(
                    conn, self.ring, connector, self.http, request.account_id, rejected_token=account.access_token
                )
            return account, await fetch(account)  # refused again: the AuthError fails the sync

    async def _set_state(self, account: Account, changes: dict[str, Any]) -> Account:
        state = {**account.sync_state, **changes}
        async with self.pool.connection() as conn:
            await conn.execute(SET_SYNC_STATE, (Jsonb(state), account.id))
        return replace(account, sync_state=state)

    async def _read_ephemeral(
        self, request: SyncRequest, connector: Connector, account: Account, problems: list[str]
    ) -> tuple[Account, datetime | None]:
        """Content that vanishes (stories), when due: every page of it, from the interactive budget. Returns
        the account and, when the budget is spent even for that, when to come back."""
        interval = getattr(connector, "ephemeral_interval", None)
        if interval is None or ephemeral_due(connector, account.sync_state) > utcnow():
            return account, None
        cursor: dict[str, Any] | None = None
        while True:
            wait_until = await self._call(TAKE_RATE_LIMIT, (request.platform, "interactive"))
            if wait_until is not None:
                return account, wait_until
            account, page = await self._fetch(
                request,
                connector,
                account,
                lambda acc, at=cursor: connector.fetch_ephemeral(self.http, acc, at),  # type: ignore[attr-defined]
            )
            account = await self._commit_page(request, connector, account, "ephemeral", page, problems)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return await self._set_state(account, {"ephemeral_due_at": (utcnow() + interval).isoformat()}), None

    async def _finish(self, request: SyncRequest, connector: Connector, problems: list[str]) -> str:
        status = "partial" if problems else "success"
        async with self.pool.connection() as conn:
            if problems:
                await conn.execute(
                    RECORD_POST_ERRORS,
                    (
                        f"{len(problems)} posts could not be stored",
                        Jsonb({"post_errors": problems[:100]}),
                        request.sync_log_id,
                    ),
                )
            done = await conn.execute(FINISH_SYNC, (request.id, self.worker_id, status, next_sync_in(connector)))
            row = await done.fetchone()
        return status if row and row[0] else "lost"

    async def _commit_page(
        self,
        request: SyncRequest,
        connector: Connector,
        account: Account,
        mode: str,
        page: Page,
        problems: list[str],
    ) -> Account:
        """One transaction per page: raw page, posts, cursor, metrics and the lease move together. `mode`:
        backfill, poll or ephemeral."""
        counts = Counts()
        async with self.pool.connection() as conn:
            await record_rate_limits(conn, request.platform, page.rate_limits)
        async with self.pool.connection() as conn, conn.transaction():
            item_id = await store_raw_page(conn, account, page, "backfill" if mode == "backfill" else "fetch")
            for post in page.posts:
                try:
                    async with conn.transaction():  # a savepoint: one bad post does not lose the page
                        counts.add(
                            await store_post(
                                conn,
                                account,
                                post,
                                item_id,
                                normalize=connector.normalize,
                                detail_keys=connector.detail_keys,
                            )
                        )
                except errors.DataError as error:
                    problems.append(f"{post.platform_post_id}: {redact(str(error).splitlines()[0])}")
                except errors.IntegrityError as error:
                    problems.append(f"{post.platform_post_id}: {redact(str(error).splitlines()[0])}")
            if page.listing is not None:
                listing = page.listing
                cur = await conn.execute(
                    CHECK_UNLISTED if listing.confirm else MARK_UNLISTED_DELETED,
                    {
                        "account": account.id,
                        "prefix": listing.prefix,
                        "from_id": listing.from_id,
                        "before_id": listing.before_id,
                        "after": listing.after_time,
                        "until": listing.until_time,
                        "types": sorted(listing.content_types) if listing.content_types is not None else None,
                        "ids": sorted(listing.ids),
                    },
                )
                if not listing.confirm:
                    counts.deleted += cur.rowcount
                await conn.execute(MARK_LISTED_PRESENT, {"account": account.id, "ids": sorted(listing.ids)})
            state = next_state(account.sync_state, mode, page)
            remaining = min((r.limit - r.used for r in page.rate_limits), default=None)
            await conn.execute(
                COUNT_PAGE,
                {
                    "fetched": counts.fetched,
                    "created": counts.created,
                    "updated": counts.updated,
                    "deleted": counts.deleted,
                    "mode": mode,
                    "cursor": Jsonb(page.next_cursor),
                    "remaining": remaining,
                    "log": request.sync_log_id,
                },
            )
            await conn.execute(SET_SYNC_STATE, (Jsonb(state), account.id))
            await self._keep_lease(conn, request)  # rolls the page back: the new holder fetches it again
        return replace(account, sync_state=state)

    async def _enrich(self, request: SyncRequest, connector: Connector, account: Account, problems: list[str]) -> None:
        """Details after the archive: posts stored as summaries get their detail fetched, newest first, at
        bulk priority. When the budget is spent the rest waits for the next sync (nothing is lost: the
        summaries are stored)."""
        while not self.stopping.is_set():
            async with self.pool.connection() as conn:
                cur = await conn.execute(PENDING_DETAILS, (account.id,))
                batch = await cur.fetchall()
            if not batch:
                return
            size = max(connector.enrich_batch, 1)
            for start in range(0, len(batch), size):
                if self.stopping.is_set():
                    return
                chunk = batch[start : start + size]
                calls = 1 if size > 1 else max(connector.enrich_cost(chunk[0][1]), 1)
                for _ in range(calls):
                    wait_until = await self._call(TAKE_RATE_LIMIT, (request.platform, "bulk"))
                    if wait_until is not None:
                        log.info("sync %s: details wait for the budget until %s", request.id, wait_until)
                        return
                if size > 1:
                    enrichments = await connector.enrich_many(self.http, account, [data for _, data in chunk])  # type: ignore[attr-defined]
                else:
                    enrichments = [await connector.enrich(self.http, account, chunk[0][1])]
                for (ingested_post_id, _), enrichment in zip(chunk, enrichments, strict=True):
                    await self._store_enrichment(request, connector, account, ingested_post_id, enrichment, problems)

    async def _store_enrichment(
        self,
        request: SyncRequest,
        connector: Connector,
        account: Account,
        ingested_post_id: str,
        enrichment: Enrichment,
        problems: list[str],
    ) -> None:
        async with self.pool.connection() as conn:
            await record_rate_limits(conn, request.platform, enrichment.rate_limits)
        async with self.pool.connection() as conn, conn.transaction():
            item_id = None
            for event_type, payload in enrichment.payloads:
                cur = await conn.execute(
                    INSERT_FETCHED_ITEM, ("fetch", account.platform, account.id, event_type, Jsonb(payload))
                )
                row = await cur.fetchone()
                item_id = item_id or (row[0] if row else None)
            if enrichment.not_owned:
                log.warning("post %s on %s is not this account's: nothing stored", ingested_post_id, account.platform)
                await conn.execute(DETAIL_DONE, (ingested_post_id,))
                return
            if enrichment.post is None:  # gone on the platform
                await conn.execute(DETAIL_DONE, (ingested_post_id,))
                await conn.execute(MARK_DELETED_BY_RAW_POST, (ingested_post_id,))
                return
            try:
                async with conn.transaction():
                    counts = await store_post(
                        conn, account, enrichment.post, str(item_id) if item_id else None, normalize=connector.normalize
                    )
            except (errors.DataError, errors.IntegrityError) as error:
                problems.append(f"{enrichment.post.platform_post_id}: {redact(str(error).splitlines()[0])}")
                await conn.execute(DETAIL_DONE, (ingested_post_id,))
                return
            await conn.execute(COUNT_DETAIL, (counts.updated, request.sync_log_id))
            await self._keep_lease(conn, request)

    async def _keep_lease(self, conn: AsyncConnection[Any], request: SyncRequest) -> None:
        """Extend the lease inside the write's transaction: if another worker took the request, the write
        rolls back and this run stops."""
        cur = await conn.execute(EXTEND_LEASE, ("sync_requests", request.id, self.worker_id, self.lease))
        row = await cur.fetchone()
        if not (row and row[0]):
            raise LeaseLost

    async def _fail(self, request: SyncRequest, kind: str, message: str, retry_at: datetime | None = None) -> None:
        text = redact(message)
        log.warning("sync %s (%s) failed: %s: %s", request.id, request.platform, kind, text)
        await self._call(FAIL_SYNC, (request.id, self.worker_id, kind, text, retry_at))


def utcnow() -> datetime:
    return datetime.now(UTC)
