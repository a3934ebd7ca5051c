"""Webhook ingress (seed 3, 4.1) for every platform that has one: GET answers the platform's subscription
handshake, POST stores the raw events the platform's `Webhooks` accepted and answers at once; the worker
processes them. `/functions/v1/webhook-<platform>/<secret>` carries a secret path segment for platforms
that cannot sign their deliveries (the platform decides what it needs). Bodies are capped before they are
read; authentication and validation happen before anything is stored; retried deliveries are stored once."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from trove.deliveries import MAX_EVENT_BYTES, deliver, subscription
from trove.platforms.base import Platform, WebhookRefused, Webhooks

router = APIRouter(prefix="/functions/v1")


# On every answer of the service's own: the Edge Function relay keeps a delivery in the inbox when a proxy
# says the service is away (502/503/504), never when the service itself answered (a 503 not_configured).
ANSWERED = {"X-Trove-Service": "webhook"}


def error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=ANSWERED)


def ingress(request: Request, platform: str) -> Webhooks | None:
    found: Platform | None = request.app.state.platforms.get(platform)
    return found.webhooks if found is not None else None


def unknown_platform(platform: str) -> JSONResponse:
    return error(404, "unknown_platform", f"no webhook endpoint for platform {platform!r}")


async def _handshake(request: Request, platform: str, secret: str | None) -> Response:
    webhooks = ingress(request, platform)
    if webhooks is None:
        return unknown_platform(platform)
    async with request.app.state.pool.connection() as conn:
        ours = await subscription(conn, platform)
    try:
        answer = webhooks.handshake(request.query_params, secret, ours)
    except WebhookRefused as refused:
        return error(refused.status, refused.code, refused.detail)
    # Some platforms want the challenge back as JSON, others as the plain body.
    return PlainTextResponse(answer) if isinstance(answer, str) else JSONResponse(answer)


async def _receive(request: Request, platform: str, secret: str | None) -> JSONResponse:
    webhooks = ingress(request, platform)
    if webhooks is None:
        return unknown_platform(platform)
    body = await request.body()
    try:
        async with request.app.state.pool.connection() as conn:
            status = await deliver(conn, webhooks, platform, body, request.headers, secret)
    except WebhookRefused as refused:
        return error(refused.status, refused.code, refused.detail)
    return JSONResponse({"status": status}, headers=ANSWERED)


@router.get("/webhook-{platform}")
async def handshake(platform: str, request: Request) -> Response:
    return await _handshake(request, platform, None)


@router.get("/webhook-{platform}/{secret}")
async def handshake_with_secret(platform: str, secret: str, request: Request) -> Response:
    return await _handshake(request, platform, secret)


@router.post("/webhook-{platform}", max_body_size=MAX_EVENT_BYTES)
async def receive(platform: str, request: Request) -> JSONResponse:
    return await _receive(request, platform, None)


@router.post("/webhook-{platform}/{secret}", max_body_size=MAX_EVENT_BYTES)
async def receive_with_secret(platform: str, secret: str, request: Request) -> JSONResponse:
    return await _receive(request, platform, secret)
