"""The platform contract: what the engine (HTTP routes, worker, CLI, `make run`) needs from a platform.

A platform is one package (`trove.platforms.<name>`) that exposes one `Platform`: its `connector` for the
sync engine, and where the platform has them, its OAuth connect, webhook ingress, push subscriptions and a
local simulator with a demo. The engine dispatches through the registry (`trove.platforms`) and never names
a platform.

A connector fetches one page at a time with a cursor, normalizes what it got (posts + the raw payload +
media with stable keys), refreshes tokens, and turns a stored webhook event into work. It never touches
the database: the engine stores, commits page by page, spends the rate-limit budget and handles errors.
The other parts never touch it either, except push subscriptions (a CLI command run by the operator).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import httpx

SyncMode = Literal["backfill", "poll"]
Visibility = Literal["public", "followers", "private"]
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
    media_key: str  # stable across fetches: e.g. a blob CID or a photo's unique id, never a signed URL
    # Where to download it now (may expire); "" when `missing`, or for a file that came inside an export
    # (the import copies it from the file: there is nothing to download).
    url: str
    # Why the platform gives no file for this media (e.g. a video withheld for its copyrighted audio): the
    # media is recorded as unavailable with this reason instead of being downloaded.
    missing: str | None = None


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
    # False for a summary (e.g. an item of a list page): the engine fetches the detail later (Connector.enrich).
    complete: bool = True
    # The platform's rules, decided here and stored on the post (SQL treats every platform alike):
    # who may see it on the platform (public mode shows only "public"; unknown means private) ...
    visibility: Visibility = "private"
    # ... which raw fields a public reader may see: an allow-list, never coordinates or places ...
    public_data: dict[str, Any] = field(default_factory=dict)
    # ... and what search finds it by besides its text (the author's handle, keywords like a sport).
    author_handle: str | None = None
    search_keywords: str | None = None
    # The post's page on its platform (a feed reader's link to the original); None when it has none.
    permalink: str | None = None


@dataclass(frozen=True)
class RateLimitReading:
    """One window's limit and usage as the response headers told it."""

    window_name: str
    window_length: timedelta
    limit: int
    used: int


@dataclass(frozen=True)
class Listing:
    """The platform listed every post of the account whose id starts with `prefix` and sorts (bytewise) in
    [`from_id`, `before_id`) (None: no bound), created in (`after_time`, `until_time`] (None: no bound), of
    `content_types` (None: any). An archived post in that range that is not among `ids` is gone on the
    platform: that is how polling notices deletions a platform sends no event for. With `confirm`, such a
    post is not marked at once: its detail is asked for again (`Connector.enrich`), and it is marked deleted
    only when the platform says it no longer exists (a listing that can miss posts, or ids that do not sort
    by time)."""

    prefix: str
    ids: frozenset[str]
    from_id: str | None = None
    before_id: str | None = None
    after_time: datetime | None = None
    until_time: datetime | None = None
    content_types: frozenset[str] | None = None
    confirm: bool = False


@dataclass
class Page:
    event_type: str  # what was fetched, e.g. "athlete.activities"
    payload: Any  # the raw response body, kept forever in ingested_items
    posts: list[NormalizedPost]
    next_cursor: dict[str, Any] | None  # None: nothing more to fetch in this mode
    rate_limits: list[RateLimitReading] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # merged into the account's sync_state (watermarks)
    # Further raw responses this page took (e.g. the views hydrating a page of records), archived beside it.
    more_payloads: list[tuple[str, Any]] = field(default_factory=list)
    # Where the page is a complete listing of a range of ids (see Listing); None: it says nothing of what is gone.
    listing: Listing | None = None


@dataclass(frozen=True)
class Account:
    id: str
    user_id: str
    platform: str
    platform_user_id: str
    username: str
    access_token: str | None
    sync_state: dict[str, Any]
    binding: dict[str, Any] | None = field(default=None, repr=False)  # TokenSet.binding, decrypted


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    scope: str | None = None
    # Proof-of-possession material the tokens are bound to and what a refresh needs (a DPoP private key, the
    # token endpoint, the last server nonce): secret, stored encrypted next to the tokens. None: bearer tokens.
    binding: dict[str, Any] | None = field(default=None, repr=False)
    # Renew the token by then even if the account is idle (a token that lapses unless refreshed, such as a
    # 60-day token refreshed a week ahead): a scheduled token_refresh run does it. None: refreshed when used.
    refresh_at: datetime | None = None


