"""A local stand-in for the part of Supabase Auth's REST API (GoTrue, `<SUPABASE_URL>/auth/v1/...`) that a web
app uses: sign up, sign in with a password or with an emailed link (magic link, PKCE flow), refresh, sign out,
the signed-in user. On Supabase, Auth answers these; locally there is no Auth, so this router answers them in
the same wire format (the `supabase_auth` client works against it unchanged), mounted only on the local stack
(`mount_local_auth`), as supabase/local/*.sql recreate what Supabase provides. Its data lives where Auth keeps
it: auth.users, auth.sessions, auth.refresh_tokens, auth.mfa_amr_claims, auth.one_time_tokens, auth.flow_state
(supabase/local/01_auth.sql, 04_auth_sessions.sql, 05_auth_magic_link.sql).

As Auth configured like the Supabase CLI's local stack: email sign-ups are confirmed at once (autoconfirm) and
answered with a session, passwords are at least 6 and at most 72 bytes (bcrypt's limit) and hashed with bcrypt
(pgcrypto, cost 10), access tokens are HS256 JWTs signed with the project's JWT secret
(`trove.config.jwt_secret`) carrying Supabase's claims, valid for an hour, and refresh tokens rotate: each is
used once, a revoked one is answered (with its session's current token) only within REUSE_INTERVAL_SECONDS
of its use (a client that lost the answer, concurrent refreshes), and a reuse after that is taken as a stolen
token: the whole session ends. Errors are Auth's JSON: `{"code": 400, "error_code": ..., "msg": ...}`, or, for a
client that sends `X-Supabase-Api-Version: 2024-01-01` (supabase_auth does), `{"code": ..., "message": ...}`
with the header echoed, so the client raises its AuthApiError with Auth's message and code.

Refresh tokens are stored as their SHA-256 only. To answer a reuse with the session's current token without
keeping any token, a token's successor is derived from it: HMAC-SHA256 with the session's random key
(auth.sessions.refresh_token_hmac_key, as Auth's own session keys are named). Whoever presents a token can
compute its successors only with that key, which never leaves the database; the first token of a session is
random. Passwords and tokens are never logged, nor echoed in an error.

Sign-in links, as Auth sends them (`sign_in_with_otp` with an email): `POST /otp` stores the link's token (its
SHA-256 only; valid LINK_VALIDITY_SECONDS, one outstanding per user, at most one link per address every
EMAIL_INTERVAL_SECONDS) and, when the client sent a code challenge (the PKCE flow; s256 only), a flow state
holding the auth code; the email is written to the local mailbox, `<state dir>/mailbox/*.eml`, in place of
Auth's SMTP. The link, `/verify?token=...&type=magiclink&redirect_to=...`, is used once: it redirects (303) to
redirect_to with `?code=<auth code>` (PKCE) or with the session in the fragment (implicit), or with Auth's
error parameters; `POST /token?grant_type=pkce` exchanges the code and the code verifier for a session within
FLOW_STATE_SECONDS, once. `POST /verify` with a token_hash answers a session at once. redirect_to is honoured
only on the origin of `trove.config.public_url()` (the local stack's allow-list), otherwise that URL is used.

Not emulated: phone, OAuth, MFA, identities (the user's `identities` is empty), email changes, confirmation and
recovery emails, the six-digit email codes, `POST /magiclink` (the client does not use it), rate limits other
than the per-address email interval, the admin API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jwt
import psycopg
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import iter_route_contexts
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from trove.config import jwt_secret, local_stack, public_url, state_dir
from trove.http.auth import MAX_TOKEN
from trove.json_input import InvalidJson, parse_json
from trove.queries.local_auth import (
    CHECK_PASSWORD,
    END_FLOW,
    END_LINK_FLOWS,
    END_OTHER_SESSIONS,
    END_SESSION,
    END_USER_SESSIONS,
    FLOW_STATE,
    ISSUE_AUTH_CODE,
    ISSUE_LINK,
    LATER_TOKENS,
    LINK_TOKEN,
    LINK_USER,
    LOCK_SESSION_OF_TOKEN,
    REFRESH_TOKEN,
    ROTATE,
    SIGN_UP,
    START_SESSION,
    USE_LINK,
    USER,
    USER_AND_SESSION,
)

logger = logging.getLogger(__name__)

PREFIX = "/auth/v1"
# Not Trove's API but Auth's (documented by Supabase): left out of Trove's OpenAPI document.
router = APIRouter(prefix=PREFIX, include_in_schema=False)

ACCESS_TOKEN_SECONDS = 3600  # Auth's default JWT expiry
REUSE_INTERVAL_SECONDS = 10.0  # Auth's default refresh token reuse interval
LINK_VALIDITY_SECONDS = 3600.0  # Auth's default email link/OTP expiry (MAILER_OTP_EXP)
EMAIL_INTERVAL_SECONDS = 60.0  # Auth's default least time between two emails to one address (SMTP_MAX_FREQUENCY)
FLOW_STATE_SECONDS = 300.0  # Auth's default PKCE flow state expiry: an auth code is exchanged within it
MAGIC_LINK_SUBJECT = "Your Magic Link"
MAIL_FROM = "Trove (local) <noreply@trove.local>"
MAILBOX = "mailbox"  # in trove.config.state_dir()
PKCE_PREFIX = "pkce_"  # Auth's mark on a PKCE flow's link token
MAX_REDIRECT_LENGTH = 2048
MAX_BODY_BYTES = 64 * 1024  # a sign-up with its metadata is far smaller
MIN_PASSWORD_BYTES = 6  # Auth's default minimum (as Auth counts it: bytes)
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further
MAX_EMAIL_LENGTH = 255
MAX_USER_AGENT = 512
# The route's own cap is MAX_BODY_BYTES, answered in Auth's format; the app's cap would answer in its own.
UNCAPPED = 2**50

API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION_2024_01_01 = date(2024, 1, 1)
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")
_BEARER = re.compile(r"bearer (\S+)", re.IGNORECASE)
# The address check Auth makes (checkmail's format).
_EMAIL = re.compile(
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
)
_REFRESH_TOKEN = re.compile(r"[A-Za-z0-9_-]{12,255}")
_LINK_TOKEN = re.compile(r"[A-Za-z0-9_.~-]{1,255}")
# RFC 7636's code challenge, as Auth checks it.
_CODE_CHALLENGE = re.compile(r"[A-Za-z0-9._~-]+")
MIN_CODE_CHALLENGE, MAX_CODE_CHALLENGE = 43, 128
MAX_CODE_VERIFIER = 1024
# The verification types Auth knows for email links; of them only a magic link's token exists here (which Auth
# also takes as `recovery` or `email`).
EMAIL_LINK_TYPES = ("signup", "invite", "magiclink", "recovery", "email_change", "email")
MAGIC_LINK_TYPES = ("magiclink", "recovery", "email")
# Auth's OAuth-style `error` for an error redirect, by the HTTP status it would have answered.
_OAUTH_ERRORS = {
    400: "invalid_request",
    401: "unauthorized_client",
    403: "access_denied",
    500: "server_error",
    503: "temporarily_unavailable",
}
# A bcrypt salt of Auth's cost: an unknown address is checked against it, so it takes as long as a known one.
DUMMY_SALT = "$2a$10$TroveLocalAuthNoSuchUe"
NIL_UUID = "00000000-0000-0000-0000-000000000000"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
INVALID_LOGIN = "Invalid login credentials"


class AuthFailure(Exception):
    """A refusal, answered as Auth answers it: `code` is Auth's error code, `message` its text."""

    def __init__(
        self, status: int, code: str, message: str, *, reasons: list[str] | None = None, oauth: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reasons = reasons
        self.oauth = oauth

    def response(self, request: Request) -> JSONResponse:
        headers = {"Cache-Control": "no-store"}
        if self.oauth:  # Auth's OAuth-style errors have one shape whatever the version
            return JSONResponse({"error": self.code, "error_description": self.message}, 400, headers)
        headers["x-sb-error-code"] = self.code
        body: dict[str, Any]
        if _api_version(request) is not None:
            headers[API_VERSION_HEADER] = API_VERSION_2024_01_01.isoformat()
            body = {"code": self.code, "message": self.message}
        else:
            body = {"code": self.status, "error_code": self.code, "msg": self.message}
        if self.reasons is not None:
            body["weak_password"] = {"reasons": self.reasons}
        return JSONResponse(body, self.status, headers)


def _api_version(request: Request) -> date | None:
    """The API version the client asked for, as Auth reads it: 2024-01-01 for that date or later, else none."""
    raw = request.headers.get(API_VERSION_HEADER) or ""
    if not _API_VERSION.fullmatch(raw):
        return None
    try:
        asked = date.fromisoformat(raw)
    except ValueError:
        return None
    return API_VERSION_2024_01_01 if asked >= API_VERSION_2024_01_01 else None


def _failure(status: int, code: str, message: str) -> AuthFailure:
    return AuthFailure(status, code, message)


def _not_json(why: str) -> AuthFailure:
    return _failure(400, "bad_json", f"Could not parse request body as JSON: {why}")


async def _answer(request: Request, handler: Callable[[Request], Awaitable[Response]]) -> Response:
    try:
        return await handler(request)
    except AuthFailure as failure:
        return failure.response(request)


async def _read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object: capped (Auth's 413), strict UTF-8, depth-limited, storable text only."""
    too_large = _failure(413, "request_entity_too_large", f"Request body too large (max {MAX_BODY_BYTES} bytes)")
    declared = request.headers.get("content-length") or ""
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    try:
        value = parse_json(bytes(body))
    except InvalidJson as error:
        raise _not_json(error.detail) from error
    if not isinstance(value, dict):
        raise _not_json("the body is not a JSON object")
    return value


def _text(body: dict[str, Any], name: str) -> str:
    """A string field; absent or null is empty (as Auth decodes it), any other type is refused."""
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _not_json(f"{name} must be a string")
    return value


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _user(row: dict[str, Any]) -> dict[str, Any]:
    """The user object as Auth answers it (the fields it leaves out when empty are left out here too)."""
    user: dict[str, Any] = {
        "id": row["id"],
        "aud": row["aud"] or "",
        "role": row["role"] or "",
        "email": row["email"] or "",
        "email_confirmed_at": _timestamp(row["email_confirmed_at"]),
        "phone": row["phone"] or "",
        "confirmed_at": _timestamp(row["email_confirmed_at"]),
        "last_sign_in_at": _timestamp(row["last_sign_in_at"]),
        "app_metadata": _object(row["raw_app_meta_data"]),
        "user_metadata": _object(row["raw_user_meta_data"]),
        "identities": [],
        "created_at": _timestamp(row["created_at"]) or GO_ZERO_TIME,
        "updated_at": _timestamp(row["updated_at"]) or GO_ZERO_TIME,
        "is_anonymous": bool(row["is_anonymous"]),
    }
    return {key: value for key, value in user.items() if value is not None}


def _secret() -> str:
    secret = jwt_secret()
    if not secret:  # mounted only on the local stack, which always has one
        raise _failure(500, "unexpected_failure", "no JWT secret configured")
    return secret


def access_token(row: dict[str, Any], session_id: str, amr: list[dict[str, Any]]) -> tuple[str, int]:
    """An access token for the user in `row` and their session, with Supabase's claims (`amr`: how the session
    was signed in to, as Auth gives it); and its expiry."""
    now = int(time.time())
    expires_at = now + ACCESS_TOKEN_SECONDS
    claims = {
        "iss": f"{public_url()}{PREFIX}",
        "sub": row["id"],
        "aud": row["aud"] or "authenticated",
        "exp": expires_at,
        "iat": now,
        "email": row["email"] or "",
        "phone": row["phone"] or "",
        "app_metadata": _object(row["raw_app_meta_data"]),
        "user_metadata": _object(row["raw_user_meta_data"]),
        "role": row["role"] or "authenticated",
        "aal": "aal1",
        "amr": amr,
        "session_id": session_id,
        "is_anonymous": bool(row["is_anonymous"]),
    }
    return jwt.encode(claims, _secret(), algorithm="HS256"), expires_at


def _session_body(
    row: dict[str, Any], session_id: str, amr: list[dict[str, Any]], refresh_token: str
) -> dict[str, Any]:
    token, expires_at = access_token(row, session_id, amr)
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "expires_at": expires_at,
        "refresh_token": refresh_token,
        "user": _user(row),
    }


def _session(row: dict[str, Any], session_id: str, amr: list[dict[str, Any]], refresh_token: str) -> JSONResponse:
    return JSONResponse(_session_body(row, session_id, amr, refresh_token), headers={"Cache-Control": "no-store"})


def token_hash(token: str) -> str:
    """What is stored of a refresh token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def _successor(key: bytes, token: str) -> str:
    digest = hmac.new(key, token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _session_key(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None


def _client_ip(request: Request) -> str | None:
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


async def _new_session(
    conn: AsyncConnection[Any], request: Request, user_id: str, method: str, gone: AuthFailure | None = None
) -> dict[str, Any]:
    """A new session for the user (inside the caller's transaction), signed in to by `method` (Auth's name:
    password, magiclink, otp): the body Auth answers a sign-in with. `gone` is the refusal if the user is."""
    refresh_token = secrets.token_urlsafe(32)
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    agent = (request.headers.get("user-agent") or "")[:MAX_USER_AGENT] or None
    cur = conn.cursor(row_factory=dict_row)
    params = {"user": user_id, "key": key, "token": token_hash(refresh_token), "agent": agent}
    await cur.execute(START_SESSION, {**params, "ip": _client_ip(request), "method": method})
    row = await cur.fetchone()
    if row is None:  # the user was deleted meanwhile
        raise gone or _failure(400, "invalid_credentials", INVALID_LOGIN)
    return _session_body(row, row["session_id"], row["amr"], refresh_token)


async def _start_session(
    conn: AsyncConnection[Any], request: Request, user_id: str, method: str, gone: AuthFailure | None = None
) -> JSONResponse:
    """A new session, answered as Auth answers a sign-in."""
    body = await _new_session(conn, request, user_id, method, gone)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _check_password_strength(password: str) -> None:
    size = len(password.encode())
    if size > MAX_PASSWORD_BYTES:
        raise _failure(400, "validation_failed", f"Password cannot be longer than {MAX_PASSWORD_BYTES} characters")
    if size < MIN_PASSWORD_BYTES:
        raise AuthFailure(
            422,
            "weak_password",
            f"Password should be at least {MIN_PASSWORD_BYTES} characters.",
            reasons=["length"],
        )


def _valid_email(email: str) -> str:
    if len(email) > MAX_EMAIL_LENGTH:
        raise _failure(400, "validation_failed", "An email address is too long")
    if not _EMAIL.fullmatch(email):
        raise _failure(400, "validation_failed", "Unable to validate email address: invalid format")
    return email.lower()


def _metadata(body: dict[str, Any]) -> str:
    """The body's `data` (a new user's metadata) as JSON text: an object, or none."""
    data = body.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _not_json("data must be an object")
    try:
        return json.dumps(data, allow_nan=False)
    except ValueError as error:  # NaN or Infinity: not JSON Postgres takes
        raise _not_json("data holds a number JSON cannot carry") from error


async def _sign_up(request: Request) -> Response:
    body = await _read_json(request)
    email, phone, password = _text(body, "email"), _text(body, "phone"), _text(body, "password")
    metadata = _metadata(body)
    if not password:
        raise _failure(400, "validation_failed", "Signup requires a valid password")
    _check_password_strength(password)
    if email and phone:
        raise _failure(400, "validation_failed", "Only an email address or phone number should be provided on signup.")
    if not email:
        if phone:
            raise _failure(400, "phone_provider_disabled", "Phone signups are disabled")
        raise _failure(400, "validation_failed", "Sign up only available with email provider")
    email = _valid_email(email)
    exists = _failure(422, "user_already_exists", "User already registered")
    try:
        async with request.app.state.pool.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(SIGN_UP, {"email": email, "password": password, "data": metadata})
            created = await cur.fetchone()
            if created is None:
                raise exists
            return await _start_session(conn, request, created["id"], "password")
    except psycopg.errors.UniqueViolation as error:  # signed up concurrently
        raise exists from error


async def _password_grant(request: Request) -> Response:
    body = await _read_json(request)
    email, phone, password = _text(body, "email"), _text(body, "phone"), _text(body, "password")
    if email and phone:
        raise _failure(400, "validation_failed", "Only an email address or phone number should be provided on login.")
    if not email:
        if phone:
            raise _failure(422, "phone_provider_disabled", "Phone logins are disabled")
        raise _failure(400, "validation_failed", "missing email or phone")
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(CHECK_PASSWORD, {"email": email, "password": password, "dummy": DUMMY_SALT})
        user_id, stored, attempt, confirmed = await cur.fetchone()
    # The same answer, after the same work, for an unknown address, a user without a password and a wrong one.
    matches = hmac.compare_digest((attempt or "").encode(), (stored or "").encode())
    # bcrypt reads 72 bytes: a longer password would sign in by its first 72 (sign-up refuses them too).
    too_long = len(password.encode()) > MAX_PASSWORD_BYTES
    if user_id is None or not stored or not matches or too_long:
        raise _failure(400, "invalid_credentials", INVALID_LOGIN)
    if not confirmed:
        raise _failure(400, "email_not_confirmed", "Email not confirmed")
    async with request.app.state.pool.connection() as conn, conn.transaction():
        return await _start_session(conn, request, user_id, "password")


async def _current_token(
    conn: AsyncConnection[Any], key: bytes, token: str, token_id: int, session_id: str
) -> str | None:
    """The session's live token descending from a revoked one (each successor derived from the one before),
    or None when the chain ends in no live token."""
    cur = await conn.execute(LATER_TOKENS, (session_id, token_id))
    later = {digest: revoked for digest, revoked in await cur.fetchall()}
    current = token
    for _ in range(len(later)):
        current = _successor(key, current)
        revoked = later.get(token_hash(current))
        if revoked is None:
            return None
        if not revoked:
            return current
    return None


async def _refresh_grant(request: Request) -> Response:
    body = await _read_json(request)
    token = _text(body, "refresh_token")
    if not _REFRESH_TOKEN.fullmatch(token):
        raise _failure(400, "validation_failed", "Refresh token is not valid")
    not_found = _failure(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    presented = token_hash(token)
    issued: str | None = None
    row: dict[str, Any] | None = None
    async with request.app.state.pool.connection() as conn, conn.transaction():
        # The session first (refreshes of one session take turns), then the token as that turn finds it.
        cur = await conn.execute(LOCK_SESSION_OF_TOKEN, (presented,))
        if await cur.fetchone() is None:
            raise not_found
        cur = await conn.execute(REFRESH_TOKEN, (REUSE_INTERVAL_SECONDS, presented))
        found = await cur.fetchone()
        if found is None:
            raise not_found
        token_id, revoked, reuse_over, session_id, user_id, expired, key_text, amr = found
        key = _session_key(key_text)
        if key is None:
            raise not_found
        if expired:
            raise _failure(400, "session_expired", "Invalid Refresh Token: Session Expired")
        users = conn.cursor(row_factory=dict_row)
        if not revoked:  # rotation: this token is used up, its successor issued
            issued = _successor(key, token)
            rotation = {"id": token_id, "parent": presented, "child": token_hash(issued)}
            await users.execute(ROTATE, {**rotation, "session": session_id, "user": user_id})
            row = await users.fetchone()
        elif not reuse_over:  # a client that lost the answer, or refreshes racing: the session's current token
            issued = await _current_token(conn, key, token, token_id, session_id)
            if issued is not None:
                await users.execute(USER, (user_id,))
                row = await users.fetchone()
        if issued is None:  # used again after the interval: taken as a stolen token, the whole session ends
            await conn.execute(END_SESSION, (session_id,))
    if issued is None:  # refused once the session's end is committed
        raise _failure(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
    if row is None:
        raise not_found
    return _session(row, session_id, amr, issued)


async def _authenticated(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bearer token's claims and its user, as Auth checks them (401 without a token, 403 for a bad one
    or one whose user or session is gone)."""
    match = _BEARER.fullmatch(request.headers.get("authorization") or "")
    if not match:
        raise _failure(401, "no_authorization", "This endpoint requires a valid Bearer token")
    token = match[1]
    bad = "invalid JWT: unable to parse or verify signature, "
    if len(token) > MAX_TOKEN:
        raise _failure(403, "bad_jwt", bad + "token is malformed")
    try:
        claims = jwt.decode(token, _secret(), algorithms=["HS256"], options={"verify_aud": False, "require": ["exp"]})
    except jwt.ExpiredSignatureError as error:
        raise _failure(403, "bad_jwt", bad + "token has invalid claims: token is expired") from error
    except jwt.PyJWTError as error:
        raise _failure(403, "bad_jwt", bad + str(error)) from error
    subject = claims.get("sub")
    if not subject or not isinstance(subject, str):
        raise _failure(403, "bad_jwt", "invalid claim: missing sub claim")
    try:
        user_id = str(uuid.UUID(subject))
    except ValueError as error:
        raise _failure(400, "bad_jwt", "invalid claim: sub claim must be a UUID") from error
    session = claims.get("session_id") or None
    if session is not None:
        try:
            session = str(uuid.UUID(str(session)))
        except ValueError as error:
            raise _failure(403, "bad_jwt", "invalid claim: session_id claim must be a UUID") from error
        if session == NIL_UUID:
            session = None
    async with request.app.state.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(USER_AND_SESSION, {"user": user_id, "session": session})
        row = await cur.fetchone()
    if row is None:
        raise _failure(403, "user_not_found", "User from sub claim in JWT does not exist")
    if session is not None and not row["session_exists"]:
        raise _failure(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    claims["session_id"] = session
    return claims, row


async def _get_user(request: Request) -> Response:
    claims, row = await _authenticated(request)
    audience = claims.get("aud")
    first = audience[0] if isinstance(audience, list) and audience else audience
    if first != "authenticated":
        raise _failure(400, "validation_failed", "Token audience doesn't match request audience")
    return JSONResponse(_user(row))


async def _logout(request: Request) -> Response:
    claims, row = await _authenticated(request)
    scope = request.query_params.get("scope", "")
    if scope not in ("", "global", "local", "others"):
        raise _failure(400, "validation_failed", f"Unsupported logout scope {json.dumps(scope[:64])}")
    session = claims["session_id"]
    async with request.app.state.pool.connection() as conn:
        if session is not None and scope == "local":
            await conn.execute(END_SESSION, (session,))
        elif session is not None and scope == "others":
            await conn.execute(END_OTHER_SESSIONS, (row["id"], session))
        else:  # Auth's default, and what a token without a session gets: signed out everywhere
            await conn.execute(END_USER_SESSIONS, (row["id"],))
    return Response(status_code=204)


def _check_pkce(challenge: str, method: str) -> None:
    """A PKCE flow's code challenge and its method, as Auth checks them; of the methods, only s256 is taken here
    (with `plain` the challenge is the verifier itself: whoever sees the request could exchange the code)."""
    if not challenge and not method:
        return  # the implicit flow
    if not challenge or not method:
        raise _failure(400, "validation_failed", "PKCE flow requires code_challenge_method and code_challenge")
    if not MIN_CODE_CHALLENGE <= len(challenge) <= MAX_CODE_CHALLENGE:
        raise _failure(
            400,
            "validation_failed",
            f"code challenge has to be between {MIN_CODE_CHALLENGE} and {MAX_CODE_CHALLENGE} characters",
        )
    if not _CODE_CHALLENGE.fullmatch(challenge):
        raise _failure(
            400,
            "validation_failed",
            "code challenge can only contain alphanumeric characters, hyphens, periods, underscores and tildes",
        )
    if method.lower() != "s256":
        raise _failure(
            400,
            "validation_failed",
            f"code_challenge_method {json.dumps(method[:16])} is not supported: only s256 is accepted",
        )


def _pkce_matches(challenge: str | None, method: str | None, verifier: str) -> bool:
    """Whether the code verifier is the one the flow's challenge was made from: base64url(SHA-256(verifier))."""
    if not challenge or (method or "").lower() != "s256" or len(verifier) > MAX_CODE_VERIFIER:
        return False
    digest = hashlib.sha256(verifier.encode()).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=")
    return hmac.compare_digest(expected, challenge.encode())


def _allowed_redirect(requested: str | None) -> str:
    """Where a sign-in link may send the browser: `requested` when it is on public_url()'s origin (the same
    scheme, host and port, no user info: the local stack's allow-list), otherwise public_url() itself (Auth's
    site URL). Never anywhere else: no open redirect."""
    site = public_url()
    if not requested or len(requested) > MAX_REDIRECT_LENGTH:
        return site
    # Backslashes, spaces and control characters: browsers read such a URL otherwise than urlsplit does.
    if any(char <= " " or char in "\\\x7f" for char in requested):
        return site
    try:
        asked, base = urlsplit(requested), urlsplit(site)
        _ = asked.port  # refuses a port that is not one
    except ValueError:
        return site
    if asked.scheme.lower() not in ("http", "https") or asked.scheme.lower() != base.scheme.lower():
        return site
    if not asked.netloc or asked.netloc.lower() != base.netloc.lower():
        return site
    return requested


def _with_params(url: str, query: dict[str, str], fragment: dict[str, str] | None = None) -> str:
    """`url` with `query` set in its query string and, if given, `fragment` as its fragment (Go's encoding, as
    Auth builds its redirects: keys sorted)."""
    parts = urlsplit(url)
    if query:
        kept = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key not in query]
        parts = parts._replace(query=urlencode(sorted([*kept, *query.items()], key=lambda pair: pair[0])))
    if fragment is not None:
        parts = parts._replace(fragment=urlencode(sorted(fragment.items())))
    return urlunsplit(parts)


