"""The Jetstream consumer against the simulator's real WebSocket: accounts spread over several connections
when they outgrow one, each connection with its own cursor; no database (the worker's side of the
`StreamHost` contract is played by a small in-memory host, which is all this test needs of it)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from trove.db.cluster import free_port
from trove.platforms.base import InboundEvent
from trove.platforms.bluesky import stream
from trove.platforms.bluesky.config import BlueskyConfig
from trove.simulators.bluesky import POST, BlueskySimulator
from trove.simulators.serve import BackgroundServer


class MemoryHost:
    def __init__(self, followed: set[str]) -> None:
        self.stopping = asyncio.Event()
        self.following = set(followed)
        self.changed = asyncio.Event()
        self.cursors: dict[str, int] = {}
        self.events: dict[str, list[InboundEvent]] = {}
        self.caught_up: list[frozenset[str]] = []

    async def followed(self) -> frozenset[str]:
        return frozenset(self.following)

    async def followed_changed(self) -> None:
        await self.changed.wait()
        self.changed.clear()

    async def catch_up(self, platform_user_ids: frozenset[str]) -> None:
        self.caught_up.append(platform_user_ids)

    async def load_cursor(self, consumer: str) -> int | None:
        return self.cursors.get(consumer)

    async def store(self, consumer: str, events: list[InboundEvent], cursor: int | None) -> None:
        self.events.setdefault(consumer, []).extend(events)
        if cursor is not None:
            self.cursors[consumer] = max(self.cursors.get(consumer, 0), cursor)


async def until(check: Any) -> None:
    deadline = time.monotonic() + 30.0  # generous: CI machines are shared and busy
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_accounts_beyond_one_connection_go_over_several(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "MAX_DIDS_PER_CONNECTION", 2)
    sim = BlueskySimulator(posts=5)
    dids = sorted(sim.accounts)  # three accounts: two connections
    with BackgroundServer(sim.app, free_port()) as server:
        config = BlueskyConfig(jetstream_url=server.url.replace("http://", "ws://"))
        host = MemoryHost(set(dids))

        async def main() -> None:
            consumer = asyncio.create_task(stream.JetstreamConsumer(config).run(httpx.AsyncClient(), host))
            await until(lambda: sim.stats()["subscribers"] == 2)
            for did in dids:
                sim.write(
                    did, POST, None, {"$type": POST, "text": f"hi from {did}", "createdAt": "2026-12-01T00:00:00Z"}
                )
            await until(lambda: sum(len(events) for events in host.events.values()) == 3)
            assert set(host.events) == {"jetstream-0", "jetstream-1"}
            assert {e.payload["did"] for e in host.events["jetstream-0"]} == set(dids[:2])
            assert {e.payload["did"] for e in host.events["jetstream-1"]} == set(dids[2:])
            assert set(host.cursors) == {"jetstream-0", "jetstream-1"}
            # One account disconnects: the accounts fit one connection again.
            host.following.discard(dids[2])
            host.changed.set()
            await until(lambda: sim.stats()["subscribers"] == 1)
            host.stopping.set()
            await asyncio.wait_for(consumer, 10)

        asyncio.run(main())


def test_a_newly_followed_account_is_told_on_the_same_connection_and_caught_up() -> None:
    sim = BlueskySimulator(posts=5)
    dids = sorted(sim.accounts)
    with BackgroundServer(sim.app, free_port()) as server:
        config = BlueskyConfig(jetstream_url=server.url.replace("http://", "ws://"))
        host = MemoryHost({dids[0]})

        async def main() -> None:
            consumer = asyncio.create_task(stream.JetstreamConsumer(config).run(httpx.AsyncClient(), host))
            await until(lambda: sim.stats()["subscribers"] == 1)
            connections = sim.requests["jetstream.subscribe"]
            host.following.add(dids[1])
            host.changed.set()
            await until(lambda: host.caught_up == [frozenset({dids[1]})])
            sim.write(dids[1], POST, None, {"$type": POST, "text": "now followed", "createdAt": "2026-12-01T00:00:00Z"})
            await until(lambda: any(e.payload["did"] == dids[1] for e in host.events.get("jetstream-0", [])))
            assert sim.requests["jetstream.subscribe"] == connections
            # The connection drops: the new one follows the list as it is now, not the one it started with.
            async with httpx.AsyncClient() as client:
                await client.post(f"{server.url}/_sim/config", json={"drop_subscribers": True})
            await until(lambda: sim.requests["jetstream.subscribe"] > connections and sim.stats()["subscribers"] == 1)
            sim.write(
                dids[1], POST, None, {"$type": POST, "text": "after the drop", "createdAt": "2026-12-01T00:00:00Z"}
            )
            await until(
                lambda: any(
                    e.payload.get("commit", {}).get("record", {}).get("text") == "after the drop"
                    for e in host.events["jetstream-0"]
                )
            )
            host.stopping.set()
            await asyncio.wait_for(consumer, 10)

        asyncio.run(main())


def test_a_frame_over_the_cap_is_left_out_and_the_connection_stays() -> None:
    """A record larger than our frame cap would close the WebSocket at every replay from the cursor: the
    consumer asks Jetstream to leave such frames out (maxMessageSizeBytes), and the stream goes on."""
    sim = BlueskySimulator(posts=5)
    did = sim.demo_did
    with BackgroundServer(sim.app, free_port()) as server:
        config = BlueskyConfig(jetstream_url=server.url.replace("http://", "ws://"))
        host = MemoryHost({did})

        async def main() -> None:
            consumer = asyncio.create_task(stream.JetstreamConsumer(config).run(httpx.AsyncClient(), host))
            await until(lambda: sim.stats()["subscribers"] == 1)
            connections = sim.requests["jetstream.subscribe"]
            huge = "x" * (stream.MAX_FRAME_BYTES + 10)
            sim.write(did, POST, None, {"$type": POST, "text": huge, "createdAt": "2026-12-01T00:00:00Z"})
            sim.write(did, POST, None, {"$type": POST, "text": "small", "createdAt": "2026-12-01T00:00:00Z"})
            await until(
                lambda: any(
                    e.payload["commit"]["record"]["text"] == "small" for e in host.events.get("jetstream-0", [])
                )
            )
            assert all(len(e.payload["commit"]["record"]["text"]) < 100 for e in host.events["jetstream-0"])
            assert sim.requests["jetstream.subscribe"] == connections, "no reconnect"
            host.stopping.set()
            await asyncio.wait_for(consumer, 10)

        asyncio.run(main())
