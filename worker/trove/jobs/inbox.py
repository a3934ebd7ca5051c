"""Replaying the webhook inbox: deliveries the Edge Function relay kept while the service could not be
reached. Nothing in the inbox is trusted: each goes through `trove.deliveries.deliver`, the same checks a
direct delivery gets (signature, secret URL, subscription id). One that fails them is rejected at once, with
the reason as its outcome; one that passes is stored exactly as the service would have stored it (a delivery
the service had already taken is a duplicate). A platform not configured yet is retried with backoff."""

from __future__ import annotations

import functools
import logging
import re

import httpx

from trove.deliveries import deliver
from trove.jobs import JobContext, LeaseLost, connection_lost
from trove.platforms import load_platforms
from trove.platforms.base import WebhookRefused, Webhooks
from trove.queries.queue import COMPLETE_WORK, FAIL_WORK, GIVE_UP_WORK
from trove.queries.webhooks import INBOX_DELIVERY, SET_INBOX_OUTCOME
from trove.redact import redact

log = logging.getLogger("trove.worker")
QUEUE = "webhook_inbox"  # the work table this job drains
PATH = re.compile(r"webhook-([a-z0-9_]+)(?:/(.+))?")  # as webhook_inbox_path_check admits it


@functools.cache
def platform_webhooks() -> dict[str, Webhooks]:
    """The webhook ingress of every configured platform, as the service has it."""
    return {name: p.webhooks for name, p in load_platforms().items() if p.webhooks is not None}


class Rejected(Exception):
    """The delivery fails a check a direct one would fail: it can never be accepted."""


async def replay_inbox(ctx: JobContext, ids: list[str]) -> None:
    for inbox_id in ids:
        async with ctx.pool.connection() as conn:
            try:
                async with conn.transaction():
                    row = await (await conn.execute(INBOX_DELIVERY, (inbox_id,))).fetchone()
                    if row is None:
                        raise Rejected("gone: the delivery was deleted")
                    path, headers, body = row
                    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
                        raise Rejected("invalid_headers: the kept headers are not names and text values")
                    match = PATH.fullmatch(path)
                    webhooks = platform_webhooks().get(match[1]) if match else None
                    if match is None or webhooks is None:
                        raise Rejected(f"unknown_platform: no webhook endpoint for {path.split('/')[0]!r}")
                    try:
                        outcome = await deliver(conn, webhooks, match[1], bytes(body), httpx.Headers(headers), match[2])
                    except WebhookRefused as refused:
                        if refused.status >= 500:  # ours to fix (not configured yet): try again later
                            raise
                        raise Rejected(f"{refused.code}: {refused.detail}") from None
                    await conn.execute(SET_INBOX_OUTCOME, (outcome, inbox_id, ctx.worker_id))
                    completed = await (await conn.execute(COMPLETE_WORK, (QUEUE, inbox_id, ctx.worker_id))).fetchone()
                    if not (completed and completed[0]):
                        raise LeaseLost(inbox_id)  # another worker has it now: nothing of this run is kept
            except LeaseLost:
                log.warning("webhook inbox %s: the lease ran out and another worker has it", inbox_id)
            except Rejected as rejected:
                reason = redact(str(rejected))
                log.warning("webhook inbox %s rejected: %s", inbox_id, reason)
                async with conn.transaction():
                    await conn.execute(SET_INBOX_OUTCOME, (f"rejected: {reason}", inbox_id, ctx.worker_id))
                    await conn.execute(GIVE_UP_WORK, (QUEUE, inbox_id, ctx.worker_id, reason))
            except Exception as error:
                if connection_lost(conn, error):
                    raise  # its lease brings the delivery back
                message = redact(f"{type(error).__name__}: {error}")
                log.warning("webhook inbox %s failed: %s", inbox_id, message)
                await conn.execute(FAIL_WORK, (QUEUE, inbox_id, ctx.worker_id, message, False))
