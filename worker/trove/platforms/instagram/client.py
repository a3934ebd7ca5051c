"""Instagram API with Instagram Login (graph.instagram.com): configuration, Meta's error bodies mapped to the
engine's typed errors, and the usage headers fed into the shared rate-limit budget.

Configuration: INSTAGRAM_CLIENT_ID and INSTAGRAM_APP_SECRET (the app's Instagram app id and secret; the
secret also signs webhooks), INSTAGRAM_AUTHORIZE_URL (https://www.instagram.com), INSTAGRAM_API_URL
(https://api.instagram.com, the code exchange), INSTAGRAM_GRAPH_URL (https://graph.instagram.com),
INSTAGRAM_POLL_INTERVAL and INSTAGRAM_STORIES_INTERVAL (seconds: the feed every 6 hours and live stories
every hour by default). Locally the three URLs are the simulator's."""

from __future__ import annotations

import json
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
    TransientError,
)

GRAPH_VERSION = "v23.0"
SCOPES = "instagram_business_basic,instagram_business_manage_comments"
# Fields of a media object Trove archives (children: a carousel's items, in order).
CHILD_FIELDS = "id,media_type,media_url,thumbnail_url,timestamp"
MEDIA_FIELDS = (
    "id,caption,media_type,media_product_type,media_url,thumbnail_url,permalink,shortcode,timestamp,"
    f"like_count,comments_count,is_comment_enabled,username,children{{{CHILD_FIELDS}}}"
)
# Stories have no likes or comments to read; the rest as media.
STORY_FIELDS = "id,caption,media_type,media_product_type,media_url,thumbnail_url,permalink,timestamp,username"
PROFILE_FIELDS = "user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count"
PAGE_SIZE = 50
# Meta's throttling error codes: app (4), user (17), page (32), API-specific (613).
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
# The usage headers count percentages of a rolling hour.
USAGE_WINDOW = timedelta(hours=1)


def _seconds(name: str, default: int) -> timedelta:
    raw = os.environ.get(name, "")
    return timedelta(seconds=int(raw)) if raw.isdigit() and int(raw) >= 60 else timedelta(seconds=default)


@dataclass(frozen=True)
class InstagramConfig:
    client_id: str
    app_secret: str
    authorize_url: str
    api_url: str
    graph_url: str
    poll_interval: timedelta = timedelta(hours=6)
    stories_interval: timedelta = timedelta(hours=1)

    @classmethod
    def from_environment(cls) -> InstagramConfig:
        return cls(
            os.environ.get("INSTAGRAM_CLIENT_ID", ""),
            os.environ.get("INSTAGRAM_APP_SECRET", ""),
            os.environ.get("INSTAGRAM_AUTHORIZE_URL", "https://www.instagram.com").rstrip("/"),
            os.environ.get("INSTAGRAM_API_URL", "https://api.instagram.com").rstrip("/"),
            os.environ.get("INSTAGRAM_GRAPH_URL", "https://graph.instagram.com").rstrip("/"),
            _seconds("INSTAGRAM_POLL_INTERVAL", 6 * 3600),
            _seconds("INSTAGRAM_STORIES_INTERVAL", 3600),
        )

    @property
    def graph(self) -> str:
        return f"{self.graph_url}/{GRAPH_VERSION}"


def parse_json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def meta_error(response: httpx.Response) -> dict[str, Any]:
    """Meta's `{"error": {"message", "type", "code", "error_subcode", ...}}` (or the token endpoint's flat
    `{"error_type", "code", "error_message"}`), as one dict; empty when the body is neither."""
    body = parse_json_body(response)
    if not isinstance(body, dict):
        return {}
    error = body.get("error")
    if isinstance(error, dict):
        return error
    if "error_message" in body or "error_type" in body:
        return {"message": body.get("error_message"), "type": body.get("error_type"), "code": body.get("code")}
    return {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(header: str | None) -> Any:
    if not header or len(header) > 8192:
        return None
    try:
        return json.loads(header)
    except ValueError:
        return None


def rate_limit_readings(headers: httpx.Headers) -> list[RateLimitReading]:
    """X-App-Usage (the app's share of its hourly limit, in percent) and X-Business-Use-Case-Usage (each
    account's), as budget windows of 100 points: the busiest figure of each counts."""
    readings = []
    app = _usage(headers.get("x-app-usage"))
    if isinstance(app, dict):
        figures = [
            v for v in (_int(app.get(k)) for k in ("call_count", "total_cputime", "total_time")) if v is not None
        ]
        if figures:
            readings.append(RateLimitReading("app_usage", USAGE_WINDOW, 100, min(max(figures), 100)))
    business = _usage(headers.get("x-business-use-case-usage"))
    if isinstance(business, dict):
        busiest = None
        for entries in business.values():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict):
                    for key in ("call_count", "total_cputime", "total_time"):
                        value = _int(entry.get(key))
                        if value is not None:
                            busiest = max(busiest or 0, value)
        if busiest is not None:
            readings.append(RateLimitReading("account_usage", USAGE_WINDOW, 100, min(busiest, 100)))
    return readings


def regain_access_at(headers: httpx.Headers, now: datetime | None = None) -> datetime:
    """When throttled calls may resume: the longest `estimated_time_to_regain_access` (minutes) of the usage
    headers, else the end of the hour the usage counts."""
    now = now or datetime.now(UTC)
    minutes = 0
    business = _usage(headers.get("x-business-use-case-usage"))
    if isinstance(business, dict):
        for entries in business.values():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict):
                    minutes = max(minutes, min(_int(entry.get("estimated_time_to_regain_access")) or 0, 24 * 60))
    if minutes:
        return now + timedelta(minutes=minutes)
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def raise_for_status(response: httpx.Response, what: str) -> None:
    """Meta answers most refusals with HTTP 400 and says what in the error code: 190 the token, 4/17/32/613
    the rate limits, 100 with subcode 33 an object that does not exist (or is not ours), 2 and `is_transient`
    passing trouble."""
    status = response.status_code
    if status < 400:
        return
    error = meta_error(response)
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    message = str(error.get("message") or "")[:300]
    if code in RATE_LIMIT_CODES or status == 429:
        raise RateLimitedError(
            f"Instagram rate limit reached ({what}: code {code}: {message})", regain_access_at(response.headers)
        )
    if code == 190 or status == 401:
        raise AuthError(f"Instagram refused the access token ({what}: code {code}, subcode {subcode}: {message})")
    if code in (10, 200) or status == 403:
        raise AuthError(f"Instagram refused the permission ({what}: code {code}: {message})")
    if (code == 100 and subcode == 33) or status == 404:
        raise NotFoundError(f"Instagram has no such object ({what}: {message})")
    raise TransientError(f"Instagram answered HTTP {status} ({what}: code {code}: {message})")


def gone(response: httpx.Response) -> bool:
    """The object does not exist (or is not ours): Meta's 100/33, or a plain 404."""
    if response.status_code == 404:
        return True
    if response.status_code != 400:
        return False
    error = meta_error(response)
    return _int(error.get("code")) == 100 and _int(error.get("error_subcode")) == 33


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or ''}"}
