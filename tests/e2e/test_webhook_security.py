"""Issue 10, items 1, 4, 6, 12 and 13: the webhook door as an attacker and a careless client would use it.

Forged events without our secret URL, a wrong secret and a wrong subscription id are refused alike; a
destructive event that did get in is only a hint and changes nothing unless Strava confirms it; oversized,
deeply nested, wrongly shaped and unstorable bodies get a clear 4xx and nothing is stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb
from tests.strava_harness import connect_strava, strava_env, subscribe, user
from tests.worker_harness import enqueue, query, running_worker, scalar, wait_for

from trove.json_input import InvalidJson, parse_json


def secret_hook(stack: dict[str, Any]) -> str:
    """Our callback URL with its secret, as only Strava knows it (the simulator kept what we registered)."""
    return str(stack["sim"].subscription["callback_url"])


def event_for(subscription_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "aspect_type": "update",
        "event_time": 1516126040,
        "object_id": 1360128428,
        "object_type": "activity",
        "owner_id": 134815,
        "subscription_id": int(subscription_id),
        "updates": {"title": "Messy"},
        **changes,
    }


def stored(db_url: str) -> int:
    return int(scalar(db_url, "select count(*) from public.ingested_items"))


# --- item 1: the door --------------------------------------------------------------------------------------
def test_events_and_handshakes_without_our_secret_are_refused_alike(stack: dict[str, Any]) -> None:
    subscription_id = subscribe(stack)
    hook = secret_hook(stack)
    base = f"{stack['url']}/functions/v1/webhook-strava"
    assert hook.startswith(base + "/") and len(hook.rsplit("/", 1)[1]) >= 32
    # The secret is never stored in the clear.
    row = query(stack["db"], "select callback_url, callback_secret_hash from public.webhook_subscriptions")[0]
    assert hook.rsplit("/", 1)[1] not in row[0] and row[1] and hook.rsplit("/", 1)[1] not in row[1]

    event = event_for(subscription_id)
    attempts = [
        httpx.post(base, json=event),  # no secret: the old URL
        httpx.post(f"{base}/{'A' * 43}", json=event),  # a guessed secret
        httpx.post(hook, json={**event, "subscription_id": int(subscription_id) + 1}),  # a wrong id
    ]
    assert {(r.status_code, r.text) for r in attempts} == {
        (
            403,
            json.dumps(
                {"error": "unknown_subscription", "detail": attempts[0].json()["detail"]}, separators=(",", ":")
            ),
        )
    }
    challenge = {"hub.mode": "subscribe", "hub.challenge": "c"}
    handshakes = [
        httpx.get(base, params={**challenge, "hub.verify_token": "guess"}),
        httpx.get(f"{base}/{'A' * 43}", params={**challenge, "hub.verify_token": "guess"}),
        httpx.get(hook, params={**challenge, "hub.verify_token": "guess"}),  # right secret, wrong verify token
    ]
    assert {(r.status_code, r.text) for r in handshakes} == {(attempts[0].status_code, attempts[0].text)}
    assert stored(stack["db"]) == 0
    assert httpx.post(hook, json=event).json() == {"status": "stored"}
    assert stored(stack["db"]) == 1


def test_rotating_the_secret_makes_a_new_subscription_and_retires_the_old_url(stack: dict[str, Any]) -> None:
    env = {**strava_env(stack["db"], stack["sim_url"]), "TROVE_PUBLIC_URL": stack["url"]}

    def trove(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "trove.cli", "strava", *args], env=env, capture_output=True, text=True, check=False
        )

    first_id = subscribe(stack)
    first_hook = secret_hook(stack)
    again = trove("subscribe")  # never clobbers the live subscription by accident
    assert again.returncode == 1 and "subscribe --rotate" in again.stderr
    assert httpx.post(first_hook, json=event_for(first_id)).json() == {"status": "stored"}

    rotated = trove("subscribe", "--rotate")
    assert rotated.returncode == 0, rotated.stderr
    second_id, second_hook = str(stack["sim"].subscription["id"]), secret_hook(stack)
    assert second_id != first_id and second_hook != first_hook
    assert second_hook.rsplit("/", 1)[1] not in rotated.stdout + rotated.stderr  # the secret is never printed
    status = trove("status")
    assert second_hook.rsplit("/", 1)[1] not in status.stdout and "<secret>" in status.stdout
    old_url = httpx.post(first_hook, json=event_for(second_id, event_time=2))
    assert (old_url.status_code, old_url.json()["error"]) == (403, "unknown_subscription")
    assert httpx.post(second_hook, json=event_for(second_id, event_time=3)).json() == {"status": "stored"}
    assert stored(stack["db"]) == 2


# --- item 1: an event is a hint --------------------------------------------------------------------------------
def forged(db_url: str, event_type: str, payload: dict[str, Any]) -> str:
    """An event that got past the door (a leaked secret): what the worker does with it is the last line."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        return str(
            conn.execute(
                "insert into public.ingested_items (source, platform, event_type, external_id, payload)"
                " values ('webhook', 'strava', %s, md5(%s::text), %s) returning id::text",
                (event_type, json.dumps(payload), Jsonb(payload)),
            ).fetchone()[0]
        )


