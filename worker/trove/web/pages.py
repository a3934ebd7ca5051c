"""The web app (/app): server-rendered pages over the same paths as the API. Every read runs as the signed-in
user (`as_user`: RLS decides, exactly as for /api), every form carries a CSRF token, every answer the
app's security headers. Reading works without JavaScript; /app/static/app.js adds live sync progress and the
import upload."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import psycopg
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from psycopg import AsyncConnection
from starlette.exceptions import HTTPException as StarletteHTTPException
from supabase_auth.errors import AuthApiError, AuthError

from trove.config import local_stack, public_url, state_dir
from trove.http.auth import UNKNOWN_USER, as_user, is_known_user
from trove.http.imports import STATES as IMPORT_STATES
from trove.http.imports import UNCAPPED, take_upload
from trove.http.keys import make_key, revoke, user_keys
from trove.http.oauth import begin_connect, set_browser_cookie
from trove.http.read import Reader, feed_params, fetch_feed, platform_names
from trove.http.sync import queue_sync_now
from trove.imports.archive import Limits
from trove.queries.auth import RESET_ROLE
from trove.queries.web import (
    ACCOUNTS,
    DISCONNECT_ACCOUNT,
    ENGAGEMENT,
    IMPORTS,
    LATEST_SYNCS,
    MEDIA_TOTALS,
    NOTIFICATIONS,
    PAGE_EXTRAS,
    POST,
    POST_EVENTS,
    POST_INTERACTIONS,
    POST_MEDIA,
    POSTS_PER_DAY,
    READ_NOTIFICATION,
    SEARCH_FACETS,
    SYNC_PROGRESS,
    TOTALS,
    VISIBLE_ACCOUNT,
)
from trove.web import render, session
from trove.web.guard import CSRF_FIELD, CSRF_HEADER, check_csrf, csrf_token, finish

router = APIRouter(prefix="/app", include_in_schema=False)
templates = render.environment()
PAGE_SIZE = 30
TYPES = ["post", "reply", "repost", "story", "reel", "activity", "article"]
SYNC_FIELDS = [
    "account_id",
    "id",
    "status",
    "sync_type",
    "posts_fetched",
    "posts_created",
    "posts_updated",
    "media_downloaded",
    "media_failed",
    "pages",
    "started_at",
    "completed_at",
    "error_message",
]
NOTIFICATION_FIELDS = ["id", "account_id", "kind", "title", "body", "created_at"]


class SignInFirst(Exception):
    """The page needs a signed-in user: the browser goes to the sign-in page and comes back."""


def media_origins() -> list[str]:
    """Where the pages' images and videos come from besides this site: the storage holding the copies."""
    origins = []
    for url in (public_url(), os.environ.get("SUPABASE_URL") or ""):
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc:
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return origins


def done(request: Request, response: Response) -> Response:
    session.apply(request, response)
    return finish(request, response, media_origins())


def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    found: session.Visitor | None = getattr(request.state, "visitor", None)
    user_id = found.user_id if found else None
    body = templates.get_template(template).render(
        request=request,
        user_id=user_id,
        email=found.email if found else "",
        csrf=csrf_token(request, user_id),
        csrf_field=CSRF_FIELD,
        path=request.url.path,
        **context,
    )
    return done(request, HTMLResponse(body, status_code=status))


def redirect(request: Request, to: str) -> Response:
    return done(request, RedirectResponse(to, status_code=303))


async def signed_in(request: Request) -> str:
    found = await session.visitor(request)
    if found.user_id is None:
        raise SignInFirst()
    return found.user_id


async def owned_row(conn: AsyncConnection[Any], sql: str, item_id: str, what: str) -> Any:
    """The row a query run as the user finds by id: someone else's, a missing one and an id that is not one
    at all are the same 404."""
    try:
        row = await (await conn.execute(sql, (item_id,))).fetchone()
    except psycopg.errors.InvalidTextRepresentation as error:
        raise HTTPException(404, f"no such {what}") from error
    if row is None:
        raise HTTPException(404, f"no such {what}")
    return row


async def form_of(request: Request, user_id: str | None) -> dict[str, str]:
    """The submitted form, once its CSRF token and origin are checked."""
    form = await request.form()
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    check_csrf(request, user_id, values.get(CSRF_FIELD))
    return values


def local_path(value: str | None, default: str = "/app/archive") -> str:
    """A path of the app to go back to; anything else (another site, a scheme, //host) is the default."""
    if not value or not value.startswith("/app") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


