"""`trove import <file> [--user EMAIL]`: hands the file in like an upload, then runs the import in this
process with a progress line (records, posts, media; ETA) and a summary. Run it again after an interruption
and it resumes; while a worker is running the same import, it follows that one's progress instead."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from trove.config import ConfigError, state_dir
from trove.imports.intake import receive
from trove.imports.runner import BATCH_RECORDS, ImportResult, ImportRunner, Progress, imports_dir
from trove.jobs.imports import export_platforms
from trove.media.storage import storage_from_environment
from trove.queries.imports import CLAIM_IMPORT, IMPORT_STATE, IMPORT_USERS, UNFINISHED_WITH_FILE
from trove.queries.queue import COMPLETE_WORK, EXTEND_LEASE, FAIL_WORK
from trove.redact import redact

QUEUE = "imports"


def lease() -> timedelta:
    """How long this process holds the import without renewing it: a rerun after a kill takes it over once
    it lapses (TROVE_IMPORT_LEASE_SECONDS, default 60; renewed every third of it)."""
    return timedelta(seconds=float(os.environ.get("TROVE_IMPORT_LEASE_SECONDS") or 60))


def batch_records() -> int:
    return int(os.environ.get("TROVE_IMPORT_BATCH_RECORDS") or BATCH_RECORDS)


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            yield chunk
            await asyncio.sleep(0)


async def _user(conn: AsyncConnection[Any], email: str | None) -> str:
    cur = await conn.execute(IMPORT_USERS, {"email": email})
    rows = await cur.fetchall()
    if email is not None and not rows:
        raise ConfigError(f"no Trove user with the email {email!r}")
    if not rows:
        raise ConfigError("there is no Trove user yet: sign up first (or run `make run` for the demo user)")
    if len(rows) > 1:
        emails = ", ".join(str(r[1]) for r in rows)
        raise ConfigError(f"several users ({emails}): say whose archive this is with --user EMAIL")
    return str(rows[0][0])


class ProgressLine:
    """One line, rewritten in place on a terminal (a line per update elsewhere, but at most every 5 s)."""

    def __init__(self, out: TextIO, total_bytes: int) -> None:
        self.out = out
        self.total_bytes = max(total_bytes, 1)
        self.tty = out.isatty()
        self.last = 0.0

    def __call__(self, progress: Progress, read_bytes: int | None = None) -> None:
        now = time.monotonic()
        if not self.tty and now - self.last < 5:
            return
        self.last = now
        elapsed = now - progress.started
        share = min((read_bytes or 0) / self.total_bytes, 1.0)
        eta = f"ETA {int(elapsed * (1 - share) / share)}s" if 0.02 < share < 1 else ""
        line = (
            f"[{share * 100:5.1f}%] records {progress.records}, posts {progress.posts}"
            f" (+{progress.posts_created} new), media {progress.files} ({progress.file_bytes / 1e6:.1f} MB),"
            f" problems {progress.problems} {eta}"
        )
        self.out.write(("\r" + line.ljust(110)) if self.tty else line + "\n")
        self.out.flush()


async def import_file(database_url: str, file: Path, email: str | None, out: TextIO = sys.stdout) -> int:
    """Import `file` for the user (`email`, or the only user); 0 when it is archived (perhaps with problems
    recorded), 1 when the file could not be imported."""
    state = state_dir()
    worker_id = f"cli:{socket.gethostname()}:{os.getpid()}"
    async with AsyncConnectionPool(
        database_url, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
    ) as pool:
        async with pool.connection() as conn:
            user_id = await _user(conn, email)
            received = await receive(conn, state, user_id, file.name, _file_chunks(file), holder=(worker_id, lease()))
        print(f"import {received.import_id}: {file.name} ({received.size} bytes)", file=out)
        finished = None if received.new else await _claim_or_follow(pool, received.import_id, worker_id, out)
        if finished is not None:
            return finished
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as http:
            runner = ImportRunner(
                pool, export_platforms(), storage_from_environment(http), http, state, batch_records=batch_records()
            )
            line = ProgressLine(out, received.size)
            runner.on_progress = lambda p: line(p, runner.read_bytes)
            beat = asyncio.create_task(_keep_lease(pool, received.import_id, worker_id))
            try:
                result = await runner.run(received.import_id)
            except BaseException as error:
                async with pool.connection() as conn:
                    message = redact(f"{type(error).__name__}: {error}")[:500]
                    await conn.execute(FAIL_WORK, (QUEUE, received.import_id, worker_id, message, False))
                raise
            finally:
                beat.cancel()
        async with pool.connection() as conn:
            if result.status == "failed":
                await conn.execute(FAIL_WORK, (QUEUE, received.import_id, worker_id, result.error or "failed", True))
            else:
                await conn.execute(COMPLETE_WORK, (QUEUE, received.import_id, worker_id))
        async with pool.connection() as conn:
            cur = await conn.execute(UNFINISHED_WITH_FILE, (f"{user_id}/{received.sha256}",))
            waiting = await cur.fetchone() is not None
        if not waiting:
            (imports_dir(state) / user_id / received.sha256).unlink(missing_ok=True)
        if line.tty:
            out.write("\n")
        _summary(result, out)
        return 1 if result.status == "failed" else 0


async def _keep_lease(pool: AsyncConnectionPool[AsyncConnection[Any]], import_id: str, worker_id: str) -> None:
    while True:
        await asyncio.sleep(lease().total_seconds() / 3)
        async with pool.connection() as conn:
            await conn.execute(EXTEND_LEASE, (QUEUE, import_id, worker_id, lease()))


async def _claim_or_follow(
    pool: AsyncConnectionPool[AsyncConnection[Any]], import_id: str, worker_id: str, out: TextIO
) -> int | None:
    """Take the import (None: it is ours to run), or, while another process holds it, show its progress
    until it ends (its exit status) or its holder's lease lapses (a killed run: then it is ours)."""
    shown = None
    while True:
        async with pool.connection() as conn:
            cur = await conn.execute(CLAIM_IMPORT, (worker_id, lease(), import_id))
            if await cur.fetchone() is not None:
                return None
            cur = await conn.execute(IMPORT_STATE, (import_id,))
            row = await cur.fetchone()
        assert row is not None
        status, holder, progress, error, _ = row
        if status in ("completed", "dead_letter"):
            print(f"import {status}: {progress.get('records', 0)} records; {error or ''}".rstrip("; "), file=out)
            return 0 if status == "completed" else 1
        state = (holder, progress.get("records", 0))
        if state != shown:
            print(f"running in {holder or 'a worker'}: {state[1]} records so far", file=out)
            shown = state
        await asyncio.sleep(1)


def _summary(result: ImportResult, out: TextIO) -> None:
    p = result.progress
    print(f"import {result.status}: {result.platform or 'unknown'} export", file=out)
    if result.error:
        print(f"  error: {result.error}", file=out)
        return
    print(
        f"  {p.records} records: {p.posts} posts ({p.posts_created} new, {p.posts_updated} updated,"
        f" {p.matched} matched to synced posts), {p.unchanged} already imported",
        file=out,
    )
    print(f"  {p.files} media files copied ({p.file_bytes / 1e6:.1f} MB)", file=out)
    if result.problems:
        print(f"  {p.problems} problem(s):", file=out)
        for problem in result.problems[:20]:
            print(f"    - {problem}", file=out)
        if len(result.problems) > 20:
            print(f"    ... and {len(result.problems) - 20} more (see the sync log {result.sync_log_id})", file=out)
    print(f"  sync log: {result.sync_log_id}", file=out)
