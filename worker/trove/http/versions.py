"""Users' archive versions (the read API's cache keys) as this process knows them: read once from Postgres and
kept until Postgres announces a change (NOTIFY trove_archive_changed, supabase/migrations/*archive_version_
notify*), so a cache hit needs no database round trip. Kept only while the announcements are known to arrive:
the listening connection is proven at every (re)connect by an announcement of its own, sent through the pool
(a transaction pooler, which would not deliver, fails the proof: then every version is read each time, as
before). A version read while an announcement arrived is not kept (it may predate the change)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from trove.queries.read import ARCHIVE_CHANGED, ARCHIVE_VERSION, LISTEN_ARCHIVE_CHANGED, NOTIFY_ARCHIVE_CHANGED

log = logging.getLogger(__name__)
MAX_USERS = 100_000
PROOF_SECONDS = 5.0
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)


class ArchiveVersions:
    def __init__(self, conninfo: str, pool: AsyncConnectionPool[Any]) -> None:
        self.conninfo = conninfo
        self.pool = pool
        self.known: OrderedDict[str, int] = OrderedDict()
        self.listening = False
        self.changes = 0  # announcements (and reconnects) so far: a read that saw one arrive is not kept

    async def get(self, user_id: str) -> int:
        if self.listening:
            version = self.known.get(user_id)
            if version is not None:
                return version
        seen = self.changes
        async with self.pool.connection() as conn:
            row = await (await conn.execute(ARCHIVE_VERSION, (user_id,))).fetchone()
        version = int(row[0]) if row else 0
        if self.listening and self.changes == seen:
            self.known[user_id] = version
            if len(self.known) > MAX_USERS:
                self.known.popitem(last=False)
        return version

    def forget(self, user_id: str | None = None) -> None:
        self.changes += 1
        if user_id is None:
            self.known.clear()
        else:
            self.known.pop(user_id, None)

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after a failure (meanwhile every version is read each time)."""
        failures = 0
        while True:
            try:
                async with await AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                    await conn.execute(LISTEN_ARCHIVE_CHANGED)
                    if not await self._proven(conn):
                        log.warning("archive change announcements do not arrive here: reading versions every time")
                        return
                    self.forget()
                    self.listening = True
                    failures = 0
                    async for notify in conn.notifies():
                        if notify.channel == ARCHIVE_CHANGED:
                            self.forget(notify.payload)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as error:
                log.warning("archive change listener: %s; reconnecting", type(error).__name__)
            finally:
                self.listening = False
                self.forget()
            await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
            failures += 1

    async def _proven(self, conn: AsyncConnection[Any]) -> bool:
        """An announcement sent through the pool arrives on this connection."""
        token = f"proof:{secrets.token_hex(8)}"
        async with self.pool.connection() as sender:
            await sender.execute(NOTIFY_ARCHIVE_CHANGED, (token,))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PROOF_SECONDS):
                async for notify in conn.notifies():
                    if notify.payload == token:
                        return True
        return False
