"""Strava activities as posts: text, engagement, media with stable keys, and Strava's rules for readers:
who may see an activity (its `visibility` and `private` flag), which of its raw fields a public reader may see
(an allow-list), and its search keywords (the sport)."""

from __future__ import annotations

from typing import Any

from trove.platforms.base import MediaRef, NormalizedPost, Visibility
from trove.platforms.strava.client import parse_time

# Public mode shows a field only when it is named here, so a field Strava adds tomorrow stays private until
# somebody decides otherwise (a deny-list let `_photos[].location`, photo GPS, through). Top-level fields
# must hold plain values (a value of another shape is left out). Never: coordinates (start/end_latlng), the
# map and its polylines, place names (location_city/state/country), segment efforts, splits, laps and best
# efforts (they carry positions), gear, device, heart rate, the embed token, the athlete or other people.
PUBLIC_FIELDS = frozenset(
    {
        "id", "name", "description", "type", "sport_type", "workout_type",
        "start_date", "start_date_local", "timezone", "utc_offset",
        "distance", "moving_time", "elapsed_time", "total_elevation_gain",
        "average_speed", "max_speed", "average_cadence",
        "average_watts", "weighted_average_watts", "max_watts", "kilojoules", "device_watts",
        "kudos_count", "comment_count", "achievement_count", "pr_count", "athlete_count",
        "photo_count", "total_photo_count", "trainer", "manual",
    }
)  # fmt: skip
# The detail's photo summary: its counts only (the primary photo's CDN URLs stay out: readers get every photo
# through the post's media list, our copy first).
PUBLIC_PHOTO_SUMMARY = frozenset({"count", "use_primary_photo"})
# Our photo list, one entry per photo: the media key (to match the media list), caption and default flag;
# never `location`, URLs, sizes or upload times.
PUBLIC_PHOTO_FIELDS = frozenset({"unique_id", "caption", "default_photo"})
PLAIN = (str, int, float, bool, type(None))
ACTIVITY_URL = "https://www.strava.com/activities/"


def _kept(entry: dict[str, Any], allowed: frozenset[str], kinds: tuple[type, ...] = PLAIN) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if key in allowed and isinstance(value, kinds)}


def public_projection(activity: dict[str, Any]) -> dict[str, Any]:
    """The raw fields of an activity a public reader may see (public mode, public_posts)."""
    if not isinstance(activity, dict):
        return {}
    public = _kept(activity, PUBLIC_FIELDS)
    photos = activity.get("photos")
    if isinstance(photos, dict):
        public["photos"] = _kept(photos, PUBLIC_PHOTO_SUMMARY, (int, float, bool, type(None)))
    listed = activity.get("_photos")
    if isinstance(listed, list):
        public["_photos"] = [
            _kept(photo, PUBLIC_PHOTO_FIELDS, (str, bool, type(None))) for photo in listed if isinstance(photo, dict)
        ]
    return public


def visibility(activity: dict[str, Any]) -> Visibility:
    """Strava's `visibility` (everyone, followers_only, only_me) and the older `private` flag; an activity
    that says nothing is everyone's, as Strava shows it."""
    if activity.get("private") is True:
        return "private"
    return {"everyone": "public", "followers_only": "followers"}.get(
        activity.get("visibility") or "everyone", "private"
    )


def permalink(activity: dict[str, Any]) -> str | None:
    """The activity's page on Strava (its id is a number)."""
    activity_id = activity.get("id")
    if isinstance(activity_id, bool) or not isinstance(activity_id, int | str):
        return None
    text = str(activity_id)
    return f"{ACTIVITY_URL}{text}" if text.isascii() and text.isdigit() else None


def normalize(post_data: dict[str, Any]) -> NormalizedPost:
    """One activity (a list summary or a detail with `_photos`) as a post: its name and description are the
    text, each photo at its largest size is a media item keyed by the photo's unique id."""
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
    sport = post_data.get("sport_type") or post_data.get("type")
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
        visibility=visibility(post_data),
        public_data=public_projection(post_data),
        search_keywords=sport if isinstance(sport, str) else None,
        permalink=permalink(post_data),
    )