def _error_redirect(target: str, failure: AuthFailure, pkce: bool) -> str:
    """A refused link's redirect, as Auth makes it: the error in the fragment, and for a PKCE flow (whose
    server cannot read a fragment) in the query too."""
    described = {"error_code": failure.code, "error_description": failure.message}
    if failure.status in _OAUTH_ERRORS:
        described = {"error": _OAUTH_ERRORS[failure.status], **described}
    return _with_params(target, described if pkce else {}, {**described, "sb": ""})


def _write_mail(to: str, link: str) -> Path:
    """The sign-in email, as Auth would send it, written to the local mailbox in place of Auth's SMTP: an RFC
    5322 message file, `<state dir>/mailbox/<UTC time>-<random>.eml`, that only this OS user can read."""
    mailbox = state_dir() / MAILBOX
    mailbox.mkdir(mode=0o700, parents=True, exist_ok=True)
    mailbox.chmod(0o700)
    now = datetime.now(UTC)
    message = EmailMessage()
    message["From"] = MAIL_FROM
    message["To"] = to
    message["Subject"] = MAGIC_LINK_SUBJECT
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain="trove.local")
    text = f"Magic Link\n\nFollow this link to log in:\n\n{link}\n\nIt can be used once, within an hour.\n"
    message.set_content(text, cte="7bit")  # the link on one line, as it is (RFC 5322 allows 998 characters)
    quoted = link.replace("&", "&amp;").replace('"', "&quot;")
    html = f'<h2>Magic Link</h2>\n\n<p>Follow this link to login:</p>\n<p><a href="{quoted}">Log In</a></p>\n'
    message.add_alternative(html, subtype="html", cte="7bit")
    path = mailbox / f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.eml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(message.as_bytes())
    return path


