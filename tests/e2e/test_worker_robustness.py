"""The worker under trouble: SIGKILL mid-batch, several processes at once, NOTIFY wake-ups, SIGTERM,
concurrent token refreshes, the spent budget, and secrets kept out of logs and stored errors."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from tests.support.fake_connector import FakeConnector
from tests.support.fake_platform import FakePlatform
from tests.worker_harness import (
    RING,
    connect_account,
    enqueue,
    log_status,
    query,
    running_worker,
    scalar,
    start_worker,
    wait_for,
    wait_for_log,
    worker_env,
)

from trove.config import PROJECT_ROOT
from trove.queries.queue import CLAIM_SYNC_REQUESTS
from trove.sync import SyncRequest, SyncRunner
from trove.tokens import fresh_account


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with FakePlatform() as fake:
        yield fake


def queue_raw_posts(db_url: str, account: str, count: int) -> None:
    """Stored raw posts waiting to be (re)normalized: the reprocessing queue."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            """
            insert into public.ingested_posts (platform, account_id, platform_post_id, post_data)
            select 'bluesky', %s, 'fake:' || n, jsonb_build_object(
                'id', n, 'text', 'post ' || n, 'created_at', '2026-01-01T00:00:00+00:00', 'likes', n %% 5,
                'photo', jsonb_build_object('id', 'photo-' || n, 'url', 'https://cdn.fake.test/' || n || '.jpg'))
            from generate_series(1, %s) as n
            """,
            (account, count),
        )


def assert_processed_exactly_once(db_url: str, count: int) -> None:
    assert scalar(db_url, "select count(*) from public.ingested_posts where status = 'completed'") == count
    assert scalar(db_url, "select count(*) from public.posts") == count
    # Each processing writes an engagement snapshot stamped with its own transaction time: a second
    # processing of the same item would leave a second row.
    assert scalar(db_url, "select count(*) from public.engagement_history") == count
    assert scalar(db_url, "select count(*) from public.media_downloads") == count


def test_sigkill_mid_batch_twenty_times_loses_and_duplicates_nothing(
    db_url: str, platform: FakePlatform, tmp_path: Path
) -> None:
    account = connect_account(db_url, "a", "r")
    queue_raw_posts(db_url, account, 2000)
    env = worker_env(db_url, platform.url)
    rng = random.Random(7)
    kills = 0
    while kills < 20:
        proc = start_worker(env, tmp_path / "worker.log", "--lease-seconds", "2", "--concurrency", "4")
        # Let it claim and work, then kill it without warning somewhere in the middle of a batch.
        wait_for(
            lambda: scalar(db_url, "select count(*) from public.ingested_posts where status = 'processing'"),
            30,
            "the worker to claim a batch",
        )
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    in_flight = scalar(db_url, "select count(*) from public.ingested_posts where status = 'processing'")
    assert in_flight > 0, "the last kill should leave leased items behind"
    with running_worker(env, tmp_path / "worker.log", "--lease-seconds", "2"):
        wait_for(
            lambda: scalar(db_url, "select count(*) from public.ingested_posts where status <> 'completed'") == 0,
            120,
            "the killed workers' items to come back after their leases and be processed",
        )
    assert_processed_exactly_once(db_url, 2000)


def test_two_workers_drain_one_queue_without_double_work(db_url: str, platform: FakePlatform, tmp_path: Path) -> None:
    account = connect_account(db_url, "a", "r")
    queue_raw_posts(db_url, account, 2000)
    env = worker_env(db_url, platform.url)
    with (
        running_worker(env, tmp_path / "w1.log", "--worker-id", "w1"),
        running_worker(env, tmp_path / "w2.log", "--worker-id", "w2"),
    ):
        wait_for(
            lambda: scalar(db_url, "select count(*) from public.ingested_posts where status <> 'completed'") == 0,
            120,
            "two workers to drain the queue",
        )
    assert_processed_exactly_once(db_url, 2000)
    assert scalar(db_url, "select count(*) from public.ingested_posts where attempts <> 1") == 0


def test_notify_wakes_an_idle_worker_every_time(db_url: str, platform: FakePlatform, tmp_path: Path) -> None:
    platform.control(item_count=5)
    account = connect_account(db_url, platform.state.access_token, platform.state.refresh_token)
    env = worker_env(db_url, platform.url)
    # Polling once an hour: only NOTIFY can get this work done while the test waits.
    with running_worker(env, tmp_path / "worker.log", "--poll-interval", "3600"):
        wait_for(lambda: "started" in (tmp_path / "worker.log").read_text(), 30, "the worker to start")
        log_id = enqueue(db_url, account, "manual")
        assert wait_for_log(db_url, log_id, timeout=60) == "success"
        # Many wake-ups in a row, each arriving while the worker may be between claiming and idling.
        with psycopg.connect(db_url, autocommit=True) as conn:
            for n in range(40):
                item = conn.execute(
                    "insert into public.ingested_items (source, platform, event_type, payload)"
                    " values ('webhook', 'bluesky', 'ping', jsonb_build_object('owner_id', 'alice-owner', 'n', %s))"
                    " returning id",
                    (n,),
                ).fetchone()[0]
                wait_for(
                    lambda item=item: scalar(
                        db_url, "select status = 'completed' from public.ingested_items where id = %s", (item,)
                    ),
                    30,
                    f"wake-up {n} to be handled",
                )


def test_sigterm_releases_a_running_sync_and_exits_cleanly(db_url: str, platform: FakePlatform, tmp_path: Path) -> None:
    platform.control(item_count=500, page_delay=0.5)
    account = connect_account(db_url, platform.state.access_token, platform.state.refresh_token)
    log_id = enqueue(db_url, account, "backfill")
    env = worker_env(db_url, platform.url, FAKE_PAGE_SIZE="20")
    proc = start_worker(env, tmp_path / "worker.log")
    wait_for(lambda: scalar(db_url, "select count(*) from public.posts") >= 20, 30, "the first pages")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    stored = scalar(db_url, "select count(*) from public.posts")
    assert 0 < stored < 500
    assert log_status(db_url, log_id) == "queued"
    assert query(db_url, "select status::text, locked_by from public.sync_requests where sync_log_id = %s", (log_id,))[
        0
    ] == ("pending", None)
    # Another worker picks it up where it stopped.
    platform.control(page_delay=0.0)
    with running_worker(env, tmp_path / "worker2.log"):
        assert wait_for_log(db_url, log_id) == "success"
    assert scalar(db_url, "select count(*) from public.posts") == 500
    assert "stopping" in (tmp_path / "worker.log").read_text()


def test_spent_budget_defers_the_sync_instead_of_failing(db_url: str, platform: FakePlatform, tmp_path: Path) -> None:
    platform.control(item_count=10)
    account = connect_account(db_url, platform.state.access_token, platform.state.refresh_token)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select trove_private.record_rate_limit('bluesky', '15min', '15 minutes', 100, 100)")
    log_id = enqueue(db_url, account, "manual")
    env = worker_env(db_url, platform.url)
    with running_worker(env, tmp_path / "worker.log"):
        wait_for(
            lambda: scalar(
                db_url,
                "select run_after > now() + interval '1 second' from public.sync_requests where sync_log_id = %s",
                (log_id,),
            ),
            30,
            "the sync to be deferred to the window's reset",
        )
    assert log_status(db_url, log_id) == "queued"
    assert platform.state.item_requests == 0, "no request was sent beyond the budget"
    assert scalar(db_url, "select error_count from public.connected_accounts where id = %s", (account,)) == 0


class DeadlockOnce(FakeConnector):
    """The first page read dies of a deadlock (Postgres broke a lock cycle with another transaction)."""

    deadlocks = 1

    async def fetch_page(self, *args: Any) -> Any:
        if self.deadlocks:
            self.deadlocks -= 1
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return await super().fetch_page(*args)


def test_a_sync_hit_by_a_deadlock_is_released_at_once_and_then_completes(db_url: str, platform: FakePlatform) -> None:
    platform.control(item_count=10)
    account = connect_account(db_url, platform.state.access_token, platform.state.refresh_token)
    log_id = enqueue(db_url, account, "manual")
    os.environ["FAKE_PLATFORM_URL"] = platform.url
    lease = timedelta(minutes=5)

    async def claim_and_run_twice() -> list[str]:
        async with (
            AsyncConnectionPool(db_url, kwargs={"autocommit": True}, open=False) as pool,
            httpx.AsyncClient() as http,
        ):
            runner = SyncRunner(pool, {"bluesky": DeadlockOnce()}, RING, http, "test:1", lease, asyncio.Event())
            outcomes = []
            for _ in range(2):
                async with pool.connection() as conn:
                    rows = await (await conn.execute(CLAIM_SYNC_REQUESTS, ("test:1", 1, lease))).fetchall()
                assert len(rows) == 1, "released for a claim right away, not after the lease"
                outcomes.append(await runner.run(SyncRequest(*rows[0])))
            return outcomes

    assert asyncio.run(claim_and_run_twice()) == ["released", "success"]
    assert log_status(db_url, log_id) == "success"
    assert scalar(db_url, "select count(*) from public.posts") == 10
    assert scalar(db_url, "select error_count from public.connected_accounts where id = %s", (account,)) == 0


def test_concurrent_refreshes_of_one_account_call_the_platform_once(db_url: str, platform: FakePlatform) -> None:
    account = connect_account(db_url, platform.state.access_token, platform.state.refresh_token, expires_in="1 minute")
    platform.control(refresh_delay=0.5)
    os.environ["FAKE_PLATFORM_URL"] = platform.url
    connector = FakeConnector()

    async def refresh() -> str | None:
        async with (
            await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn,
            httpx.AsyncClient() as http,
        ):
            return (await fresh_account(conn, RING, connector, http, account)).access_token

    async def both() -> list[str | None]:
        return await asyncio.gather(refresh(), refresh())

    tokens = asyncio.run(both())
    assert platform.state.refresh_calls == 1
    assert tokens[0] == tokens[1] == platform.state.access_token


def test_tokens_never_reach_logs_or_stored_errors(db_url: str, platform: FakePlatform, tmp_path: Path) -> None:
    secret = platform.state.access_token
    account = connect_account(db_url, secret, platform.state.refresh_token)
    # The platform echoes our token back in its error body, as some do.
    platform.control(fail_next=[500], error_body=f"bad request for token {secret}")
    log_id = enqueue(db_url, account, "manual")
    env = worker_env(db_url, platform.url)
    with running_worker(env, tmp_path / "worker.log"):
        assert wait_for_log(db_url, log_id) == "failed"
    stored = " ".join(
        str(value)
        for value in query(
            db_url,
            "select l.error_message, a.error_message, r.last_error from public.sync_logs as l"
            " join public.connected_accounts as a on a.id = l.account_id"
            " join public.sync_requests as r on r.sync_log_id = l.id where l.id = %s",
            (log_id,),
        )[0]
    )
    assert "HTTP 500" in stored and "[redacted]" in stored
    assert secret not in stored
    assert secret not in (tmp_path / "worker.log").read_text()


def test_webhook_events_sync_their_account_and_unknown_owners_are_kept(
    db_url: str, platform: FakePlatform, tmp_path: Path
) -> None:
    platform.control(item_count=3)
    account = connect_account(db_url, platform.state.access_token, platform.state.refresh_token)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.ingested_items (source, platform, event_type, payload) values"
            " ('webhook', 'bluesky', 'post.create', '{\"owner_id\": \"alice-owner\"}'),"
            " ('webhook', 'bluesky', 'post.create', '{\"owner_id\": \"stranger\"}')"
        )
    env = worker_env(db_url, platform.url)
    with running_worker(env, tmp_path / "worker.log"):
        wait_for(
            lambda: scalar(
                db_url, "select count(*) from public.sync_logs where sync_type = 'webhook' and status = 'success'"
            ),
            60,
            "the webhook-triggered sync",
        )
        wait_for(
            lambda: scalar(db_url, "select count(*) from public.ingested_items where status = 'dead_letter'") == 1,
            30,
            "the unknown owner's event to be marked",
        )
    rows = dict(
        query(
            db_url,
            "select payload ->> 'owner_id', account_id::text from public.ingested_items where source = 'webhook'",
        )
    )
    assert rows == {"alice-owner": account, "stranger": None}
    assert "no connected account for bluesky owner stranger" in scalar(
        db_url, "select error_message from public.ingested_items where status = 'dead_letter'"
    )
    assert scalar(db_url, "select count(*) from public.posts") == 3


def test_worker_keeps_going_through_a_database_restart(platform: FakePlatform, tmp_path: Path) -> None:
    # A cluster of its own: restarting the session's cluster would disturb other tests.
    from trove.db.cluster import Cluster, free_port
    from trove.db.migrate import migrate

    cluster = Cluster(root=Path(tempfile.mkdtemp(prefix="trove-test-restart-")), port=free_port(), durable=False)
    cluster.start()
    try:
        url = cluster.url()
        migrate(url, local_stack=True, log=lambda _: None)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create extension if not exists pgtap with schema extensions")
            conn.execute((PROJECT_ROOT / "supabase" / "tests" / "helpers.sql").read_text().encode())
        platform.control(item_count=5)
        account = connect_account(url, platform.state.access_token, platform.state.refresh_token)
        env = worker_env(url, platform.url)
        with running_worker(env, tmp_path / "worker.log") as proc:
            first = enqueue(url, account, "manual")
            assert wait_for_log(url, first) == "success"
            cluster.stop()
            time.sleep(1.5)  # the worker sees the database gone
            cluster.start()
            platform.control(item_count=8)
            second = enqueue(url, account, "manual")
            assert wait_for_log(url, second) == "success"
            assert proc.poll() is None
        assert scalar(url, "select count(*) from public.posts") == 8
        assert "database unavailable" in (tmp_path / "worker.log").read_text()
    finally:
        cluster.destroy()
