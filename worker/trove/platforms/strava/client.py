"""Strava API v3 basics shared by the sync, OAuth and subscription code: configuration, errors mapped to the
engine's typed errors, and the app-wide rate-limit headers.

Configuration: STRAVA_CLIENT_ID, STRAVA_CLIENT_SECRET, and STRAVA_BASE_URL (default https://www.strava.com;
the simulator's address locally)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from trove.platforms.base import (
    AuthError,
    NotFoundError,
    RateLimitedError,
    RateLimitReading,
    TokenSet,
    TransientError,
)

PER_PAGE = 200
PHOTO_SIZE = 2048  # the largest size Strava serves
RECHECK_WINDOW = timedelta(days=7)  # polling re-reads the last week's activities to catch edits
SCOPES = "read,activity:read_all"


@dataclass(frozen=True)
class StravaConfig:
    client_id: str
    client_secret: str
    base_url: str

    @classmethod
    def from_environment(cls) -> StravaConfig:
        return cls(
            os.environ.get("STRAVA_CLIENT_ID", ""),
            os.environ.get("STRAVA_CLIENT_SECRET", ""),
            os.environ.get("STRAVA_BASE_URL", "https://www.strava.com").rstrip("/"),
        )

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v3"

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        query = httpx.QueryParams(
            client_id=self.client_id,
            redirect_uri=redirect_uri,
            response_type="code",
            approval_prompt="auto",
            scope=SCOPES,
            state=state,
        )
        return f"{self.base_url}/oauth/authorize?{query}"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def rate_limit_readings(headers: httpx.Headers) -> list[RateLimitReading]:
    """X-RateLimit-* (all requests) and X-ReadRateLimit-* (reads): "15-minute,daily" limit and usage."""
    readings = []
    for prefix, name in (("X-RateLimit", "overall"), ("X-ReadRateLimit", "read")):
        limit, usage = headers.get(f"{prefix}-Limit"), headers.get(f"{prefix}-Usage")
        if not limit or not usage:
            continue
        try:
            (limit_15, limit_day), (used_15, used_day) = (
                [int(x) for x in limit.split(",")],
                [int(x) for x in usage.split(",")],
            )
        except ValueError:
            continue
        readings.append(RateLimitReading(f"{name}_15min", timedelta(minutes=15), limit_15, used_15))
        readings.append(RateLimitReading(f"{name}_daily", timedelta(days=1), limit_day, used_day))
    return readings


def reset_time(readings: list[RateLimitReading], now: datetime | None = None) -> datetime:
    """When a 429 ends: the next quarter hour, or UTC midnight when a daily window is spent."""
    now = now or datetime.now(UTC)
    if any(r.window_length == timedelta(days=1) and r.used >= r.limit for r in readings):
        return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    quarter = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    return quarter + timedelta(minutes=15)


def raise_for_status(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    if status == 401:
        raise AuthError(f"Strava refused the access token ({what}: HTTP 401)")
    if status == 403:
        raise AuthError(f"Strava refused access ({what}: HTTP 403; is the activity:read_all scope granted?)")
    if status == 404:
        raise NotFoundError(f"Strava has no such record ({what}: HTTP 404)")
    if status == 429:
        raise RateLimitedError(
            f"Strava rate limit exceeded ({what}: HTTP 429)", reset_time(rate_limit_readings(response.headers))
        )
    raise TransientError(f"Strava answered HTTP {status} ({what})")


def tokens_from(body: dict[str, Any]) -> TokenSet:
    """The token endpoint's answer (code exchange and refresh alike)."""
    expires_at = datetime.fromtimestamp(int(body["expires_at"]), UTC) if body.get("expires_at") else None
    return TokenSet(body["access_token"], body.get("refresh_token"), expires_at, body.get("scope"))