class _SignedUpMeanwhile(Exception):
    """The address was signed up by a concurrent request: asked again, as a known user's."""


async def _send_link(
    request: Request, email: str, token: str, link: str, challenge: str | None, create_user: bool, metadata: str
) -> Path:
    """One transaction: the user (made, if they may be), the email interval, the link's token and flow state,
    the email written. A refusal or a failure to write the email leaves nothing behind."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(LINK_USER, {"email": email, "interval": EMAIL_INTERVAL_SECONDS})
        found = await cur.fetchone()
        if found is None:
            if not create_user:  # Auth's answer, which does tell whether the address has an account
                raise _failure(422, "otp_disabled", "Signups not allowed for otp")
            # As Auth signs up an unknown address that asks for a link (with autoconfirm): a confirmed user with
            # a password nobody knows.
            password = secrets.token_urlsafe(33)
            cur = await conn.execute(SIGN_UP, {"email": email, "password": password, "data": metadata})
            created = await cur.fetchone()
            if created is None:
                raise _SignedUpMeanwhile
            found = (created[0], None)
        user_id, wait = found
        if wait is not None:
            raise _failure(
                429,
                "over_email_send_rate_limit",
                f"For security purposes, you can only request this after {wait} seconds.",
            )
        params = {"user": user_id, "token": token_hash(token), "email": email, "challenge": challenge}
        await conn.execute(ISSUE_LINK, params)
        try:
            return _write_mail(email, link)
        except OSError as error:
            raise _failure(500, "unexpected_failure", "Error sending magic link email") from error


async def _otp(request: Request) -> Response:
    body = await _read_json(request)
    email, phone, channel = _text(body, "email"), _text(body, "phone"), _text(body, "channel")
    challenge, method = _text(body, "code_challenge"), _text(body, "code_challenge_method")
    create_user = body.get("create_user", True)
    if create_user is None:
        create_user = True
    if not isinstance(create_user, bool):
        raise _not_json("create_user must be a boolean")
    metadata = _metadata(body)
    if email and phone:
        raise _failure(400, "validation_failed", "Only an email address or phone number should be provided")
    if email and channel:
        raise _failure(400, "validation_failed", "Channel should only be specified with Phone OTP")
    _check_pkce(challenge, method)
    if not email:
        if phone:
            raise _failure(400, "phone_provider_disabled", "Unsupported phone provider")
        raise _failure(400, "validation_failed", "One of email or phone must be set")
    email = _valid_email(email)
    target = _allowed_redirect(request.query_params.get("redirect_to"))
    # Random, and marked as Auth marks a PKCE flow's (Auth's own is a hash of the address and a 6-digit code).
    token = (PKCE_PREFIX if challenge else "") + secrets.token_hex(28)
    link = f"{public_url()}{PREFIX}/verify?" + urlencode({"token": token, "type": "magiclink", "redirect_to": target})
    try:
        path = await _send_link(request, email, token, link, challenge or None, create_user, metadata)
    except (_SignedUpMeanwhile, psycopg.errors.UniqueViolation):
        try:
            path = await _send_link(request, email, token, link, challenge or None, create_user, metadata)
        except (_SignedUpMeanwhile, psycopg.errors.UniqueViolation) as error:
            raise _failure(500, "unexpected_failure", "Database error saving new user") from error
    logger.info("local auth: a sign-in email was written to %s", path)
    return JSONResponse({}, headers={"Cache-Control": "no-store"})


async def _use_link(conn: AsyncConnection[Any], kind: str, token: str) -> str:
    """A sign-in link's token checked and used up, inside the caller's transaction: its user's id. Unknown,
    used, replaced and expired tokens get one answer."""
    if kind not in EMAIL_LINK_TYPES:
        raise _failure(400, "validation_failed", "Invalid email verification type")
    invalid = _failure(403, "otp_expired", "Email link is invalid or has expired")
    if kind not in MAGIC_LINK_TYPES or not _LINK_TOKEN.fullmatch(token):
        raise invalid
    hashes = [token_hash(token)]
    if not token.startswith(PKCE_PREFIX):  # Auth takes a PKCE flow's token without its mark too
        hashes.append(token_hash(PKCE_PREFIX + token))
    cur = await conn.execute(LINK_TOKEN, {"hashes": hashes, "validity": LINK_VALIDITY_SECONDS})
    found = await cur.fetchone()
    if found is None or found[2]:
        raise invalid
    token_id, user_id, _ = found
    await conn.execute(USE_LINK, {"token": token_id, "user": user_id})
    return str(user_id)


async def _verify_link(request: Request) -> Response:
    """The link in the email: used up, then a redirect (303) to its redirect_to with the PKCE flow's auth code
    (`?code=`), or the session in the fragment (the implicit flow), or Auth's error parameters."""
    kind, token = request.query_params.get("type", ""), request.query_params.get("token", "")
    if not kind:
        raise _failure(400, "validation_failed", "Verify requires a verification type")
    if not token:
        raise _failure(400, "validation_failed", "Verify requires a token or a token hash")
    target = _allowed_redirect(request.query_params.get("redirect_to"))
    pkce = token.startswith(PKCE_PREFIX)
    try:
        async with request.app.state.pool.connection() as conn, conn.transaction():
            user_id = await _use_link(conn, kind, token)
            if pkce:
                cur = await conn.execute(ISSUE_AUTH_CODE, {"user": user_id, "method": kind})
                issued = await cur.fetchone()
                if issued is None:  # the link stays unused
                    raise _failure(
                        400,
                        "flow_state_not_found",
                        "No associated flow state found. 422: No valid flow state found for user.",
                    )
                location = _with_params(target, {"code": issued[0]})
            else:
                gone = _failure(403, "otp_expired", "Email link is invalid or has expired")
                session = await _new_session(conn, request, user_id, "otp", gone)
                fields = ("access_token", "token_type", "expires_in", "expires_at", "refresh_token")
                fragment = {name: str(session[name]) for name in fields}
                location = _with_params(target, {}, {**fragment, "type": kind, "sb": ""})
    except AuthFailure as failure:
        location = _error_redirect(target, failure, pkce)
    return RedirectResponse(location, 303, headers={"Cache-Control": "no-store"})


