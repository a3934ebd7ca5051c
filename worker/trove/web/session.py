"""Who is signed in to the web app. Sign-up, sign-in, refresh and sign-out go through Supabase Auth's REST API
with the `supabase_auth` client (on Supabase: the project's Auth; on the local stack: the stand-in mounted
at /auth/v1 of this service, trove.http.local_auth). The session lives in two HttpOnly, SameSite=Lax cookies
(`__Host-` and Secure on https): the access token (a Supabase JWT, verified like every API request's) and the
refresh token, with which the server renews an expired access token on the next page."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import httpx
import jwt
from fastapi import HTTPException, Request, Response
from supabase_auth import AsyncGoTrueClient, AsyncMemoryStorage
from supabase_auth.constants import STORAGE_KEY
from supabase_auth.errors import AuthApiError, AuthError, CustomAuthError

from trove.config import public_url
from trove.http.auth import decode_user_token
from trove.web.throttle import Throttle

ACCESS_COOKIE = "trove_access"
REFRESH_COOKIE = "trove_refresh"
# A sign-in link (PKCE): the code verifier stays in the browser that asked for the link, so the link works there
# only. Lax: the link is opened from a mail client, a navigation from another site.
VERIFIER_COOKIE = "trove_link_verifier"
LINK_CALLBACK = "/app/auth/callback"
SESSION_DAYS = 30  # how long a browser stays signed in without coming back (the refresh cookie's life)
MAX_COOKIE = 4096
# What a refresh token can look like (Supabase Auth's are short random strings): anything else never reaches Auth.
REFRESH_SHAPE = re.compile(r"[A-Za-z0-9._~+/=-]{8,1024}")
AUTH_UNAVAILABLE = "Signing in is not available right now (Supabase Auth did not answer): try again in a minute."


def auth_url() -> str:
    """Supabase Auth's REST API: SUPABASE_URL's /auth/v1, or this service's own on the local stack."""
    base = os.environ.get("SUPABASE_URL") or public_url()
    return f"{base.rstrip('/')}/auth/v1"


def secure_cookies() -> bool:
    return public_url().startswith("https://")


def cookie_name(name: str) -> str:
    """`__Host-` on https: a sibling subdomain cannot plant or overwrite it (cookie tossing)."""
    return f"__Host-{name}" if secure_cookies() else name


def auth_client(request: Request, storage: AsyncMemoryStorage | None = None) -> AsyncGoTrueClient:
    """A client for one request: no session kept in the process (each browser's is in its cookies)."""
    key = os.environ.get("SUPABASE_ANON_KEY") or ""
    return AsyncGoTrueClient(
        url=auth_url(),
        headers={"apikey": key, "Authorization": f"Bearer {key}"} if key else {},
        auto_refresh_token=False,
        persist_session=False,
        http_client=request.app.state.http,
        flow_type="pkce" if storage is not None else "implicit",  # PKCE: a sign-in link, its verifier kept here
        storage=storage or AsyncMemoryStorage(),
    )


# Calls to Auth a client address may cause per minute: Auth limits Trove (one address for all its users), so one
# client must not spend that for everyone. Sign-in and sign-up: a person's pace; refresh: an hour's session each.
THROTTLES = {"signin": 10, "refresh": 30}


def throttle(request: Request, kind: str) -> None:
    """429 when this client address has called Auth too often (per service process)."""
    throttles: dict[str, Throttle] | None = getattr(request.app.state, "auth_throttles", None)
    if throttles is None:
        throttles = request.app.state.auth_throttles = {name: Throttle(n) for name, n in THROTTLES.items()}
    throttles[kind].check(request)


@dataclass
class Tokens:
    access_token: str
    refresh_token: str


@dataclass
class Visitor:
    """The browser behind a request: who is signed in (if anyone), and cookies the response must set."""

    user_id: str | None = None
    email: str = ""
    renewed: Tokens | None = None
    signed_out: bool = False


def definitive(error: AuthError) -> bool:
    """Auth's own answer about these credentials (wrong, revoked, used): not a rate limit, an outage or a
    network failure, which say nothing about the session and must not sign anyone out."""
    status = getattr(error, "status", 0)
    return isinstance(error, AuthApiError | CustomAuthError) and 400 <= status < 500 and status != 429


def auth_message(error: AuthError) -> str:
    """What to tell the person: Auth's words for a definitive refusal, never a network error's."""
    if isinstance(error, AuthApiError) and error.status == 429:
        return "Too many attempts: wait a minute and try again."
    if not definitive(error):
        return AUTH_UNAVAILABLE
    return str(getattr(error, "message", "") or error) or "Supabase Auth refused the request"


