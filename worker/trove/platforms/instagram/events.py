"""What a stored Instagram webhook event asks for. An event is one entry of a delivery as the ingress stored
it (`{"object": "instagram", "entry": [entry]}`, see `webhooks`); it may be read back years later, after the
code changed, so its shape is checked again here and a payload that is not of it is refused with
InvalidEventError (dead-lettered with the reason).

- comments: someone commented on one of the account's media: fetch that media again (its comments_count
  changed) and keep the comment as an interaction.
- mentions: the account was @mentioned in someone else's caption or comment: keep it, nothing to fetch (the
  media is not the account's own, its API refuses it).
- story_insights: a story expired and Meta sent its final counts: keep them (one record per story).
- anything else (messaging, fields we did not subscribe to): nothing to do.

The engine takes one action per stored item. An entry may batch several changes: the first change, in the
order Meta listed them, whose field is one of the above decides; the others are left in the stored payload."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from trove.platforms.base import Interaction, InvalidEventError, WebhookAction
from trove.platforms.instagram.normalize import decimal_id, storable
from trove.platforms.instagram.webhooks import entry_problems

MAX_TEXT = 10_000  # a comment is at most 2 200 characters on Instagram; more is cut, never refused
MAX_HANDLE = 255
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime holds
MILLISECONDS_FROM = 100_000_000_000  # a `time` this large is in milliseconds (as messaging entries send it)
INSIGHT_COUNTS = ("exits", "replies", "reach", "taps_forward", "taps_back", "impressions")


def occurred_at(time: int) -> datetime | None:
    """The entry's time (Unix seconds; milliseconds when it is that large) in UTC; None past year 9999."""
    seconds = time / 1000 if time >= MILLISECONDS_FROM else time
    return datetime.fromtimestamp(seconds, UTC) if 0 <= seconds <= MAX_SECONDS else None


def _id(value: Any, where: str) -> str:
    found = decimal_id(value)
    if found is None:
        raise InvalidEventError(f"{where} must be a decimal string of 1 to 32 digits or a positive integer")
    return found


def _optional_text(value: dict[str, Any], key: str, where: str, cap: int) -> str | None:
    text = value.get(key)
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidEventError(f"{where}.{key} must be a string")
    return storable(text)[:cap] or None


def _comment(uid: str, when: datetime | None, value: dict[str, Any], where: str) -> WebhookAction:
    comment_id = _id(value.get("id"), f"{where}.id")
    media = value.get("media")
    if not isinstance(media, dict):
        raise InvalidEventError(f"{where}.media must be an object")
    media_id = _id(media.get("id"), f"{where}.media.id")
    if value.get("parent_id") is not None:
        _id(value["parent_id"], f"{where}.parent_id")
    author = value.get("from")
    if author is not None and not isinstance(author, dict):
        raise InvalidEventError(f"{where}.from must be an object")
    username = _optional_text(author or {}, "username", f"{where}.from", MAX_HANDLE)
    interaction = Interaction(
        kind="comment",
        platform_item_id=comment_id,
        platform_post_id=media_id,
        occurred_at=when,
        author=username,
        text=_optional_text(value, "text", where, MAX_TEXT),
        data=dict(value),
    )
    return WebhookAction(uid, "refresh_post", media_id, post_stub={"id": media_id}, interaction=interaction)


def _mention(uid: str, when: datetime | None, value: dict[str, Any], where: str) -> WebhookAction:
    media_id = _id(value.get("media_id"), f"{where}.media_id")
    comment_id = _id(value["comment_id"], f"{where}.comment_id") if value.get("comment_id") is not None else None
    interaction = Interaction("mention", comment_id or media_id, media_id, when, None, None, dict(value))
    return WebhookAction(uid, "record", media_id, interaction=interaction)


def _story_insights(uid: str, when: datetime | None, value: dict[str, Any], where: str) -> WebhookAction:
    media_id = _id(value.get("media_id"), f"{where}.media_id")
    for key in INSIGHT_COUNTS:
        count = value.get(key)
        if count is not None and not (type(count) is int and -(2**63) <= count < 2**63):
            raise InvalidEventError(f"{where}.{key} must be an integer")
    interaction = Interaction("insights", media_id, media_id, when, None, None, dict(value))
    return WebhookAction(uid, "record", media_id, interaction=interaction)


HANDLERS: dict[str, Callable[[str, datetime | None, dict[str, Any], str], WebhookAction]] = {
    "comments": _comment,
    "mentions": _mention,
    "story_insights": _story_insights,
}


def action_for(event_type: str, payload: Any) -> WebhookAction:
    """What a stored event asks for. The payload is the truth (`event_type` is only its label); the account is
    the entry's id. InvalidEventError when the payload is not one entry of Instagram's shape."""
    if not isinstance(payload, dict) or payload.get("object") != "instagram":
        raise InvalidEventError('not an Instagram event: expected an object with "object": "instagram"')
    entries = payload.get("entry")
    if not isinstance(entries, list) or len(entries) != 1:
        raise InvalidEventError("not an Instagram event: entry must be a list of exactly one entry")
    entry = entries[0]
    problems = entry_problems(entry)
    if problems:
        raise InvalidEventError(f"not an Instagram event: {'; '.join(problems[:5])}")
    uid = str(entry["id"])
    when = occurred_at(entry["time"])
    for n, change in enumerate(entry.get("changes") or []):
        handler = HANDLERS.get(change["field"])
        if handler is not None:
            return handler(uid, when, change["value"], f"entry.changes[{n}].value")
    return WebhookAction(uid, "ignore")