@dataclass
class Enrichment:
    """The detail of one post: the raw responses fetched, the complete post (None: it is gone on the
    platform), and what the calls said about the rate limits."""

    payloads: list[tuple[str, Any]]
    post: NormalizedPost | None
    rate_limits: list[RateLimitReading] = field(default_factory=list)
    # The platform answered with someone else's post (a forged event named it): store nothing of it.
    not_owned: bool = False


@dataclass(frozen=True)
class Interaction:
    """Something others did with a post that the platform told us of (a comment, a mention, a story's
    insights): kept as an engagement record of that post (`post_interactions`), linked by the post's id."""

    kind: str  # "comment", "mention", "insights", ...
    platform_item_id: str  # the comment's or mention's id; for insights, the post's id (one record, updated)
    platform_post_id: str
    occurred_at: datetime | None = None
    author: str | None = None  # the other person's handle
    text: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # the event's own fields, as sent


@dataclass(frozen=True)
class WebhookAction:
    """What a stored webhook or stream event asks for, for the account of `platform_user_id`:
    sync (fetch what is new), refresh_post (fetch this post's detail again), delete_post (it was deleted),
    deauthorize (the user revoked our access), update_account (a new handle, or the account was deactivated
    or came back), record (keep `interaction` and nothing more), ignore. Any action may carry an
    `interaction` to keep as an engagement record."""

    platform_user_id: str | None
    kind: Literal["sync", "refresh_post", "delete_post", "deauthorize", "update_account", "record", "ignore"] = "sync"
    platform_post_id: str | None = None
    # refresh_post of a post not archived yet: the raw stub the detail fetch starts from.
    post_stub: dict[str, Any] | None = None
    # update_account: the handle it has now, and whether the account is active on the platform (None: unsaid).
    username: str | None = None
    active: bool | None = None
    status_reason: str | None = None
    interaction: Interaction | None = None


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
    # Content that vanishes on the platform after a while (stories: 24 hours) is read on its own schedule,
    # every `ephemeral_interval` (None: the platform has none), through `fetch_ephemeral(http, account,
    # cursor) -> Page`. The engine reads it first in every sync that finds it due, with the interactive share
    # of the rate-limit budget, and wakes the account for it even while a backfill waits for the budget.
    ephemeral_interval: timedelta | None
    # Whether a sync an event asked for also reads the newest pages. True where an event only names a post
    # (then polling finds what else changed); False where events carry the records themselves (a stream):
    # such a sync only fetches the details of the posts the events brought.
    poll_on_event: bool

    async def fetch_page(
        self, http: httpx.AsyncClient, account: Account, mode: SyncMode, cursor: dict[str, Any] | None
    ) -> Page: ...

    async def refresh_token(
        self, http: httpx.AsyncClient, refresh_token: str, binding: dict[str, Any] | None
    ) -> TokenSet:
        """New tokens (InvalidGrantError: only the user can reconnect). `binding` is the stored
        TokenSet.binding; the returned TokenSet carries the binding to store from now on."""
        ...

    def normalize(self, post_data: dict[str, Any]) -> NormalizedPost: ...

    def handle_event(self, event_type: str, payload: dict[str, Any]) -> WebhookAction:
        """What a stored event asks for; InvalidEventError when the payload is not the platform's shape."""
        ...

    async def confirm(self, http: httpx.AsyncClient, account: Account, action: WebhookAction) -> Confirmation:
        """Ask the platform whether an action that changes or destroys what we hold (delete_post, deauthorize,
        update_account) is true. For deauthorize the engine has just refreshed the token (a refused refresh
        already confirms it)."""
        ...

    def enrich_cost(self, post_data: dict[str, Any]) -> int:
        """API calls `enrich` will make for this post (each is taken from the rate-limit budget)."""
        ...

    async def enrich(self, http: httpx.AsyncClient, account: Account, post_data: dict[str, Any]) -> Enrichment: ...

    # How many posts one detail call can cover (an API that takes 25 ids a call). Above 1 the engine calls
    # `enrich_many(http, account, posts) -> list[Enrichment]` (one per post, in order; the raw responses on
    # the first) with up to this many posts, and takes one call from the budget for each.
    enrich_batch: int

    async def refresh_media_url(
        self, http: httpx.AsyncClient, account: Account, post_data: dict[str, Any], media_key: str
    ) -> str | None:
        """A fresh URL for a media file whose URL expired (CDN signatures do); None if it is gone."""
        ...


