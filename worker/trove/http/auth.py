"""Supabase JWTs for users: HS256 with the project's JWT secret, or asymmetric keys from the JWKS URL.
Every token must carry `exp` and `sub` (Supabase always sets them). Routes that write on behalf of a user
depend on `known_user`: a valid token whose user Trove does not know is refused with 403, never a 500."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

import jwt
from fastapi import Depends, Header, HTTPException, Request
from psycopg import AsyncConnection

from trove.config import jwt_secret
from trove.queries.auth import ACT_AS_USER, USER_EXISTS


@dataclass(frozen=True)
class User:
    id: str
    claims: dict[str, Any]


REQUIRED_CLAIMS = {"require": ["exp", "sub"]}
UNKNOWN_USER = "no Trove user for this token"


@lru_cache(maxsize=1)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True)


# Verified tokens, kept until their `exp` (at most VERIFIED_FOR seconds): a Supabase JWT cannot be revoked
# before it expires, so a token verified once is as good the next time, and a client sending the same token
# on every request pays for the signature check once. Keyed by the token's SHA-256 and the verification
# settings (a changed secret or JWKS URL verifies afresh), holding only the user id and the expiry; only
# tokens of a JWT's shape and at most MAX_TOKEN characters get this far. Bounded: the oldest entry goes first.
VERIFIED_FOR = 300.0
VERIFIED_MAX = 4096
MAX_TOKEN = 8192
JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_verified: dict[tuple[bytes, str, str], tuple[str, float]] = {}


def decode_user_token(token: str) -> User:
    if len(token) > MAX_TOKEN or not JWT_SHAPE.fullmatch(token):
        raise HTTPException(401, "invalid access token: not a JWT")
    now = time.time()
    key = (
        hashlib.sha256(token.encode()).digest(),
        jwt_secret() or "",
        os.environ.get("SUPABASE_JWKS_URL") or "",
    )
    hit = _verified.get(key)
    if hit is not None and hit[1] > now:
        return User(hit[0], {"sub": hit[0], "role": "authenticated", "exp": int(hit[1])})
    user = verify_user_token(token)
    try:
        expires = min(float(int(user.claims["exp"])), now + VERIFIED_FOR)
    except (OverflowError, TypeError, ValueError):
        return user  # an expiry no clock reaches is verified every time, never kept
    if len(_verified) >= VERIFIED_MAX:
        _verified.pop(next(iter(_verified)))
    _verified[key] = (user.id, expires)
    return user


def verify_user_token(token: str) -> User:
    try:
        header = jwt.get_unverified_header(token)
        jwks_url = os.environ.get("SUPABASE_JWKS_URL")
        if header.get("alg") == "HS256":
            secret = jwt_secret()
            if not secret:
                raise HTTPException(401, "HS256 tokens are not accepted here (no SUPABASE_JWT_SECRET)")
            claims = jwt.decode(token, secret, algorithms=["HS256"], audience="authenticated", options=REQUIRED_CLAIMS)
        elif jwks_url:
            key = _jwks_client(jwks_url).get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token, key.key, algorithms=["RS256", "ES256"], audience="authenticated", options=REQUIRED_CLAIMS
            )
        else:
            raise HTTPException(401, f"unsupported token algorithm {header.get('alg')!r}")
    except jwt.ExpiredSignatureError as error:
        raise HTTPException(401, "the access token has expired") from error
    except jwt.PyJWTError as error:
        raise HTTPException(401, f"invalid access token: {error}") from error
    if claims.get("role") != "authenticated" or not claims.get("sub"):
        raise HTTPException(401, "the token is not a signed-in user's")
    try:
        user_id = str(uuid.UUID(str(claims["sub"])))
    except ValueError as error:  # Supabase user ids are UUIDs
        raise HTTPException(401, "the token's subject is not a user id") from error
    return User(user_id, claims)


async def current_user(authorization: Annotated[str | None, Header()] = None) -> User:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(401, "sign in: send Authorization: Bearer <Supabase access token>")
    return decode_user_token(authorization.split(" ", 1)[1].strip())


async def is_known_user(request: Request, user_id: str) -> bool:
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(USER_EXISTS, (user_id,))
        return await cur.fetchone() is not None


async def known_user(request: Request, user: Annotated[User, Depends(current_user)]) -> User:
    """A signed-in user Trove knows (a public.users row, made for every auth.users row): for every route
    that writes on behalf of a user. A valid token for a deleted or foreign user gets 403, not a 500."""
    if not await is_known_user(request, user.id):
        raise HTTPException(403, UNKNOWN_USER)
    return user


async def as_user(conn: AsyncConnection[Any], user_id: str) -> None:
    """Inside a transaction: what PostgREST does for a request carrying this user's JWT. The one way user
    requests are authorized: run the query as the user and let RLS decide what exists for them."""
    await conn.execute(ACT_AS_USER, (json.dumps({"sub": user_id, "role": "authenticated"}),))


def issue_local_token(user_id: str, email: str = "", ttl_seconds: int = 3600) -> str:
    """A user token signed with the local JWT secret (the demo and tests; Supabase Auth issues real ones)."""
    secret = jwt_secret()
    if not secret:
        raise RuntimeError("no JWT secret configured")
    now = int(time.time())
    claims = {
        "sub": user_id,
        "role": "authenticated",
        "aud": "authenticated",
        "email": email,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm="HS256")
