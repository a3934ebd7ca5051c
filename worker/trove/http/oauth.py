"""OAuth connect (seed 2): start returns the platform's authorize URL with a random single-use state; the
callback validates the state, exchanges the code, stores the account with encrypted tokens and queues its
backfill. Every refusal is a clear JSON error; nothing already stored is touched by a failed attempt."""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from trove.accounts import AlreadyConnected, save_connection
from trove.config import public_url
from trove.connectors.base import SyncError
from trove.connectors.strava import SCOPES, StravaConnector
from trove.http.auth import User, current_user
from trove.redact import redact

router = APIRouter(prefix="/functions/v1")
REQUIRED_SCOPES = {"strava": {"read", "activity:read_all"}}


class StartRequest(BaseModel):
    redirect_to: str | None = None  # a path of the app to return to after connecting


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def oauth_connector(request: Request, platform: str) -> StravaConnector:
    connector = request.app.state.connectors.get(platform)
    if not isinstance(connector, StravaConnector):
        raise HTTPException(404, f"no OAuth connect for platform {platform!r}")
    if not connector.config.client_id or not connector.config.client_secret:
        raise HTTPException(503, f"{platform} is not configured (client id and secret)")
    return connector


def callback_url(platform: str) -> str:
    return f"{public_url()}/functions/v1/oauth-{platform}/callback"


@router.post("/oauth-{platform}/start")
async def start(
    platform: str, request: Request, user: Annotated[User, Depends(current_user)], body: StartRequest | None = None
) -> dict[str, Any]:
    connector = oauth_connector(request, platform)
    redirect_to = body.redirect_to if body else None
    if redirect_to and (not redirect_to.startswith("/") or redirect_to.startswith("//")):
        raise HTTPException(400, "redirect_to must be a path on this site (it starts with a single /)")
    state = secrets.token_urlsafe(32)
    async with request.app.state.pool.connection() as conn:
        known = await (await conn.execute("select 1 from public.users where id = %s", (user.id,))).fetchone()
        if known is None:
            raise HTTPException(403, "no Trove user for this token")
        cur = await conn.execute(
            "insert into public.oauth_states (state_hash, user_id, platform, redirect_to) values (%s, %s, %s, %s)"
            " returning expires_at",
            (state_hash(state), user.id, platform, redirect_to),
        )
        row = await cur.fetchone()
    return {"url": connector.config.authorize_url(callback_url(platform), state), "expires_at": row[0].isoformat()}


def refuse(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


@router.get("/oauth-{platform}/callback", response_model=None)
async def callback(
    platform: str,
    request: Request,
    code: str | None = None,
    state: str | None = None,
    scope: str | None = None,
    error: str | None = None,
) -> Response:
    connector = oauth_connector(request, platform)
    pool = request.app.state.pool
    if not state:
        return refuse(400, "invalid_state", "the callback has no state parameter: start connecting again")
    async with pool.connection() as conn:
        cur = await conn.execute(
            "update public.oauth_states set used_at = now() where state_hash = %s and platform = %s"
            " and used_at is null and expires_at > now() returning user_id::text, redirect_to",
            (state_hash(state), platform),
        )
        claimed = await cur.fetchone()
        if claimed is None:
            cur = await conn.execute(
                "select used_at is not null, expires_at <= now() from public.oauth_states where state_hash = %s",
                (state_hash(state),),
            )
            known = await cur.fetchone()
            reason = (
                "this connect link was already used"
                if known and known[0]
                else "this connect link has expired"
                if known
                else "unknown state: start connecting again"
            )
            return refuse(400, "invalid_state", reason)
    user_id, redirect_to = claimed
    if error:
        return refuse(400, error, f"{platform} did not grant access ({error}): nothing was connected")
    granted = set((scope or "").replace(" ", ",").split(",")) - {""}
    missing = REQUIRED_SCOPES.get(platform, set()) - granted
    if missing:
        return refuse(
            400,
            "missing_scope",
            f"Trove needs the {', '.join(sorted(missing))} permission to archive your activities"
            f" (asked for {SCOPES}); connect again and keep every box ticked",
        )
    if not code:
        return refuse(400, "invalid_request", "the callback has no code parameter")
    http: httpx.AsyncClient = request.app.state.http
    try:
        tokens, athlete = await connector.exchange_code(http, code)
    except SyncError as failure:
        return refuse(400, "exchange_failed", redact(str(failure)))
    except httpx.HTTPError as failure:
        return refuse(502, "platform_unreachable", f"{platform} could not be reached: {type(failure).__name__}")
    athlete_id = str(athlete.get("id") or "")
    if not athlete_id:
        return refuse(502, "exchange_failed", f"{platform} did not say which account this is")
    profile = {k: athlete.get(k) for k in ("firstname", "lastname", "city", "country", "premium", "sex")}
    username = athlete.get("username") or athlete_id
    try:
        async with pool.connection() as conn, conn.transaction():
            saved = await save_connection(
                conn,
                request.app.state.ring,
                user_id=user_id,
                platform=platform,
                platform_user_id=athlete_id,
                username=username,
                tokens=tokens,
                scope=",".join(sorted(granted)),
                display_name=" ".join(filter(None, [athlete.get("firstname"), athlete.get("lastname")])) or None,
                avatar_url=athlete.get("profile"),
                metadata=profile,
            )
    except AlreadyConnected as taken:
        return refuse(409, "already_connected", str(taken))
    if redirect_to:
        return RedirectResponse(f"{redirect_to}?connected={platform}&account_id={saved.account_id}", status_code=303)
    return JSONResponse(
        {"account_id": saved.account_id, "platform": platform, "username": username, "sync_log_id": saved.sync_log_id},
        status_code=201 if saved.created else 200,
    )