# --- OAuth connect --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Connection:
    """What a code exchange says: the tokens and which account on the platform they belong to."""

    tokens: TokenSet
    platform_user_id: str
    username: str
    display_name: str | None = None
    avatar_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthorizationStart:
    """Where the browser goes to consent, and what the callback will need to finish (a PKCE verifier, a DPoP
    key, the authorization server it was sent to): `session` is kept encrypted with the state, never sent."""

    url: str
    session: dict[str, Any] = field(default_factory=dict)


class ConnectRefused(Exception):
    """Connecting cannot start or finish for a reason the user can act on (a handle that does not resolve,
    an authorization server that answers for another account): a 400 with this message, nothing stored."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


class OAuth(Protocol):
    # What we ask for, as the platform writes it (shown when a grant is too narrow).
    scopes: str
    # Scopes without which the archive cannot work: a callback granting less is refused.
    required_scopes: frozenset[str]

    def configured(self) -> bool:
        """Client credentials are set (else connecting answers 503)."""
        ...

    async def begin(
        self, http: httpx.AsyncClient, redirect_uri: str, state: str, login_hint: str | None
    ) -> AuthorizationStart:
        """Prepare the consent: the platform redirects back to `redirect_uri` with `state` and a code.
        `login_hint` is what the user typed to say which account (a handle), where the platform needs one.
        ConnectRefused for input the user must fix."""
        ...

    async def exchange(
        self,
        http: httpx.AsyncClient,
        code: str,
        redirect_uri: str,
        params: Mapping[str, str],
        session: dict[str, Any],
    ) -> Connection:
        """Trade the code for tokens and the account's identity. `params`: the callback's query (e.g. `iss`);
        `session`: what `begin` kept. InvalidGrantError: the code was refused; ConnectRefused: the answer
        cannot be trusted (another account, another issuer)."""
        ...

    def documents(self) -> Mapping[str, dict[str, Any]]:
        """Public JSON documents the platform fetches from us (client metadata, its JWKS), served at
        /functions/v1/oauth-<platform>/<name>; empty when there are none."""
        ...


# --- webhook ingress ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Subscription:
    """Ours, as `webhook_subscriptions` keeps it (hashes only); None fields when there is none."""

    subscription_id: str | None = None
    callback_secret_hash: str | None = None
    verify_token_hash: str | None = None


class WebhookRefused(Exception):
    """The request is refused with this status and error code; nothing is stored."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def secret_hash(value: str) -> str:
    """How `webhook_subscriptions` keeps a verify token or callback secret: its SHA-256, never the value."""
    return hashlib.sha256(value.encode()).hexdigest()


def matches_hash(expected_hash: str | None, presented: str | None) -> bool:
    """Whether `presented` is the secret whose hash we keep (constant time; nothing kept matches nothing)."""
    return (
        expected_hash is not None
        and presented is not None
        and hmac.compare_digest(expected_hash, secret_hash(presented))
    )


def not_ours() -> WebhookRefused:
    """One answer for every failure to prove a request is for our subscription: a prober learns nothing."""
    return WebhookRefused(403, "unknown_subscription", "this request is not for this application's subscription")


@dataclass(frozen=True)
class InboundEvent:
    """One event to store raw in `ingested_items`; `identity` dedupes a platform's retried deliveries."""

    event_type: str
    identity: str
    payload: Any