def item_state(db_url: str, item_id: str) -> tuple[Any, ...]:
    return query(
        db_url,
        "select status::text, outcome, error_details, error_message from public.ingested_items where id = %s",
        (item_id,),
    )[0]


def settled(db_url: str, item_id: str) -> Any:
    return item_state(db_url, item_id)[0] in ("completed", "dead_letter")


def test_forged_deauthorization_and_delete_change_nothing(stack: dict[str, Any], tmp_path: Path) -> None:
    sim = stack["sim"]
    athlete = sim.add_athlete(activities=3)
    db = stack["db"]
    account = connect_strava(db, stack["sim_url"], athlete.id)
    enqueue(db, account)
    env = strava_env(db, stack["sim_url"])
    base = {"event_time": 1, "owner_id": athlete.id, "subscription_id": 1}
    victim = next(iter(athlete.activities))
    with running_worker(env, tmp_path / "worker.log"):
        wait_for(lambda: scalar(db, "select count(*) from public.posts") == 3, 60, "the backfill")
        tokens_before = query(db, "select access_token, refresh_token from public.connected_accounts")[0]
        deauth = forged(
            db,
            "athlete.update",
            {
                **base,
                "object_type": "athlete",
                "object_id": athlete.id,
                "aspect_type": "update",
                "updates": {"authorized": "false"},
            },
        )
        delete = forged(
            db,
            "activity.delete",
            {**base, "object_type": "activity", "object_id": victim, "aspect_type": "delete", "updates": {}},
        )
        wait_for(lambda: settled(db, deauth) and settled(db, delete), 60, "the forged events")
        for item in (deauth, delete):
            status, outcome, details, _ = item_state(db, item)
            assert (status, outcome) == ("completed", "not_confirmed")
            assert details["not_confirmed"].startswith("Strava still")
        account_row = query(
            db,
            "select status::text, access_token is not null, refresh_token is not null"
            " from public.connected_accounts where id = %s",
            (account,),
        )[0]
        assert account_row == ("active", True, True)
        # The confirmation refreshed the token: the rotated one is kept, so the account still works.
        assert query(db, "select access_token, refresh_token from public.connected_accounts")[0] != tokens_before
        assert not scalar(
            db, "select deleted_on_platform from public.posts where platform_post_id = %s", (str(victim),)
        )
        assert scalar(db, "select count(*) from public.notifications") == 0

        # The same events when Strava confirms them: the activity is gone, the athlete revoked access.
        athlete.activities[victim].deleted = True
        real_delete = forged(
            db,
            "activity.delete",
            {
                **base,
                "object_type": "activity",
                "object_id": victim,
                "aspect_type": "delete",
                "updates": {},
                "event_time": 2,
            },
        )
        wait_for(lambda: settled(db, real_delete), 60, "the confirmed delete")
        assert item_state(db, real_delete)[:2] == ("completed", "applied")
        assert scalar(db, "select deleted_on_platform from public.posts where platform_post_id = %s", (str(victim),))
        httpx.post(f"{stack['sim_url']}/_sim/deauthorize", json={"athlete_id": athlete.id})  # no subscription: no event
        real_deauth = forged(
            db,
            "athlete.update",
            {
                **base,
                "object_type": "athlete",
                "object_id": athlete.id,
                "aspect_type": "update",
                "updates": {"authorized": "false"},
                "event_time": 3,
            },
        )
        wait_for(lambda: settled(db, real_deauth), 60, "the confirmed deauthorization")
        assert item_state(db, real_deauth)[:2] == ("completed", "applied")
    assert query(db, "select status::text, access_token, refresh_token from public.connected_accounts")[0] == (
        "disconnected",
        None,
        None,
    )


