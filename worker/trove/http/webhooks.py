"""Webhook ingress (seed 3, 4.1): verify, store the raw event, answer at once; the worker processes it.

Strava: GET answers the subscription handshake only with our verify token; POST events are unsigned, so
only our subscription_id is accepted; retried deliveries are stored once (by a hash of the event)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb

router = APIRouter(prefix="/functions/v1")

STRAVA_FIELDS = {
    "object_type": str,
    "object_id": int,
    "aspect_type": str,
    "owner_id": int,
    "subscription_id": int,
    "event_time": int,
}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def unknown_platform(platform: str) -> JSONResponse:
    return error(404, "unknown_platform", f"no webhook endpoint for platform {platform!r}")


@router.get("/webhook-{platform}")
async def handshake(platform: str, request: Request) -> JSONResponse:
    if platform != "strava":
        return unknown_platform(platform)
    params = request.query_params
    challenge, verify = params.get("hub.challenge"), params.get("hub.verify_token", "")
    if params.get("hub.mode") != "subscribe" or not challenge:
        return error(400, "invalid_request", "expected hub.mode=subscribe with a hub.challenge")
    async with request.app.state.pool.connection() as conn:
        row = await (
            await conn.execute("select verify_token_hash from public.webhook_subscriptions where platform = 'strava'")
        ).fetchone()
    if row is None or not hmac.compare_digest(row[0], token_hash(verify)):
        return error(403, "invalid_verify_token", "hub.verify_token does not match this application's")
    return JSONResponse({"hub.challenge": challenge})


@router.post("/webhook-{platform}")
async def receive(platform: str, request: Request) -> JSONResponse:
    if platform != "strava":
        return unknown_platform(platform)
    body = await request.body()
    try:
        event: Any = json.loads(body)
    except ValueError:
        return error(400, "malformed_json", "the body is not JSON")
    if not isinstance(event, dict):
        return error(400, "invalid_event", "the body must be a JSON object")
    problems = [
        name
        for name, kind in STRAVA_FIELDS.items()
        if not isinstance(event.get(name), kind) or isinstance(event.get(name), bool)
    ]
    if problems:
        return error(400, "invalid_event", f"missing or mistyped fields: {', '.join(problems)}")
    async with request.app.state.pool.connection() as conn:
        ours = await (
            await conn.execute(
                "select subscription_id from public.webhook_subscriptions where platform = 'strava'"
                " and subscription_id is not null"
            )
        ).fetchone()
        if ours is None or ours[0] != str(event["subscription_id"]):
            return error(403, "unknown_subscription", "this event is not for this application's subscription")
        identity = hashlib.sha256(json.dumps(event, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        cur = await conn.execute(
            "insert into public.ingested_items (source, platform, event_type, external_id, payload)"
            " values ('webhook', 'strava', %s, %s, %s) on conflict do nothing returning id::text",
            (f"{event['object_type']}.{event['aspect_type']}", identity, Jsonb(event)),
        )
        stored = await cur.fetchone()
    return JSONResponse({"status": "stored" if stored else "duplicate"})
