"""OAuth connect (seed 2): start returns the platform's authorize URL with a random single-use state; the
callback validates the state, exchanges the code, stores the account with encrypted tokens and queues its
backfill. Every refusal is a clear JSON error; nothing already stored is touched by a failed attempt.

The flow is bound to the Trove user who started it (the state row) and to the browser that started it: start
sets an HttpOnly, SameSite=Lax cookie (Path /functions/v1/oauth-{platform}, Secure on https) holding a random
value, the state row keeps its hash, and the callback must present it. So a connect link started by one user
and completed in someone else's browser connects nothing. A state is consumed by any callback that names it,
the right browser or not: a link that reached the wrong browser (and the platform's code with it) cannot be
replayed from the right one. Start the flow with the browser's cookies (same site, or fetch with
`credentials: "include"`).

On the local stack only (`trove run`, whose JWT secret is public anyway), start can instead return a
`handoff_url` (`{"handoff": true}`): a link that sets the cookie in whichever browser opens it and goes on to
the platform. That is how `trove run` with real credentials lets you connect from your own browser.

What is platform-specific (the authorize URL, the scopes, the code exchange and who the account is) comes
from the platform's `OAuth` in the registry."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from trove.accounts import AlreadyConnected, save_connection
from trove.config import ConfigError, local_stack, public_url
from trove.crypto import KeyRing, TokenCryptoError, decrypt, encrypt
from trove.http.auth import UNKNOWN_USER, User, known_user
from trove.platforms.base import ConnectRefused, OAuth, Platform, SyncError
from trove.queries.oauth import CLAIM_STATE, INSERT_STATE, LIVE_AUTHORIZE_URL, STATE_REFUSAL
from trove.redact import redact, register_secret

router = APIRouter(prefix="/functions/v1")
BROWSER_COOKIE = "trove_oauth_browser"
BROWSER_COOKIE_SECONDS = 600  # as long as a state lives (oauth_states.expires_at)
_BROWSER_VALUE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


class StartRequest(BaseModel):
    redirect_to: str | None = None  # a path of the app to return to after connecting
    handoff: bool = False  # local stack only: return a link that hands the flow to the browser opening it
    # Which account, where the platform needs to be told before consent (an atproto handle or DID).
    login_hint: str | None = Field(default=None, max_length=512)


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def browser_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def browser_cookie() -> tuple[str, bool]:
    """The binding cookie's name, and whether it is the `__Host-` kind. On https it is `__Host-` (Secure,
    Path=/, no Domain): a sibling subdomain cannot plant one (cookie tossing), so an attacker cannot put a
    value they know into a victim's browser. Plain http (the local stack) cannot have that."""
    secure = public_url().startswith("https://")
    return (f"__Host-{BROWSER_COOKIE}" if secure else BROWSER_COOKIE), secure


def browser_value(request: Request) -> str | None:
    """This browser's binding value, if it sent a well-formed one."""
    value = request.cookies.get(browser_cookie()[0])
    return value if value and _BROWSER_VALUE.match(value) else None


