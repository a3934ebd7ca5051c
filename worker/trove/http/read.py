"""The read API (seed 7): the feed as JSON, JSON Feed and Atom, cached per user. Every query runs as the user
it is for (`auth.as_user`), so RLS decides what anyone sees, whether they come with a Supabase JWT (the
owner: everything they own) or a personal API key (public mode: only what is visible to everyone on its
platform, for personal websites)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
import psycopg
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from psycopg.types.json import JsonbLoader
from psycopg_pool import AsyncConnectionPool

from trove.config import public_url
from trove.http import feeds
from trove.http.auth import as_user, decode_user_token
from trove.http.cache import Cache, cache_key, etag_for
from trove.media.urls import SIGNED_URL_TTL
from trove.queries.keys import AUTHENTICATE_KEY
from trove.queries.read import FEED_AUTHOR, FEED_FOR_READER, PLATFORM_NAMES

router = APIRouter(prefix="/api")
TYPES = {"post", "activity", "story", "reel", "reply", "repost", "article"}
KEY_PREFIX = "trove_"
MAX_OFFSET = 100_000
UNNAMED_AUTHOR = "Trove user"  # a feed's author when the user has set no display name


class FeedJsonLoader(JsonbLoader):
    """jsonb as the standard library reads it, but a post's empty media list (most posts') without parsing."""

    def load(self, data: Any) -> Any:
        return [] if data == b"[]" else super().load(data)


@dataclass(frozen=True)
class Reader:
    user_id: str
    public_only: bool  # API keys read the public view of the archive


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def reader(request: Request, authorization: Annotated[str | None, Header()] = None) -> Reader:
    handed = getattr(request.state, VERSION_STATE, None)  # authenticated before routing (a cache miss)
    if handed is not None and handed[0] == authorization:
        return handed[1]
    return await reader_for(request.app.state.pool, authorization)


async def reader_for(pool: AsyncConnectionPool[Any], authorization: str | None) -> Reader:
    """Who a request's Authorization header names: a Supabase JWT's user, or an API key's (public mode)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(401, "send Authorization: Bearer <Supabase access token or trove_ API key>")
    token = authorization.split(" ", 1)[1].strip()
    if not token.startswith(KEY_PREFIX):
        return Reader(decode_user_token(token).id, public_only=False)
    parts = token.split("_")
    if len(parts) != 3 or len(parts[1]) != 8 or len(parts[2]) < 32:
        raise HTTPException(401, "malformed API key: expected trove_<8 characters>_<secret>")
    async with pool.connection() as conn:
        cur = await conn.execute(AUTHENTICATE_KEY, (key_hash(token),))
        row = await cur.fetchone()
    if row is None or row[0] is None:
        raise HTTPException(401, "unknown or revoked API key")
    return Reader(row[0], public_only=True)


def parse_list(value: str | None, allowed: set[str], what: str) -> list[str] | None:
    if not value:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = sorted(set(items) - allowed)
    if unknown:
        raise HTTPException(400, f"unknown {what}: {', '.join(unknown)} (one of {', '.join(sorted(allowed))})")
    return items


