"""Instagram's webhook door and event handling alone (no database, no processes): signatures checked before
anything is parsed, the delivery's envelope validated, one stored event per entry, and what a stored event
asks the worker for (`events.action_for`)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from trove.config import PROJECT_ROOT
from trove.platforms.base import (
    Interaction,
    InvalidEventError,
    Subscription,
    WebhookAction,
    WebhookRefused,
    secret_hash,
)
from trove.platforms.instagram.events import action_for
from trove.platforms.instagram.webhooks import InstagramWebhooks

FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures" / "instagram"
APP_SECRET = "app-secret-for-tests"
VERIFY_TOKEN = "verify-token-for-tests"
OURS = Subscription(verify_token_hash=secret_hash(VERIFY_TOKEN))
ACCOUNT = "17841400000000001"
MEDIA = "17900000000000002"
TIME = 1_764_000_000


def comment_change(**value: Any) -> dict[str, Any]:
    return {
        "field": "comments",
        "value": {
            "from": {"id": "17841400000000099", "username": "bob"},
            "media": {"id": MEDIA, "media_product_type": "FEED"},
            "id": "17865799348089039",
            "text": "nice #shot",
        }
        | value,
    }


def entry(*changes: dict[str, Any], account: Any = ACCOUNT, **extra: Any) -> dict[str, Any]:
    return {"id": account, "time": TIME, "changes": list(changes) or [comment_change()]} | extra


def delivery(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"object": "instagram", "entry": list(entries) or [entry()]}


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def hooks() -> InstagramWebhooks:
    return InstagramWebhooks(lambda: APP_SECRET)


def receive(hooks: InstagramWebhooks, body: Any, signature: str | None = None, **kwargs: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"x-hub-signature-256": signature if signature is not None else sign(raw)}
    return hooks.receive(raw, headers, kwargs.get("secret"), OURS)


def refused(hooks: InstagramWebhooks, body: Any, signature: str | None = None, **kwargs: Any) -> WebhookRefused:
    with pytest.raises(WebhookRefused) as caught:
        receive(hooks, body, signature, **kwargs)
    return caught.value


# --- handshake ------------------------------------------------------------------------------------------
def params(**overrides: str) -> dict[str, str]:
    return {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN} | overrides


def test_the_handshake_answers_the_bare_challenge(hooks: InstagramWebhooks) -> None:
    assert hooks.handshake(params(), None, OURS) == "1158201444"


@pytest.mark.parametrize(
    ("query", "secret", "ours"),
    [
        (params(**{"hub.verify_token": "wrong"}), None, OURS),
        ({k: v for k, v in params().items() if k != "hub.verify_token"}, None, OURS),
        (params(), "a-secret-segment", OURS),
        (params(), None, Subscription()),  # no subscription set up: no token is ours
    ],
)
def test_the_handshake_refuses_a_wrong_token_or_a_secret_segment_alike(
    hooks: InstagramWebhooks, query: dict[str, str], secret: str | None, ours: Subscription
) -> None:
    with pytest.raises(WebhookRefused) as caught:
        hooks.handshake(query, secret, ours)
    assert (caught.value.status, caught.value.code) == (403, "unknown_subscription")


@pytest.mark.parametrize(
    "query",
    [
        params(**{"hub.mode": "unsubscribe"}),
        params(**{"hub.challenge": ""}),
        params(**{"hub.challenge": "9" * 65}),
        params(**{"hub.challenge": "<script>\n"}),
        {k: v for k, v in params().items() if k != "hub.challenge"},
    ],
)
def test_the_handshake_refuses_a_bad_mode_or_challenge(hooks: InstagramWebhooks, query: dict[str, str]) -> None:
    with pytest.raises(WebhookRefused) as caught:
        hooks.handshake(query, None, OURS)
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")


# --- signatures -----------------------------------------------------------------------------------------
def test_a_signed_delivery_is_one_event(hooks: InstagramWebhooks) -> None:
    body = delivery()
    [event] = receive(hooks, body)
    assert event.event_type == "comments"
    assert event.payload == body
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert event.identity == hashlib.sha256(canonical).hexdigest()


def test_the_signature_header_is_found_whatever_its_case(hooks: InstagramWebhooks) -> None:
    raw = json.dumps(delivery()).encode()
    assert hooks.receive(raw, {"X-Hub-Signature-256": sign(raw)}, None, OURS)
    uppercase_hex = "sha256=" + sign(raw).removeprefix("sha256=").upper()
    assert hooks.receive(raw, {"x-hub-signature-256": uppercase_hex}, None, OURS)


@pytest.mark.parametrize(
    "signature",
    [
        "",
        sign(b"{}"),  # another body's
        sign(json.dumps(delivery()).encode(), "another-secret"),
        "sha1=" + hashlib.sha1(json.dumps(delivery()).encode()).hexdigest(),
        "sha256=" + "g" * 64,
        "sha256=" + "a" * 63,
        sign(json.dumps(delivery()).encode()) + " ",
    ],
)
def test_a_wrong_or_malformed_signature_is_refused(hooks: InstagramWebhooks, signature: str) -> None:
    problem = refused(hooks, delivery(), signature)
    assert (problem.status, problem.code) == (403, "invalid_signature")


def test_a_tampered_body_is_refused(hooks: InstagramWebhooks) -> None:
    raw = json.dumps(delivery()).encode()
    tampered = raw.replace(b"nice", b"mean")
    problem = refused(hooks, tampered, sign(raw))
    assert (problem.status, problem.code) == (403, "invalid_signature")


def test_a_missing_or_doubled_signature_header_is_refused(hooks: InstagramWebhooks) -> None:
    raw = json.dumps(delivery()).encode()
    for headers in (
        {},
        {"content-type": "application/json"},
        {"x-hub-signature-256": sign(raw), "X-HUB-SIGNATURE-256": sign(raw)},
    ):
        with pytest.raises(WebhookRefused) as caught:
            hooks.receive(raw, headers, None, OURS)
        assert (caught.value.status, caught.value.code) == (403, "invalid_signature")


def test_nothing_is_parsed_before_the_signature_is_checked(hooks: InstagramWebhooks) -> None:
    not_json = b"{this is not json"
    assert refused(hooks, not_json, sign(b"other")).status == 403  # not 400: the body was never read
    assert (refused(hooks, not_json).status, refused(hooks, not_json).code) == (400, "malformed_json")


def test_a_secret_path_segment_is_not_our_url(hooks: InstagramWebhooks) -> None:
    problem = refused(hooks, delivery(), secret="anything")
    assert (problem.status, problem.code) == (403, "unknown_subscription")


def test_without_an_app_secret_nothing_is_accepted() -> None:
    secret = {"value": ""}
    hooks = InstagramWebhooks(lambda: secret["value"])
    raw = json.dumps(delivery()).encode()
    for signature in (sign(raw, ""), sign(raw)):
        with pytest.raises(WebhookRefused) as caught:
            hooks.receive(raw, {"x-hub-signature-256": signature}, None, OURS)
        assert (caught.value.status, caught.value.code) == (503, "not_configured")
    with pytest.raises(WebhookRefused):
        hooks.receive(b"not json", {}, None, OURS)
    secret["value"] = APP_SECRET  # configured later: read at call time
    assert hooks.receive(raw, {"x-hub-signature-256": sign(raw)}, None, OURS)


# --- the envelope ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "named"),
    [
        ([delivery()], "the body must be a JSON object"),
        (delivery() | {"object": "page"}, "object must be"),
        ({"entry": [entry()]}, "object must be"),
        (delivery() | {"entry": []}, "entry must be a non-empty list"),
        (delivery() | {"entry": {"0": entry()}}, "entry must be a non-empty list"),
        (delivery(*[entry()] * 101), "more than 100"),
        (delivery("junk"), "entry[0] must be an object"),  # type: ignore[arg-type]
        (delivery(entry(account="abc")), "entry[0].id"),
        (delivery(entry(account="1" * 33)), "entry[0].id"),
        (delivery(entry(account=10**40)), "entry[0].id"),
        (delivery(entry(account=True)), "entry[0].id"),
        (delivery(entry() | {"time": "1764000000"}), "entry[0].time"),
        (delivery(entry() | {"time": 2**64}), "entry[0].time"),
        (delivery(entry() | {"time": 1.5e9}), "entry[0].time"),
        (delivery({"id": ACCOUNT, "time": TIME}), "neither changes nor messaging"),
        (delivery(entry() | {"changes": []}), "changes is empty"),
        (delivery(entry() | {"changes": {"field": "comments"}}), "changes must be a list"),
        (delivery(entry({"field": "comments", "value": "text"})), "changes[0].value must be an object"),
        (delivery(entry({"field": "comments", "value": [1]})), "changes[0].value must be an object"),
        (delivery(entry({"field": "", "value": {}})), "changes[0].field"),
        (delivery(entry({"field": "x" * 65, "value": {}})), "changes[0].field"),
        (delivery(entry({"value": {}})), "changes[0].field"),
        (delivery(entry(comment_change(), "junk")), "changes must hold only objects"),  # type: ignore[arg-type]
        (delivery(entry() | {"messaging": "hi"}), "messaging must be a list"),
    ],
)
def test_a_body_that_is_not_an_instagram_delivery_is_refused(hooks: InstagramWebhooks, body: Any, named: str) -> None:
    problem = refused(hooks, body)
    assert (problem.status, problem.code) == (400, "invalid_event")
    assert named in problem.detail


def test_deep_nesting_and_huge_numbers_are_refused(hooks: InstagramWebhooks) -> None:
    deep = b'{"object": "instagram", "entry": ' + b"[" * 40 + b"]" * 40 + b"}"
    problem = refused(hooks, deep)
    assert (problem.status, problem.code) == (400, "invalid_event") and "nested" in problem.detail
    huge = b'{"object": "instagram", "entry": [{"id": 1, "time": 1' + b"0" * 5000 + b', "changes": []}]}'
    assert refused(hooks, huge).status == 400
    nul = json.dumps(delivery(entry(comment_change(text="a\x00b")))).encode()
    assert (refused(hooks, nul).status, refused(hooks, nul).code) == (400, "invalid_event")


def test_unknown_fields_are_kept_and_numeric_ids_accepted(hooks: InstagramWebhooks) -> None:
    body = delivery(entry(account=int(ACCOUNT), uid="x") | {"messaging": [{"message": {"mid": "m"}}]}) | {"v": 2}
    [event] = receive(hooks, body)
    assert event.payload == {"object": "instagram", "entry": body["entry"]}  # the entry as sent, its id an int
    assert event.event_type == "comments+messaging"


def test_a_retried_delivery_is_the_same_event_and_two_entries_are_two(hooks: InstagramWebhooks) -> None:
    other = entry(comment_change(id="17865799348089040"), account="17841400000000002")
    body = delivery(entry(), other)
    first, second = receive(hooks, body)
    assert [first.payload["entry"], second.payload["entry"]] == [[entry()], [other]]
    assert first.identity != second.identity
    again = receive(hooks, json.dumps(body, indent=2).encode())  # bytes differ, the events do not
    assert [event.identity for event in again] == [first.identity, second.identity]
    [alone] = receive(hooks, delivery(entry()))
    assert alone.identity == first.identity
    messaging = {"id": ACCOUNT, "time": TIME * 1000, "messaging": [{"sender": {"id": "1"}}]}
    assert receive(hooks, delivery(messaging))[0].event_type == "messaging"
    doubled = entry(comment_change(), comment_change(id="2"), {"field": "mentions", "value": {"media_id": MEDIA}})
    assert receive(hooks, delivery(doubled))[0].event_type == "comments+mentions"


# --- what a stored event asks for -----------------------------------------------------------------------
def stored(*changes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"object": "instagram", "entry": [entry(*changes, **extra)]}


WHEN = datetime.fromtimestamp(TIME, UTC)


def test_a_comment_refreshes_its_media_and_is_kept() -> None:
    change = comment_change(parent_id="17865799348089000")
    action = action_for("comments", stored(change))
    assert action == WebhookAction(
        ACCOUNT,
        "refresh_post",
        MEDIA,
        post_stub={"id": MEDIA},
        interaction=Interaction("comment", "17865799348089039", MEDIA, WHEN, "bob", "nice #shot", change["value"]),
    )


def test_a_comments_text_is_storable_and_capped() -> None:
    action = action_for("comments", stored(comment_change(text="a\x00b" + "x" * 20_000)))
    assert action.interaction is not None and action.interaction.text == "ab" + "x" * 9_998
    without = action_for("comments", stored(comment_change(text=None, **{"from": None})))
    assert without.interaction is not None and (without.interaction.text, without.interaction.author) == (None, None)


def test_a_mention_is_recorded() -> None:
    value = {"media_id": MEDIA, "comment_id": "17894227972186120"}
    action = action_for("mentions", stored({"field": "mentions", "value": value}))
    assert action == WebhookAction(
        ACCOUNT,
        "record",
        MEDIA,
        interaction=Interaction("mention", "17894227972186120", MEDIA, WHEN, None, None, value),
    )
    caption = action_for("mentions", stored({"field": "mentions", "value": {"media_id": int(MEDIA)}}))
    assert caption.interaction is not None and caption.interaction.platform_item_id == MEDIA


def test_an_entry_of_several_changes_acts_on_the_first_it_knows() -> None:
    mention = {"field": "mentions", "value": {"media_id": MEDIA}}
    action = action_for("x", stored({"field": "live_comments", "value": {}}, mention, comment_change()))
    assert action.kind == "record" and action.interaction is not None and action.interaction.kind == "mention"


def test_messaging_and_unknown_fields_are_ignored() -> None:
    messaging = {"object": "instagram", "entry": [{"id": ACCOUNT, "time": TIME, "messaging": [{"x": 1}]}]}
    assert action_for("messaging", messaging) == WebhookAction(ACCOUNT, "ignore")
    assert action_for("story_replies", stored({"field": "story_replies", "value": {}})).kind == "ignore"


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        {"object": "page", "entry": [entry()]},
        {"object": "instagram", "entry": []},
        {"object": "instagram", "entry": [entry(), entry()]},  # stored one entry per event
        {"object": "instagram", "entry": [{"id": "x", "time": TIME, "changes": [comment_change()]}]},
        stored(comment_change(id="not-a-number")),
        stored(comment_change(media={"id": "a"})),
        stored(comment_change(media="17900000000000002")),
        stored(comment_change(text=5)),
        stored(comment_change(parent_id="p")),
        stored(comment_change(**{"from": "bob"})),
        stored({"field": "mentions", "value": {"comment_id": "1"}}),
        stored({"field": "mentions", "value": {"media_id": MEDIA, "comment_id": "c"}}),
        stored({"field": "story_insights", "value": {"media_id": MEDIA, "reach": "17"}}),
        stored({"field": "story_insights", "value": {"reach": 17}}),
    ],
)
def test_a_stored_event_of_another_shape_is_invalid(payload: Any) -> None:
    with pytest.raises(InvalidEventError):
        action_for("comments", payload)


def test_the_documented_story_insights_delivery_is_recorded(hooks: InstagramWebhooks) -> None:
    path = FIXTURES / "webhook_story_insights_docs_example.json"
    if not path.is_file():
        pytest.skip(f"{path} is not here (../shared/fixtures is absent)")
    [envelope] = json.loads(path.read_text())
    raw = json.dumps(envelope).encode()
    [event] = hooks.receive(raw, {"x-hub-signature-256": sign(raw)}, None, OURS)
    assert event.event_type == "story_insights"
    action = action_for(event.event_type, event.payload)
    value = envelope["entry"][0]["changes"][0]["value"]
    assert action == WebhookAction(
        "17841405309211844",
        "record",
        "18023345989012587",
        interaction=Interaction(
            "insights",
            "18023345989012587",
            "18023345989012587",
            datetime(2019, 1, 17, 1, 4, 3, tzinfo=UTC),
            None,
            None,
            value,
        ),
    )
