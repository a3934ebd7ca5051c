"""Strava's connector for the sync engine: activities archived from list pages (200 per call) first and
their details afterwards, photos at their largest size keyed by the photo's unique id, app-wide rate limits
read from the headers, push events turned into work and destructive ones confirmed with the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from trove.platforms.base import (
    Account,
    Confirmation,
    Enrichment,
    InvalidEventError,
    NormalizedPost,
    Page,
    SyncMode,
    TokenSet,
    TransientError,
    WebhookAction,
)
from trove.platforms.strava.client import (
    PER_PAGE,
    PHOTO_SIZE,
    RECHECK_WINDOW,
    StravaConfig,
    parse_time,
    raise_for_status,
    rate_limit_readings,
)
from trove.platforms.strava.normalize import normalize
from trove.platforms.strava.oauth import StravaOAuth
from trove.platforms.strava.webhooks import event_problems


class StravaConnector:
    platform = "strava"
    poll_interval = timedelta(hours=1)
    poll_on_event = True
    ephemeral_interval = None  # nothing here vanishes by itself
    enrich_batch = 1  # an event names an activity id only
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
        "splits_standard",
        "laps",
        "best_efforts",
        "gear",
        "highlighted_kudosers",
        "_photos",
    )

    def __init__(self, config: StravaConfig | None = None) -> None:
        self.config = config or StravaConfig.from_environment()
        self.oauth = StravaOAuth(self.config)

    async def refresh_token(
        self, http: httpx.AsyncClient, refresh_token: str, binding: dict[str, Any] | None = None
    ) -> TokenSet:
        return await self.oauth.refresh(http, refresh_token)  # bearer tokens: nothing bound

    def normalize(self, post_data: dict[str, Any]) -> NormalizedPost:
        return normalize(post_data)

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
        owner = str((detail.get("athlete") or {}).get("id") or "")
        if owner != account.platform_user_id:
            # Strava serves other athletes' visible activities too: a forged event naming one must not
            # bring it into this archive.
            return Enrichment([], None, readings, not_owned=True)
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
