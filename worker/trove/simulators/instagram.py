"""An Instagram simulator: Meta's "Instagram API with Instagram Login" on one port, every host of it at once.

- www.instagram.com: the OAuth consent screen (`/oauth/authorize`, granted at once, or refused on request);
- api.instagram.com: the code exchange (`POST /oauth/access_token`, a short-lived token of one hour);
- graph.instagram.com: the long-lived token exchange and refresh (60 days; refreshable once 24 hours old), the
  profile (`/me`), the feed and reels (`/me/media`), live stories (`/me/stories`), media and carousel children
  by id, `/me/subscribed_apps`; with Meta's error bodies (190 with subcodes 460/463, 100/33 for a missing or
  deleted object, 100 for an unknown field), its usage headers (X-App-Usage, X-Business-Use-Case-Usage) and its
  rate-limit refusals (codes 4, 17, or 613/32 on request), under any `/vNN.N/` prefix or none;
- the CDN (scontent / video hosts): files behind signed URLs that expire (`oe`), signed anew on every answer
  (new `_nc_ohc`/`oh`), 403 when expired or tampered with, 404 once the media is deleted;
- webhooks as a Meta app dashboard configures them (the hub.challenge handshake), deliveries signed with the app
  secret (X-Hub-Signature-256) for comments, mentions and story_insights (sent when a story expires).

Payload keys, id and timestamp formats, paging and the webhook envelope follow the recorded payloads in
shared/fixtures/instagram, and the routes, bodies and /_sim controls the interface agreed with the Instagram
connector. The simulator has a clock of its own (`/_sim/clock` moves it forward): token age and expiry, story expiry,
CDN URL expiry and the hourly rate windows all read it, so a test can live through days in a second.

Generated data comes from the seed: accounts with posts of every shape (images, carousels of 2-10 children with
video children, videos, reels, some reels with copyrighted audio and so no media_url, captions with #tags,
@mentions, emoji and newlines or none at all, some posts with like counts hidden) and live stories.

Request counting, scripted faults (`fail_next`, `blip_rate`, ...), webhook delivery with retries and /_sim/config
and /_sim/stats come from `simulators.base.PlatformSimulator`. Tokens are this module's own: Instagram has no
refresh token (a long-lived token refreshes itself), and their age is measured by the simulator's clock.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import string
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from trove.simulators.base import JPEG, PLAYABLE_MP4, FixedWindow, PlatformSimulator, RateLimit

SHORT_TOKEN_TTL = 3600  # api.instagram.com's code exchange: one hour
LONG_TOKEN_TTL = 60 * 86400  # graph.instagram.com's long-lived tokens: 60 days
REFRESH_MIN_AGE = 86400  # "Tokens must be at least 24 hours old to be refreshed"
CODE_TTL = 3600  # authorization codes are good for an hour, once
STORY_TTL = 86400
URL_TTL = 3 * 86400
APP_LIMIT = 200_000  # calls per hour for the app
ACCOUNT_LIMIT = 4_800  # calls per hour per account (Meta: 4800 x impressions; generous here)
WINDOW = 3600
DEFAULT_SCOPE = "instagram_business_basic"

IMAGE_BUCKET, VIDEO_BUCKET = "t51.29350-15", "t50.2886-16"
MP4 = PLAYABLE_MP4  # reels and videos: a file a browser really plays

# Instagram's media pk: milliseconds since its epoch << 23 | shard << 10 | sequence; the shortcode is the pk in
# this base-64 alphabet (so "CRyZpmrjYC4" is 2626274342904627384, as in the fixtures).
IG_EPOCH_MS = 1314220021721
SHORTCODE_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"

MEDIA_FIELDS = frozenset(
    {
        "id", "caption", "media_type", "media_product_type", "media_url", "thumbnail_url", "permalink",
        "shortcode", "timestamp", "like_count", "comments_count", "is_comment_enabled", "username", "children",
        "owner", "ig_id", "is_shared_to_feed",
    }
)  # fmt: skip
USER_FIELDS = frozenset(
    {
        "id", "user_id", "username", "name", "account_type", "profile_picture_url", "followers_count",
        "follows_count", "media_count", "biography", "website",
    }
)  # fmt: skip
ALL_MEDIA_FIELDS = (
    "id,caption,media_type,media_product_type,media_url,thumbnail_url,permalink,shortcode,timestamp,like_count,"
    "comments_count,is_comment_enabled,username,owner,ig_id,is_shared_to_feed,"
    "children{id,media_type,media_url,thumbnail_url,permalink,shortcode,timestamp,username,owner,ig_id}"
)
WEBHOOK_FIELDS = frozenset(
    {
        "comments", "mentions", "story_insights", "live_comments", "messages", "messaging_postbacks",
        "messaging_seen", "messaging_optins", "messaging_referral", "message_reactions", "message_edit",
        "messaging_handover", "standby",
    }
)  # fmt: skip
DEFAULT_WEBHOOK_FIELDS = ("comments", "mentions", "story_insights")

UNSUPPORTED_GET = (
    "Unsupported get request. Object with ID '{}' does not exist, cannot be loaded due to missing permissions, or "
    "does not support this operation. Please read the Graph API documentation at "
    "https://developers.facebook.com/docs/graph-api"
)
RATE_MESSAGES = {
    4: "Application request limit reached",
    17: "(#17) User request limit reached",
    32: "Page request limit reached",
    613: "Calls to this api have exceeded the rate limit.",
}

OPENERS = [
    "Golden hour at the lake", "Sunday market haul", "New trail, same legs", "Coffee first ☕",
    "Throwback to this view", "Studio day", "Tiny wins", "First snow of the season ❄️", "Late night ramen 🍜",
    "Road trip, day 3", "Finally framed it", "Garden update 🌱", "Rainy window mood", "Moving day chaos 📦",
    "The best seat in the house", "Façade of the old café", "Ten minutes before the storm",
]  # fmt: skip
LINES = [
    "Shot on film, no edits.", "Three hours of climbing for this.", "Swipe for the before/after ➡️",
    "More in the stories.", "Still can't believe this happened.", "Recipe in the comments!",
    "Who else was there?", "Sound on 🔊",
]  # fmt: skip
MENTIONS = ["@mira.k", "@tom_runs", "@localbakery", "@the.studio.co", "@jun_photos", "@anna.b"]
TAGS = [
    "#sunset", "#travel", "#foodie", "#nofilter", "#hiking", "#filmphotography", "#coffee", "#weekend", "#reels",
    "#latergram", "#garden", "#mountains", "#café", "#35mm", "#streetphotography",
]  # fmt: skip
EMOJI = ["✨", "🌅", "🙌", "❤️", "😂", "🏔️", "🌊", "🐶", "🎉", "👀", "🇵🇹"]


# --- route parameters -----------------------------------------------------------------------------------------
class GraphVersion(Convertor[str]):
    """`/v23.0/`-style prefixes: any version is accepted, as the real API keeps older ones alive for years."""

    regex: ClassVar[str] = r"v\d+\.\d+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class NodeId(Convertor[str]):
    """A numeric object id without a version prefix: digits only, so that it never shadows /_sim or /oauth."""

    regex: ClassVar[str] = r"\d+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("graph_version", GraphVersion())
register_url_convertor("node_id", NodeId())


# --- errors ---------------------------------------------------------------------------------------------------
def fbtrace_id() -> str:
    return "A" + "".join(secrets.choice(string.ascii_letters + string.digits + "_-") for _ in range(22))


class GraphError(Exception):
    """A graph.instagram.com refusal: `{"error": {message, type, is_transient, code, error_subcode, fbtrace_id}}`."""

    def __init__(
        self,
        message: str,
        *,
        code: int = 100,
        type_: str = "OAuthException",
        subcode: int | None = None,
        transient: bool = False,
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.message, self.code, self.type, self.subcode = message, code, type_, subcode
        self.transient, self.status = transient, status

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.transient:
            error["is_transient"] = True
        error["code"] = self.code
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def not_found(node_id: str) -> GraphError:
    return GraphError(UNSUPPORTED_GET.format(node_id), type_="GraphMethodException", code=100, subcode=33)


def oauth_error(message: str) -> JSONResponse:
    """api.instagram.com's older error shape, for the code exchange."""
    return JSONResponse({"error_type": "OAuthException", "code": 400, "error_message": message}, status_code=400)


