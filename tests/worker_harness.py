"""Running real `trove worker` processes against a test database and the fake platform."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from trove.config import PROJECT_ROOT
from trove.crypto import KeyRing, encrypt, generate_key

TEST_KEY = generate_key()
RING = KeyRing.parse(f"test:{TEST_KEY}")


def worker_env(db_url: str, platform_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "TROVE_PLATFORMS": "tests.support.fake_connector:FakeConnector",
        "FAKE_PLATFORM_URL": platform_url,
        "TROVE_TOKEN_KEYS": f"test:{TEST_KEY}",
        "PYTHONPATH": str(PROJECT_ROOT),
        **extra,
    }


def start_worker(env: dict[str, str], log_path: Path, *args: str) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "trove.cli", "worker", "--poll-interval", "0.2", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@contextmanager
def running_worker(env: dict[str, str], log_path: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_worker(env, log_path, *args)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def query(db_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def scalar(db_url: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    rows = query(db_url, sql, params)
    return rows[0][0] if rows else None


def connect_account(db_url: str, access: str, refresh: str, *, name: str = "alice", expires_in: str = "6 hours") -> str:
    """A Trove user with a connected account on the fake platform, tokens encrypted as the app does."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select tests.create_user(%s)", (name,))
        account_id = conn.execute(
            "insert into public.connected_accounts (user_id, platform, platform_user_id, username, token_expires_at)"
            " values (tests.id('user', %s), 'bluesky', %s, %s, now() + %s::interval) returning id::text",
            (name, f"{name}-owner", name, expires_in),
        ).fetchone()[0]
        conn.execute(
            "update public.connected_accounts set access_token = %s, refresh_token = %s where id = %s",
            (
                encrypt(RING, access, account_id=account_id, column="access_token"),
                encrypt(RING, refresh, account_id=account_id, column="refresh_token"),
                account_id,
            ),
        )
    return account_id


def enqueue(db_url: str, account_id: str, sync_type: str = "backfill") -> str:
    return str(scalar(db_url, "select trove_private.enqueue_sync(%s, %s)", (account_id, sync_type)))


def log_status(db_url: str, log_id: str) -> str:
    return str(scalar(db_url, "select status::text from public.sync_logs where id = %s", (log_id,)))


def wait_for_log(db_url: str, log_id: str, timeout: float = 60.0) -> str:
    return wait_for(
        lambda: (s := log_status(db_url, log_id)) not in ("queued", "running") and s,
        timeout,
        f"sync log {log_id} to finish",
    )


def until_fresh(fetch: Callable[[], Any], fresh: Callable[[Any], bool], timeout: float = 10.0) -> Any:
    """The read API's answer once an archive change has reached its cache: the service learns of a change when
    Postgres announces it at commit (NOTIFY), moments later, so a read right after a write may still be served
    the page from before (trove.http.versions)."""
    answers: list[Any] = []

    def check() -> Any:
        answers.append(fetch())
        return answers[-1] if fresh(answers[-1]) else None

    return wait_for(check, timeout, "the archive change to reach the read API's cache")
