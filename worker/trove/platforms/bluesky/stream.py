"""Jetstream in real time: one consumer follows every connected Bluesky account (`wantedDids`) for posts and
reposts (`wantedCollections`) plus their identity and account events, and hands each event to the worker
raw (`StreamHost.store`), together with the cursor it reaches (Jetstream's `time_us`).

- The followed set changes without reconnecting: an `options_update` message carries the new list. The list
  goes in that message, never the URL (`requireHello=true` holds events back until it arrives), so it may be
  long; beyond MAX_DIDS_PER_CONNECTION the accounts are split over several connections, each with its own
  cursor.
- After a restart or a network drop the consumer resumes from its stored cursor minus a safety margin: what
  was stored twice is deduplicated by each event's identity (the repo revision of a commit), so nothing is
  lost and nothing is doubled.
- No account, no connection: Jetstream with an empty `wantedDids` would send the whole network.
- Every frame is hostile until checked: size-capped by the WebSocket, depth-limited, shape-checked; a frame
  that is not a Jetstream event is stored as `jetstream.malformed` (dead-lettered with the reason), never
  dropped silently, and the stream goes on."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from trove.json_input import InvalidJson, parse_json
from trove.platforms.base import InboundEvent, StreamHost
from trove.platforms.bluesky.config import BlueskyConfig
from trove.platforms.bluesky.sync import COLLECTIONS
from trove.redact import redact

log = logging.getLogger("trove.streams")

MAX_DIDS_PER_CONNECTION = 10_000  # Jetstream's own cap on wantedDids
MAX_FRAME_BYTES = 1024 * 1024  # a post record is at most a few KiB
CURSOR_MARGIN_US = 5_000_000  # replay 5 s before the stored cursor: events straddling a crash are re-read
FLUSH_EVENTS = 200  # store at most this many events per transaction ...
FLUSH_SECONDS = 0.05  # ... and never hold one back longer than this
KINDS = ("commit", "identity", "account")


def event_identity(event: dict[str, Any]) -> str:
    """What makes a replayed event the same event: a commit's repo revision (with the record it touched),
    an identity or account event's sequence number."""
    did, kind = event["did"], event["kind"]
    if kind == "commit":
        commit = event["commit"]
        what = f"{commit.get('collection')}/{commit.get('rkey')}:{commit.get('operation')}"
        identity = f"commit:{did}:{commit.get('rev')}:{what}"
    else:
        identity = f"{kind}:{did}:{event[kind].get('seq', event['time_us'])}"
    # Bounded whatever a hostile frame holds: a long one is known by its hash.
    return identity if len(identity) <= 300 else f"sha256:{hashlib.sha256(identity.encode()).hexdigest()}"


def parse_frame(raw: str | bytes) -> InboundEvent:
    """One WebSocket message as the event to store: `jetstream.<kind>`, or `jetstream.malformed` with why."""
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        event = parse_json(data)
    except (InvalidJson, ValueError) as error:
        return _malformed(data, f"not JSON: {error}")
    if not isinstance(event, dict):
        return _malformed(data, "not a JSON object")
    did, time_us, kind = event.get("did"), event.get("time_us"), event.get("kind")
    if not isinstance(did, str) or not did.startswith("did:") or len(did) > 2048:
        return _malformed(data, "no did")
    if not isinstance(time_us, int) or isinstance(time_us, bool) or not 0 <= time_us <= _latest_time_us():
        return _malformed(data, "no time_us, or one that is not a moment of the past")
    if kind not in KINDS or not isinstance(event.get(kind), dict):
        return _malformed(data, f"unknown kind {str(kind)[:40]!r}")
    return InboundEvent(f"jetstream.{kind}", event_identity(event), event)


def _latest_time_us() -> int:
    """The latest `time_us` believed: now plus an hour of clock skew (a cursor is kept, never lowered)."""
    return int((time.time() + 3600) * 1_000_000)


def _malformed(data: bytes, why: str) -> InboundEvent:
    text = data[:65536].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return InboundEvent(
        "jetstream.malformed", f"malformed:{hashlib.sha256(data).hexdigest()}", {"error": why, "raw": text}
    )


