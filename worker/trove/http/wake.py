"""The wake endpoint (POST /functions/v1/wake): the database calls it through pg_net when work arrives and
every minute (trove_private.wake_service), so a worker that scales to zero, or that cannot hold a LISTEN
connection through a transaction pooler, is started by the database. Authenticated by an HMAC of the body
and a timestamp with the shared secret (TROVE_WAKE_SECRET, kept in Supabase Vault on the database's side;
the secret itself never travels); it drains a bounded batch in this process and answers how many items it
claimed. One drain at a time: a call while one runs is answered at once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import socket
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request

from trove.worker import Worker

router = APIRouter(prefix="/functions/v1")


def budget() -> tuple[float, int]:
    """Seconds and items one drain may take (TROVE_WAKE_BUDGET_SECONDS, 20; TROVE_WAKE_MAX_ITEMS, 500)."""
    return float(os.environ.get("TROVE_WAKE_BUDGET_SECONDS") or 20.0), int(
        os.environ.get("TROVE_WAKE_MAX_ITEMS") or 500
    )


SKEW_SECONDS = 300  # a signed wake-up older (or newer) than this is refused: a replayed one does nothing


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What the database signs a wake-up with (trove_private.wake_service): HMAC-SHA256 of "<ts>.<body>"."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@router.post("/wake")
async def wake(
    request: Request,
    timestamp: Annotated[str | None, Header(alias="X-Trove-Wake-Timestamp")] = None,
    signed: Annotated[str | None, Header(alias="X-Trove-Wake-Signature")] = None,
) -> dict[str, Any]:
    expected = os.environ.get("TROVE_WAKE_SECRET", "")
    if not expected:
        raise HTTPException(404, "waking through pg_net is not configured here (TROVE_WAKE_SECRET)")
    body = await request.body()
    if (
        not timestamp
        or not signed
        or not timestamp.isascii()
        or not timestamp.isdigit()
        or abs(time.time() - int(timestamp)) > SKEW_SECONDS
        or not hmac.compare_digest(signed.encode(), signature(expected, timestamp, body).encode())
    ):
        raise HTTPException(403, "a missing, wrong or stale X-Trove-Wake-Signature")
    state = request.app.state
    lock: asyncio.Lock = state.__dict__.setdefault("wake_lock", asyncio.Lock())
    if lock.locked():
        return {"claimed": 0, "draining": True}
    async with lock:
        platforms = state.platforms
        worker = Worker(
            state.conninfo,
            {name: platform.connector for name, platform in platforms.items()},
            state.ring,
            worker_id=f"wake:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}",  # its own leases
        )
        claimed = await worker.drain(*budget())
    return {"claimed": claimed, "draining": False}
