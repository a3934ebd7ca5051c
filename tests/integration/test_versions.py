"""Archive versions known in the HTTP process (trove.http.versions) against real Postgres: kept until Postgres
announces a change, never kept when read across an announcement, not trusted while the listener is down or
when announcements are not proven to arrive (another database here, as a transaction pooler would be)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from tests.worker_harness import scalar

from trove.http.versions import ArchiveVersions


async def eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10.0
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def run(db_url: str, body: Callable[[ArchiveVersions, str], Awaitable[None]], listen_url: str | None = None) -> None:
    user = str(scalar(db_url, "select tests.create_user('alice')"))
    scalar(db_url, "select tests.create_archive('alice')")

    async def main() -> None:
        async with AsyncConnectionPool(db_url, min_size=1, max_size=4, kwargs={"autocommit": True}) as pool:
            versions = ArchiveVersions(listen_url or db_url, pool)
            listener = asyncio.create_task(versions.run())
            try:
                await body(versions, user)
            finally:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

    asyncio.run(main())


def bump(db_url: str, user: str) -> int:
    scalar(db_url, "update public.posts set text_content = text_content || '.' where user_id = %s returning 1", (user,))
    return int(scalar(db_url, "select version from public.archive_versions where user_id = %s", (user,)))


def test_a_version_is_kept_until_its_change_is_announced(db_url: str) -> None:
    async def body(versions: ArchiveVersions, user: str) -> None:
        await eventually(lambda: versions.listening)
        first = await versions.get(user)
        assert versions.known == {user: first}
        newer = await asyncio.to_thread(bump, db_url, user)
        assert newer > first
        await eventually(lambda: user not in versions.known)  # forgotten when Postgres says so
        assert await versions.get(user) == newer
        assert versions.known == {user: newer}

    run(db_url, body)


def test_a_version_read_across_an_announcement_is_not_kept(db_url: str) -> None:
    async def body(versions: ArchiveVersions, user: str) -> None:
        await eventually(lambda: versions.listening)
        real = versions.pool.connection

        @asynccontextmanager
        async def announced_meanwhile(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            async with real(*args, **kwargs) as conn:
                versions.forget("someone else")  # an announcement arrives while this read is in flight
                yield conn

        versions.pool.connection = announced_meanwhile  # type: ignore[method-assign]
        await versions.get(user)
        assert user not in versions.known
        versions.pool.connection = real  # type: ignore[method-assign]
        await versions.get(user)
        assert user in versions.known

    run(db_url, body)


def test_nothing_is_kept_while_the_listener_is_down(db_url: str) -> None:
    async def body(versions: ArchiveVersions, user: str) -> None:
        await eventually(lambda: versions.listening)
        await versions.get(user)
        assert user in versions.known
        with psycopg.connect(db_url, autocommit=True) as conn:
            ended = conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where query ilike 'listen trove_archive_changed%%' and pid <> pg_backend_pid()"
            ).fetchall()
        assert ended
        await eventually(lambda: not versions.listening)
        assert versions.known == {}
        newer = await asyncio.to_thread(bump, db_url, user)  # announced while nobody listens
        assert await versions.get(user) == newer
        await eventually(lambda: versions.listening)  # back, and starting from nothing
        assert await versions.get(user) == newer

    run(db_url, body)


def test_announcements_that_do_not_arrive_mean_reading_every_time(db_url: str) -> None:
    elsewhere = db_url.rsplit("/", 1)[0] + "/postgres"  # another database: its channel never hears ours

    async def body(versions: ArchiveVersions, user: str) -> None:
        await asyncio.sleep(0.5)  # the listener has connected and sent its proof, which never comes back
        for _ in range(3):
            await versions.get(user)
        assert not versions.listening and versions.known == {}
        newer = await asyncio.to_thread(bump, db_url, user)
        assert await versions.get(user) == newer

    run(db_url, body, listen_url=elsewhere)


def truncate(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("truncate public.archive_versions")


def test_a_deleted_user_and_an_emptied_table_are_changes_too(db_url: str) -> None:
    async def body(versions: ArchiveVersions, user: str) -> None:
        await eventually(lambda: versions.listening)
        await versions.get(user)
        await asyncio.to_thread(scalar, db_url, "delete from auth.users where id = %s returning 1", (user,))
        await eventually(lambda: user not in versions.known)
        assert await versions.get(user) == 0
        other = str(await asyncio.to_thread(scalar, db_url, "select tests.create_user('bob')"))
        await asyncio.to_thread(scalar, db_url, "select tests.create_archive('bob')")
        # Kept once a read no longer meets bob's own announcements (his archive was just made).
        for _ in range(200):
            await versions.get(other)
            if other in versions.known:
                break
            await asyncio.sleep(0.05)
        assert other in versions.known
        await asyncio.to_thread(truncate, db_url)
        await eventually(lambda: versions.known == {})

    run(db_url, body)


def test_a_listener_that_stops_hearing_itself_is_not_trusted(db_url: str, monkeypatch: Any) -> None:
    """A connection that died without a word (or a pooler that stopped delivering) fails its heartbeat."""
    monkeypatch.setattr("trove.http.versions.HEARTBEAT_SECONDS", 0.5)
    elsewhere = db_url.rsplit("/", 1)[0] + "/postgres"

    async def body(versions: ArchiveVersions, user: str) -> None:
        await eventually(lambda: versions.listening)
        await versions.get(user)
        assert user in versions.known
        async with AsyncConnectionPool(elsewhere, min_size=1, max_size=1, kwargs={"autocommit": True}) as deaf:
            versions.pool = deaf  # its proofs now go to another database: they never come back
            await eventually(lambda: not versions.listening)
            assert versions.known == {}

    run(db_url, body)