class JetstreamConsumer:
    def __init__(self, config: BlueskyConfig | None = None) -> None:
        self.config = config or BlueskyConfig.from_env()

    async def run(self, http: httpx.AsyncClient, host: StreamHost) -> None:
        """Shard the followed accounts over connections; reshard when the number of connections changes."""
        while not host.stopping.is_set():
            followed = sorted(await host.followed())
            if not followed:
                await _until(host, host.followed_changed())
                continue
            shards = [
                followed[i : i + MAX_DIDS_PER_CONNECTION] for i in range(0, len(followed), MAX_DIDS_PER_CONNECTION)
            ]
            wanted = [asyncio.Queue[list[str]]() for _ in shards]
            tasks = [
                asyncio.create_task(self._connection(host, f"jetstream-{i}", shard, wanted[i]))
                for i, shard in enumerate(shards)
            ]
            try:
                while not host.stopping.is_set():
                    await _until(host, host.followed_changed())
                    now = sorted(await host.followed())
                    if not now or -(-len(now) // MAX_DIDS_PER_CONNECTION) != len(shards):
                        break  # start over with another number of connections
                    for i, queue in enumerate(wanted):
                        queue.put_nowait(now[i * MAX_DIDS_PER_CONNECTION : (i + 1) * MAX_DIDS_PER_CONNECTION])
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def _connection(
        self, host: StreamHost, consumer: str, dids: list[str], wanted: asyncio.Queue[list[str]]
    ) -> None:
        """One connection, reconnecting with backoff until cancelled. `current` is the list it follows now:
        updated in place by each options_update, so a reconnect follows that list, not the first one."""
        current = list(dids)
        failures = 0
        while not host.stopping.is_set():
            try:
                await self._connect_once(host, consumer, current, wanted)
                failures = 0
            except asyncio.CancelledError:
                raise
            except (OSError, WebSocketException, TimeoutError) as error:
                failures += 1
                why = type(error).__name__
            except Exception as error:  # the database away (store), a bug: never the end of the stream
                failures += 1
                why = redact(repr(error))
            else:
                continue
            delay = min(2 ** min(failures, 6) * 0.25, 30.0)
            log.warning("jetstream %s: connection lost (%s); again in %.1fs", consumer, why, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(host.stopping.wait(), timeout=delay)

    async def _connect_once(
        self, host: StreamHost, consumer: str, current: list[str], wanted: asyncio.Queue[list[str]]
    ) -> None:
        """Connect from the stored cursor and consume until the connection ends."""
        stored = await host.load_cursor(consumer)
        if stored is None and consumer != "jetstream-0":
            stored = await host.load_cursor("jetstream-0")  # a new shard starts where the first one is
        if stored is None:
            # Never ran: start now, and say so at once (Jetstream counts wall-clock microseconds), so a crash
            # before the first event still resumes from here rather than from whenever it restarts.
            stored = int(time.time() * 1_000_000)
            await host.store(consumer, [], stored)
        query: list[tuple[str, str]] = [("wantedCollections", c) for c in COLLECTIONS]
        query += [("requireHello", "true"), ("cursor", str(max(stored - CURSOR_MARGIN_US, 0)))]
        url = f"{self.config.jetstream_url}/subscribe?{urlencode(query)}"
        async with connect(url, max_size=MAX_FRAME_BYTES, open_timeout=10, ping_interval=20) as ws:
            await self._hello(ws, current)
            log.info("jetstream %s: following %d accounts from %s", consumer, len(current), stored)
            await self._consume(host, consumer, ws, current, wanted)

    @staticmethod
    async def _hello(ws: ClientConnection, dids: list[str]) -> None:
        # Jetstream leaves out frames over our cap (a larger one would close the connection at every replay).
        payload = {"wantedCollections": list(COLLECTIONS), "wantedDids": dids, "maxMessageSizeBytes": MAX_FRAME_BYTES}
        await ws.send(json.dumps({"type": "options_update", "payload": payload}))

    async def _consume(
        self,
        host: StreamHost,
        consumer: str,
        ws: ClientConnection,
        current: list[str],
        wanted: asyncio.Queue[list[str]],
    ) -> None:
        """Receive and store in small transactions until the connection ends."""
        following = set(current)
        batch: list[InboundEvent] = []
        cursor: int | None = None
        flush_at = 0.0  # when the oldest buffered event must be stored (a steady trickle never waits longer)
        try:
            while not host.stopping.is_set():
                while not wanted.empty():
                    current[:] = wanted.get_nowait()
                    added = frozenset(current) - following
                    following = set(current)
                    await self._hello(ws, current)
                    log.info("jetstream %s: now following %d accounts", consumer, len(current))
                    # Followed from now on: a poll finds what they did between their backfill and now.
                    await host.catch_up(added)
                if batch and time.monotonic() >= flush_at:
                    await host.store(consumer, batch, cursor)
                    batch = []
                try:  # cancelling recv() loses no message (websockets' asyncio API)
                    wait = max(flush_at - time.monotonic(), 0.0) if batch else 1.0
                    raw = await asyncio.wait_for(ws.recv(), timeout=wait)
                except TimeoutError:
                    continue
                event = parse_frame(raw)
                payload = event.payload
                if event.event_type != "jetstream.malformed":
                    cursor = payload["time_us"]
                    if payload["did"] not in following:
                        continue  # not ours (sent before the server applied a narrower list)
                if not batch:
                    flush_at = time.monotonic() + FLUSH_SECONDS
                batch.append(event)
                if len(batch) >= FLUSH_EVENTS:
                    await host.store(consumer, batch, cursor)
                    batch = []
        finally:
            if batch:
                with contextlib.suppress(Exception):
                    await asyncio.shield(host.store(consumer, batch, cursor))


async def _until(host: StreamHost, waiting: Any) -> None:
    """Wait for `waiting` or until the host stops, whichever is first."""
    task = asyncio.ensure_future(waiting)
    stop = asyncio.ensure_future(host.stopping.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stop):
            if not pending.done():
                pending.cancel()
