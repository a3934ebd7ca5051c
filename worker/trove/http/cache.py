"""Response cache for the read API (seed 10.1): keyed by user, mode and parameters, plus the user's archive
version (bumped in SQL by any change to their posts), so a change invalidates exactly that user's pages.
Entries also expire after 5 minutes. In-process: each HTTP process keeps its own."""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

TTL_SECONDS = 300.0
MAX_ENTRIES = 2048


@dataclass(frozen=True)
class Entry:
    etag: str
    body: bytes
    stored_at: float


class ResponseCache:
    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.entries: OrderedDict[str, Entry] = OrderedDict()

    @staticmethod
    def key(user_id: str, public_only: bool, version: int, params: dict[str, Any]) -> str:
        canonical = json.dumps(params, sort_keys=True, default=str)
        return (
            f"posts:{user_id}:{'public' if public_only else 'owner'}:{version}:"
            + hashlib.sha256(canonical.encode()).hexdigest()[:24]
        )

    @staticmethod
    def etag_for(key: str) -> str:
        return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'

    def get(self, key: str) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry.stored_at > self.ttl:
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return entry

    def put(self, key: str, body: bytes) -> Entry:
        entry = Entry(self.etag_for(key), body, time.monotonic())
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
        return entry