# --- fields= --------------------------------------------------------------------------------------------------
Fields = list[tuple[str, "Fields | None"]]
FIELD_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)((?:\.[a-z_]+\([^)]*\))*)\s*")


def parse_fields(text: str) -> Fields:
    """`id,caption,children{id,media_url}` as [(name, subfields or None)]; modifiers such as `.limit(5)` are
    accepted and ignored. ValueError when it does not parse."""
    pos = 0

    def parse_list() -> Fields:
        nonlocal pos
        out: Fields = []
        while True:
            match = FIELD_NAME.match(text, pos)
            if match is None:
                raise ValueError(text)
            pos = match.end()
            sub: Fields | None = None
            if text.startswith("{", pos):
                pos += 1
                sub = parse_list()
                if not text.startswith("}", pos):
                    raise ValueError(text)
                pos += 1
            out.append((match.group(1), sub))
            while text.startswith(" ", pos):
                pos += 1
            if not text.startswith(",", pos):
                return out
            pos += 1
            if pos == len(text) or text.startswith("}", pos):  # a trailing comma, as Meta tolerates
                return out

    fields = parse_list()
    if pos != len(text):
        raise ValueError(text)
    return fields


def requested_fields(request: Request, allowed: frozenset[str], node_type: str) -> Fields:
    """The `fields` parameter, checked against what the node has (Meta answers 100 for any unknown field)."""
    text = request.query_params.get("fields", "").strip()
    if not text:
        return [("id", None)]  # Meta's default: the id alone
    try:
        fields = parse_fields(text)
    except ValueError:
        raise GraphError(f"(#100) Syntax error in fields: {text}") from None
    check_fields(fields, allowed, node_type)
    return fields


def check_fields(fields: Fields, allowed: frozenset[str], node_type: str) -> None:
    for name, sub in fields:
        if name not in allowed:
            raise GraphError(f"(#100) Tried accessing nonexisting field ({name}) on node type ({node_type})")
        if name == "children" and sub:
            check_fields(sub, MEDIA_FIELDS, "IGMedia")