def parse_time(value: str | None, what: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise HTTPException(400, f"{what} must be an ISO 8601 date or time, got {value!r}") from error
    if parsed.tzinfo is None:
        raise HTTPException(400, f"{what} needs a time zone (e.g. 2026-01-31T00:00:00Z)")
    return parsed


async def platform_names(request: Request) -> set[str]:
    """Every platform the archive can hold (platform_enum's labels), read once: a filter may name a platform
    whose posts came from an export even when it is not registered here."""
    names: set[str] | None = getattr(request.app.state, "platform_names", None)
    if names is None:
        async with request.app.state.pool.connection() as conn:
            row = await (await conn.execute(PLATFORM_NAMES)).fetchone()
        names = request.app.state.platform_names = set(row[0] if row else [])
    return names


def feed_params(
    known_platforms: set[str],
    platforms: str | None,
    types: str | None,
    since: str | None,
    until: str | None,
    q: str | None,
    limit: int,
    cursor: str | None,
    offset: int | None,
) -> dict[str, Any]:
    if not 1 <= limit <= 100:
        raise HTTPException(400, "limit must be between 1 and 100")
    if offset is not None and not 0 <= offset <= MAX_OFFSET:
        raise HTTPException(400, f"offset must be between 0 and {MAX_OFFSET} (use the cursor to go further)")
    if offset is not None and cursor:
        raise HTTPException(400, "use cursor or offset, not both")
    return {
        "platforms": parse_list(platforms, known_platforms, "platforms"),
        "types": parse_list(types, TYPES, "types"),
        "since": parse_time(since, "since"),
        "until": parse_time(until, "until"),
        "q": clean_text(q, "q") if q else None,
        "limit": limit,
        "cursor": cursor or None,
        "offset": offset,
    }


async def fetch_feed(state: Any, who: Reader, params: dict[str, Any]) -> dict[str, Any]:
    """The feed page as the reader may see it, media resolved to signed copies or original URLs. `state`: the
    app's (its pool and storage)."""
    storage = state.storage
    try:
        # One statement, one round trip (no transaction of our own: the function acts as the user within its).
        async with state.pool.connection() as conn:
            cur = conn.cursor()
            cur.adapters.register_loader("jsonb", FeedJsonLoader)
            await cur.execute(
                FEED_FOR_READER,
                (
                    who.user_id,
                    params["platforms"],
                    params["types"],
                    params["since"],
                    params["until"],
                    params["q"],
                    params["limit"],
                    params["cursor"],
                    params["offset"],
                    who.public_only,
                ),
            )
            rows = await cur.fetchall()
    except psycopg.errors.InvalidParameterValue as error:
        raise HTTPException(400, error.diag.message_primary or "invalid parameter") from error
    items = []
    for post_id, platform, content_type, text, created, updated, post_data, media, row_cursor, permalink in rows:
        resolved = []
        for m in media:
            copied = m.get("status") == "downloaded" and m.get("storage_path")
            resolved.append(
                {
                    "media_key": m["media_key"],
                    "content_type": m.get("content_type"),
                    "url": await storage.signed_url(m["storage_path"], SIGNED_URL_TTL) if copied else m["original_url"],
                    "copy": bool(copied),
                }
            )
        items.append(
            {
                "id": post_id,
                "platform": platform,
                "content_type": content_type,
                "text": text,
                "created_at": created.isoformat(),
                "updated_at": updated.isoformat() if updated else None,
                "media": resolved,
                "data": post_data,
                "permalink": permalink,  # in public mode only public posts come back, so only their links
                "cursor": row_cursor,
            }
        )
    full = len(items) == params["limit"] and params["offset"] is None
    return {"posts": items, "next_cursor": items[-1]["cursor"] if full else None, "public": who.public_only}


def link_window() -> int:
    """Which half of a signed media URL's lifetime it is. A page carries signed URLs, so its cache entry and
    ETag change every half lifetime: a page served, or confirmed by a 304, never links to a copy through a URL
    with less than half its life left."""
    return int(time.time() // (SIGNED_URL_TTL // 2))


CACHE_CONTROL = "private, max-age=300"
VERSION_STATE = "trove_read"  # request state: (Authorization, Reader, archive version) from trove.http.fast_read


@dataclass(frozen=True)
class Lookup:
    """A page's cache entry: its key, the headers every answer for it carries, and the answer when the cache
    has it (the page, or 304 for a client that has it)."""

    key: str
    headers: dict[str, str]
    answer: Response | None


async def look_up(
    cache: Cache,
    who: Reader,
    params: dict[str, Any],
    kind: str,
    media_type: str,
    version: int,
    if_none_match: str | None,
) -> Lookup:
    key = cache_key(who.user_id, who.public_only, version, {**params, "kind": kind, "links": link_window()})
    etag = etag_for(key)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Authorization"}
    if if_none_match == etag:
        return Lookup(key, headers, Response(status_code=304, headers=headers))
    entry = await cache.get(key)
    if entry is not None:
        return Lookup(key, headers, Response(entry.body, media_type=media_type, headers={**headers, "X-Cache": "hit"}))
    return Lookup(key, headers, None)


async def serve_page(
    state: Any,
    who: Reader,
    params: dict[str, Any],
    kind: str,
    render: Any,
    media_type: str,
    version: int,
    if_none_match: str | None,
) -> Response:
    """A page from the cache (or 304) when the user's archive has not changed since it was kept; else rendered
    (`render`: the page to bytes) and kept."""
    found = await look_up(state.cache, who, params, kind, media_type, version, if_none_match)
    if found.answer is not None:
        return found.answer
    body = await render(await fetch_feed(state, who, params))
    await state.cache.put(found.key, body)
    return Response(body, media_type=media_type, headers={**found.headers, "X-Cache": "miss"})


async def cached(
    request: Request, who: Reader, params: dict[str, Any], kind: str, render: Any, media_type: str
) -> Response:
    """The routes' page, through the cache. (Requests for them are usually answered before routing, by
    trove.http.fast_read, the same way: every hit, and the misses of /api/posts.)"""
    handed = getattr(request.state, VERSION_STATE, None)  # read before routing, on a miss
    version = handed[2] if handed and handed[1] == who else await request.app.state.versions.get(who.user_id)
    if_none_match = request.headers.get("if-none-match")
    return await serve_page(request.app.state, who, params, kind, render, media_type, version, if_none_match)


def json_bytes(value: Any) -> bytes:
    """JSON of a page. orjson, but for an integer beyond 64 bits (a platform's payload may hold one), which only
    the standard library writes."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value).encode()


async def render_posts(page: dict[str, Any]) -> bytes:
    return json_bytes(page)


FeedQuery = dict[str, Any]
DEFAULT_LIMIT = 20


async def feed_query(
    request: Request,
    platforms: str | None = None,
    types: str | None = None,
    since: str | None = None,
    until: str | None = None,
    q: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    offset: int | None = None,
) -> FeedQuery:
    return feed_params(await platform_names(request), platforms, types, since, until, q, limit, cursor, offset)


@router.get("/posts", response_model=None)
async def posts(
    request: Request, who: Annotated[Reader, Depends(reader)], params: Annotated[FeedQuery, Depends(feed_query)]
) -> Response:
    return await cached(request, who, params, "json", render_posts, "application/json")


def canonical_filters(params: FeedQuery) -> list[tuple[str, str]]:
    """The feed's filters as parsed, in one order and spelling, defaults left out: every request that shares
    a cache entry names the feed the same way (its Atom id and self link are permanent, RFC 4287 4.2.6)."""
    values: dict[str, str | None] = {
        "limit": str(params["limit"]) if params["limit"] != DEFAULT_LIMIT else None,
        "platforms": ",".join(sorted(params["platforms"])) if params["platforms"] else None,
        "q": params["q"],
        "since": params["since"].isoformat() if params["since"] else None,
        "types": ",".join(sorted(params["types"])) if params["types"] else None,
        "until": params["until"].isoformat() if params["until"] else None,
    }
    return [(name, value) for name, value in values.items() if value]


async def feed_info(request: Request, who: Reader, params: FeedQuery) -> feeds.FeedInfo:
    """What the feed says about itself: its URL with its filters (canonical, without the page position),
    its home (the same archive as /api/posts) and its author (the user's display name). Built on the
    configured public URL, never the request's Host or X-Forwarded-* headers: a cached page is shared by every
    reader of the feed."""
    kept = canonical_filters(params)
    query = f"?{urlencode(kept)}" if kept else ""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await as_user(conn, who.user_id)
        row = await (await conn.execute(FEED_AUTHOR)).fetchone()
    name = " ".join(str(row[0] or "").split()) if row else ""
    return feeds.FeedInfo(
        url=f"{public_url()}{request.url.path}{query}",
        home=f"{public_url()}{router.prefix}/posts{query}",
        author=name or UNNAMED_AUTHOR,
        owner_id=who.user_id,
        public=who.public_only,
    )


@router.get("/feed.json", response_model=None)
async def json_feed(
    request: Request, who: Annotated[Reader, Depends(reader)], params: Annotated[FeedQuery, Depends(feed_query)]
) -> Response:
    """JSON Feed 1.1 of the same page, for personal websites and feed readers."""

    async def render(page: dict[str, Any]) -> bytes:
        return json_bytes(feeds.json_feed(page, await feed_info(request, who, params)))

    return await cached(request, who, params, "jsonfeed", render, "application/feed+json")


@router.get("/feed.atom", response_model=None)
async def atom_feed(
    request: Request, who: Annotated[Reader, Depends(reader)], params: Annotated[FeedQuery, Depends(feed_query)]
) -> Response:
    """Atom (RFC 4287) rendering of the same page."""

    async def render(page: dict[str, Any]) -> bytes:
        return feeds.atom_feed(page, await feed_info(request, who, params))

    return await cached(request, who, params, "atom", render, "application/atom+xml")


def clean_text(value: str, what: str) -> str:
    """Text that Postgres can store: no NUL or other control characters, valid Unicode."""
    if any(ord(c) < 0x20 and c not in "\t" for c in value):
        raise HTTPException(400, f"{what} must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise HTTPException(400, f"{what} is not valid Unicode text") from error
    return value