class AppStatic(StaticFiles):
    """The app's own CSS and JavaScript, never sniffed as anything else."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-cache"  # revalidated (ETag): a new release is seen at once
        return response


def install(app: FastAPI) -> None:
    """Mount the app on the service: its routes, its static files and its error pages."""
    app.include_router(router)
    app.mount("/app/static", AppStatic(directory=render.TEMPLATES.parent / "static"), name="app-static")

    @app.exception_handler(SignInFirst)
    async def to_sign_in(request: Request, _: SignInFirst) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        nxt = urlencode({"next": target}) if request.method == "GET" else ""
        return redirect(request, f"/app/signin{'?' + nxt if nxt else ''}")

    @app.exception_handler(Exception)
    async def failure_page(request: Request, error: Exception) -> Response:
        """A failure of ours: on the app's paths a page with the app's headers (logged all the same)."""
        if not request.url.path.startswith("/app/"):
            return PlainTextResponse("Internal Server Error", status_code=500)
        return page(request, "error.html", status=500, message="Something went wrong on our side; try again.")

    @app.exception_handler(StarletteHTTPException)
    async def error_page(request: Request, error: StarletteHTTPException) -> Response:
        if not request.url.path.startswith("/app/") or request.url.path.startswith("/app/static/"):
            return await http_exception_handler(request, error)
        if request.url.path.endswith(".json") or request.headers.get(CSRF_HEADER):
            return done(request, JSONResponse({"detail": error.detail}, status_code=error.status_code))
        if error.status_code != 503:  # the page's header shows who is signed in (unless Auth is what failed)
            try:
                await session.visitor(request)
            except StarletteHTTPException:
                pass
        return page(request, "error.html", status=error.status_code, message=str(error.detail))


# --- signing in ------------------------------------------------------------------------------------------


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
async def home(request: Request) -> Response:
    found = await session.visitor(request)
    return redirect(request, "/app/archive" if found.user_id else "/app/signin")


@router.get("/signin")
async def signin_page(request: Request, next: str | None = None) -> Response:
    found = await session.visitor(request)
    if found.user_id:
        return redirect(request, local_path(next))
    return page(request, "signin.html", next=local_path(next), mode="signin", error=None, email_value="")


@router.get("/signup")
async def signup_page(request: Request) -> Response:
    await session.visitor(request)
    return page(request, "signin.html", next="/app/accounts", mode="signup", error=None, email_value="")


async def _sign(request: Request, mode: str) -> Response:
    form = await form_of(request, None)
    email = form.get("email", "").strip()[:320]
    password = form.get("password", "")
    nxt = local_path(form.get("next"), "/app/accounts" if mode == "signup" else "/app/archive")
    if not email or not password:  # the client refuses these itself, in words not meant for people
        return page(
            request,
            "signin.html",
            status=400,
            next=nxt,
            mode=mode,
            error="Enter your email and password.",
            email_value=email,
        )
    session.throttle(request, "signin")
    try:
        if mode == "signup":
            tokens = await session.sign_up(request, email, password)
            if tokens is None:
                return page(
                    request, "message.html", title="Check your email", message="Confirm your address, then sign in."
                )
        else:
            tokens = await session.sign_in(request, email, password)
    except (AuthError, httpx.HTTPError) as error:
        refused = isinstance(error, AuthError) and session.definitive(error)
        limited = isinstance(error, AuthApiError) and error.status == 429
        return page(
            request,
            "signin.html",
            status=400 if refused else 429 if limited else 503,
            next=nxt,
            mode=mode,
            error=session.auth_message(error) if isinstance(error, AuthError) else session.AUTH_UNAVAILABLE,
            email_value=email,
        )
    response = RedirectResponse(nxt, status_code=303)
    session.set_session(response, tokens)
    return finish(request, response, media_origins())


@router.post("/signin")
async def signin(request: Request) -> Response:
    return await _sign(request, "signin")


@router.post("/signup")
async def signup(request: Request) -> Response:
    return await _sign(request, "signup")


@router.post("/signin/link")
async def signin_link(request: Request) -> Response:
    """Email me a sign-in link: the same answer whether or not the address has an account (no probing)."""
    form = await form_of(request, None)
    email = form.get("email", "").strip()[:320]
    if not email:
        return page(
            request,
            "signin.html",
            status=400,
            next="/app/archive",
            mode="signin",
            error="Enter your email.",
            email_value="",
        )
    session.throttle(request, "signin")
    verifier = None
    try:
        verifier = await session.send_sign_in_link(request, email)
    except AuthApiError as error:
        # No account (otp_disabled), a link sent a minute ago, an address Auth will not take: all look alike
        # from here, except an address that is not one at all.
        if error.code == "validation_failed":
            return page(
                request,
                "signin.html",
                status=400,
                next="/app/archive",
                mode="signin",
                error=error.message,
                email_value=email,
            )
        if not session.definitive(error) and error.status != 429:
            raise HTTPException(503, session.AUTH_UNAVAILABLE) from error
    except (AuthError, httpx.HTTPError) as error:
        raise HTTPException(503, session.AUTH_UNAVAILABLE) from error
    where = (
        f" On this local Trove the email is written to {state_dir() / 'mailbox'}/ instead of being sent."
        if local_stack()
        else ""
    )
    response = page(
        request,
        "message.html",
        title="Check your email",
        message=f"If {email} has a Trove account, a sign-in link is on its way. Open it in this browser.{where}",
    )
    if verifier:
        session.set_verifier(response, verifier)
    return response


@router.get("/auth/callback")
async def link_callback(request: Request, code: str = "", error_code: str = "") -> Response:
    """Where a sign-in link lands: its code and this browser's verifier make the session."""
    verifier = request.cookies.get(session.cookie_name(session.VERIFIER_COOKIE), "")
    if error_code or not code or len(code) > 512:
        raise HTTPException(400, "This sign-in link is invalid or has expired: ask for a new one.")
    if not verifier or len(verifier) > 512:
        raise HTTPException(400, "Open the sign-in link in the browser you asked for it from (or ask for a new one).")
    session.throttle(request, "signin")
    try:
        tokens = await session.exchange_link_code(request, code, verifier)
    except AuthError as error:
        if not session.definitive(error):
            raise HTTPException(503, session.AUTH_UNAVAILABLE) from error
        raise HTTPException(400, "This sign-in link is invalid or has expired: ask for a new one.") from error
    except httpx.HTTPError as error:
        raise HTTPException(503, session.AUTH_UNAVAILABLE) from error
    response = RedirectResponse("/app/archive", status_code=303)
    session.set_session(response, tokens)
    session.clear_verifier(response)
    return finish(request, response, media_origins())


