"""XRPC calls to a PDS and to the AppView: bounded responses, XRPC errors by name, and the rate limits the
`ratelimit-*` headers report (atproto services count per window of `ratelimit-policy`, e.g. "3000;w=300")."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from trove.platforms.base import RateLimitedError, RateLimitReading, TransientError
from trove.platforms.bluesky.identity import fetch_bounded

MAX_XRPC_BYTES = 16 * 1024 * 1024  # a listRecords page of 100 long posts is well under 1 MiB
_POLICY = re.compile(r"^\s*(\d+)\s*;\s*w=(\d+)")


class XrpcError(TransientError):
    """An XRPC error answer (HTTP 400 with {"error": Name}): `name` says which (RecordNotFound, ...)."""

    def __init__(self, name: str, message: str, status: int) -> None:
        super().__init__(f"{name}: {message}" if message else name)
        self.name, self.status = name, status


def rate_limit_readings(headers: httpx.Headers, window_name: str) -> list[RateLimitReading]:
    """One reading from `ratelimit-limit`/`-remaining`/`-policy`; none when the headers are absent or odd."""
    try:
        limit = int(headers["ratelimit-limit"])
        remaining = int(headers["ratelimit-remaining"])
    except (KeyError, ValueError):
        return []
    policy = _POLICY.match(headers.get("ratelimit-policy", ""))
    seconds = int(policy.group(2)) if policy else 300
    if limit <= 0 or seconds <= 0:
        return []
    used = min(max(limit - remaining, 0), limit)
    return [RateLimitReading(window_name, timedelta(seconds=seconds), limit, used)]


def _reset_at(headers: httpx.Headers) -> datetime:
    """When a 429's window resets: `ratelimit-reset` is epoch seconds (a minute from now when absent)."""
    now = datetime.now(UTC)
    try:
        reset = datetime.fromtimestamp(int(headers["ratelimit-reset"]), UTC)
    except (KeyError, ValueError, OverflowError, OSError):
        return now + timedelta(minutes=1)
    return min(max(reset, now + timedelta(seconds=1)), now + timedelta(hours=1))


async def xrpc_get(
    http: httpx.AsyncClient,
    service: str,
    method: str,
    params: dict[str, Any] | list[tuple[str, str]],
    *,
    window_name: str,
    insecure: bool = False,
) -> tuple[dict[str, Any], list[RateLimitReading]]:
    """GET {service}/xrpc/{method}: the JSON object and the rate-limit reading. 429 -> RateLimitedError,
    5xx and network trouble -> TransientError, an XRPC error -> XrpcError (its name says which)."""
    query = [(k, str(v)) for k, v in params] if isinstance(params, list) else params
    if isinstance(query, dict):
        query = [(k, str(v)) for k, v in query.items() if v is not None]
    fetched = await fetch_bounded(
        http,
        "GET",
        f"{service}/xrpc/{method}",
        limit=MAX_XRPC_BYTES,
        what=method,
        insecure=insecure,
        params=query,
    )
    readings = rate_limit_readings(fetched.headers, window_name)
    if fetched.status_code == 429:
        raise RateLimitedError(f"{method}: rate limited (HTTP 429)", _reset_at(fetched.headers))
    unreadable = ""
    try:
        body = fetched.json()
    except ValueError as error:  # not JSON, nested too deep, or text Postgres cannot store
        body, unreadable = None, str(error)
    if fetched.status_code >= 500 or (fetched.status_code >= 400 and not isinstance(body, dict)):
        raise TransientError(f"{method}: HTTP {fetched.status_code}")
    if fetched.status_code >= 400:
        assert isinstance(body, dict)
        name, message = body.get("error"), body.get("message")
        raise XrpcError(
            name if isinstance(name, str) else "Error",
            message[:300] if isinstance(message, str) else "",
            fetched.status_code,
        )
    if not isinstance(body, dict):
        raise TransientError(f"{method}: the answer is not a JSON object we can keep {unreadable}".rstrip())
    return body, readings