# --- items 4, 6, 12, 13: hostile bodies ---------------------------------------------------------------------
def test_hostile_bodies_get_clear_errors_and_store_nothing(stack: dict[str, Any]) -> None:
    subscription_id = subscribe(stack)
    hook = secret_hook(stack)
    event = event_for(subscription_id)
    json_headers = {"Content-Type": "application/json"}

    deep = b"[" * 1000 + b"]" * 1000  # about 2 KB
    nested = httpx.post(hook, content=deep, headers=json_headers)
    assert nested.status_code == 400 and nested.json()["error"] == "invalid_event", nested.text
    deep_object = httpx.post(hook, content=b'{"a":' * 5000 + b"1" + b"}" * 5000, headers=json_headers)
    assert deep_object.status_code == 400

    huge = json.dumps({**event, "updates": {"title": "x" * (20 * 1024 * 1024)}}).encode()
    too_large = httpx.post(hook, content=huge, headers=json_headers)
    assert too_large.status_code == 413

    def chunks() -> Any:  # no Content-Length: the cap counts what arrives
        for _ in range(200):
            yield b" " * 1024

    streamed = httpx.post(hook, content=chunks(), headers=json_headers)
    assert streamed.status_code == 413

    for updates in ([1, 2], 7, "authorized=false", {"nested": {"a": 1}}):
        shaped = httpx.post(hook, json={**event, "updates": updates})
        assert shaped.status_code == 400 and "updates must be an object" in shaped.json()["detail"], shaped.text
    for missing in ("owner_id", "object_type"):
        partial = httpx.post(hook, json={k: v for k, v in event.items() if k != missing})
        assert partial.status_code == 400 and missing in partial.json()["detail"]

    nul_value = httpx.post(hook, json={**event, "updates": {"title": "bad\x00title"}})
    assert nul_value.status_code == 400
    assert (
        nul_value.json()["detail"] == "field updates.title contains a NUL character (\\u0000), which cannot be stored"
    )
    nul_type = httpx.post(hook, json={**event, "object_type": "activ\x00ity"})
    assert "field object_type contains a NUL" in nul_type.json()["detail"]
    surrogate = httpx.post(hook, content=b'{"object_type": "\\ud800"}', headers=json_headers)
    assert surrogate.status_code == 400 and "field object_type" in surrogate.json()["detail"]
    assert stored(stack["db"]) == 0

    # Every other endpoint that parses a JSON body answers a deep one with 400, never a 500.
    _, headers = user(stack["db"], "mallory")
    for path in ("/functions/v1/oauth-strava/start", "/api/keys"):
        response = httpx.post(f"{stack['url']}{path}", content=deep, headers={**headers, **json_headers})
        assert response.status_code in (400, 422), (path, response.status_code, response.text)
        huge_body = httpx.post(f"{stack['url']}{path}", content=b" " * (2 * 1024 * 1024), headers=headers)
        assert huge_body.status_code == 413, path


def test_worker_dead_letters_wrongly_shaped_events_with_the_reason(stack: dict[str, Any], tmp_path: Path) -> None:
    """Item 12, second half: a stored event of the wrong shape (stored before the door checked it, or by a
    reprocess) ends as dead_letter at once with a clear reason, not a crash retried three times."""
    athlete = stack["sim"].add_athlete(activities=0)
    db = stack["db"]
    connect_strava(db, stack["sim_url"], athlete.id)
    base = {
        "event_time": 1,
        "owner_id": athlete.id,
        "subscription_id": 1,
        "object_type": "athlete",
        "object_id": athlete.id,
        "aspect_type": "update",
    }
    items = [
        forged(db, "athlete.update", {**base, "updates": updates, "event_time": n})
        for n, updates in enumerate(([1, 2], 7))
    ]
    items.append(forged(db, "athlete.update", {k: v for k, v in base.items() if k != "owner_id"}))
    with running_worker(strava_env(db, stack["sim_url"]), tmp_path / "worker.log"):
        wait_for(lambda: all(settled(db, i) for i in items), 60, "the malformed events")
    for item, reason in zip(items, ("updates must be an object", "updates must be an object", "owner_id"), strict=True):
        status, outcome, _, message = item_state(db, item)
        assert status == "dead_letter" and outcome is None
        assert message.startswith("InvalidEventError: not a Strava event") and reason in message
    assert scalar(db, "select attempts from public.ingested_items where id = %s", (items[0],)) == 1
    assert scalar(db, "select status::text from public.connected_accounts") == "active"


