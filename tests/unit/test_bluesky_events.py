"""Bluesky's Jetstream events as the worker sees them: frames parsed and checked (`stream.parse_frame`), and
stored events turned into work (`BlueskyConnector.handle_event`). No network: these are pure functions."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from trove.platforms.base import InvalidEventError
from trove.platforms.bluesky.config import BlueskyConfig
from trove.platforms.bluesky.stream import event_identity, parse_frame
from trove.platforms.bluesky.sync import BlueskyConnector

DID = "did:plc:py4zitv62v2tlngzoidns45s"
NOW_US = int(time.time() * 1_000_000)
RECORD = {"$type": "app.bsky.feed.post", "text": "hello", "createdAt": "2026-12-01T00:00:00.000Z"}


def commit(operation: str = "create", collection: str = "app.bsky.feed.post", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "rev": "3l3qo2vutsw2b",
        "operation": operation,
        "collection": collection,
        "rkey": "3l3qo2vuowo2b",
    }
    if operation != "delete":
        body |= {"record": RECORD, "cid": "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}
    return {"did": DID, "time_us": NOW_US, "kind": "commit", "commit": {**body, **extra}}


@pytest.fixture
def connector() -> BlueskyConnector:
    return BlueskyConnector(BlueskyConfig())


def test_a_post_create_asks_for_its_view_with_the_record_as_the_stub(connector: BlueskyConnector) -> None:
    action = connector.handle_event("jetstream.commit", commit())
    uri = f"at://{DID}/app.bsky.feed.post/3l3qo2vuowo2b"
    assert (action.kind, action.platform_user_id, action.platform_post_id) == ("refresh_post", DID, uri)
    assert action.post_stub == {"uri": uri, "cid": commit()["commit"]["cid"], "value": RECORD}


def test_a_delete_is_a_hint_to_confirm(connector: BlueskyConnector) -> None:
    action = connector.handle_event("jetstream.commit", commit("delete"))
    assert action.kind == "delete_post" and action.platform_post_id.endswith("/3l3qo2vuowo2b")  # type: ignore[union-attr]


def test_an_unknown_collection_is_ignored(connector: BlueskyConnector) -> None:
    like = commit(collection="app.bsky.feed.like", record={"$type": "app.bsky.feed.like"})
    assert connector.handle_event("jetstream.commit", like).kind == "ignore"


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (commit(record={"$type": "app.bsky.feed.post", "text": 42, "createdAt": "x"}), "lexicon"),
        (commit(cid=None), "no cid"),
        (commit(operation="upsert"), "unknown commit operation"),
        (commit(rkey="../../x"), "record key"),
        ({"did": DID, "time_us": 1, "kind": "commit"}, "commit is missing"),
        ({"did": "alice", "time_us": 1, "kind": "commit", "commit": {}}, "no did"),
        ({"did": DID, "time_us": 1, "kind": "account", "account": {"active": "yes"}}, "account.active"),
        ({"did": DID, "time_us": 1, "kind": "teleport", "teleport": {}}, "unknown Jetstream event kind"),
    ],
)
def test_events_not_of_jetstreams_shape_are_refused_with_the_reason(
    connector: BlueskyConnector, event: dict[str, Any], why: str
) -> None:
    with pytest.raises(InvalidEventError, match=why):
        connector.handle_event("jetstream.commit", event)


def test_identity_and_account_events(connector: BlueskyConnector) -> None:
    identity = {
        "did": DID,
        "time_us": 1,
        "kind": "identity",
        "identity": {"did": DID, "handle": "new.example", "seq": 7},
    }
    action = connector.handle_event("jetstream.identity", identity)
    assert (action.kind, action.username) == ("update_account", "new.example")
    account = {"did": DID, "time_us": 1, "kind": "account", "account": {"active": False, "status": "takendown"}}
    action = connector.handle_event("jetstream.account", account)
    assert (action.kind, action.active, action.status_reason) == ("update_account", False, "takendown")
    odd = {"did": DID, "time_us": 1, "kind": "account", "account": {"active": False, "status": "<script>"}}
    assert connector.handle_event("jetstream.account", odd).status_reason is None


def test_a_malformed_frame_is_kept_and_refused(connector: BlueskyConnector) -> None:
    for raw in (b"{not json", b"[1, 2]", b'{"did": "did:plc:x"}', b"\xff\xfe", b"[" * 100 + b"]" * 100):
        event = parse_frame(raw)
        assert event.event_type == "jetstream.malformed"
        assert event.payload["error"]
        with pytest.raises(InvalidEventError, match="not a Jetstream event"):
            connector.handle_event(event.event_type, event.payload)


def test_time_us_must_be_a_moment_of_the_past() -> None:
    for time_us in (-1, 2**63, NOW_US + 24 * 3600 * 1_000_000, True, "1"):
        frame = {**commit(), "time_us": time_us}
        assert parse_frame(json.dumps(frame)).event_type == "jetstream.malformed"
    assert parse_frame(json.dumps(commit())).event_type == "jetstream.commit"


def test_identity_is_the_same_for_a_replayed_event_and_bounded() -> None:
    assert event_identity(commit()) == event_identity(json.loads(json.dumps(commit())))
    assert event_identity(commit("delete")) != event_identity(commit())
    huge = commit(rev="x" * 10_000)
    assert len(event_identity(huge)) <= 300