@router.post("/signout")
async def signout(request: Request) -> Response:
    found = await session.visitor(request)
    await form_of(request, found.user_id)
    access = request.cookies.get(session.cookie_name(session.ACCESS_COOKIE), "")
    if found.renewed is not None:
        access = found.renewed.access_token
    if found.user_id and access:
        try:
            await session.sign_out(request, access)  # the refresh token dies with the session
        except (AuthError, httpx.HTTPError):
            pass  # already gone, or Auth unreachable: the cookies go all the same
    found.renewed, found.signed_out = None, True
    return redirect(request, "/app/signin")


# --- accounts and syncing --------------------------------------------------------------------------------


def sync_row(row: Any) -> dict[str, Any]:
    found = dict(zip(SYNC_FIELDS, row, strict=True))
    found["running"] = found["status"] in ("queued", "running")
    return found


@router.get("/accounts")
async def accounts(request: Request, sync: str | None = None, connected: str | None = None) -> Response:
    user_id = await signed_in(request)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await as_user(conn, user_id)
        rows = await (await conn.execute(ACCOUNTS)).fetchall()
        syncs = {r[0]: sync_row(r) for r in await (await conn.execute(LATEST_SYNCS)).fetchall()}
        notes = await (await conn.execute(NOTIFICATIONS)).fetchall()
    names = [
        "id",
        "platform",
        "username",
        "display_name",
        "status",
        "last_sync_at",
        "last_sync_status",
        "next_sync_at",
        "error_message",
        "error_count",
        "sync_enabled",
        "token_expires_at",
        "webhook_subscribed",
        "avatar_url",
    ]
    listed = [dict(zip(names, r, strict=True)) for r in rows]
    for account in listed:
        account["sync"] = syncs.get(account["id"])
        found = request.app.state.platforms.get(account["platform"])
        account["live"] = (
            "webhooks"
            if account["webhook_subscribed"]
            else "a live stream"
            if found is not None and found.stream is not None
            else None
        )
    platforms = [
        name for name, found in sorted(request.app.state.platforms.items()) if found.oauth and found.oauth.configured()
    ]
    return page(
        request,
        "accounts.html",
        accounts=listed,
        platforms=platforms,
        notifications=[
            dict(zip(["id", "account_id", "kind", "title", "body", "created_at"], n, strict=True)) for n in notes
        ],
        connected=connected if connected in request.app.state.platforms else None,
        sync_id=sync,
    )