def set_browser_cookie(response: Response, platform: str, value: str) -> None:
    name, secure = browser_cookie()
    response.set_cookie(
        name,
        value,
        max_age=BROWSER_COOKIE_SECONDS,
        path="/" if secure else f"/functions/v1/oauth-{platform}",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def platform_oauth(request: Request, platform: str) -> OAuth:
    found: Platform | None = request.app.state.platforms.get(platform)
    if found is None or found.oauth is None:
        raise HTTPException(404, f"no OAuth connect for platform {platform!r}")
    if not found.oauth.configured():
        raise HTTPException(503, f"{platform} is not configured (client id and secret)")
    return found.oauth


def callback_url(platform: str) -> str:
    return f"{public_url()}/functions/v1/oauth-{platform}/callback"


@router.post("/oauth-{platform}/start", response_model=None)
async def start(
    platform: str,
    request: Request,
    response: Response,
    user: Annotated[User, Depends(known_user)],
    body: StartRequest | None = None,
) -> dict[str, Any] | JSONResponse:
    platform_oauth(request, platform)  # 404/503 before anything about the body
    redirect_to = body.redirect_to if body else None
    if redirect_to and (not redirect_to.startswith("/") or redirect_to.startswith("//")):
        raise HTTPException(400, "redirect_to must be a path on this site (it starts with a single /)")
    handoff = bool(body and body.handoff)
    if handoff and not local_stack():
        raise HTTPException(
            403, "handoff links exist on the local stack only: start connecting from the browser that will consent"
        )
    login_hint = (body.login_hint or "").strip() or None if body else None
    begun = await begin_connect(request, platform, user.id, redirect_to, login_hint, fresh_browser=handoff)
    if isinstance(begun, JSONResponse):
        return begun
    started, browser, state = begun
    if handoff:
        query = urlencode({"state": state, "browser": browser})
        return {**started, "handoff_url": f"{public_url()}/functions/v1/oauth-{platform}/handoff?{query}"}
    set_browser_cookie(response, platform, browser)
    return started


async def begin_connect(
    request: Request,
    platform: str,
    user_id: str,
    redirect_to: str | None,
    login_hint: str | None,
    *,
    fresh_browser: bool = False,
) -> tuple[dict[str, Any], str, str] | JSONResponse:
    """Start connecting (the API's start and the web app's "Connect"): the authorize URL and the state's expiry,
    the browser binding value (the caller sets it with `set_browser_cookie`) and the state; or the refusal."""
    oauth = platform_oauth(request, platform)
    if redirect_to and (not redirect_to.startswith("/") or redirect_to.startswith("//") or "\\" in redirect_to):
        raise HTTPException(400, "redirect_to must be a path on this site (it starts with a single /)")
    state = secrets.token_urlsafe(32)
    # One value per browser: a second connect started in another tab keeps the first one's link working.
    browser = (None if fresh_browser else browser_value(request)) or secrets.token_urlsafe(32)
    try:
        authorization = await oauth.begin(request.app.state.http, callback_url(platform), state, login_hint)
    except ConnectRefused as refused:
        return refuse(400, refused.code, refused.detail)
    except ConfigError as misconfigured:
        return refuse(503, "not_configured", f"{platform} is not configured correctly: {misconfigured}")
    except SyncError as failure:
        return refuse(502, "platform_unreachable", redact(str(failure)))
    except httpx.HTTPError as failure:
        return refuse(502, "platform_unreachable", f"{platform} could not be reached: {type(failure).__name__}")
    session = encrypt_session(request.app.state.ring, authorization.session, state_hash(state))
    async with request.app.state.pool.connection() as conn:
        try:
            cur = await conn.execute(
                INSERT_STATE,
                (
                    state_hash(state),
                    user_id,
                    platform,
                    redirect_to,
                    browser_hash(browser),
                    session,
                    authorization.url,
                ),
            )
        except psycopg.errors.ForeignKeyViolation as failure:  # the user was deleted since known_user looked
            raise HTTPException(403, UNKNOWN_USER) from failure
        row = await cur.fetchone()
    assert row is not None
    return {"url": authorization.url, "expires_at": row[0].isoformat()}, browser, state


@router.get("/oauth-{platform}/handoff", response_model=None)
async def handoff_to_browser(platform: str, request: Request, state: str = "", browser: str = "") -> Response:
    """Local stack only: bind the flow to this browser (set the cookie), then on to the platform's consent."""
    platform_oauth(request, platform)
    if not local_stack():
        return refuse(404, "not_found", "handoff links exist on the local stack only")
    if not state or not _BROWSER_VALUE.match(browser):
        return refuse(400, "invalid_request", "this handoff link is incomplete: start connecting again")
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(LIVE_AUTHORIZE_URL, (state_hash(state), platform))
        row = await cur.fetchone()
    if row is None or not row[0]:
        return refuse(400, "invalid_state", "this handoff link was used or has expired: start connecting again")
    response = RedirectResponse(row[0], status_code=302)
    set_browser_cookie(response, platform, browser)
    return response


def refuse(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def missing_scopes(oauth: OAuth, scope: str) -> set[str]:
    return set(oauth.required_scopes) - (set(scope.replace(" ", ",").split(",")) - {""})


def refuse_scope(platform: str, oauth: OAuth, missing: set[str]) -> JSONResponse:
    return refuse(
        400,
        "missing_scope",
        f"Trove needs the {', '.join(sorted(missing))} permission to archive your {platform} account"
        f" (asked for {oauth.scopes}); connect again and keep every box ticked",
    )


def encrypt_session(ring: KeyRing, session: dict[str, Any], state_digest: str) -> str | None:
    """What `begin` kept for the callback, sealed to this state (it may hold a private key)."""
    if not session:
        return None
    return encrypt(ring, json.dumps(session), account_id=state_digest, column="oauth_session")


def decrypt_session(ring: KeyRing, sealed: str | None, state_digest: str) -> dict[str, Any]:
    if not sealed:
        return {}
    session: dict[str, Any] = json.loads(decrypt(ring, sealed, account_id=state_digest, column="oauth_session"))
    return session


@router.get("/oauth-{platform}/callback", response_model=None)
async def callback(
    platform: str,
    request: Request,
    code: str | None = None,
    state: str | None = None,
    scope: str | None = None,
    error: str | None = None,
) -> Response:
    oauth = platform_oauth(request, platform)
    pool = request.app.state.pool
    if state and len(state) > 512:
        return refuse(400, "invalid_state", "unknown state: start connecting again")
    if not state:
        return refuse(400, "invalid_state", "the callback has no state parameter: start connecting again")
    async with pool.connection() as conn:
        cur = await conn.execute(CLAIM_STATE, (state_hash(state), platform))
        claimed = await cur.fetchone()
        if claimed is None:
            cur = await conn.execute(STATE_REFUSAL, (state_hash(state),))
            known = await cur.fetchone()
            reason = (
                "this connect link was already used"
                if known and known[0]
                else "this connect link has expired"
                if known
                else "unknown state: start connecting again"
            )
            return refuse(400, "invalid_state", reason)
    user_id, redirect_to, bound_to, sealed_session = claimed
    browser = browser_value(request)
    if browser is None or not hmac.compare_digest(browser_hash(browser), bound_to):
        # Consumed all the same (see the module docstring): this link cannot be completed anywhere now.
        return refuse(
            400,
            "wrong_browser",
            "this connect link was started in another browser (or its cookie is gone): nothing was connected;"
            " start connecting again from this browser",
        )
    if error:
        return refuse(400, error, f"{platform} did not grant access ({error}): nothing was connected")
    # A grant the callback states is checked before the code is spent; one that only the token response
    # states (atproto) after the exchange.
    if scope is not None and (missing := missing_scopes(oauth, scope)):
        return refuse_scope(platform, oauth, missing)
    if not code:
        return refuse(400, "invalid_request", "the callback has no code parameter")
    http: httpx.AsyncClient = request.app.state.http
    try:
        session = decrypt_session(request.app.state.ring, sealed_session, state_hash(state))
    except (TokenCryptoError, ValueError):
        return refuse(400, "invalid_session", "this connect link's session cannot be read: start connecting again")
    try:
        params = {key: value for key, value in request.query_params.items() if len(value) <= 2048}
        connection = await oauth.exchange(http, code, callback_url(platform), params, session)
        register_secret(connection.tokens.access_token)  # never in a log line from here on
        register_secret(connection.tokens.refresh_token)
    except ConnectRefused as refused:
        return refuse(400, refused.code, refused.detail)
    except SyncError as failure:
        return refuse(400, "exchange_failed", redact(str(failure)))
    except httpx.HTTPError as failure:
        return refuse(502, "platform_unreachable", f"{platform} could not be reached: {type(failure).__name__}")
    if connection.tokens.scope is not None:  # what the token endpoint says it granted, over the callback's word
        if missing := missing_scopes(oauth, connection.tokens.scope):
            return refuse_scope(platform, oauth, missing)
        scope = connection.tokens.scope
    elif scope is None:
        return refuse_scope(platform, oauth, set(oauth.required_scopes))
    granted = set(scope.replace(" ", ",").split(",")) - {""}
    try:
        async with pool.connection() as conn, conn.transaction():
            saved = await save_connection(
                conn,
                request.app.state.ring,
                user_id=user_id,
                platform=platform,
                platform_user_id=connection.platform_user_id,
                username=connection.username,
                tokens=connection.tokens,
                scope=",".join(sorted(granted)),
                display_name=connection.display_name,
                avatar_url=connection.avatar_url,
                metadata=connection.metadata,
            )
    except AlreadyConnected as taken:
        return refuse(409, "already_connected", str(taken))
    if redirect_to:
        return RedirectResponse(f"{redirect_to}?connected={platform}&account_id={saved.account_id}", status_code=303)
    return JSONResponse(
        {
            "account_id": saved.account_id,
            "platform": platform,
            "username": connection.username,
            "sync_log_id": saved.sync_log_id,
        },
        status_code=201 if saved.created else 200,
    )


# Last: the catch-all path must not shadow /start, /handoff and /callback.
@router.get("/oauth-{platform}/{document}")
async def oauth_document(platform: str, document: str, request: Request) -> JSONResponse:
    """Public documents the platform fetches from us (atproto: the client metadata and its JWKS)."""
    found: Platform | None = request.app.state.platforms.get(platform)
    served = found.oauth.documents() if found is not None and found.oauth is not None else {}
    if document not in served:
        return refuse(404, "not_found", f"no document {document!r} for {platform}")
    return JSONResponse(served[document], headers={"Cache-Control": "public, max-age=300"})
