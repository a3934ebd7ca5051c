"""A webhook delivery checked and stored: the one path for a delivery that came straight to the service
(trove/http/webhooks.py) and for one the Edge Function relay kept in the inbox while the service was away
(trove/jobs/inbox.py). The platform's `Webhooks` authenticates and validates it against our subscription;
only the events it returns are stored, each once (a retried delivery is a duplicate)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from trove.platforms.base import Subscription, WebhookRefused, Webhooks
from trove.queries.ingest import INSERT_WEBHOOK_ITEM
from trove.queries.webhooks import SUBSCRIPTION

# A platform's event is a few hundred bytes to a few KB; this leaves generous headroom and nothing more
# (webhook_inbox keeps no bigger body either).
MAX_EVENT_BYTES = 64 * 1024


async def subscription(conn: AsyncConnection[Any], platform: str) -> Subscription:
    """Ours at the platform, as the deliveries are checked against it (empty when there is none)."""
    row = await (await conn.execute(SUBSCRIPTION, (platform,))).fetchone()
    return Subscription(*row) if row else Subscription()


async def deliver(
    conn: AsyncConnection[Any],
    webhooks: Webhooks,
    platform: str,
    body: bytes,
    headers: Mapping[str, str],
    secret: str | None,
) -> Literal["stored", "duplicate"]:
    """Check one delivery and store its events; raises WebhookRefused (nothing stored) when it fails a check.
    `secret` is the path segment after /functions/v1/webhook-<platform>/ (None without one)."""
    if len(body) > MAX_EVENT_BYTES:
        raise WebhookRefused(413, "too_large", f"a webhook body is at most {MAX_EVENT_BYTES} bytes")
    events = webhooks.receive(body, headers, secret, await subscription(conn, platform))
    stored: list[Any] = []
    for event in events:
        cur = await conn.execute(
            INSERT_WEBHOOK_ITEM, (platform, event.event_type, event.identity, Jsonb(event.payload))
        )
        stored.extend(await cur.fetchall())
    return "stored" if stored else "duplicate"