@router.post("/connect/{platform}")
async def connect(platform: str, request: Request) -> Response:
    user_id = await signed_in(request)
    form = await form_of(request, user_id)
    if platform not in request.app.state.platforms:
        raise HTTPException(404, "Trove cannot connect that platform")
    hint = form.get("login_hint", "").strip()[:512] or None
    begun = await begin_connect(request, platform, user_id, "/app/accounts", hint)
    if isinstance(begun, JSONResponse):
        detail = json.loads(bytes(begun.body)).get("detail", "the platform refused")
        raise HTTPException(begun.status_code, f"Connecting {platform} failed: {detail}")
    started, browser, _ = begun
    if urlsplit(started["url"]).scheme not in ("http", "https"):
        raise HTTPException(502, f"{platform} gave an authorization address Trove will not open")
    # A page that goes on to the platform (not a redirect: the form's CSP allows posting to this site only).
    response = page(request, "continue.html", platform=platform, url=started["url"])
    set_browser_cookie(response, platform, browser)
    return response


@router.post("/accounts/{account_id}/sync")
async def sync_now(account_id: str, request: Request) -> Response:
    user_id = await signed_in(request)
    await form_of(request, user_id)
    sync_log_id = await queue_sync_now(request.app.state.pool, user_id, account_id)
    return redirect(request, f"/app/accounts?{urlencode({'sync': sync_log_id})}#sync-{sync_log_id}")


@router.post("/accounts/{account_id}/disconnect")
async def disconnect(account_id: str, request: Request) -> Response:
    user_id = await signed_in(request)
    await form_of(request, user_id)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await as_user(conn, user_id)  # RLS: someone else's account looks exactly like a missing one
        await owned_row(conn, VISIBLE_ACCOUNT, account_id, "account")
        await conn.execute(RESET_ROLE)  # disconnecting is the service's (the token columns are)
        await conn.execute(DISCONNECT_ACCOUNT, (account_id,))
    return redirect(request, "/app/accounts")


@router.post("/notifications/{notification_id}/read")
async def read_notification(notification_id: str, request: Request) -> Response:
    user_id = await signed_in(request)
    await form_of(request, user_id)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await as_user(conn, user_id)
        try:
            await conn.execute(READ_NOTIFICATION, (notification_id,))
        except psycopg.errors.InvalidTextRepresentation as error:  # not a uuid
            raise HTTPException(404, "no such notification") from error
    return redirect(request, "/app/accounts")


async def progress_of(request: Request, user_id: str, sync_log_id: str) -> dict[str, Any]:
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await as_user(conn, user_id)
        row = await owned_row(conn, SYNC_PROGRESS, sync_log_id, "sync")
    return sync_row(row)


@router.get("/sync/{sync_log_id}.json")
async def sync_progress(sync_log_id: str, request: Request) -> Response:
    user_id = await signed_in(request)
    found = await progress_of(request, user_id, sync_log_id)
    for key in ("started_at", "completed_at"):
        found[key] = found[key].isoformat() if found[key] else None
    return done(request, JSONResponse(found))


# --- the archive -----------------------------------------------------------------------------------------


def day_bound(value: str, what: str, *, end: bool) -> str | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError as error:
        raise HTTPException(400, f"{what} must be a date (YYYY-MM-DD)") from error
    if end:
        if day == date.max:
            return None  # the end of time: no bound
        day += timedelta(days=1)  # "until" includes its day
    return f"{day.isoformat()}T00:00:00Z"


def engagement_words(stats: Any) -> list[str]:
    return [
        f"{value:g} {render.measure_name(name, value)}" for name, value in render.numeric_stats(stats).items() if value
    ]


