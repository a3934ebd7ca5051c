"""Response cache for the read API (seed 10.1): keyed by user, mode and parameters, plus the user's archive
version (bumped in SQL by any change to their posts), so a change invalidates exactly that user's pages.
Entries also expire after 5 minutes. In-process by default; with $TROVE_REDIS_URL, shared through Redis by
every HTTP process."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

TTL_SECONDS = 300.0
MAX_ENTRIES = 2048


@dataclass(frozen=True)
class Entry:
    etag: str
    body: bytes
    stored_at: float


class Cache(Protocol):
    async def get(self, key: str) -> Entry | None: ...
    async def put(self, key: str, body: bytes) -> Entry: ...


def etag_for(key: str) -> str:
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def cache_key(user_id: str, public_only: bool, version: int, params: dict[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:24]
    return f"trove:posts:{user_id}:{'public' if public_only else 'owner'}:{version}:{digest}"


class ResponseCache:
    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.entries: OrderedDict[str, Entry] = OrderedDict()

    async def get(self, key: str) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry.stored_at > self.ttl:
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return entry

    async def put(self, key: str, body: bytes) -> Entry:
        entry = Entry(etag_for(key), body, time.monotonic())
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
        return entry


class RedisCache:
    """The same cache in Redis (SET with an expiry of the TTL), shared by every HTTP process."""

    def __init__(self, url: str, ttl: float = TTL_SECONDS) -> None:
        import redis.asyncio as redis

        self.client = redis.from_url(url)
        self.ttl = int(ttl)

    async def get(self, key: str) -> Entry | None:
        body = await self.client.get(key)
        return None if body is None else Entry(etag_for(key), bytes(body), time.monotonic())

    async def put(self, key: str, body: bytes) -> Entry:
        await self.client.set(key, body, ex=self.ttl)
        return Entry(etag_for(key), body, time.monotonic())


def cache_from_environment() -> Cache:
    url = os.environ.get("TROVE_REDIS_URL")
    return RedisCache(url) if url else ResponseCache()