async def _verify_post(request: Request) -> Response:
    """A link's token_hash (an app that verifies links itself): used up, answered with a session."""
    body = await _read_json(request)
    kind, token, hashed = _text(body, "type"), _text(body, "token"), _text(body, "token_hash")
    email, phone = _text(body, "email"), _text(body, "phone")
    if not kind:
        raise _failure(400, "validation_failed", "Verify requires a verification type")
    if bool(token) == bool(hashed):
        raise _failure(400, "validation_failed", "Verify requires either a token or a token hash")
    if token:  # a six-digit code from an email or a text message: none is ever sent here
        if email and not phone:
            try:
                _valid_email(email)
            except AuthFailure as error:
                raise _failure(422, "validation_failed", "Invalid email format") from error
        elif not phone or email:
            raise _failure(
                400, "validation_failed", "Only an email address or phone number should be provided on verify"
            )
        raise _failure(403, "otp_expired", "Token has expired or is invalid")
    if email or phone or _text(body, "redirect_to"):
        raise _failure(400, "validation_failed", "Only the token_hash and type should be provided")
    async with request.app.state.pool.connection() as conn, conn.transaction():
        user_id = await _use_link(conn, kind, hashed)
        await conn.execute(END_LINK_FLOWS, (user_id,))  # the link's PKCE flow, if any, will not be finished now
        return await _start_session(conn, request, user_id, "otp")


