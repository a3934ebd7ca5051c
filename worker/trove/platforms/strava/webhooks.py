"""Strava push events (developers.strava.com/docs/webhooks) at /functions/v1/webhook-strava/<secret>.

Strava does not sign its events and its subscription ids are guessable, so the callback URL we gave Strava
carries a secret path segment (only its hash is stored). The handshake needs that secret and our verify
token; an event needs the secret and our subscription id. A wrong secret, a missing one, a wrong verify
token and a wrong subscription id are refused alike, with no hint which part was wrong. Retried deliveries
are stored once (by a hash of the event). Even then an event is only a hint: the worker confirms
destructive ones with Strava before it acts (StravaConnector.confirm)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from trove.json_input import InvalidJson, parse_json
from trove.platforms.base import InboundEvent, Subscription, WebhookRefused, matches_hash, not_ours

# The fields of a push event (developers.strava.com/docs/webhooks): `updates` holds changed fields as strings.
EVENT_FIELDS: dict[str, type] = {
    "object_type": str,
    "object_id": int,
    "aspect_type": str,
    "owner_id": int,
    "subscription_id": int,
    "event_time": int,
}


MAX_TEXT = 64  # object_type, aspect_type ("activity", "update"): short words, never a payload of their own


def _plain(value: Any, kind: type) -> bool:
    if isinstance(value, bool) or not isinstance(value, kind):
        return False
    if isinstance(value, int):
        return 0 < value < 2**63  # Strava ids are positive 64-bit integers
    return 0 < len(value) <= MAX_TEXT


def event_problems(event: Any) -> list[str]:
    """What makes a body not a Strava push event (empty when it is one)."""
    if not isinstance(event, dict):
        return ["the event must be a JSON object"]
    problems = [
        f"{name} must be {'a positive 64-bit integer' if kind is int else f'a string of 1 to {MAX_TEXT} characters'}"
        for name, kind in EVENT_FIELDS.items()
        if not _plain(event.get(name), kind)
    ]
    updates = event.get("updates")
    if updates is not None and not (
        isinstance(updates, dict)
        and all(isinstance(v, str | int | float | bool) or v is None for v in updates.values())
    ):
        problems.append("updates must be an object of plain values")
    return problems


class StravaWebhooks:
    def handshake(self, params: Mapping[str, str], secret: str | None, ours: Subscription) -> dict[str, Any]:
        challenge, verify = params.get("hub.challenge"), params.get("hub.verify_token")
        # Both compared every time, before anything else is looked at: the answer and its timing do not
        # tell which part was wrong.
        secret_ok = matches_hash(ours.callback_secret_hash, secret)
        verify_ok = matches_hash(ours.verify_token_hash, verify)
        if not (secret_ok and verify_ok):
            raise not_ours()
        if params.get("hub.mode") != "subscribe" or not challenge or len(challenge) > MAX_TEXT:
            raise WebhookRefused(400, "invalid_request", "expected hub.mode=subscribe with a hub.challenge")
        return {"hub.challenge": challenge}

    def receive(
        self, body: bytes, headers: Mapping[str, str], secret: str | None, ours: Subscription
    ) -> list[InboundEvent]:
        if ours.subscription_id is None or not matches_hash(ours.callback_secret_hash, secret):
            raise not_ours()
        try:
            event: Any = parse_json(body)
        except InvalidJson as refused:
            raise WebhookRefused(400, refused.code, refused.detail) from refused
        problems = event_problems(event)
        if problems:
            raise WebhookRefused(400, "invalid_event", f"missing or mistyped fields: {'; '.join(problems)}")
        if ours.subscription_id != str(event["subscription_id"]):
            raise not_ours()
        identity = hashlib.sha256(json.dumps(event, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        return [InboundEvent(f"{event['object_type']}.{event['aspect_type']}", identity, event)]
