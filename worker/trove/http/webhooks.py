"""Webhook ingress (seed 3, 4.1): authenticate, validate, store the raw event, answer at once; the worker
processes it.

Strava does not sign its events and its subscription ids are guessable, so the callback URL we gave Strava
carries a secret path segment (`/functions/v1/webhook-strava/<secret>`; only its hash is stored). The
handshake needs that secret and our verify token; an event needs the secret and our subscription id. A
wrong secret, a missing one, a wrong verify token and a wrong subscription id are refused alike, with no hint
which part was wrong. Bodies are size-capped, depth-limited and shape-checked before anything is stored;
retried deliveries are stored once (by a hash of the event). Even then an event is only a hint: the worker
confirms destructive ones with Strava before it acts."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb

from trove.connectors.strava import event_problems
from trove.http.json_input import InvalidJson, parse_json

router = APIRouter(prefix="/functions/v1")

# A Strava event is a few hundred bytes; this leaves generous headroom and nothing more.
MAX_EVENT_BYTES = 64 * 1024


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def unknown_platform(platform: str) -> JSONResponse:
    return error(404, "unknown_platform", f"no webhook endpoint for platform {platform!r}")


def not_ours() -> JSONResponse:
    """One answer for every authentication failure, so a prober learns nothing about which part failed."""
    return error(403, "unknown_subscription", "this request is not for this application's subscription")


def same(expected_hash: str | None, presented: str) -> bool:
    return expected_hash is not None and hmac.compare_digest(expected_hash, token_hash(presented))


async def subscription(request: Request) -> tuple[str | None, str | None, str | None]:
    """Ours: (subscription id, callback secret hash, verify token hash), all None when there is none."""
    async with request.app.state.pool.connection() as conn:
        row = await (
            await conn.execute(
                "select subscription_id, callback_secret_hash, verify_token_hash"
                " from public.webhook_subscriptions where platform = 'strava'"
            )
        ).fetchone()
    return (row[0], row[1], row[2]) if row else (None, None, None)


@router.get("/webhook-{platform}")
async def handshake_without_secret(platform: str) -> JSONResponse:
    return unknown_platform(platform) if platform != "strava" else not_ours()


@router.post("/webhook-{platform}", max_body_size=MAX_EVENT_BYTES)
async def receive_without_secret(platform: str) -> JSONResponse:
    return unknown_platform(platform) if platform != "strava" else not_ours()


@router.get("/webhook-{platform}/{secret}")
async def handshake(platform: str, secret: str, request: Request) -> JSONResponse:
    if platform != "strava":
        return unknown_platform(platform)
    params = request.query_params
    challenge, verify = params.get("hub.challenge"), params.get("hub.verify_token", "")
    if params.get("hub.mode") != "subscribe" or not challenge:
        return error(400, "invalid_request", "expected hub.mode=subscribe with a hub.challenge")
    _, secret_hash, verify_hash = await subscription(request)
    # Both compared every time: the answer and its timing do not tell which one was wrong.
    secret_ok, verify_ok = same(secret_hash, secret), same(verify_hash, verify)
    if not (secret_ok and verify_ok):
        return not_ours()
    return JSONResponse({"hub.challenge": challenge})


@router.post("/webhook-{platform}/{secret}", max_body_size=MAX_EVENT_BYTES)
async def receive(platform: str, secret: str, request: Request) -> JSONResponse:
    if platform != "strava":
        return unknown_platform(platform)
    ours, secret_hash, _ = await subscription(request)
    if ours is None or not same(secret_hash, secret):
        return not_ours()
    try:
        event: Any = parse_json(await request.body())
    except InvalidJson as refused:
        return error(400, refused.code, refused.detail)
    problems = event_problems(event)
    if problems:
        return error(400, "invalid_event", f"missing or mistyped fields: {'; '.join(problems)}")
    if ours != str(event["subscription_id"]):
        return not_ours()
    identity = hashlib.sha256(json.dumps(event, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(
            "insert into public.ingested_items (source, platform, event_type, external_id, payload)"
            " values ('webhook', 'strava', %s, %s, %s) on conflict do nothing returning id::text",
            (f"{event['object_type']}.{event['aspect_type']}", identity, Jsonb(event)),
        )
        stored = await cur.fetchone()
    return JSONResponse({"status": "stored" if stored else "duplicate"})
