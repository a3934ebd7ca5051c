"""A per-client-address limit on how often something may happen (in this process): at most `per_minute` in
any sliding minute, answered with 429 beyond. Bounded: the least recently seen addresses are forgotten first."""

from __future__ import annotations

import time
from collections import OrderedDict, deque

from fastapi import HTTPException, Request

MAX_CLIENTS = 10_000


class Throttle:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.seen: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, request: Request) -> None:
        client = request.client.host if request.client else "unknown"
        now = time.monotonic()
        times = self.seen.pop(client, None) or deque()
        while times and times[0] <= now - 60:
            times.popleft()
        self.seen[client] = times
        if len(self.seen) > MAX_CLIENTS:
            self.seen.popitem(last=False)
        if len(times) >= self.per_minute:
            raise HTTPException(429, "Too many attempts from here: wait a minute and try again.")
        times.append(now)