class Webhooks(Protocol):
    def handshake(self, params: Mapping[str, str], secret: str | None, ours: Subscription) -> dict[str, Any] | str:
        """Answer the platform's subscription check (a JSON body to send back, or a str sent as plain text), or
        raise WebhookRefused.
        `secret` is the path segment after /functions/v1/webhook-<platform>/ (None without one)."""
        ...

    def receive(
        self, body: bytes, headers: Mapping[str, str], secret: str | None, ours: Subscription
    ) -> list[InboundEvent]:
        """Authenticate and validate a delivery (the body is already size-capped), or raise WebhookRefused.
        Only what this returns is stored; the worker turns it into work through `Connector.handle_event`."""
        ...


class SubscriptionError(RuntimeError):
    """The platform refused a subscription change, or ours is in the way; the message says which."""


class Subscriptions(Protocol):
    """Push subscriptions, where a platform has them: `trove <platform> subscribe|unsubscribe|status`."""

    def subscribe(self, conninfo: str, callback_url: str, *, rotate: bool = False) -> str:
        """Create ours (the callback is `callback_url`, plus any secret the platform needs); its id."""
        ...

    def unsubscribe(self, conninfo: str) -> str | None:
        """Delete ours; the id removed, or None when there was none."""
        ...

    def status(self, conninfo: str) -> dict[str, Any]:
        """What the platform and Trove know of it, with no secret in it."""
        ...