@router.get("/archive")
async def archive(
    request: Request,
    q: str = "",
    platform: str = "",
    type: str = "",
    since: str = "",
    until: str = "",
    cursor: str = "",
) -> Response:
    user_id = await signed_in(request)
    known = await platform_names(request)
    q = q.strip()[:500]
    filters = {"q": q, "platform": platform, "type": type, "since": since, "until": until}
    error = None
    posts: list[dict[str, Any]] = []
    next_cursor = None
    facets: list[tuple[str, int]] = []
    try:
        params = feed_params(
            known,
            platform or None,
            type or None,
            day_bound(since, "from", end=False),
            day_bound(until, "to", end=True),
            q or None,
            PAGE_SIZE,
            cursor or None,
            None,
        )
        found = await fetch_feed(request.app.state, Reader(user_id, public_only=False), params)
        posts, next_cursor = found["posts"], found["next_cursor"]
        async with request.app.state.pool.connection() as conn, conn.transaction():
            await as_user(conn, user_id)
            extras = await (
                await conn.execute(PAGE_EXTRAS, {"q": q or None, "ids": [p["id"] for p in posts]})
            ).fetchall()
            if q:
                facets = [(r[0], r[1]) for r in await (await conn.execute(SEARCH_FACETS, (q,))).fetchall()]
        by_id = {r[0]: r for r in extras}
        for post in posts:
            _, html, public_data, stats, headline = by_id.get(post["id"], (None, None, None, None, None))
            post["html"] = html
            post["alts"] = render.alt_texts(public_data)
            post["engagement"] = engagement_words(stats)
            post["headline"] = render.highlighted(headline) if headline else None
            post["created"] = datetime.fromisoformat(post["created_at"])
    except HTTPException as refused:
        error = str(refused.detail)
    more = {**{k: v for k, v in filters.items() if v}, "cursor": next_cursor} if next_cursor else None
    return page(
        request,
        "archive.html",
        posts=posts,
        filters=filters,
        platforms=sorted(known),
        types=TYPES,
        facets=facets,
        error=error,
        next_url=f"/app/archive?{urlencode(more)}" if more else None,
        status=400 if error else 200,
    )


@router.get("/posts/{post_id}")
async def post_page(post_id: str, request: Request) -> Response:
    user_id = await signed_in(request)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await as_user(conn, user_id)
        row = await owned_row(conn, POST, post_id, "post")
        names = [
            "id",
            "platform",
            "content_type",
            "text",
            "html",
            "created_at",
            "updated_at",
            "published",
            "deleted",
            "visibility",
            "permalink",
            "author_handle",
            "username",
            "archived_at",
            "changed_at",
            "raw",
            "ingested_post_id",
            "account_id",
            "platform_post_id",
            "public_data",
        ]
        post = dict(zip(names, row, strict=True))
        media = []
        if post["ingested_post_id"]:
            media = await (await conn.execute(POST_MEDIA, (post["ingested_post_id"],))).fetchall()
        history = await (await conn.execute(ENGAGEMENT, (post_id,))).fetchall()
        events = await (await conn.execute(POST_EVENTS, (post["account_id"], post["platform_post_id"]))).fetchall()
        interactions = await (
            await conn.execute(POST_INTERACTIONS, (post["account_id"], post["platform_post_id"]))
        ).fetchall()
    storage = request.app.state.storage
    alts = render.alt_texts(post["public_data"])
    gallery = []
    for index, (key, status, original, path, content_type, size, failure) in enumerate(media):
        copied = status == "downloaded" and path
        gallery.append(
            {
                "key": key,
                "status": status,
                "url": await storage.signed_url(path, 3600) if copied else None,
                "original": original or None,
                "content_type": content_type or "",
                "size": size,
                "error": failure,
                "alt": alts[index] if index < len(alts) else "",
            }
        )
    series: dict[str, list[tuple[datetime, float]]] = {}
    for recorded, stats in history:
        for name, value in render.numeric_stats(stats).items():
            series.setdefault(render.measure_name(name, 2), []).append((recorded, value))
    # A line needs two moments: with one, the figures above say it all.
    chart = render.line_chart_svg(series, "Engagement over time") if len({r[0] for r in history}) > 1 else None
    return page(
        request,
        "post.html",
        post=post,
        gallery=gallery,
        chart=chart,
        latest=engagement_words(history[-1][1]) if history else [],
        events=[
            {
                "id": e[0],
                "source": e[1],
                "event_type": e[2],
                "received_at": e[3],
                "status": e[4],
                "outcome": e[5],
                "payload": json.dumps(e[6], indent=2, ensure_ascii=False),
            }
            for e in events
        ],
        interactions=interactions,
        raw=json.dumps(post["raw"], indent=2, ensure_ascii=False) if post["raw"] is not None else None,
    )


