"""Instagram webhooks (Meta's Webhooks for Instagram) at /functions/v1/webhook-instagram.

Meta signs every delivery: `X-Hub-Signature-256: sha256=<hex>` is the HMAC-SHA256 of the exact body with the
app secret. That signature is checked before a single byte of the body is parsed, so an unsigned or forged
body costs us one HMAC and nothing else; the callback URL therefore carries no secret segment (one that
comes anyway is refused: it is not our URL). The verification GET proves the subscription is ours with the
verify token (only its hash is stored) and answers the bare challenge as text.

A delivery batches entries of several accounts (and of one account several times); each entry is stored
as its own event, `{"object": "instagram", "entry": [entry]}`, identified by a hash of that payload: a retried
delivery is stored once and two entries are two items of work (see `trove.platforms.instagram.events`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from trove.json_input import InvalidJson, parse_json
from trove.platforms.base import InboundEvent, Subscription, WebhookRefused, matches_hash, not_ours
from trove.platforms.instagram.normalize import decimal_id

SIGNATURE_HEADER = "x-hub-signature-256"
SIGNATURE_RE = re.compile(r"sha256=([0-9a-fA-F]{64})")
MAX_CHALLENGE = 64  # Meta's challenge is a number: anything long is not Meta's
MAX_ENTRIES = 100
MAX_CHANGES = 100
MAX_MESSAGES = 100
MAX_FIELD = 64
MAX_TIME = 2**63  # seconds for changes, milliseconds for messaging (Meta sends both): an int64 either way
MAX_PROBLEMS = 5


def bad_signature() -> WebhookRefused:
    """One answer for a missing, malformed or wrong signature."""
    return WebhookRefused(403, "invalid_signature", "the X-Hub-Signature-256 header does not sign this body")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """The one value of header `name` (case-insensitive, as HTTP has it, whatever the Mapping does); None when
    it is absent or sent more than once (two signatures are no signature)."""
    values = [value for key, value in headers.items() if key.lower() == name]
    return values[0] if len(values) == 1 else None


def signature_valid(body: bytes, header: str | None, app_secret: str) -> bool:
    """Whether `header` is "sha256=<64 hex>" and the HMAC-SHA256 of `body` with `app_secret`."""
    match = SIGNATURE_RE.fullmatch(header) if isinstance(header, str) else None
    if match is None:
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match.group(1).lower())


# --- the envelope ---------------------------------------------------------------------------------------
def _int(value: Any) -> bool:
    return type(value) is int and 0 <= value < MAX_TIME


def _list_of_objects(problems: list[str], where: str, value: Any, max_items: int) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        problems.append(f"{where} must be a list")
        return []
    if len(value) > max_items:
        problems.append(f"{where} has more than {max_items} items")
        return []
    if not all(isinstance(item, dict) for item in value):
        problems.append(f"{where} must hold only objects")
        return []
    return value


def entry_problems(entry: Any, where: str = "entry") -> list[str]:
    """What makes `entry` not one entry of an Instagram delivery (empty when it is one): an account id, a
    time, and changes (each a field name and an object value) and/or messaging events. Other keys are kept."""
    if not isinstance(entry, dict):
        return [f"{where} must be an object"]
    problems: list[str] = []
    if decimal_id(entry.get("id")) is None:
        problems.append(f"{where}.id must be a decimal string of 1 to 32 digits or a positive integer")
    if not _int(entry.get("time")):
        problems.append(f"{where}.time must be a non-negative 64-bit integer")
    if "changes" not in entry and "messaging" not in entry:
        problems.append(f"{where} has neither changes nor messaging")
    if "changes" in entry:
        changes = _list_of_objects(problems, f"{where}.changes", entry["changes"], MAX_CHANGES)
        if isinstance(entry["changes"], list) and not entry["changes"]:
            problems.append(f"{where}.changes is empty")
        for n, change in enumerate(changes):
            field = change.get("field")
            if not (isinstance(field, str) and 0 < len(field) <= MAX_FIELD):
                problems.append(f"{where}.changes[{n}].field must be a string of 1 to {MAX_FIELD} characters")
            if not isinstance(change.get("value"), dict):
                problems.append(f"{where}.changes[{n}].value must be an object")
    if "messaging" in entry:
        _list_of_objects(problems, f"{where}.messaging", entry["messaging"], MAX_MESSAGES)
        if isinstance(entry["messaging"], list) and not entry["messaging"]:
            problems.append(f"{where}.messaging is empty")
    return problems


def envelope_problems(body: Any) -> list[str]:
    """What makes `body` not an Instagram delivery (empty when it is one): {"object": "instagram", "entry":
    [1 to 100 entries]}. Each problem names the field."""
    if not isinstance(body, dict):
        return ["the body must be a JSON object"]
    problems: list[str] = []
    if body.get("object") != "instagram":
        problems.append('object must be "instagram"')
    entries = body.get("entry")
    if not isinstance(entries, list) or not entries:
        problems.append("entry must be a non-empty list")
    elif len(entries) > MAX_ENTRIES:
        problems.append(f"entry has more than {MAX_ENTRIES} items")
    else:
        for n, entry in enumerate(entries):
            problems += entry_problems(entry, f"entry[{n}]")
    return problems


def event_type(entry: dict[str, Any]) -> str:
    """What an entry holds, for the log and the queue: its change fields joined with "+" (each once, in
    order; e.g. "comments"), then "messaging" when it carries messaging events."""
    kinds: list[str] = []
    for change in entry.get("changes") or []:
        if change["field"] not in kinds:
            kinds.append(change["field"])
    if entry.get("messaging"):
        kinds.append("messaging")
    return "+".join(kinds)


def identity(payload: Any) -> str:
    """A hash of the payload's canonical JSON: the same entry delivered again is the same event."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class InstagramWebhooks:
    """The webhook door: `app_secret` is read at every call (the operator may configure it later)."""

    def __init__(self, app_secret: Callable[[], str]) -> None:
        self._app_secret = app_secret

    def handshake(self, params: Mapping[str, str], secret: str | None, ours: Subscription) -> str:
        """Meta's verification GET: answers the bare `hub.challenge` (sent as text/plain) when the verify token
        is ours. The token is compared before anything else is looked at, so the answer does not tell which
        part was wrong."""
        verify_ok = matches_hash(ours.verify_token_hash, params.get("hub.verify_token"))
        if secret is not None or not verify_ok:
            raise not_ours()
        challenge = params.get("hub.challenge")
        # Printable ASCII only: the challenge is echoed back as our response body.
        if (
            params.get("hub.mode") != "subscribe"
            or not challenge
            or len(challenge) > MAX_CHALLENGE
            or not (challenge.isascii() and challenge.isprintable())
        ):
            raise WebhookRefused(400, "invalid_request", "expected hub.mode=subscribe with a hub.challenge")
        return challenge

    def receive(
        self, body: bytes, headers: Mapping[str, str], secret: str | None, ours: Subscription
    ) -> list[InboundEvent]:
        """Authenticate (the signature, before anything is parsed), then validate the delivery; one event per
        entry. `ours` is not needed: Meta signs with the app secret, which only Meta and we hold."""
        if secret is not None:
            raise not_ours()
        app_secret = self._app_secret()
        if not app_secret:
            raise WebhookRefused(503, "not_configured", "the Instagram app secret is not configured")
        if not signature_valid(body, _header(headers, SIGNATURE_HEADER), app_secret):
            raise bad_signature()
        try:
            delivery: Any = parse_json(body)
        except InvalidJson as refused:
            raise WebhookRefused(400, refused.code, refused.detail) from refused
        problems = envelope_problems(delivery)
        if problems:
            shown = "; ".join(problems[:MAX_PROBLEMS]) + ("; ..." if len(problems) > MAX_PROBLEMS else "")
            raise WebhookRefused(400, "invalid_event", f"not an Instagram delivery: {shown}")
        events = []
        for entry in delivery["entry"]:
            payload = {"object": "instagram", "entry": [entry]}
            events.append(InboundEvent(event_type(entry), identity(payload), payload))
        return events