def meta_time(ts: float) -> str:
    """Meta's timestamp format: "2021-07-26T10:45:20+0000"."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def shortcode(pk: int) -> str:
    chars = []
    while pk:
        pk, digit = divmod(pk, 64)
        chars.append(SHORTCODE_ALPHABET[digit])
    return "".join(reversed(chars)) or "A"


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- data -----------------------------------------------------------------------------------------------------
@dataclass
class Account:
    user_id: str  # the Instagram professional account id (webhook entry ids, X-Business-Use-Case-Usage keys)
    app_user_id: str  # /me's `id`: app-scoped, differs from user_id
    username: str
    name: str
    account_type: str
    followers_count: int
    follows_count: int
    picture_key: str
    rng: random.Random  # this account's own generator: its data comes out the same for the same seed
    biography: str = ""
    media: list[Media] = field(default_factory=list)  # FEED and REELS, top-level
    stories: list[Media] = field(default_factory=list)
    subscribed_fields: list[str] = field(default_factory=list)


@dataclass
class Media:
    id: str
    ig_id: int
    owner: Account
    media_type: str  # IMAGE | VIDEO | CAROUSEL_ALBUM
    product: str  # FEED | REELS | STORY
    timestamp: int
    caption: str | None = None
    like_count: int = 0
    likes_hidden: bool = False
    comments_count: int = 0
    is_comment_enabled: bool = True
    copyrighted: bool = False  # a reel with licensed music: no media_url
    file_key: str | None = None  # the image, or the video's mp4
    thumb_key: str | None = None  # a video's jpeg thumbnail
    children: list[Media] = field(default_factory=list)
    parent: Media | None = None
    deleted: bool = False
    insights_sent: bool = False  # a story's story_insights webhook, once, when it expires

    @property
    def shortcode(self) -> str:
        return shortcode(self.ig_id)

    def gone(self) -> bool:
        return self.deleted or (self.parent is not None and self.parent.deleted)

    def sort_key(self) -> tuple[int, int]:
        return self.timestamp, int(self.id)


@dataclass
class CdnFile:
    ext: str  # jpg | mp4
    media: Media | None  # None: a profile picture, always there


@dataclass
class AccessToken:
    user_id: str
    permissions: str
    long_lived: bool
    issued_at: int
    expires_at: int
    invalidated: bool = False  # exchanged (short-lived) or revoked: Meta's subcode 460


@dataclass
class AuthCode:
    user_id: str
    scope: str
    redirect_uri: str
    issued_at: int
    used: bool = False


@dataclass
class Webhook:
    callback_url: str
    verify_token: str
    fields: list[str]


# A delivery's signature header for /_sim/deliver: None signs as Meta does, "" sends none, anything else is sent
# as it is (a forged signature). A context variable, so that concurrent deliveries keep their own.
FORCED_SIGNATURE: contextvars.ContextVar[str | None] = contextvars.ContextVar("forced_signature", default=None)


def percent(limit: RateLimit) -> int:
    window = limit.windows[0]
    return 100 if window.limit <= 0 else min(100, window.used * 100 // window.limit)


# --- the simulator --------------------------------------------------------------------------------------------
class InstagramSimulator(PlatformSimulator[str]):
    default_scope = DEFAULT_SCOPE

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        seed: int = 1,
        url_ttl: int = URL_TTL,
        app_limit: int = APP_LIMIT,
        account_limit: int = ACCOUNT_LIMIT,
    ) -> None:
        super().__init__(client_id=client_id, client_secret=client_secret, seed=seed)
        self.seed = seed
        self.clock_offset = 0.0
        self.url_ttl = url_ttl
        self.short_token_ttl = SHORT_TOKEN_TTL
        self.long_token_ttl = LONG_TOKEN_TTL
        self.accounts: dict[str, Account] = {}
        self.media_index: dict[str, Media] = {}  # every media id, carousel children included
        self.files: dict[str, CdnFile] = {}
        self.files_served: dict[str, int] = {}
        self.ids: set[str] = set()
        self.tokens: dict[str, AccessToken] = {}
        self.auth_codes: dict[str, AuthCode] = {}
        self.cdn_secret = secrets.token_bytes(16)
        self.app_window = RateLimit(FixedWindow(app_limit, WINDOW))
        self.account_limit = account_limit
        self.account_windows: dict[str, RateLimit] = {}
        self.rate_limit_code: int | None = None
        self.throttle_paths: list[str] = []
        self.webhook: Webhook | None = None
        self.background: set[asyncio.Task[Any]] = set()

    @property
    def webhook_secret(self) -> str:
        """Deliveries are signed with the app secret, as Meta's are."""
        return self.client_secret

    def now(self) -> float:
        """The simulator's clock: real time moved forward by /_sim/clock."""
        return time.time() + self.clock_offset

    # --- data ---------------------------------------------------------------------------------------------
    def _new_id(self, rng: random.Random, prefixes: tuple[str, ...] = ("17", "18"), digits: int = 17) -> str:
        """A decimal id like Meta's ("17896129349106152"), unique in this simulator."""
        while True:
            prefix = rng.choice(prefixes)
            value = prefix + "".join(rng.choices(string.digits, k=digits - len(prefix)))
            if value not in self.ids:
                self.ids.add(value)
                return value

    def _new_file(self, rng: random.Random, ext: str, media: Media | None) -> str:
        key = f"{rng.randint(10**8, 10**9 - 1)}_{rng.randint(10**14, 10**16 - 1)}_{rng.randint(10**18, 10**19 - 1)}"
        self.files[key] = CdnFile(ext, media)
        return key

    def add_account(
        self,
        username: str = "trove.demo",
        posts: int = 0,
        stories: int = 0,
        account_type: str = "BUSINESS",
        *,
        seed: int | None = None,
    ) -> Account:
        """An account with `posts` generated feed posts and reels spread over the past years and `stories` live
        stories; everything from `seed` (the simulator's by default) and the username."""
        if any(account.username == username for account in self.accounts.values()):
            raise ValueError(f"username {username!r} is taken")
        rng = random.Random(f"{self.seed if seed is None else seed}:{username}")
        account = Account(
            user_id=self._new_id(rng, ("17841",)),
            app_user_id=self._new_id(rng, ("2",)),
            username=username,
            name=" ".join(part.capitalize() for part in re.split(r"[._]+", username) if part) or username,
            account_type=account_type,
            followers_count=rng.randint(120, 48_000),
            follows_count=rng.randint(40, 1_500),
            picture_key="",
            rng=rng,
            biography="Archiving my life one post at a time ✨",
        )
        account.picture_key = self._new_file(rng, "jpg", None)
        self.accounts[account.user_id] = account
        now = int(self.now())
        self._generate_posts(account, posts, now)
        for offset in sorted((rng.randint(600, 20 * 3600) for _ in range(stories)), reverse=True):
            self.add_media(account, product="STORY", media_type=rng.choice(["IMAGE", "IMAGE", "VIDEO"]),
                           timestamp=now - offset)  # fmt: skip
        return account

    def _generate_posts(self, account: Account, count: int, now: int) -> None:
        """A mix of every shape, newest a few hours old, the rest spread over up to three years."""
        rng = account.rng
        kinds = rng.choices(["IMAGE", "CAROUSEL_ALBUM", "VIDEO", "REELS"], weights=[40, 25, 10, 25], k=count)
        shapes = ["IMAGE", "CAROUSEL_ALBUM", "VIDEO", "REELS"]
        for position, kind in zip(rng.sample(range(count), min(count, 4)), shapes, strict=False):
            kinds[position] = kind  # every shape shows up in any account of four posts or more
        gap = max(3600, min(30 * 86400, 3 * 365 * 86400 // max(count, 1)))
        ts = now - rng.randint(3 * 3600, 2 * 86400)
        made: list[Media] = []
        for kind in kinds:
            children = rng.randint(2, 10) if kind == "CAROUSEL_ALBUM" else 0
            media = self.add_media(
                account,
                product="REELS" if kind == "REELS" else "FEED",
                media_type="VIDEO" if kind == "REELS" else kind,
                timestamp=ts,
                caption=self._caption(rng),
                children=children,
                copyrighted=kind == "REELS" and rng.random() < 0.1,
                likes_hidden=rng.random() < 0.1,
            )
            made.append(media)
            ts -= int(gap * rng.uniform(0.2, 1.8)) + 1
        # Make sure the rare shapes are there in any sizeable account: a copyrighted reel, a carousel with a
        # video child, a post without caption and one with hidden likes.
        if count >= 10:
            reels = [m for m in made if m.product == "REELS"]
            if reels and not any(m.copyrighted for m in reels):
                rng.choice(reels).copyrighted = True
            carousels = [m for m in made if m.media_type == "CAROUSEL_ALBUM"]
            if carousels and not any(c.media_type == "VIDEO" for m in carousels for c in m.children):
                self._make_video(rng.choice(carousels).children[-1])
            if all(m.caption is not None for m in made):
                rng.choice(made).caption = None
            if not any(m.likes_hidden for m in made):
                rng.choice(made).likes_hidden = True

    def _make_video(self, media: Media) -> None:
        media.media_type = "VIDEO"
        media.file_key = self._new_file(media.owner.rng, "mp4", media)
        media.thumb_key = self._new_file(media.owner.rng, "jpg", media)

    @staticmethod
    def _caption(rng: random.Random) -> str | None:
        """Captions as people write them: hashtags, mentions, emoji, blank lines, dot spacers; some none."""
        if rng.random() < 0.12:
            return None
        opener = f"{rng.choice(OPENERS)} {''.join(rng.sample(EMOJI, rng.randint(0, 3)))}".strip()
        tags = " ".join(rng.sample(TAGS, rng.randint(0, 6)))
        mention = rng.choice(MENTIONS) if rng.random() < 0.45 else ""
        style = rng.randrange(4)
        if style == 0:
            return " ".join(part for part in (opener, mention, tags) if part)
        if style == 1:
            middle = f"{rng.choice(LINES)} with {mention}" if mention else rng.choice(LINES)
            return "\n\n".join(part for part in (opener, middle, ".\n.\n.", tags) if part)
        if style == 2:
            return f"{opener}\n{rng.choice(LINES)} {mention}".strip()
        return tags or opener

    def add_media(
        self,
        account: Account,
        *,
        product: str = "FEED",
        media_type: str = "IMAGE",
        timestamp: int | None = None,
        caption: str | None = None,
        children: int = 0,
        copyrighted: bool = False,
        likes_hidden: bool = False,
        like_count: int | None = None,
        comments_count: int | None = None,
    ) -> Media:
        """One media of `account` (a carousel when `children` > 0; a reel is always a video)."""
        rng = account.rng
        ts = int(self.now()) if timestamp is None else int(timestamp)
        if children:
            media_type = "CAROUSEL_ALBUM"
        if product == "REELS":
            media_type = "VIDEO"
        story = product == "STORY"
        if like_count is None:
            like_count = rng.choice([0, 1, 3, 8, 15, 42, 120, 860])
        if comments_count is None:
            comments_count = rng.choice([0, 0, 1, 2, 5, 14])
        media = Media(
            id=self._new_id(rng),
            ig_id=self._ig_pk(rng, ts),
            owner=account,
            media_type=media_type,
            product=product,
            timestamp=ts,
            caption=None if story else caption,
            like_count=0 if story else like_count,
            likes_hidden=likes_hidden,
            comments_count=0 if story else comments_count,
            is_comment_enabled=rng.random() > 0.05,
            copyrighted=copyrighted and media_type == "VIDEO",
        )
        if media_type == "IMAGE":
            media.file_key = self._new_file(rng, "jpg", media)
        elif media_type == "VIDEO":
            self._make_video(media)
        else:
            for _ in range(max(children, 2)):
                child = Media(
                    self._new_id(rng), self._ig_pk(rng, ts - 1), account, "IMAGE", "FEED", ts - 1, parent=media
                )
                if rng.random() < 0.25:
                    self._make_video(child)
                else:
                    child.file_key = self._new_file(rng, "jpg", child)
                media.children.append(child)
                self.media_index[child.id] = child
        self.media_index[media.id] = media
        (account.stories if story else account.media).append(media)
        return media

    @staticmethod
    def _ig_pk(rng: random.Random, ts: int) -> int:
        return (
            ((ts * 1000 + rng.randrange(1000) - IG_EPOCH_MS) << 23) | (rng.randrange(8192) << 10) | rng.randrange(1024)
        )

    async def sim_export(self, request: Request) -> Response:
        """The demo account's "Download your information" export (JSON): what the API serves, plus the posts
        from before the account was professional (the API never lists them): `trove run` imports it."""
        import tempfile
        from pathlib import Path

        from trove.simulators.instagram_export import ExportItem, build_instagram_export, items_from_simulator

        account = self._default_account()
        items = items_from_simulator(account)
        oldest = min((m.timestamp for m in account.media), default=int(time.time()))
        items += [
            ExportItem("post", oldest - 86400 * (30 + n), f"From before the business account, n°{n + 1} ☕")
            for n in range(5)
        ]
        with tempfile.TemporaryDirectory() as folder:
            path = build_instagram_export(Path(folder) / "export.zip", account.username, account.name, items)
            data = path.read_bytes()
        disposition = f'attachment; filename="instagram-{account.username}.zip"'
        return Response(data, media_type="application/zip", headers={"Content-Disposition": disposition})

    def _default_account(self) -> Account:
        return next(iter(self.accounts.values()), None) or self.add_account()

    # --- clock and stories --------------------------------------------------------------------------------
    def _story_live(self, story: Media, now: float) -> bool:
        return not story.deleted and story.timestamp + STORY_TTL > now

    def _newly_expired(self, now: float) -> list[Media]:
        """Stories past their 24 hours whose insights have not been sent yet (each is sent once)."""
        expired = []
        for account in self.accounts.values():
            for story in account.stories:
                if not story.deleted and not story.insights_sent and not self._story_live(story, now):
                    story.insights_sent = True
                    expired.append(story)
        return expired

    def story_insights(self, story: Media) -> dict[str, Any]:
        rng = random.Random(f"{self.seed}:insights:{story.id}")
        reach = rng.randint(5, 400)
        return {
            "media_id": story.id,
            "exits": rng.randint(0, reach // 10 + 1),
            "replies": rng.randint(0, 3),
            "reach": reach,
            "taps_forward": rng.randint(0, reach),
            "taps_back": rng.randint(0, reach // 5 + 1),
            "impressions": reach + rng.randint(0, reach),
        }

    async def _send_insights(self, stories: Iterable[Media]) -> None:
        for story in stories:
            await self._deliver_event(story.owner, "story_insights", self.story_insights(story))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)  # keep a reference until it is done (the loop keeps only weak ones)
        task.add_done_callback(self.background.discard)

    # --- CDN ----------------------------------------------------------------------------------------------
    def _cdn_hash(self, path: str, ohc: str, oe: str) -> str:
        return hmac.new(self.cdn_secret, f"{path}|{ohc}|{oe}".encode(), "sha256").hexdigest()[:32]

    def cdn_url(self, key: str) -> str:
        """A new signed URL for a file on every call (new `_nc_ohc` and `oh`), expiring url_ttl from now."""
        ext = self.files[key].ext
        bucket = VIDEO_BUCKET if ext == "mp4" else IMAGE_BUCKET
        path = f"/cdn/v/{bucket}/{key}_n.{ext}"
        ohc = "".join(secrets.choice(string.ascii_letters + string.digits + "-_") for _ in range(19))
        oe = format(int(self.now()) + self.url_ttl, "08X")
        query = {"_nc_cat": 1, "_nc_sid": "59939d" if ext == "mp4" else "8ae9d6", "_nc_ohc": ohc,
                 "oh": self._cdn_hash(path, ohc, oe), "oe": oe}  # fmt: skip
        return f"{self.base_url}{path}?{urlencode(query)}"

    async def cdn_file(self, request: Request) -> Response:
        self._count("cdn")
        params = request.query_params
        path = request.url.path
        ohc, oh, oe = params.get("_nc_ohc", ""), params.get("oh", ""), params.get("oe", "")
        if not hmac.compare_digest(self._cdn_hash(path, ohc, oe), oh):
            return PlainTextResponse("Bad URL hash", status_code=403)
        try:
            expires = int(oe, 16)
        except ValueError:
            return PlainTextResponse("Bad URL hash", status_code=403)
        if expires < self.now():
            return PlainTextResponse("URL signature expired", status_code=403)
        match = re.fullmatch(r"(\d+_\d+_\d+)_n\.(jpg|mp4)", request.path_params["name"])
        entry = self.files.get(match.group(1)) if match else None
        bucket = request.path_params["bucket"]
        if (
            match is None
            or entry is None
            or entry.ext != match.group(2)
            or bucket != (VIDEO_BUCKET if entry.ext == "mp4" else IMAGE_BUCKET)
            or (entry.media is not None and entry.media.gone())
        ):
            return PlainTextResponse("Not Found", status_code=404)
        key = match.group(1)
        self.files_served[key] = self.files_served.get(key, 0) + 1
        if entry.ext == "mp4":
            return Response(MP4, media_type="video/mp4")
        return Response(JPEG, media_type="image/jpeg")

    # --- payloads -----------------------------------------------------------------------------------------
    def media_json(self, media: Media, fields: Fields) -> dict[str, Any]:
        """A media object with the requested fields (and `id`), leaving out what Meta leaves out: caption when
        there is none, like_count when hidden, media_url of a reel with copyrighted audio, counts of stories and
        carousel children."""
        out: dict[str, Any] = {"id": media.id}
        story, child = media.product == "STORY", media.parent is not None
        for name, sub in fields:
            if name == "caption" and media.caption is not None and not (story or child):
                out[name] = media.caption
            elif name == "media_type":
                out[name] = media.media_type
            elif name == "media_product_type":
                out[name] = media.product
            elif name == "media_url":
                if media.media_type == "CAROUSEL_ALBUM":
                    first = next((c for c in media.children if not c.deleted), None)
                    if first is not None and first.file_key is not None:
                        out[name] = self.cdn_url(first.file_key)
                elif media.file_key is not None and not media.copyrighted:
                    out[name] = self.cdn_url(media.file_key)
            elif name == "thumbnail_url" and media.thumb_key is not None:
                out[name] = self.cdn_url(media.thumb_key)
            elif name == "permalink":
                out[name] = self._permalink(media)
            elif name == "shortcode":
                out[name] = media.shortcode
            elif name == "timestamp":
                out[name] = meta_time(media.timestamp)
            elif name == "like_count" and not (story or child or media.likes_hidden):
                out[name] = media.like_count
            elif name == "comments_count" and not (story or child):
                out[name] = media.comments_count
            elif name == "is_comment_enabled" and not (story or child):
                out[name] = media.is_comment_enabled
            elif name == "username":
                out[name] = media.owner.username
            elif name == "owner":
                out[name] = {"id": media.owner.user_id}
            elif name == "ig_id":
                out[name] = str(media.ig_id)
            elif name == "is_shared_to_feed" and media.product == "REELS":
                out[name] = True
            elif name == "children" and media.media_type == "CAROUSEL_ALBUM":
                kids = [c for c in media.children if not c.deleted]
                out[name] = {"data": [self.media_json(c, sub or [("id", None)]) for c in kids]}
        return out

    @staticmethod
    def _permalink(media: Media) -> str:
        if media.product == "STORY":
            return f"https://www.instagram.com/stories/{media.owner.username}/{media.id}/"
        if media.product == "REELS":
            return f"https://www.instagram.com/reel/{media.shortcode}/"
        return f"https://www.instagram.com/p/{media.shortcode}/"

    def user_json(self, account: Account, fields: Fields) -> dict[str, Any]:
        values: dict[str, Any] = {
            "user_id": account.user_id,
            "username": account.username,
            "name": account.name,
            "account_type": account.account_type,
            "followers_count": account.followers_count,
            "follows_count": account.follows_count,
            "media_count": sum(1 for m in account.media if not m.deleted),
            "biography": account.biography,
            "website": f"https://example.org/{account.username}",
        }
        out: dict[str, Any] = {"id": account.app_user_id}
        for name, _ in fields:
            if name == "profile_picture_url":
                out[name] = self.cdn_url(account.picture_key)
            elif name in values:
                out[name] = values[name]
        return out

    # --- paging -------------------------------------------------------------------------------------------
    @staticmethod
    def _cursor(media: Media) -> str:
        return base64.urlsafe_b64encode(f"{media.timestamp}:{media.id}".encode()).decode().rstrip("=")

    @staticmethod
    def _uncursor(cursor: str) -> tuple[int, int]:
        try:
            ts, media_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":")
            return int(ts), int(media_id)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise GraphError("(#100) Invalid cursor: " + cursor[:40]) from None

    def _page(self, request: Request, items: list[Media], fields: Fields) -> dict[str, Any]:
        """Meta's cursor paging, newest first: `paging.cursors` of the page's ends, `next` (absolute, with the
        token) unless this is the last page, `previous` unless it is the first. A cursor is a position, so
        items deleted meanwhile do not shift the pages."""
        params = request.query_params
        try:
            limit = int(params.get("limit", 25))
        except ValueError:
            raise GraphError("(#100) Param limit must be a number") from None
        if limit < 1:
            raise GraphError("(#100) Param limit must be a positive number")
        limit = min(limit, 100)
        ordered = sorted(items, key=Media.sort_key, reverse=True)
        if params.get("after"):
            position = self._uncursor(params["after"])
            page = [m for m in ordered if m.sort_key() < position][:limit]
        elif params.get("before"):
            position = self._uncursor(params["before"])
            page = [m for m in ordered if m.sort_key() > position][-limit:]
        else:
            page = ordered[:limit]
        if not page:
            return {"data": []}
        first, last = page[0], page[-1]
        paging: dict[str, Any] = {"cursors": {"before": self._cursor(first), "after": self._cursor(last)}}
        if any(m.sort_key() < last.sort_key() for m in ordered):
            paging["next"] = self._page_url(request, limit, after=self._cursor(last))
        if any(m.sort_key() > first.sort_key() for m in ordered):
            paging["previous"] = self._page_url(request, limit, before=self._cursor(first))
        return {"data": [self.media_json(m, fields) for m in page], "paging": paging}

    def _page_url(self, request: Request, limit: int, **cursor: str) -> str:
        query: list[tuple[str, str | int]] = [("access_token", self._token_value(request) or ""), ("pretty", 0)]
        if "fields" in request.query_params:
            query.append(("fields", request.query_params["fields"]))
        query += [("limit", limit), *cursor.items()]
        return f"{self.base_url}{request.url.path}?{urlencode(query)}"

    # --- tokens -------------------------------------------------------------------------------------------
    @staticmethod
    def _token_value(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith(("bearer ", "oauth ")):
            return header.split(" ", 1)[1].strip()
        return request.query_params.get("access_token") or None

    def _issue(self, user_id: str, permissions: str, long_lived: bool) -> tuple[str, AccessToken]:
        value = ("IGAA" if long_lived else "IGQV") + "".join(
            secrets.choice(string.ascii_letters + string.digits) for _ in range(140)
        )
        now = int(self.now())
        ttl = self.long_token_ttl if long_lived else self.short_token_ttl
        token = AccessToken(user_id, permissions, long_lived, issued_at=now, expires_at=now + ttl)
        self.tokens[value] = token
        return value, token

    def _check_token(self, value: str | None) -> AccessToken:
        """The token, or Meta's refusal: 2500 without one, 190 for a malformed or unknown one, 190/460 for an
        invalidated one, 190/463 for an expired one."""
        if not value:
            raise GraphError("An active access token must be used to query information about the current user.",
                             code=2500)  # fmt: skip
        token = self.tokens.get(value)
        if token is None:
            raise GraphError("Invalid OAuth access token - Cannot parse access token", code=190)
        if token.invalidated:
            raise GraphError(
                "Error validating access token: The session has been invalidated because the user changed their "
                "password or Facebook has changed the session for security reasons.",
                code=190,
                subcode=460,
            )
        now = self.now()
        if token.expires_at <= now:
            fmt = "%A, %d-%b-%y %H:%M:%S UTC"
            expired = datetime.fromtimestamp(token.expires_at, UTC).strftime(fmt)
            raise GraphError(
                f"Error validating access token: Session has expired on {expired}. The current time is "
                f"{datetime.fromtimestamp(now, UTC).strftime(fmt)}.",
                code=190,
                subcode=463,
            )
        return token

    def expire_tokens(self, now: float) -> None:
        """/_sim/config `expire_tokens` and `expire_tokens_in`: every token expires now (by the simulator clock)."""
        for token in self.tokens.values():
            token.expires_at = min(token.expires_at, int(self.now()) - 1)

    def revoke(self, owner: str) -> None:
        for token in self.tokens.values():
            if token.user_id == owner:
                token.invalidated = True

    # --- rate limits --------------------------------------------------------------------------------------
    def _account_window(self, user_id: str) -> RateLimit:
        if user_id not in self.account_windows:
            self.account_windows[user_id] = RateLimit(FixedWindow(self.account_limit, WINDOW))
        window = self.account_windows[user_id]
        window.roll(self.now())
        return window

    def _minutes_left(self, window: RateLimit) -> int:
        return max(1, math.ceil((window.windows[0].resets_at() - self.now()) / 60))

    def usage_headers(self, account: Account | None) -> dict[str, str]:
        """X-App-Usage always; X-Business-Use-Case-Usage when the call is for an account, with the minutes until
        its calls are allowed again (0 while they are)."""
        self.app_window.roll(self.now())
        app = percent(self.app_window)
        headers = {"X-App-Usage": compact({"call_count": app, "total_cputime": app, "total_time": app})}
        if account is not None:
            window = self._account_window(account.user_id)
            used = percent(window)
            regain = max(
                [self._minutes_left(w) for w in (window, self.app_window) if w.exhausted()],
                default=0,
            )
            usage = {"type": "instagram", "call_count": used, "total_cputime": used, "total_time": used,
                     "estimated_time_to_regain_access": regain}  # fmt: skip
            headers["X-Business-Use-Case-Usage"] = compact({account.user_id: [usage]})
        return headers

    def _rate_refusal(self, app: bool) -> GraphError:
        code = self.rate_limit_code or (4 if app else 17)
        return GraphError(
            RATE_MESSAGES.get(code, RATE_MESSAGES[17]),
            code=code,
            subcode=2207051 if code == 17 else None,
            transient=True,
        )

    def _admit(self, request: Request, name: str) -> tuple[Account | None, GraphError | None]:
        """What every graph call goes through, in the base's order: counted, rate-limited (the app's hourly
        window, then the account's, both by the simulator clock; with throttle_paths only matching paths are
        refused), scripted faults, then the token. Returns the account (when the token names one) and the
        refusal, if any."""
        self._count(name)
        self.base_url = str(request.base_url).rstrip("/")
        now = self.now()
        expired = self._newly_expired(now)
        if expired:
            self._in_background(self._send_insights(expired))
        value = self._token_value(request)
        try:  # the account is known (charged, and named in the headers) only for a valid token
            account: Account | None = self.accounts[self._check_token(value).user_id]
        except GraphError:
            account = None
        self.app_window.roll(now)
        windows = [self.app_window]
        if account is not None:
            windows.append(self._account_window(account.user_id))
        throttled = not self.throttle_paths or any(part in request.url.path for part in self.throttle_paths)
        if throttled:
            for window in windows:
                if window.exhausted():
                    return account, self._rate_refusal(app=window is self.app_window)
        for window in windows:
            window.take()
        status = self.scripted_fault(now)
        if status is not None:
            return account, GraphError(
                "An unexpected error has occurred. Please retry your request later.",
                code=2,
                transient=True,
                status=status,
            )
        try:
            token = self._check_token(value)
        except GraphError as error:
            return account, error
        return self.accounts[token.user_id], None

    async def _serve(
        self, request: Request, name: str, handler: Callable[[Request, Account], dict[str, Any]]
    ) -> Response:
        account, error = self._admit(request, name)
        response: Response
        if error is None:
            assert account is not None
            try:
                response = JSONResponse(handler(request, account))
            except GraphError as refusal:
                error = refusal
        if error is not None:
            response = error.response()
        response.headers.update(self.usage_headers(account))
        return response

    # --- OAuth --------------------------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        """www.instagram.com/oauth/authorize, consent given at once: `sim_deny=1` refuses, `sim_grant_scope`
        grants other scopes, `sim_account=<username>` picks who consents (the first account by default)."""
        self._count("oauth.authorize")
        params = request.query_params
        redirect_uri = params.get("redirect_uri", "")
        if params.get("client_id") != self.client_id or not redirect_uri:
            return oauth_error("Invalid platform app")
        if params.get("response_type", "code") != "code":
            return oauth_error("Invalid response_type")
        state = params.get("state")
        joiner = "&" if "?" in redirect_uri else "?"
        if params.get("sim_deny"):
            query = {"error": "access_denied", "error_reason": "user_denied", "error_description": "Permissions error"}
            if state is not None:
                query["state"] = state
            return RedirectResponse(f"{redirect_uri}{joiner}{urlencode(query)}", 302)
        if params.get("sim_account"):
            account = next((a for a in self.accounts.values() if a.username == params["sim_account"]), None)
            if account is None:
                return oauth_error(f"Unknown sim_account {params['sim_account']}")
        else:
            account = self._default_account()
        requested = params.get("sim_grant_scope") or params.get("scope") or DEFAULT_SCOPE
        scope = ",".join(part for part in re.split(r"[,\s]+", requested) if part)
        code = "AQ" + secrets.token_urlsafe(96)
        self.auth_codes[code] = AuthCode(account.user_id, scope, redirect_uri, int(self.now()))
        answer = {"code": code}
        if state is not None:
            answer["state"] = state
        # Meta appends "#_"; left out here since a fragment never reaches a server (see the interface).
        return RedirectResponse(f"{redirect_uri}{joiner}{urlencode(answer)}", 302)

    async def code_exchange(self, request: Request) -> Response:
        """api.instagram.com/oauth/access_token: a code for a short-lived token, once."""
        self._count("oauth.access_token")
        form = dict(await request.form())
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return oauth_error("Invalid platform app")
        if form.get("grant_type") != "authorization_code":
            return oauth_error("Unsupported grant_type")
        code = self.auth_codes.get(str(form.get("code", "")).removesuffix("#_"))
        if code is None:
            return oauth_error("Invalid authorization code")
        if code.used:
            return oauth_error("This authorization code has been used")
        if code.issued_at + CODE_TTL <= self.now():
            return oauth_error("This authorization code has expired")
        if form.get("redirect_uri") != code.redirect_uri:
            return oauth_error(
                "Error validating verification code. Please make sure your redirect_uri is identical to the one "
                "you used in the OAuth dialog request"
            )
        code.used = True
        value, token = self._issue(code.user_id, code.scope, long_lived=False)
        return JSONResponse(
            {"data": [{"access_token": value, "user_id": token.user_id, "permissions": token.permissions}]}
        )

    async def exchange(self, request: Request) -> Response:
        """graph.instagram.com/access_token: a short-lived token for a long-lived one (60 days), once."""
        self._count("access_token")
        params = request.query_params
        token: AccessToken | None = None
        try:
            if params.get("grant_type") != "ig_exchange_token":
                raise GraphError("(#100) Unsupported grant_type: use ig_exchange_token")
            if params.get("client_secret") != self.client_secret:
                raise GraphError("Error validating client secret.", code=101)
            token = self._check_token(params.get("access_token") or self._token_value(request))
            if token.long_lived:
                raise GraphError("(#100) Only short-lived tokens can be exchanged for long-lived ones")
        except GraphError as error:
            return self._headed(error.response(), token)
        token.invalidated = True  # exchanged once; the short-lived token is spent
        value, long = self._issue(token.user_id, token.permissions, long_lived=True)
        body = {"access_token": value, "token_type": "bearer", "expires_in": long.expires_at - long.issued_at}
        return self._headed(JSONResponse(body), token)

    async def refresh(self, request: Request) -> Response:
        """graph.instagram.com/refresh_access_token: a new long-lived token for one at least 24 hours old and
        unexpired (the old one keeps working until its own expiry)."""
        self._count("refresh_access_token")
        params = request.query_params
        token: AccessToken | None = None
        try:
            if params.get("grant_type") != "ig_refresh_token":
                raise GraphError("(#100) Unsupported grant_type: use ig_refresh_token")
            token = self._check_token(params.get("access_token") or self._token_value(request))
            if not token.long_lived:
                raise GraphError("(#100) Only long-lived tokens can be refreshed")
            if self.now() - token.issued_at < REFRESH_MIN_AGE:
                raise GraphError("Tokens must be at least 24 hours old to be refreshed", code=10)
        except GraphError as error:
            return self._headed(error.response(), token)
        value, fresh = self._issue(token.user_id, token.permissions, long_lived=True)
        body = {"access_token": value, "token_type": "bearer", "expires_in": fresh.expires_at - fresh.issued_at}
        return self._headed(JSONResponse(body), token)

    def _headed(self, response: Response, token: AccessToken | None) -> Response:
        """Token answers come from graph.instagram.com too: they carry the usage headers (not charged)."""
        response.headers.update(self.usage_headers(self.accounts.get(token.user_id) if token else None))
        return response

    # --- graph API ----------------------------------------------------------------------------------------
    async def me(self, request: Request) -> Response:
        return await self._serve(request, "me", self._me)

    def _me(self, request: Request, account: Account) -> dict[str, Any]:
        return self.user_json(account, requested_fields(request, USER_FIELDS, "IGUser"))

    async def me_media(self, request: Request) -> Response:
        return await self._serve(request, "me.media", self._media_list)

    def _media_list(self, request: Request, account: Account) -> dict[str, Any]:
        fields = requested_fields(request, MEDIA_FIELDS, "IGMedia")
        return self._page(request, [m for m in account.media if not m.deleted], fields)

    async def me_stories(self, request: Request) -> Response:
        return await self._serve(request, "me.stories", self._story_list)

    def _story_list(self, request: Request, account: Account) -> dict[str, Any]:
        fields = requested_fields(request, MEDIA_FIELDS, "IGMedia")
        now = self.now()
        return self._page(request, [s for s in account.stories if self._story_live(s, now)], fields)

    async def node(self, request: Request) -> Response:
        return await self._serve(request, "node", self._node)

    def _node(self, request: Request, account: Account) -> dict[str, Any]:
        """/{id}: the token owner's profile by either of its ids, or one of its media (a carousel child too)."""
        node_id = request.path_params["node_id"]
        if node_id in (account.user_id, account.app_user_id):
            return self._me(request, account)
        return self.media_json(self._own_media(account, node_id), requested_fields(request, MEDIA_FIELDS, "IGMedia"))

    def _own_media(self, account: Account, node_id: str) -> Media:
        media = self.media_index.get(node_id)
        if (
            media is None
            or media.owner is not account
            or media.gone()
            or (media.product == "STORY" and not self._story_live(media, self.now()))
        ):
            raise not_found(node_id)
        return media

    async def node_edge(self, request: Request) -> Response:
        return await self._serve(request, "node.edge", self._node_edge)

    def _node_edge(self, request: Request, account: Account) -> dict[str, Any]:
        """/{user-id}/media and /stories (the token owner's, as /me/...), and /{media-id}/children."""
        node_id, edge = request.path_params["node_id"], request.path_params["edge"]
        if node_id in (account.user_id, account.app_user_id) and edge == "media":
            return self._media_list(request, account)
        if node_id in (account.user_id, account.app_user_id) and edge == "stories":
            return self._story_list(request, account)
        if edge == "children" and node_id not in (account.user_id, account.app_user_id):
            media = self._own_media(account, node_id)
            fields = requested_fields(request, MEDIA_FIELDS, "IGMedia")
            return {"data": [self.media_json(c, fields) for c in media.children if not c.deleted]}
        raise not_found(node_id)

    async def subscribed_apps(self, request: Request) -> Response:
        return await self._serve(request, "me.subscribed_apps", self._subscribed_apps)

    def _subscribed_apps(self, request: Request, account: Account) -> dict[str, Any]:
        """The account's subscription to the app's webhooks: deliveries are sent only for the fields that it
        subscribed to (and that the app's webhook configuration lists)."""
        if request.method == "GET":
            if not account.subscribed_fields:
                return {"data": []}
            return {"data": [{"subscribed_fields": list(account.subscribed_fields), "id": self.client_id}]}
        if request.method == "DELETE":
            account.subscribed_fields = []
            return {"success": True}
        text = request.query_params.get("subscribed_fields", "")
        wanted = [part.strip() for part in text.split(",") if part.strip()]
        if not wanted:
            raise GraphError("(#100) The parameter subscribed_fields is required.")
        allowed = ", ".join(sorted(WEBHOOK_FIELDS))
        for index, name in enumerate(wanted):
            if name not in WEBHOOK_FIELDS:
                raise GraphError(f'(#100) Param subscribed_fields[{index}] must be one of {{{allowed}}} - got "{name}"')
        account.subscribed_fields = list(dict.fromkeys(wanted))
        return {"success": True}

    # --- webhooks -----------------------------------------------------------------------------------------
    def delivery_headers(self, body: bytes) -> dict[str, str]:
        forced = FORCED_SIGNATURE.get()
        if forced == "":
            return {}
        if forced is not None:
            return {"X-Hub-Signature-256": forced}
        return {"X-Hub-Signature-256": "sha256=" + hmac.new(self.client_secret.encode(), body, "sha256").hexdigest()}

    async def _deliver_event(self, account: Account, field_name: str, value: dict[str, Any]) -> int | None:
        """Meta's envelope for one change, sent when the app's webhook lists the field and the account
        subscribed to it; the status the callback answered (None: not sent or no answer)."""
        if self.webhook is None or field_name not in self.webhook.fields or field_name not in account.subscribed_fields:
            return None
        event = {
            "object": "instagram",
            "entry": [
                {"id": account.user_id, "time": int(self.now()), "changes": [{"field": field_name, "value": value}]}
            ],
        }
        return await self.deliver(self.webhook.callback_url, event)

    async def sim_webhooks(self, request: Request) -> Response:
        """The app dashboard's webhook setup: verified at once with Meta's hub.challenge handshake."""
        if request.method == "GET":
            return JSONResponse(self.webhook.__dict__ if self.webhook else None)
        if request.method == "DELETE":
            self.webhook = None
            return JSONResponse({"success": True})
        body = await request.json()
        callback, verify = str(body.get("callback_url", "")), str(body.get("verify_token", ""))
        fields = [str(f) for f in body.get("fields") or DEFAULT_WEBHOOK_FIELDS]
        challenge = str(secrets.randbelow(9 * 10**9) + 10**9)
        status: int | None = None
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                answer = await client.get(
                    callback, params={"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify}
                )
            status = answer.status_code
            verified = status == 200 and answer.text == challenge
        except httpx.HTTPError:
            verified = False
        if not verified:
            return JSONResponse(
                {"error": "The URL couldn't be validated. Callback verification failed", "status": status},
                status_code=400,
            )
        self.webhook = Webhook(callback, verify, fields)
        return JSONResponse({"success": True})

    async def sim_comments(self, request: Request) -> Response:
        """Someone comments on a media: comments_count + 1 and the `comments` webhook."""
        body = await request.json()
        media = self.media_index.get(str(body.get("media_id", "")))
        if media is None or media.gone() or media.parent is not None:
            return JSONResponse({"error": "unknown media_id"}, status_code=404)
        username = str(body.get("from_username", "sim.friend"))
        comment_id = self._new_id(media.owner.rng)
        media.comments_count += 1
        value: dict[str, Any] = {
            "from": {"id": self._someone(username), "username": username},
            "media": {"id": media.id, "media_product_type": media.product},
            "id": comment_id,
        }
        if body.get("parent_id"):
            value["parent_id"] = str(body["parent_id"])
        value["text"] = str(body.get("text", ""))
        status = await self._deliver_event(media.owner, "comments", value)
        return JSONResponse({"id": comment_id, "delivered": status})

    async def sim_mentions(self, request: Request) -> Response:
        """The account is @mentioned in someone's comment: the `mentions` webhook."""
        body = await request.json()
        account = self.accounts.get(str(body.get("user_id", ""))) or self._default_account()
        value = {
            "media_id": str(body.get("media_id") or self._new_id(account.rng)),
            "comment_id": str(body.get("comment_id") or self._new_id(account.rng)),
        }
        status = await self._deliver_event(account, "mentions", value)
        return JSONResponse({**value, "delivered": status})

    @staticmethod
    def _someone(username: str) -> str:
        """Another user's IG-scoped id: the same for the same username."""
        return "17841" + str(int(hashlib.sha256(username.encode()).hexdigest()[:16], 16))[:12].zfill(12)

    async def sim_deliver(self, request: Request) -> Response:
        """A raw body to the webhook, signed (or with `signature` as given, or `unsigned`): for receiver tests."""
        body = await request.json()
        if self.webhook is None:
            return JSONResponse({"error": "no webhook configured (POST /_sim/webhooks)"}, status_code=400)
        forced = "" if body.get("unsigned") else body.get("signature")
        reset = FORCED_SIGNATURE.set(None if forced is None else str(forced))
        try:
            status = await self.deliver(self.webhook.callback_url, body.get("body"))
        finally:
            FORCED_SIGNATURE.reset(reset)
        return JSONResponse({"status": status})

    # --- simulator controls -------------------------------------------------------------------------------
    async def sim_clock(self, request: Request) -> Response:
        """GET: the simulator's time; POST {"advance_seconds": N}: move it forward, then send the insights of
        the stories that expired meanwhile (before answering, so that a test sees them delivered)."""
        if request.method == "POST":
            body = await request.json()
            advance = float(body.get("advance_seconds", 0))
            if advance < 0:
                return JSONResponse({"error": "the clock only moves forward"}, status_code=400)
            self.clock_offset += advance
            expired = self._newly_expired(self.now())
            await self._send_insights(expired)
            return JSONResponse({"now": int(self.now()), "expired_stories": [s.id for s in expired]})
        return JSONResponse({"now": int(self.now())})

    async def sim_accounts(self, request: Request) -> Response:
        body = await request.json()
        try:
            account = self.add_account(
                str(body.get("username", "trove.demo")),
                int(body.get("posts", 0)),
                int(body.get("stories", 0)),
                str(body.get("account_type", "BUSINESS")),
                seed=int(body["seed"]) if "seed" in body else None,
            )
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=409)
        return JSONResponse({"user_id": account.user_id, "username": account.username, "media": len(account.media),
                             "stories": len(account.stories)})  # fmt: skip

    async def sim_media(self, request: Request) -> Response:
        """POST: a new media (the full object back); PUT: edit caption / like_count (null hides it) /
        comments_count / is_comment_enabled; DELETE ?id=: delete (it vanishes from listings, its files 404)."""
        self.base_url = str(request.base_url).rstrip("/")
        everything = parse_fields(ALL_MEDIA_FIELDS)
        if request.method == "DELETE":
            media = self.media_index.get(request.query_params.get("id", ""))
            if media is None or media.deleted:
                return JSONResponse({"error": "unknown media id"}, status_code=404)
            media.deleted = True
            return JSONResponse({"success": True})
        body = await request.json()
        if request.method == "PUT":
            media = self.media_index.get(str(body.get("id", "")))
            if media is None or media.deleted:
                return JSONResponse({"error": "unknown media id"}, status_code=404)
            if "caption" in body:
                media.caption = body["caption"]
            if "like_count" in body:
                media.likes_hidden = body["like_count"] is None
                media.like_count = int(body["like_count"] or 0)
            for key in ("comments_count", "is_comment_enabled"):
                if key in body:
                    setattr(media, key, type(getattr(media, key))(body[key]))
            return JSONResponse(self.media_json(media, everything))
        account = self.accounts.get(str(body.get("user_id", ""))) or self._default_account()
        media = self.add_media(
            account,
            product=str(body.get("product", "FEED")),
            media_type=str(body.get("media_type", "IMAGE")),
            timestamp=body.get("timestamp"),
            caption=body.get("caption"),
            children=int(body.get("children", 0)),
            copyrighted=bool(body.get("copyrighted", False)),
            likes_hidden=bool(body.get("hide_likes", False)),
            like_count=body.get("like_count"),
            comments_count=body.get("comments_count"),
        )
        return JSONResponse(self.media_json(media, everything))

    # Settings of this simulator's own; the base's configure gets the rest.
    OWN_SETTINGS = frozenset(
        {
            "url_ttl", "app_limit", "app_calls", "account_limit", "account_calls", "app_usage", "account_usage",
            "rate_limit_code", "throttle_paths", "revoke_user", "short_token_ttl", "long_token_ttl",
            "delivery_timeout",
        }
    )  # fmt: skip

    def configure(self, body: dict[str, Any]) -> None:
        super().configure({key: value for key, value in body.items() if key not in self.OWN_SETTINGS})
        now = self.now()
        if "url_ttl" in body:
            self.url_ttl = int(body["url_ttl"])
        for key in ("short_token_ttl", "long_token_ttl", "delivery_timeout"):
            if key in body:
                setattr(self, key, type(getattr(self, key))(body[key]))
        app_limit = body.get("app_limit", body.get("app_calls"))
        if app_limit is not None:
            self.app_window.set_limits([int(app_limit)])
        account_limit = body.get("account_limit", body.get("account_calls"))
        if account_limit is not None:
            self.account_limit = int(account_limit)
            for window in self.account_windows.values():
                window.set_limits([self.account_limit])
        if "app_usage" in body:
            self.app_window.set_usage([int(body["app_usage"])], now)
        if "account_usage" in body:
            usage = body["account_usage"]  # calls: one number for every account, or {user_id: calls}
            per_account = usage if isinstance(usage, dict) else dict.fromkeys(self.accounts, usage)
            for user_id, used in per_account.items():
                self._account_window(str(user_id)).set_usage([int(used)], now)
        if "rate_limit_code" in body:
            self.rate_limit_code = int(body["rate_limit_code"]) if body["rate_limit_code"] else None
        if "throttle_paths" in body:
            self.throttle_paths = [str(path) for path in body["throttle_paths"] or []]
        if body.get("revoke_user"):
            self.revoke(str(body["revoke_user"]))

    def stats(self) -> dict[str, Any]:
        now = self.now()
        self.app_window.roll(now)
        return {
            **super().stats(),
            "now": int(now),
            "app_usage": self.app_window.usage()[0],
            "account_usage": {uid: self._account_window(uid).usage()[0] for uid in self.account_windows},
            "files_served": dict(self.files_served),
            "webhook": self.webhook.__dict__ if self.webhook else None,
            "accounts": {
                account.user_id: {
                    "username": account.username,
                    "media": sum(1 for m in account.media if not m.deleted),
                    "stories_live": sum(1 for s in account.stories if self._story_live(s, now)),
                }
                for account in self.accounts.values()
            },
        }

    def platform_routes(self) -> list[Route]:
        def graph(path: str, endpoint: Callable[[Request], Any], methods: list[str] | None = None) -> list[Route]:
            """The same route under any /vNN.N prefix and under none."""
            methods = methods or ["GET"]
            return [Route("/{version:graph_version}" + path, endpoint, methods=methods),
                    Route(path, endpoint, methods=methods)]  # fmt: skip

        return [
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/access_token", self.code_exchange, methods=["POST"]),
            *graph("/access_token", self.exchange),
            *graph("/refresh_access_token", self.refresh),
            *graph("/me", self.me),
            *graph("/me/media", self.me_media),
            *graph("/me/stories", self.me_stories),
            *graph("/me/subscribed_apps", self.subscribed_apps, ["GET", "POST", "DELETE"]),
            Route("/{version:graph_version}/{node_id}", self.node, methods=["GET"]),
            Route("/{node_id:node_id}", self.node, methods=["GET"]),
            Route("/{version:graph_version}/{node_id}/{edge}", self.node_edge, methods=["GET"]),
            Route("/{node_id:node_id}/{edge}", self.node_edge, methods=["GET"]),
            Route("/cdn/v/{bucket}/{name}", self.cdn_file, methods=["GET"]),
            Route("/_sim/clock", self.sim_clock, methods=["GET", "POST"]),
            Route("/_sim/accounts", self.sim_accounts, methods=["POST"]),
            Route("/_sim/export", self.sim_export, methods=["GET"]),
            Route("/_sim/media", self.sim_media, methods=["POST", "PUT", "DELETE"]),
            Route("/_sim/webhooks", self.sim_webhooks, methods=["GET", "POST", "DELETE"]),
            Route("/_sim/comments", self.sim_comments, methods=["POST"]),
            Route("/_sim/mentions", self.sim_mentions, methods=["POST"]),
            Route("/_sim/deliver", self.sim_deliver, methods=["POST"]),
        ]