# --- overview --------------------------------------------------------------------------------------------


@router.get("/overview")
async def overview(request: Request) -> Response:
    user_id = await signed_in(request)
    today = datetime.now(UTC).date()
    since = datetime.combine(today - timedelta(days=7 * 53), datetime.min.time(), UTC)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await as_user(conn, user_id)
        days = await (await conn.execute(POSTS_PER_DAY, (since,))).fetchall()
        totals = await (await conn.execute(TOTALS)).fetchall()
        media = await (await conn.execute(MEDIA_TOTALS)).fetchall()
        rows = await (await conn.execute(ACCOUNTS)).fetchall()
        syncs = {r[0]: sync_row(r) for r in await (await conn.execute(LATEST_SYNCS)).fetchall()}
    per_day: dict[date, int] = {}
    for day, _, count in days:
        per_day[day] = per_day.get(day, 0) + count
    per_platform: dict[str, int] = {}
    for platform, _, count, _, _ in totals:
        per_platform[platform] = per_platform.get(platform, 0) + count
    stored = [(p, n, b) for p, s, n, b in media if s == "downloaded"]
    return page(
        request,
        "overview.html",
        heatmap=render.heatmap_svg(per_day, today),
        totals=totals,
        per_platform=sorted(per_platform.items()),
        media=media,
        stored_files=sum(n for _, n, _ in stored),
        stored_bytes=sum(b for _, _, b in stored),
        accounts=[
            {
                "id": r[0],
                "platform": r[1],
                "username": r[2],
                "status": r[4],
                "last_sync_at": r[5],
                "last_sync_status": r[6],
                "next_sync_at": r[7],
                "error_message": r[8],
                "sync": syncs.get(r[0]),
            }
            for r in rows
        ],
    )


# --- API keys and import ---------------------------------------------------------------------------------


def feed_urls() -> dict[str, str]:
    base = public_url()
    return {"JSON": f"{base}/api/posts", "JSON Feed": f"{base}/api/feed.json", "Atom": f"{base}/api/feed.atom"}


@router.get("/keys")
async def keys_page(request: Request) -> Response:
    user_id = await signed_in(request)
    listed = await user_keys(request.app.state.pool, user_id)
    return page(request, "keys.html", keys=listed, new_key=None, feeds=feed_urls())


@router.post("/keys")
async def create_key(request: Request) -> Response:
    user_id = await signed_in(request)
    form = await form_of(request, user_id)
    made = await make_key(request.app.state.pool, user_id, form.get("name", ""))
    listed = await user_keys(request.app.state.pool, user_id)
    # Shown in this answer only (never in a URL or a redirect): the page is not stored (no-store).
    return page(request, "keys.html", status=201, keys=listed, new_key=made, feeds=feed_urls())


@router.post("/keys/{key_id}/revoke")
async def revoke_key(key_id: str, request: Request) -> Response:
    user_id = await signed_in(request)
    await form_of(request, user_id)
    try:
        found = await revoke(request.app.state.pool, user_id, key_id)
    except psycopg.errors.InvalidTextRepresentation as error:  # not a uuid: no such key either
        raise HTTPException(404, "no such key") from error
    if not found:
        raise HTTPException(404, "no such key")
    return redirect(request, "/app/keys")


@router.get("/import")
async def import_page(request: Request) -> Response:
    user_id = await signed_in(request)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await as_user(conn, user_id)
        rows = await (await conn.execute(IMPORTS)).fetchall()
    imports = [
        dict(zip(["id", "platform", "file_name", "status", "byte_size", "created_at", "error"], r, strict=True))
        for r in rows
    ]
    for each in imports:
        each["status"] = IMPORT_STATES.get(each["status"], each["status"])
    return page(request, "import.html", imports=imports, limit=Limits.from_environment().total_bytes)


@router.post("/import", max_body_size=UNCAPPED)
async def upload(request: Request) -> Response:
    """The export file as the request body (app.js sends it so: a form would be spooled whole first), with
    the CSRF token in X-CSRF-Token."""
    user_id = await signed_in(request)
    check_csrf(request, user_id, request.headers.get(CSRF_HEADER))
    if not await is_known_user(request, user_id):  # before a byte is written (as POST /api/import)
        raise HTTPException(403, UNKNOWN_USER)
    received = await take_upload(request, user_id)
    return done(request, JSONResponse({"import_id": received.import_id, "joined": not received.new}, status_code=202))