def test_strava_confirms_only_what_it_says_itself() -> None:
    """The connector's confirmation against the simulator's real HTTP API, one branch each."""
    import asyncio

    from tests.strava_harness import CLIENT_ID, CLIENT_SECRET, strava_simulator

    from trove.platforms.base import Account, WebhookAction
    from trove.platforms.strava.client import StravaConfig
    from trove.platforms.strava.sync import StravaConnector

    with strava_simulator() as (sim, url):
        athlete = sim.add_athlete(activities=1)
        token = sim._issue(athlete.id, "read,activity:read_all")["access_token"]
        connector = StravaConnector(StravaConfig(CLIENT_ID, CLIENT_SECRET, url))
        activity_id = str(next(iter(athlete.activities)))

        def account(access: str) -> Account:
            return Account("a", "u", "strava", str(athlete.id), "x", access, {})

        async def confirm(access: str, action: WebhookAction) -> tuple[bool, str]:
            async with httpx.AsyncClient() as http:
                result = await connector.confirm(http, account(access), action)
            assert result.rate_limits or not result.confirmed or action.kind == "deauthorize"
            return result.confirmed, result.reason

        owner = str(athlete.id)
        delete = WebhookAction(owner, "delete_post", activity_id)
        deauth = WebhookAction(owner, "deauthorize")
        assert asyncio.run(confirm(token, delete)) == (False, "Strava still has the activity")
        assert asyncio.run(confirm(token, deauth)) == (False, "Strava still accepts our token")
        assert asyncio.run(confirm("revoked-token", deauth))[0] is True
        sim.athletes[athlete.id].activities[int(activity_id)].deleted = True
        assert asyncio.run(confirm(token, delete)) == (True, "Strava answers 404 for the activity")
        with pytest.raises(Exception, match="HTTP 401"):
            asyncio.run(confirm("revoked-token", delete))  # refused token: retried later, never "deleted"


# --- found by probing the landed change ----------------------------------------------------------------------
def test_bodies_in_other_encodings_cannot_hide_their_depth(stack: dict[str, Any]) -> None:
    subscription_id = subscribe(stack)
    hook = secret_hook(stack)
    event = event_for(subscription_id)
    # U+2200 is the bytes 00 22 in UTF-16-LE: a byte scanner would take it for a quote and miss the nesting.
    sneaky = ('{"x": "\u2200", "y": ' + "[" * 500 + "]" * 500 + ", " + json.dumps(event)[1:]).encode("utf-16-le")
    refused = httpx.post(hook, content=sneaky, headers={"Content-Type": "application/json"})
    assert (refused.status_code, refused.json()["error"]) == (400, "malformed_json")
    bom = httpx.post(hook, content=b"\xef\xbb\xbf" + json.dumps(event).encode())
    assert bom.status_code == 400
    with pytest.raises(InvalidJson, match="not UTF-8"):
        parse_json(json.dumps(event).encode("utf-32"))
    long_word = httpx.post(hook, json={**event, "aspect_type": "u" * 60_000})
    assert long_word.status_code == 400 and "aspect_type" in long_word.json()["detail"]
    for bad_id in (10**400, -1, 0, 2**63):
        odd = httpx.post(hook, content=json.dumps({**event, "object_id": bad_id}).encode())
        assert odd.status_code == 400, bad_id
    # A handshake with the wrong secret is refused the same way whatever else it gets wrong.
    base = f"{stack['url']}/functions/v1/webhook-strava/{'B' * 43}"
    odd_mode = httpx.get(base, params={"hub.mode": "unsubscribe", "hub.challenge": "c", "hub.verify_token": "v"})
    assert odd_mode.status_code == 403
    assert stored(stack["db"]) == 0


def test_an_activity_of_another_athlete_is_never_archived_as_ours() -> None:
    """A forged create naming someone else's (visible) activity: Strava would serve it to our token, so the
    detail is checked against the account's athlete before anything is stored."""
    import asyncio

    from tests.strava_harness import CLIENT_ID, CLIENT_SECRET, strava_simulator

    from trove.platforms.base import Account, InvalidGrantError, TransientError
    from trove.platforms.strava.client import StravaConfig
    from trove.platforms.strava.oauth import StravaOAuth
    from trove.platforms.strava.sync import StravaConnector

    with strava_simulator() as (sim, url):
        athlete = sim.add_athlete(activities=1)
        issued = sim._issue(athlete.id, "read,activity:read_all")
        connector = StravaConnector(StravaConfig(CLIENT_ID, CLIENT_SECRET, url))
        activity = {"id": next(iter(athlete.activities)), "resource_state": 1}

        async def enrich(platform_user_id: str) -> Any:
            account = Account("a", "u", "strava", platform_user_id, "x", issued["access_token"], {})
            async with httpx.AsyncClient() as http:
                return await connector.enrich(http, account, activity)

        ours = asyncio.run(enrich(str(athlete.id)))
        assert ours.post is not None and not ours.not_owned
        theirs = asyncio.run(enrich("999"))
        assert theirs.not_owned and theirs.post is None and theirs.payloads == []

        # A refused refresh token is the user's revocation; refused client credentials are ours to fix and
        # must never read as a revocation (that would disconnect every account).
        async def refresh(secret: str, token: str) -> Any:
            async with httpx.AsyncClient() as http:
                return await StravaOAuth(StravaConfig(CLIENT_ID, secret, url)).refresh(http, token)

        with pytest.raises(TransientError, match="client id or secret"):
            asyncio.run(refresh("rotated-away", issued["refresh_token"]))
        with pytest.raises(InvalidGrantError):
            asyncio.run(refresh(CLIENT_SECRET, "not-a-refresh-token"))
