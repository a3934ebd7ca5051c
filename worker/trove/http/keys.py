"""Personal API keys (`trove_<prefix>_<secret>`): shown once, stored as SHA-256, read-only and public mode
only (see `read.reader`). Revocation is final: only the service writes `revoked_at`, after RLS has shown
the key is the caller's."""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from trove.http.auth import UNKNOWN_USER, User, as_user, current_user, known_user
from trove.http.read import clean_text
from trove.queries.auth import RESET_ROLE
from trove.queries.keys import INSERT_KEY, LIST_KEYS, REVOKE_KEY, VISIBLE_KEY

router = APIRouter(prefix="/api")
KEY_PREFIX = "trove_"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)


@router.post("/keys", status_code=201)
async def create_key(body: KeyRequest, request: Request, user: Annotated[User, Depends(known_user)]) -> dict[str, Any]:
    return await make_key(request.app.state.pool, user.id, body.name)


async def make_key(pool: AsyncConnectionPool[Any], user_id: str, name: str) -> dict[str, Any]:
    """A new API key for the user (the API's and the web app's): the key itself is in this answer only."""
    name = clean_text(name, "name").strip()
    if not name:
        raise HTTPException(400, "name must not be blank")
    if len(name) > 100:
        raise HTTPException(400, "name must be at most 100 characters")
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32).replace('_', '-')}"
    async with pool.connection() as conn:
        try:
            cur = await conn.execute(INSERT_KEY, (user_id, name, prefix, key_hash(key)))
        except psycopg.errors.ForeignKeyViolation as error:  # the user was deleted since known_user looked
            raise HTTPException(403, UNKNOWN_USER) from error
        row = await cur.fetchone()
    assert row is not None
    return {
        "id": row[0],
        "name": name,
        "prefix": prefix,
        "created_at": row[1].isoformat(),
        "key": key,
        "note": "this is the only time the key is shown",
    }


@router.get("/keys")
async def list_keys(request: Request, user: Annotated[User, Depends(current_user)]) -> dict[str, Any]:
    return {"keys": await user_keys(request.app.state.pool, user.id)}


async def user_keys(pool: AsyncConnectionPool[Any], user_id: str) -> list[dict[str, Any]]:
    async with pool.connection() as conn, conn.transaction():
        await as_user(conn, user_id)
        cur = await conn.execute(LIST_KEYS)
        rows = await cur.fetchall()
    return [
        {
            "id": r[0],
            "name": r[1],
            "prefix": r[2],
            "created_at": r[3].isoformat(),
            "last_used_at": r[4].isoformat() if r[4] else None,
            "revoked_at": r[5].isoformat() if r[5] else None,
        }
        for r in rows
    ]


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request, user: Annotated[User, Depends(known_user)]) -> dict[str, Any]:
    if not await revoke(request.app.state.pool, user.id, key_id):
        raise HTTPException(404, "no such key")
    return {"id": key_id, "revoked": True}


async def revoke(pool: AsyncConnectionPool[Any], user_id: str, key_id: str) -> bool:
    """Revoke one of the user's keys; False when they have no such key."""
    async with pool.connection() as conn, conn.transaction():
        await as_user(conn, user_id)  # RLS: someone else's key looks exactly like a missing one
        cur = await conn.execute(VISIBLE_KEY, (key_id,))
        row = await cur.fetchone()
        if row is not None:
            # Only the service writes revoked_at (an owner's grant could take a revocation back).
            await conn.execute(RESET_ROLE)
            await conn.execute(REVOKE_KEY, (row[0],))
    return row is not None