async def _pkce_grant(request: Request) -> Response:
    """An auth code and the code verifier its flow's challenge was made from: a session, once."""
    body = await _read_json(request)
    code, verifier = _text(body, "auth_code"), _text(body, "code_verifier")
    if not code or not verifier:
        raise _failure(
            400, "validation_failed", "invalid request: both auth code and code verifier should be non-empty"
        )
    not_found = _failure(404, "flow_state_not_found", "invalid flow state, no valid flow state found")
    if len(code) > MAX_EMAIL_LENGTH:
        raise not_found
    async with request.app.state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(FLOW_STATE, {"code": code, "expiry": FLOW_STATE_SECONDS})
        found = await cur.fetchone()
        if found is None or found[1] is None:
            raise not_found
        flow_id, user_id, challenge, method, authentication, expired = found
        if expired:
            raise _failure(422, "flow_state_expired", "invalid flow state, flow state has expired")
        if not _pkce_matches(challenge, method, verifier):  # the flow stays, for its rightful client
            raise _failure(400, "bad_code_verifier", "code challenge does not match previously saved code verifier")
        await conn.execute(END_FLOW, (flow_id,))
        return await _start_session(conn, request, user_id, authentication, not_found)


@router.post("/signup", max_body_size=UNCAPPED)
async def signup(request: Request) -> Response:
    return await _answer(request, _sign_up)


