"""The read API answered before routing (issue 16: the framework's routing and dependency resolution cost more
than the answer itself). For GET /api/posts, /api/feed.json and /api/feed.atom this middleware does what the
routes do up to the cache (the same `reader_for`, `feed_params`, `archive_version` and `look_up` in
trove.http.read), and answers a hit or a 304 itself; for /api/posts a miss too (`serve_page`, as the route).
Anything else, and anything unusual (a parameter the framework would parse differently, a refusal, a page
Postgres refuses), goes on to the routes unchanged, which answer it as they always have: this path only ever
answers what the route would have answered. On a feed's miss who the caller is and the archive version it
read are handed on (request state): the route does not authenticate or read them again."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from fastapi import HTTPException
from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from trove.http.read import (
    DEFAULT_LIMIT,
    VERSION_STATE,
    feed_params,
    look_up,
    reader_for,
    render_posts,
    serve_page,
)

# Path: (cache kind, media type), as the routes in trove.http.read have them.
FEEDS = {
    "/api/posts": ("json", "application/json"),
    "/api/feed.json": ("jsonfeed", "application/feed+json"),
    "/api/feed.atom": ("atom", "application/atom+xml"),
}
PLAIN_NUMBER = re.compile(r"[0-9]{1,6}")


class CachedReads:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] in FEEDS:
            answer = await self.from_cache(scope)
            if answer is not None:
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def from_cache(self, scope: Scope) -> Any:
        state = scope["app"].state
        names: set[str] | None = getattr(state, "platform_names", None)
        if names is None:  # read by the first request through the routes
            return None
        query = QueryParams(scope["query_string"])
        numbers: dict[str, int | None] = {}
        for name, default in (("limit", DEFAULT_LIMIT), ("offset", None)):
            value = query.get(name)
            if value is None:
                numbers[name] = default
            elif PLAIN_NUMBER.fullmatch(value):
                numbers[name] = int(value)
            else:
                return None  # the framework's parsing and its 422 decide
        headers = Headers(scope=scope)
        try:
            who = await reader_for(state.pool, headers.get("authorization"))
            params = feed_params(
                names,
                query.get("platforms"),
                query.get("types"),
                query.get("since"),
                query.get("until"),
                query.get("q"),
                numbers["limit"] or 0,
                query.get("cursor"),
                numbers["offset"],
            )
        except HTTPException:
            return None  # the route refuses it, with its own words
        kind, media_type = FEEDS[scope["path"]]
        version = await state.versions.get(who.user_id)  # usually known here; a failure is the route's 500 too
        if_none_match = headers.get("if-none-match")
        if kind == "json":  # the page needs nothing of the route's: a miss is answered here too
            try:
                return await serve_page(state, who, params, kind, render_posts, media_type, version, if_none_match)
            except (HTTPException, psycopg.errors.DataError, ValueError):
                return None  # a page Postgres refuses (a bad cursor): the route says why, in its own words
        found = await look_up(state.cache, who, params, kind, media_type, version, if_none_match)
        if found.answer is None:
            scope.setdefault("state", {})[VERSION_STATE] = (headers.get("authorization"), who, version)
        return found.answer
