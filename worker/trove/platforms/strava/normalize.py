"""Strava activities as posts: text, engagement, media with stable keys."""

from __future__ import annotations

from typing import Any

from trove.platforms.base import MediaRef, NormalizedPost
from trove.platforms.strava.client import parse_time


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
