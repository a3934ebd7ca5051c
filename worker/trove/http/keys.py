"""Personal API keys (`trove_<prefix>_<secret>`): shown once, stored as SHA-256, read-only and public mode
only (see `read.reader`). Revocation is final: only the service writes `revoked_at`, after RLS has shown
the key is the caller's."""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request
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
    name = clean_text(body.name, "name").strip()
    if not name:
        raise HTTPException(400, "name must not be blank")
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32).replace('_', '-')}"
    async with request.app.state.pool.connection() as conn:
        try:
            cur = await conn.execute(INSERT_KEY, (user.id, name, prefix, key_hash(key)))
        except psycopg.errors.ForeignKeyViolation as error:  # the user was deleted since known_user looked
            raise HTTPException(403, UNKNOWN_USER) from error
        row = await cur.fetchone()
    assert row is not None
    return {
        "id": row[0],
        "name": body.name,
        "prefix": prefix,
        "created_at": row[1].isoformat(),
        "key": key,
        "note": "this is the only time the key is shown",
    }


@router.get("/keys")
async def list_keys(request: Request, user: Annotated[User, Depends(current_user)]) -> dict[str, Any]:
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await as_user(conn, user.id)
        cur = await conn.execute(LIST_KEYS)
        rows = await cur.fetchall()
    return {
        "keys": [
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
    }


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request, user: Annotated[User, Depends(known_user)]) -> dict[str, Any]:
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await as_user(conn, user.id)  # RLS: someone else's key looks exactly like a missing one
        cur = await conn.execute(VISIBLE_KEY, (key_id,))
        row = await cur.fetchone()
        if row is not None:
            # Only the service writes revoked_at (an owner's grant could take a revocation back).
            await conn.execute(RESET_ROLE)
            await conn.execute(REVOKE_KEY, (row[0],))
    if row is None:
        raise HTTPException(404, "no such key")
    return {"id": key_id, "revoked": True}
