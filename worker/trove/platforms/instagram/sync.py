"""The Instagram connector: /me/media by cursor (posts, carousels with their children, reels), live stories
from /me/stories on their own hourly schedule, a media's detail by id (to check a post that left the listing,
and to read one a comment event names), fresh CDN URLs for expired ones, and the usage headers fed into the
shared budget.

Deletions: Instagram sends no event when a post is deleted, and its ids do not sort by time. Every page of
the feed is a complete listing of the posts created in its time range; a post archived in that range that is
missing is checked with `GET /{media-id}` (Listing.confirm) and marked deleted only when Instagram answers
that it does not exist. Polling re-reads the last week's pages (caption edits, likes, comments) and once a
day the whole feed (deletions of older posts). Stories vanish after 24 hours by design: they are never
checked, and a story gone from /me/stories is not a deletion."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from trove.platforms.base import (
    Account,
    Confirmation,
    Enrichment,
    Listing,
    NormalizedPost,
    Page,
    SyncMode,
    TokenSet,
    TransientError,
    WebhookAction,
)
from trove.platforms.instagram.client import (
    MEDIA_FIELDS,
    PAGE_SIZE,
    STORY_FIELDS,
    InstagramConfig,
    bearer,
    gone,
    parse_json_body,
    raise_for_status,
    rate_limit_readings,
)
from trove.platforms.instagram.events import action_for
from trove.platforms.instagram.normalize import decimal_id, normalize, parse_time
from trove.platforms.instagram.oauth import InstagramOAuth

log = logging.getLogger("trove.instagram")

RECHECK_WINDOW = timedelta(days=7)  # polling re-reads the pages of the last week
FULL_LISTING_EVERY = timedelta(days=1)  # and the whole feed once a day
FEED_TYPES = frozenset({"post", "reel"})
THUMBNAIL = ":thumbnail"
MAX_CURSOR = 1024


def _page_body(response: httpx.Response, what: str) -> tuple[list[dict[str, Any]], str | None]:
    """The items of a paged answer and the cursor of the next page (None on the last)."""
    raise_for_status(response, what)
    body = parse_json_body(response)
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise TransientError(f"Instagram's {what} answer is not a page of media")
    items = [item for item in body["data"] if isinstance(item, dict)]
    paging = body.get("paging") if isinstance(body.get("paging"), dict) else {}
    cursors = paging.get("cursors") if isinstance(paging.get("cursors"), dict) else {}
    after = cursors.get("after")
    more = bool(paging.get("next")) and isinstance(after, str) and 0 < len(after) <= MAX_CURSOR
    return items, after if more else None


def _created(item: dict[str, Any]) -> datetime | None:
    try:
        return parse_time(item["timestamp"]) if isinstance(item.get("timestamp"), str) else None
    except ValueError:
        return None


def normalized(items: list[dict[str, Any]], where: str) -> list[NormalizedPost]:
    """Every item that is an Instagram media; one that is not is kept raw with the page and logged."""
    posts = []
    for item in items:
        try:
            posts.append(normalize(item))
        except ValueError as error:
            log.warning("instagram %s: a media left out: %s", where, error)
    return posts


class InstagramConnector:
    platform = "instagram"
    poll_on_event = True  # a comment event names a post: its detail is read, and the recent pages
    enrich_batch = 1
    detail_keys: tuple[str, ...] = ()  # a page carries every field Trove archives

    def __init__(self, config: InstagramConfig | None = None) -> None:
        self.config = config or InstagramConfig.from_environment()
        self.oauth = InstagramOAuth(self.config)
        self.poll_interval = self.config.poll_interval
        self.ephemeral_interval: timedelta | None = self.config.stories_interval

    async def refresh_token(
        self, http: httpx.AsyncClient, refresh_token: str, binding: dict[str, Any] | None = None
    ) -> TokenSet:
        return await self.oauth.refresh(http, refresh_token)  # the long-lived token refreshes itself

    def normalize(self, post_data: dict[str, Any]) -> NormalizedPost:
        return normalize(post_data)

    # --- the feed ------------------------------------------------------------------------------------
    async def fetch_page(
        self, http: httpx.AsyncClient, account: Account, mode: SyncMode, cursor: dict[str, Any] | None
    ) -> Page:
        now = datetime.now(UTC)
        if cursor is None:
            last_full = account.sync_state.get("full_listing_at")
            full = (
                mode == "backfill"
                or not isinstance(last_full, str)
                or last_full < (now - FULL_LISTING_EVERY).isoformat()
            )
            cursor = {"full": full}
        params: dict[str, Any] = {"fields": MEDIA_FIELDS, "limit": PAGE_SIZE}
        if cursor.get("after"):
            params["after"] = cursor["after"]
        response = await http.get(f"{self.config.graph}/me/media", params=params, headers=bearer(account.access_token))
        readings = rate_limit_readings(response.headers)
        items, after = _page_body(response, "media list")
        posts = normalized(items, "media list")

        # This page lists every feed post created after its oldest item's time, up to where the previous page
        # ended (inclusive): the ids at that boundary second may sit on either page, so they are carried on.
        ids = {i for i in (decimal_id(item.get("id")) for item in items) if i}
        times = [t for t in (_created(item) for item in items) if t is not None]
        oldest = min(times) if times else None
        until = parse_time(cursor["until"]) if isinstance(cursor.get("until"), str) else None
        carried = {str(i) for i in cursor.get("boundary") or () if isinstance(i, str)}
        last = after is None
        listing = Listing(
            prefix="",
            ids=frozenset(ids | carried),
            after_time=None if last else oldest,
            until_time=until,
            content_types=FEED_TYPES,
            confirm=True,
        )
        if not last and oldest is None:
            listing = None  # a page without times says nothing of a range

        state: dict[str, Any] = {}
        next_cursor: dict[str, Any] | None = None
        recent = oldest is not None and oldest > now - RECHECK_WINDOW
        if after and (mode == "backfill" or cursor.get("full") or recent):
            boundary = sorted(str(item.get("id")) for item in items if oldest is not None and _created(item) == oldest)
            next_cursor = {
                "after": after,
                "full": bool(cursor.get("full")),
                "until": oldest.isoformat() if oldest else cursor.get("until"),
                "boundary": boundary,
            }
        elif after is None and cursor.get("full"):
            state["full_listing_at"] = now.isoformat()
        return Page("media", parse_json_body(response), posts, next_cursor, readings, state, listing=listing)

    # --- stories -------------------------------------------------------------------------------------
    async def fetch_ephemeral(self, http: httpx.AsyncClient, account: Account, cursor: dict[str, Any] | None) -> Page:
        """The live stories (the last 24 hours), every page; each archived with its media while it lasts."""
        params: dict[str, Any] = {"fields": STORY_FIELDS, "limit": PAGE_SIZE}
        if cursor and cursor.get("after"):
            params["after"] = cursor["after"]
        response = await http.get(
            f"{self.config.graph}/me/stories", params=params, headers=bearer(account.access_token)
        )
        readings = rate_limit_readings(response.headers)
        items, after = _page_body(response, "stories")
        posts = normalized(items, "stories")
        return Page("stories", parse_json_body(response), posts, {"after": after} if after else None, readings)

    # --- details -------------------------------------------------------------------------------------
    def enrich_cost(self, post_data: dict[str, Any]) -> int:
        return 1

    async def enrich(self, http: httpx.AsyncClient, account: Account, post_data: dict[str, Any]) -> Enrichment:
        """The media by id: to read a post an event named, or to check one that left the listing."""
        media_id = decimal_id(post_data.get("id"))
        if media_id is None:
            return Enrichment([], None, [], not_owned=True)  # not an Instagram id: nothing to ask
        story = post_data.get("media_product_type") == "STORY"
        response = await http.get(
            f"{self.config.graph}/{media_id}",
            params={"fields": STORY_FIELDS if story else MEDIA_FIELDS},
            headers=bearer(account.access_token),
        )
        readings = rate_limit_readings(response.headers)
        if gone(response):
            if story and post_data.get("timestamp"):
                # A story that ended is not a deletion: keep it as archived.
                return Enrichment([], normalize(post_data), readings)
            return Enrichment([], None, readings)
        raise_for_status(response, f"media {media_id}")
        detail = parse_json_body(response)
        if not isinstance(detail, dict) or decimal_id(detail.get("id")) != media_id:
            raise TransientError(f"Instagram answered media {media_id} with something else")
        # No owner check: the token reads only its own account's media (another's answers 100/33, gone above),
        # and a username can change between syncs.
        return Enrichment([("media", detail)], normalize(detail), readings)

    async def refresh_media_url(
        self, http: httpx.AsyncClient, account: Account, post_data: dict[str, Any], media_key: str
    ) -> str | None:
        """A fresh signed URL for a file (its media or child id; `:thumbnail` for a video's cover)."""
        media_id = media_key.partition(THUMBNAIL)[0]
        if decimal_id(media_id) is None:
            return None
        response = await http.get(
            f"{self.config.graph}/{media_id}",
            params={"fields": "media_url,thumbnail_url"},
            headers=bearer(account.access_token),
        )
        if gone(response):
            return None
        raise_for_status(response, f"media {media_id} URLs")
        body = parse_json_body(response)
        url = (
            body.get("thumbnail_url" if media_key.endswith(THUMBNAIL) else "media_url")
            if isinstance(body, dict)
            else None
        )
        return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None

    # --- webhooks ------------------------------------------------------------------------------------
    def handle_event(self, event_type: str, payload: dict[str, Any]) -> WebhookAction:
        return action_for(event_type, payload)

    async def confirm(self, http: httpx.AsyncClient, account: Account, action: WebhookAction) -> Confirmation:
        # Instagram's events are signed and none of them deletes or disconnects anything.
        return Confirmation(True, "not a destructive change")
