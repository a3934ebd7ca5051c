"""Users' archive versions (the read API's cache keys) as this process knows them: read once from Postgres and
kept until Postgres announces a change (NOTIFY trove_archive_changed, supabase/migrations/*archive_version_
notify*), so a cache hit needs no database round trip. Kept only while the announcements are known to arrive:
the listening connection proves it with an announcement of its own, sent through the pool, when it connects
and every HEARTBEAT_SECONDS after (a connection that died without a word, or a transaction pooler, which would
not deliver, fails the proof: then nothing is kept and every version is read each time, as before, until a
new connection proves itself). A version read while an announcement arrived is not kept (it may predate the
change)."""

from __future__ import annotations

import asyncio
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
HEARTBEAT_SECONDS = 15.0  # how long a silently dead listener could go on being trusted, at most (plus a proof)
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
EVERYONE = "*"  # the payload of a change to every user's version (a TRUNCATE)
# The listener's connection notices a dead peer within about a minute even when nothing is sent.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


class ListenerSilent(Exception):
    """The listener's own announcement did not come back: its connection cannot be trusted."""


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
                async with await AsyncConnection.connect(self.conninfo, autocommit=True, **KEEPALIVES) as conn:
                    await conn.execute(LISTEN_ARCHIVE_CHANGED)
                    if not await self._heard(conn, PROOF_SECONDS, at_once=True):
                        raise ListenerSilent("announcements do not arrive on this connection")
                    self.forget()
                    self.listening = True
                    failures = 0
                    while await self._heard(conn, HEARTBEAT_SECONDS):
                        pass
                    raise ListenerSilent("the listener stopped hearing its own announcements")
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError, ListenerSilent) as error:
                log.warning("archive change listener: %s; reading versions every time until it is back", error)
            finally:
                self.listening = False
                self.forget()
            await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
            failures += 1

    async def _heard(self, conn: AsyncConnection[Any], seconds: float, *, at_once: bool = False) -> bool:
        """Send an announcement of our own through the pool and handle every announcement for `seconds` (or,
        `at_once`, until ours is back): True when ours came back among them."""
        token = f"proof:{secrets.token_hex(8)}"
        async with self.pool.connection() as sender:
            await sender.execute(NOTIFY_ARCHIVE_CHANGED, (token,))
        heard = False
        async for notify in conn.notifies(timeout=seconds):
            if notify.channel != ARCHIVE_CHANGED:
                continue
            if notify.payload == token:
                heard = True
                if at_once:
                    break
            elif notify.payload.startswith("proof:"):
                continue  # another process's proof: nobody's version changed
            elif notify.payload == EVERYONE:
                self.forget()
            else:
                self.forget(notify.payload)
        return heard
