"""Strava (API v3): OAuth2 with rotating refresh tokens, activities archived from list pages (200 per
call) first and their details afterwards, photos at their largest size keyed by the photo's unique id,
app-wide rate limits read from the headers, push-subscription webhook events.

Configuration: STRAVA_CLIENT_ID, STRAVA_CLIENT_SECRET, and STRAVA_BASE_URL (default https://www.strava.com;
the simulator's address locally)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from trove.connectors.base import (
    Account,
    AuthError,
    Confirmation,
    Enrichment,
    InvalidEventError,
    InvalidGrantError,
    MediaRef,
    NormalizedPost,
    NotFoundError,
    Page,
    RateLimitedError,
    RateLimitReading,
    SyncMode,
    TokenSet,
    TransientError,
    WebhookAction,
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


class StravaConnector:
    platform = "strava"
    poll_interval = timedelta(hours=1)
    detail_keys = (
        "resource_state",
        "description",
        "map",
        "photos",
        "calories",
        "device_name",
        "embed_token",
        "segment_efforts",
        "splits_metric",
        "laps",
        "best_efforts",
        "gear",
        "highlighted_kudosers",
        "_photos",
    )

    def __init__(self, config: StravaConfig | None = None) -> None:
        self.config = config or StravaConfig.from_environment()

    # --- OAuth ---------------------------------------------------------------------------------------
    async def exchange_code(self, http: httpx.AsyncClient, code: str) -> tuple[TokenSet, dict[str, Any]]:
        response = await http.post(
            f"{self.config.base_url}/oauth/token",
            data={
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret,
                "code": code,
                "grant_type": "authorization_code",
            },
        )
        if response.status_code == 400:
            raise InvalidGrantError("Strava refused the authorization code (expired or already used)")
        raise_for_status(response, "code exchange")
        body = response.json()
        return self._tokens(body), body.get("athlete") or {}

    async def refresh_token(self, http: httpx.AsyncClient, refresh_token: str) -> TokenSet:
        response = await http.post(
            f"{self.config.base_url}/oauth/token",
            data={
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            },
        )
        if response.status_code in (400, 401):
            raise InvalidGrantError("Strava refused the refresh token")
        raise_for_status(response, "token refresh")
        return self._tokens(response.json())

    @staticmethod
    def _tokens(body: dict[str, Any]) -> TokenSet:
        expires_at = datetime.fromtimestamp(int(body["expires_at"]), UTC) if body.get("expires_at") else None
        return TokenSet(body["access_token"], body.get("refresh_token"), expires_at, body.get("scope"))

    # --- archive -------------------------------------------------------------------------------------
    async def fetch_page(
        self, http: httpx.AsyncClient, account: Account, mode: SyncMode, cursor: dict[str, Any] | None
    ) -> Page:
        # Strava pages by start second (before/after are exclusive). Several activities can start in the same
        # second, so a cursor re-includes its boundary second and skips the ids already archived there ("seen");
        # a full page inside one second goes on with `page` at the same boundary.
        cursor = cursor or {}
        params: dict[str, Any] = {"per_page": PER_PAGE}
        if mode == "backfill":
            # Newest to oldest by start time.
            if cursor.get("before"):
                params["before"] = cursor["before"]
        else:
            newest = int(account.sync_state.get("newest_start") or 0)
            params["after"] = cursor.get("after", max(newest - int(RECHECK_WINDOW.total_seconds()), 0))
        if int(cursor.get("page") or 1) > 1:
            params["page"] = int(cursor["page"])
        response = await http.get(
            f"{self.config.api}/athlete/activities",
            params=params,
            headers={"Authorization": f"Bearer {account.access_token}"},
        )
        raise_for_status(response, "athlete activities")
        activities = response.json()
        if not isinstance(activities, list):
            raise TransientError("Strava returned something other than a list of activities")
        seen = {str(i) for i in cursor.get("seen") or ()}
        posts = [self.normalize(a) for a in activities if str(a["id"]) not in seen]
        starts = [int(parse_time(a["start_date"]).timestamp()) for a in activities]
        next_cursor = None
        if len(activities) == PER_PAGE:
            backward = mode == "backfill"
            edge = min(starts) if backward else max(starts)
            bound_key, bound = ("before", edge + 1) if backward else ("after", edge - 1)
            at_edge = {str(a["id"]) for a, start in zip(activities, starts, strict=True) if start == edge}
            if cursor.get(bound_key) == bound:
                # The whole page started within that one second: the next page of it.
                next_cursor = {
                    bound_key: bound,
                    "page": int(cursor.get("page") or 1) + 1,
                    "seen": sorted(seen | at_edge),
                }
            else:
                next_cursor = {bound_key: bound, "seen": sorted(at_edge)}
        newest = max([int(account.sync_state.get("newest_start") or 0), *starts])
        return Page(
            "athlete.activities",
            activities,
            posts,
            next_cursor,
            rate_limit_readings(response.headers),
            {"newest_start": newest},
        )

    def normalize(self, post_data: dict[str, Any]) -> NormalizedPost:
        detailed = post_data.get("resource_state") == 3
        description = (post_data.get("description") or "").strip()
        text = post_data.get("name") or ""
        if description:
            text = f"{text}\n\n{description}" if text else description
        media: list[MediaRef] = []
        for photo in post_data.get("_photos") or []:
            urls = photo.get("urls") or {}
            if photo.get("unique_id") and urls:
                largest = max(urls, key=lambda size: int(size) if str(size).isdigit() else 0)
                media.append(MediaRef(photo["unique_id"], urls[largest]))
        return NormalizedPost(
            platform_post_id=str(post_data["id"]),
            created_at=parse_time(post_data["start_date"]),
            post_data=post_data,
            content_type="activity",
            text=text or None,
            published=True,
            engagement={
                "kudos_count": post_data.get("kudos_count", 0),
                "comment_count": post_data.get("comment_count", 0),
                "achievement_count": post_data.get("achievement_count", 0),
                "pr_count": post_data.get("pr_count", 0),
            },
            media=tuple(media),
            complete=detailed,
        )

    def enrich_cost(self, post_data: dict[str, Any]) -> int:
        return 2 if (post_data.get("total_photo_count") or 0) > 0 else 1

    async def enrich(self, http: httpx.AsyncClient, account: Account, post_data: dict[str, Any]) -> Enrichment:
        """The detail (description, full polyline, primary photo) and, when it has photos, the photo list at
        the largest size (their URLs expire; the unique ids do not)."""
        headers = {"Authorization": f"Bearer {account.access_token}"}
        activity_id = post_data["id"]
        response = await http.get(f"{self.config.api}/activities/{activity_id}", headers=headers)
        readings = rate_limit_readings(response.headers)
        if response.status_code == 404:
            return Enrichment([], None, readings)
        raise_for_status(response, f"activity {activity_id}")
        detail = response.json()
        payloads: list[tuple[str, Any]] = [("activity", detail)]
        if (detail.get("total_photo_count") or 0) > 0:
            photos = await http.get(
                f"{self.config.api}/activities/{activity_id}/photos",
                params={"size": PHOTO_SIZE, "photo_sources": "true"},
                headers=headers,
            )
            readings = rate_limit_readings(photos.headers) or readings
            raise_for_status(photos, f"photos of activity {activity_id}")
            payloads.append(("activity.photos", photos.json()))
            detail["_photos"] = photos.json()
        return Enrichment(payloads, self.normalize(detail), readings)

    async def refresh_media_url(
        self, http: httpx.AsyncClient, account: Account, post_data: dict[str, Any], media_key: str
    ) -> str | None:
        """Photo URLs expire; the activity's photo list hands out fresh ones (one read call)."""
        response = await http.get(
            f"{self.config.api}/activities/{post_data['id']}/photos",
            params={"size": PHOTO_SIZE, "photo_sources": "true"},
            headers={"Authorization": f"Bearer {account.access_token}"},
        )
        if response.status_code == 404:
            return None
        raise_for_status(response, f"photos of activity {post_data['id']}")
        for photo in response.json():
            if photo.get("unique_id") == media_key and photo.get("urls"):
                urls = photo["urls"]
                return str(urls[max(urls, key=lambda size: int(size) if str(size).isdigit() else 0)])
        return None

    # --- webhooks ------------------------------------------------------------------------------------
    def handle_event(self, event_type: str, payload: dict[str, Any]) -> WebhookAction:
        problems = event_problems(payload)
        if problems:
            raise InvalidEventError(f"not a Strava event: {'; '.join(problems)}")
        owner = str(payload["owner_id"])
        object_type, aspect = payload["object_type"], payload["aspect_type"]
        updates = payload.get("updates") or {}
        if object_type == "athlete":
            if str(updates.get("authorized", "")).lower() == "false":
                return WebhookAction(owner, "deauthorize")
            return WebhookAction(owner, "ignore")
        if object_type != "activity":
            return WebhookAction(owner, "ignore")
        activity_id = str(payload["object_id"])
        if aspect == "delete":
            return WebhookAction(owner, "delete_post", activity_id)
        if aspect in ("create", "update"):
            # Fetch this activity's detail whatever its start date (a polling window would miss old uploads).
            stub = {"id": payload["object_id"], "resource_state": 1}
            return WebhookAction(owner, "refresh_post", activity_id, stub)
        return WebhookAction(owner, "ignore")

    async def confirm(self, http: httpx.AsyncClient, account: Account, action: WebhookAction) -> Confirmation:
        """Strava's events are unsigned: a deletion is true only when the activity answers 404, a
        deauthorization only when our (just refreshed) token is refused."""
        headers = {"Authorization": f"Bearer {account.access_token}"}
        if action.kind == "delete_post":
            response = await http.get(f"{self.config.api}/activities/{action.platform_post_id}", headers=headers)
            readings = rate_limit_readings(response.headers)
            if response.status_code == 404:
                return Confirmation(True, "Strava answers 404 for the activity", readings)
            raise_for_status(response, f"activity {action.platform_post_id}")
            return Confirmation(False, "Strava still has the activity", readings)
        if action.kind == "deauthorize":
            response = await http.get(f"{self.config.api}/athlete", headers=headers)
            readings = rate_limit_readings(response.headers)
            if response.status_code == 401:
                return Confirmation(True, "Strava refuses our freshly refreshed token", readings)
            raise_for_status(response, "athlete")
            return Confirmation(False, "Strava still accepts our token", readings)
        return Confirmation(True, "not a destructive change", [])


# The fields of a push event (developers.strava.com/docs/webhooks): `updates` holds changed fields as strings.
EVENT_FIELDS: dict[str, type] = {
    "object_type": str,
    "object_id": int,
    "aspect_type": str,
    "owner_id": int,
    "subscription_id": int,
    "event_time": int,
}


def event_problems(event: Any) -> list[str]:
    """What makes a body not a Strava push event (empty when it is one)."""
    if not isinstance(event, dict):
        return ["the event must be a JSON object"]
    problems = [
        f"{name} must be {'an integer' if kind is int else 'a string'}"
        for name, kind in EVENT_FIELDS.items()
        if not isinstance(event.get(name), kind) or isinstance(event.get(name), bool)
    ]
    updates = event.get("updates")
    if updates is not None and not (
        isinstance(updates, dict)
        and all(isinstance(v, str | int | float | bool) or v is None for v in updates.values())
    ):
        problems.append("updates must be an object of plain values")
    return problems