@router.post("/token", max_body_size=UNCAPPED)
async def token(request: Request) -> Response:
    grant = request.query_params.get("grant_type", "")
    handlers = {"password": _password_grant, "refresh_token": _refresh_grant, "pkce": _pkce_grant}
    if grant not in handlers:  # Auth's answer, error code and all
        return _failure(400, "invalid_credentials", "unsupported_grant_type").response(request)
    return await _answer(request, handlers[grant])


@router.post("/otp", max_body_size=UNCAPPED)
async def otp(request: Request) -> Response:
    return await _answer(request, _otp)


@router.get("/verify")
async def verify_link(request: Request) -> Response:
    return await _answer(request, _verify_link)


@router.post("/verify", max_body_size=UNCAPPED)
async def verify(request: Request) -> Response:
    return await _answer(request, _verify_post)


@router.post("/logout")
async def logout(request: Request) -> Response:
    return await _answer(request, _logout)


@router.get("/user")
async def user(request: Request) -> Response:
    return await _answer(request, _get_user)


def mount_local_auth(app: FastAPI) -> None:
    """Serve the stand-in on `app`, on the local stack only (trove.config.local_stack); once."""
    if not local_stack():
        return
    if any(context.path_format.startswith(PREFIX + "/") for context in iter_route_contexts(app.routes)):
        return
    app.include_router(router)
