"""The connector contract: what the sync engine needs from a platform, and the typed errors it raises.

A connector fetches one page at a time with a cursor, normalizes what it got (posts + the raw payload +
media with stable keys), refreshes tokens, and turns a stored webhook event into work. It never touches
the database: the engine stores, commits page by page, spends the rate-limit budget and handles errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import httpx

SyncMode = Literal["backfill", "poll"]
ContentType = Literal["post", "activity", "story", "reel", "reply", "repost", "article"]


class SyncError(Exception):
    """Base of the errors a connector raises; `kind` is what seed 8.1 switches on."""

    kind = "transient"


class TransientError(SyncError):
    """Worth retrying later (5xx, timeouts, connection errors)."""

    kind = "transient"


class RateLimitedError(SyncError):
    """The platform refused for the rate limit; retry at `retry_at` (the window's reset)."""

    kind = "rate_limit"

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class AuthError(SyncError):
    """The platform refused our token (401/403 after a refresh)."""

    kind = "auth"


class NotFoundError(SyncError):
    """The account is gone on the platform."""

    kind = "not_found"


class InvalidEventError(ValueError):
    """A stored event is not of the platform's shape: retrying cannot help (it is dead-lettered)."""


class InvalidGrantError(SyncError):
    """The refresh token was refused: only the user can reconnect."""

    kind = "invalid_grant"


@dataclass(frozen=True)
class MediaRef:
    media_key: str  # stable across fetches: blob CID, Instagram media id, Strava photo id
    url: str  # where to download it now (may expire)


@dataclass(frozen=True)
class NormalizedPost:
    platform_post_id: str
    created_at: datetime
    post_data: dict[str, Any]  # the raw platform object, kept forever in ingested_posts
    content_type: ContentType = "post"
    text: str | None = None
    html: str | None = None
    updated_at: datetime | None = None
    published: bool = True
    deleted: bool = False
    engagement: dict[str, Any] | None = None  # likes/kudos/comments; history is kept when it changes
    media: tuple[MediaRef, ...] = ()
    # False for a summary (e.g. a Strava list item): the engine fetches the detail later (Connector.enrich).
    complete: bool = True


@dataclass(frozen=True)
class RateLimitReading:
    """One window's limit and usage as the response headers told it."""

    window_name: str
    window_length: timedelta
    limit: int
    used: int


@dataclass
class Page:
    event_type: str  # what was fetched, e.g. "athlete.activities"
    payload: Any  # the raw response body, kept forever in ingested_items
    posts: list[NormalizedPost]
    next_cursor: dict[str, Any] | None  # None: nothing more to fetch in this mode
    rate_limits: list[RateLimitReading] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # merged into the account's sync_state (watermarks)


@dataclass(frozen=True)
class Account:
    id: str
    user_id: str
    platform: str
    platform_user_id: str
    username: str
    access_token: str | None
    sync_state: dict[str, Any]


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    scope: str | None = None


@dataclass
class Enrichment:
    """The detail of one post: the raw responses fetched, the complete post (None: it is gone on the
    platform), and what the calls said about the rate limits."""

    payloads: list[tuple[str, Any]]
    post: NormalizedPost | None
    rate_limits: list[RateLimitReading] = field(default_factory=list)


@dataclass(frozen=True)
class WebhookAction:
    """What a stored webhook event asks for, for the account of `platform_user_id`:
    sync (fetch what is new), refresh_post (fetch this post's detail again), delete_post (it was deleted),
    deauthorize (the user revoked our access), ignore."""

    platform_user_id: str | None
    kind: Literal["sync", "refresh_post", "delete_post", "deauthorize", "ignore"] = "sync"
    platform_post_id: str | None = None
    # refresh_post of a post not archived yet: the raw stub the detail fetch starts from.
    post_stub: dict[str, Any] | None = None


@dataclass(frozen=True)
class Confirmation:
    """Whether the platform itself confirms what an event claims (events are hints, never the truth)."""

    confirmed: bool
    reason: str
    rate_limits: list[RateLimitReading] = field(default_factory=list)


class Connector(Protocol):
    platform: str
    poll_interval: timedelta
    # Raw keys only a detail has: kept when a later summary of the same post arrives.
    detail_keys: tuple[str, ...]

    async def fetch_page(
        self, http: httpx.AsyncClient, account: Account, mode: SyncMode, cursor: dict[str, Any] | None
    ) -> Page: ...

    async def refresh_token(self, http: httpx.AsyncClient, refresh_token: str) -> TokenSet: ...

    def normalize(self, post_data: dict[str, Any]) -> NormalizedPost: ...

    def handle_event(self, event_type: str, payload: dict[str, Any]) -> WebhookAction:
        """What a stored event asks for; InvalidEventError when the payload is not the platform's shape."""
        ...

    async def confirm(self, http: httpx.AsyncClient, account: Account, action: WebhookAction) -> Confirmation:
        """Ask the platform whether a destructive action (delete_post, deauthorize) is true. For deauthorize
        the engine has just refreshed the token (a refused refresh already confirms it)."""
        ...

    def enrich_cost(self, post_data: dict[str, Any]) -> int:
        """API calls `enrich` will make for this post (each is taken from the rate-limit budget)."""
        ...

    async def enrich(self, http: httpx.AsyncClient, account: Account, post_data: dict[str, Any]) -> Enrichment: ...

    async def refresh_media_url(
        self, http: httpx.AsyncClient, account: Account, post_data: dict[str, Any], media_key: str
    ) -> str | None:
        """A fresh URL for a media file whose URL expired (CDN signatures do); None if it is gone."""
        ...