# --- local simulator and demo ---------------------------------------------------------------------------
class Simulator(Protocol):
    """`trove simulate <platform>`: a local HTTP server speaking the platform's API (tests and `make run`)."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def serve(self, args: argparse.Namespace) -> None:
        """Run until stopped."""
        ...


class Demo(Protocol):
    """What `trove run` does for this platform when no credentials are configured."""

    simulator_port: int

    def credentials_configured(self, env: Mapping[str, str]) -> bool: ...

    def simulated_env(self, simulator_url: str) -> dict[str, str]:
        """Settings that point the service and the worker at the simulator."""
        ...

    def simulator_args(self, port: int, posts: int) -> list[str]:
        """`trove` arguments that start the simulator with a demo account holding `posts` posts."""
        ...

    def login_hint(self, env: Mapping[str, str], simulator_url: str) -> str | None:
        """Which account to connect, where the platform needs to be told (the demo handle; with real
        credentials, the operator's from the environment); None where the consent page asks itself."""
        ...

    def after_connect(self, env: Mapping[str, str]) -> None:
        """Anything after the demo account is connected (e.g. webhook subscription)."""
        ...

    def new_post(self, simulator_url: str, text: str, *, ephemeral: bool = False) -> str:
        """`trove demo post <platform> "text" [--story]`: create an item on the simulator's demo account (it
        reaches the archive the way a real one would; `ephemeral`: one that vanishes, a story); a line saying
        what was created. ValueError: the platform has no such item."""
        ...

    def hints(self, simulator_url: str) -> list[str]:
        """Lines printed under "Look at it" (e.g. how to make a new post arrive)."""
        ...

    def export_url(self, simulator_url: str) -> str | None:
        """Where the simulator serves the demo account's own export file (`trove run` imports it after the
        sync); None where the platform has none."""
        ...


# --- event streams --------------------------------------------------------------------------------------
class StreamHost(Protocol):
    """What the worker gives a platform's stream consumer: who to follow, where it left off, and where
    events go. The consumer never touches the database itself."""

    stopping: asyncio.Event

    async def followed(self) -> frozenset[str]:
        """platform_user_ids of the accounts to follow now (active, connected)."""
        ...

    async def followed_changed(self) -> None:
        """Returns when the followed set may have changed (an account connected or disconnected)."""
        ...

    async def load_cursor(self, consumer: str) -> int | None:
        """Where `consumer` (one connection of the stream) left off, as the platform counts (None: never ran)."""
        ...

    async def catch_up(self, platform_user_ids: frozenset[str]) -> None:
        """Queue a poll of these accounts: the stream follows them from now on, and the poll finds what they
        did before it did (between their backfill and now)."""
        ...

    async def store(self, consumer: str, events: list[InboundEvent], cursor: int | None) -> None:
        """Store events raw (deduplicated by identity) and the cursor they reach, in one transaction; the
        worker turns each into work through `Connector.handle_event`, as it does webhook events."""
        ...


class Stream(Protocol):
    """A platform's real-time event stream (such as a Jetstream): one long-running consumer in the worker."""

    async def run(self, http: httpx.AsyncClient, host: StreamHost) -> None:
        """Follow the stream until host.stopping is set; reconnect on its own after network trouble."""
        ...


# --- import from export files --------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportOwner:
    """Whose export it is, as the platform knows the account: the same id a connected account has, or None
    where the export does not carry it (then the user's account of that username is the one)."""

    platform_user_id: str | None
    username: str
    display_name: str | None = None


@dataclass(frozen=True)
class ExportFile:
    """A media file inside the export, stored as it is (no download). `media_key` is the key the API's
    MediaRef has for the same file where the export tells it (so one file is one row), else one of its own."""

    media_key: str
    entry: str  # its name in the archive


@dataclass(frozen=True)
class ExportMatch:
    """How to find the same post archived from the API when the export does not carry the platform's id:
    the account's post created at `created_at` (to the second) of one of `content_types`."""

    created_at: datetime
    content_types: frozenset[str]


@dataclass
class ExportRecord:
    """One record read from an export, in the archive's own order (an import resumes by counting them).

    `payload` is kept raw in ingested_items (source 'import'), deduplicated by (`identity`, its content), so
    a record read again changes nothing and a changed one is kept beside the first. `post` is what it
    archives (None: a record kept raw only); its post_data must be what `Connector.normalize` reads, so it
    can be reprocessed like a synced post. Where the API archived the same post, the stored raw post keeps
    its keys and takes only the ones it lacks from the export. `files`: media in the export for that post.
    `problem`: why this record could not be read whole (e.g. a corrupt activity file): recorded on the
    import's log, the others go on."""

    identity: str
    event_type: str  # e.g. "export.activity", "export.post"
    payload: Any
    post: NormalizedPost | None = None
    files: tuple[ExportFile, ...] = ()
    match: ExportMatch | None = None
    problem: str | None = None


class ExportUnreadable(Exception):
    """The file cannot be imported as this platform's export (truncated, another platform's, missing what
    it must have): the message names the entry at fault."""


class ExportArchiveView(Protocol):
    """What a reader sees of an export (trove.imports.archive.ExportArchive): entries already checked
    against traversal, links and bombs; each read capped."""

    name: str  # the file's name as uploaded

    def names(self) -> list[str]: ...

    def read(self, entry: str) -> bytes:
        """The entry's bytes (a .gz entry is not unpacked here); ExportUnreadable when it is too large."""
        ...

    def read_unpacked(self, entry: str) -> bytes:
        """The entry's bytes, gunzipped when its name ends in .gz (capped like the archive itself)."""
        ...


class ExportReader(Protocol):
    """A platform's export format (`trove import`, POST /api/import). It never touches the database or the
    network, except `prepare`, which may look things up (where a repository's blobs are served)."""

    def recognizes(self, archive: ExportArchiveView) -> bool:
        """Whether the file is this platform's export (cheap: by its entries' names or its first bytes)."""
        ...

    def owner(self, archive: ExportArchiveView) -> ExportOwner:
        """Whose export it is; ExportUnreadable when it does not say."""
        ...

    async def prepare(self, http: httpx.AsyncClient, owner: ExportOwner) -> dict[str, Any]:
        """Anything `records` needs from outside the file (empty where nothing)."""
        ...

    def records(
        self, archive: ExportArchiveView, owner: ExportOwner, context: dict[str, Any]
    ) -> Iterator[ExportRecord]:
        """Every record, in the same order each time the same file is read."""
        ...


# --- the platform ---------------------------------------------------------------------------------------
class Platform(Protocol):
    name: str  # as in platform_enum and the URLs (/functions/v1/oauth-<name>/..., /webhook-<name>)
    connector: Connector
    oauth: OAuth | None
    webhooks: Webhooks | None
    subscriptions: Subscriptions | None
    simulator: Simulator | None
    demo: Demo | None
    stream: Stream | None
    export: ExportReader | None