async def sign_in(request: Request, email: str, password: str) -> Tokens:
    response = await auth_client(request).sign_in_with_password({"email": email, "password": password})
    if response.session is None:
        raise HTTPException(401, "no session was returned")
    return Tokens(response.session.access_token, response.session.refresh_token)


async def sign_up(request: Request, email: str, password: str) -> Tokens | None:
    """A session, or None when the project asks people to confirm their email first."""
    response = await auth_client(request).sign_up({"email": email, "password": password})
    if response.session is None:
        return None
    return Tokens(response.session.access_token, response.session.refresh_token)


async def send_sign_in_link(request: Request, email: str) -> str:
    """Ask Auth to email a sign-in link to an existing user; the PKCE code verifier the link needs back."""
    storage = AsyncMemoryStorage()
    await auth_client(request, storage).sign_in_with_otp(
        {
            "email": email,
            "options": {"email_redirect_to": f"{public_url()}{LINK_CALLBACK}", "should_create_user": False},
        }
    )
    verifier = await storage.get_item(f"{STORAGE_KEY}-code-verifier")
    if not verifier:
        raise HTTPException(500, "the Auth client kept no code verifier")
    return verifier


async def exchange_link_code(request: Request, code: str, verifier: str) -> Tokens:
    """The session a sign-in link's code opens, with the verifier kept in this browser."""
    response = await auth_client(request).exchange_code_for_session(
        {"auth_code": code, "code_verifier": verifier, "redirect_to": f"{public_url()}{LINK_CALLBACK}"}
    )
    if response.session is None:
        raise HTTPException(401, "no session was returned")
    return Tokens(response.session.access_token, response.session.refresh_token)


def set_verifier(response: Response, verifier: str) -> None:
    response.set_cookie(
        cookie_name(VERIFIER_COOKIE),
        verifier,
        max_age=3600,
        path="/",
        secure=secure_cookies(),
        httponly=True,
        samesite="lax",
    )


def clear_verifier(response: Response) -> None:
    response.delete_cookie(
        cookie_name(VERIFIER_COOKIE), path="/", secure=secure_cookies(), httponly=True, samesite="lax"
    )


async def sign_out(request: Request, access_token: str) -> None:
    await auth_client(request).admin.sign_out(access_token, "local")


async def visitor(request: Request) -> Visitor:
    """Who this request is from, renewing an expired session with its refresh token (once per request)."""
    found: Visitor | None = getattr(request.state, "visitor", None)
    if found is not None:
        return found
    found = Visitor()
    request.state.visitor = found
    access = request.cookies.get(cookie_name(ACCESS_COOKIE), "")
    refresh = request.cookies.get(cookie_name(REFRESH_COOKIE), "")
    if access and len(access) <= MAX_COOKIE:
        try:
            user = decode_user_token(access)
            found.user_id, found.email = user.id, email_of(access)
            return found
        except HTTPException:
            pass  # expired or not ours: renew below
    if refresh and REFRESH_SHAPE.fullmatch(refresh):
        throttle(request, "refresh")
        try:
            response = await auth_client(request).refresh_session(refresh)
        except AuthError as error:
            if not definitive(error):  # Auth is down or limiting us: keep the session, say so
                raise HTTPException(503, AUTH_UNAVAILABLE) from error
            found.signed_out = True  # revoked or reused: the browser signs in again
            return found
        except httpx.HTTPError as error:
            raise HTTPException(503, AUTH_UNAVAILABLE) from error
        if response.session is not None:
            try:
                user = decode_user_token(response.session.access_token)
            except HTTPException:
                found.signed_out = True
                return found
            found.user_id, found.email = user.id, email_of(response.session.access_token)
            found.renewed = Tokens(response.session.access_token, response.session.refresh_token)
    elif access or refresh:
        found.signed_out = True
    return found


def email_of(verified_token: str) -> str:
    """The email claim of a token `decode_user_token` has just verified (its cache keeps only the user id)."""
    try:
        claims = jwt.decode(verified_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    email = claims.get("email")
    return email if isinstance(email, str) else ""


def set_session(response: Response, tokens: Tokens) -> None:
    secure = secure_cookies()
    for name, value in ((ACCESS_COOKIE, tokens.access_token), (REFRESH_COOKIE, tokens.refresh_token)):
        response.set_cookie(
            cookie_name(name),
            value,
            max_age=SESSION_DAYS * 86400,
            path="/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )


def clear_session(response: Response) -> None:
    secure = secure_cookies()
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(cookie_name(name), path="/", secure=secure, httponly=True, samesite="lax")


def apply(request: Request, response: Response) -> Response:
    """What this request learned about its session, written to the response's cookies."""
    found: Visitor | None = getattr(request.state, "visitor", None)
    if found is None:
        return response
    if found.renewed is not None:
        set_session(response, found.renewed)
    elif found.signed_out:
        clear_session(response)
    return response
