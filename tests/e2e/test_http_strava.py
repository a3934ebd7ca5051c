"""The HTTP service over real HTTP: OAuth connect against the Strava simulator, the webhook endpoint, and
webhook events processed by a worker process. Bad input gets a clear error and changes nothing stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from tests.strava_harness import (
    connect,
    consent_on_strava,
    start_connect,
    strava_env,
    subscribe,
    user,
)
from tests.worker_harness import RING, query, running_worker, scalar, wait_for

from trove.crypto import decrypt
from trove.http.auth import issue_local_token
from trove.simulators.strava import StravaSimulator


def test_health(stack: dict[str, Any]) -> None:
    assert httpx.get(f"{stack['url']}/health").json() == {"status": "ok", "database": "ok"}


def test_oauth_connect_stores_encrypted_tokens_and_queues_the_backfill(stack: dict[str, Any]) -> None:
    athlete = stack["sim"].add_athlete(activities=5)
    user_id, headers = user(stack["db"], "alice")
    done = connect(stack, headers, sim_athlete=athlete.id)
    assert done.status_code == 201, done.text
    body = done.json()
    row = query(
        stack["db"],
        "select user_id::text, platform_user_id, username, scope, access_token, refresh_token, token_expires_at > now()"
        " from public.connected_accounts where id = %s",
        (body["account_id"],),
    )[0]
    assert row[:4] == (user_id, str(athlete.id), "demo_runner", "activity:read_all,read")
    assert decrypt(RING, row[4], account_id=body["account_id"], column="access_token") in stack["sim"].access_tokens
    assert decrypt(RING, row[5], account_id=body["account_id"], column="refresh_token") in stack["sim"].refresh_tokens
    assert row[6] is True
    assert (
        scalar(
            stack["db"],
            "select sync_type::text || ':' || status from public.sync_logs where id = %s",
            (body["sync_log_id"],),
        )
        == "backfill:queued"
    )
    # The same consent link cannot be replayed.
    replay = httpx.get(
        f"{stack['url']}/functions/v1/oauth-strava/callback",
        params={"state": "made-up", "code": "x", "scope": "read,activity:read_all"},
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_state"


def test_denied_consent_missing_scope_and_reused_or_expired_state_are_clear_errors(stack: dict[str, Any]) -> None:
    athlete = stack["sim"].add_athlete()
    _, headers = user(stack["db"], "alice")
    denied = connect(stack, headers, sim_athlete=athlete.id, sim_deny=1)
    assert denied.status_code == 400 and denied.json()["error"] == "access_denied"
    narrow = connect(stack, headers, sim_athlete=athlete.id, sim_grant_scope="read")
    assert narrow.status_code == 400 and narrow.json()["error"] == "missing_scope"
    assert "activity:read_all" in narrow.json()["detail"]
    with httpx.Client() as browser:
        # reused state
        start = start_connect(stack, browser, headers)
        location = consent_on_strava(browser, start["url"], sim_athlete=athlete.id).headers["location"]
        assert browser.get(location).status_code == 201
        again = browser.get(location)
        assert again.status_code == 400 and again.json()["detail"] == "this connect link was already used"
        # expired state
        start = start_connect(stack, browser, headers)
        location = consent_on_strava(browser, start["url"], sim_athlete=athlete.id).headers["location"]
        with psycopg.connect(stack["db"], autocommit=True) as conn:
            conn.execute(
                "update public.oauth_states set expires_at = now() - interval '1 second',"
                " created_at = now() - interval '1 hour' where used_at is null"
            )
        expired = browser.get(location)
        assert expired.status_code == 400 and expired.json()["detail"] == "this connect link has expired"
    assert scalar(stack["db"], "select count(*) from public.connected_accounts") == 1


def test_an_athlete_connected_to_another_user_is_refused(stack: dict[str, Any]) -> None:
    athlete = stack["sim"].add_athlete()
    _, alice = user(stack["db"], "alice")
    _, bob = user(stack["db"], "bob")
    assert connect(stack, alice, sim_athlete=athlete.id).status_code == 201
    before = query(stack["db"], "select user_id, access_token from public.connected_accounts")
    taken = connect(stack, bob, sim_athlete=athlete.id)
    assert taken.status_code == 409 and taken.json()["error"] == "already_connected"
    assert query(stack["db"], "select user_id, access_token from public.connected_accounts") == before


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "sign in: send Authorization: Bearer <Supabase access token>"),
        ({"Authorization": "Bearer not-a-jwt"}, "invalid access token"),
        ({"Authorization": "Basic abc"}, "sign in: send Authorization: Bearer <Supabase access token>"),
    ],
)
def test_start_requires_a_valid_user_token(stack: dict[str, Any], headers: dict[str, str], detail: str) -> None:
    response = httpx.post(f"{stack['url']}/functions/v1/oauth-strava/start", headers=headers)
    assert response.status_code == 401 and response.json()["detail"].startswith(detail)


def test_expired_user_token_and_unknown_platform(stack: dict[str, Any]) -> None:
    user_id, _ = user(stack["db"], "alice")
    stale = {"Authorization": f"Bearer {issue_local_token(user_id, ttl_seconds=-10)}"}
    response = httpx.post(f"{stack['url']}/functions/v1/oauth-strava/start", headers=stale)
    assert response.status_code == 401 and response.json()["detail"] == "the access token has expired"
    _, headers = user(stack["db"], "bob")
    assert httpx.post(f"{stack['url']}/functions/v1/oauth-myspace/start", headers=headers).status_code == 404
    assert httpx.post(f"{stack['url']}/functions/v1/webhook-myspace", json={}).status_code == 404


def test_subscription_handshake_and_webhook_input_checks(stack: dict[str, Any]) -> None:
    subscription_id = subscribe(stack)
    assert scalar(stack["db"], "select subscription_id from public.webhook_subscriptions") == subscription_id
    hook = stack["sim"].subscription["callback_url"]  # our URL with its secret, as Strava knows it
    assert hook.startswith(f"{stack['url']}/functions/v1/webhook-strava/")
    wrong = httpx.get(hook, params={"hub.mode": "subscribe", "hub.challenge": "c", "hub.verify_token": "guess"})
    assert wrong.status_code == 403 and wrong.json()["error"] == "unknown_subscription"
    event = {
        "aspect_type": "update",
        "event_time": 1516126040,
        "object_id": 1360128428,
        "object_type": "activity",
        "owner_id": 134815,
        "subscription_id": int(subscription_id),
        "updates": {"title": "Messy"},
    }
    malformed = httpx.post(hook, content=b'{"aspect_type": "upd', headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error"] == "malformed_json"
    partial = httpx.post(hook, json={k: v for k, v in event.items() if k != "owner_id"})
    assert partial.status_code == 400 and "owner_id" in partial.json()["detail"]
    forged = httpx.post(hook, json={**event, "subscription_id": 999})
    assert forged.status_code == 403 and forged.json()["error"] == "unknown_subscription"
    assert scalar(stack["db"], "select count(*) from public.ingested_items") == 0
    first = httpx.post(hook, json=event)
    replay = httpx.post(hook, json=event)  # Strava retries: stored once
    assert (first.json(), replay.json()) == ({"status": "stored"}, {"status": "duplicate"})
    odd = httpx.post(hook, json={**event, "object_type": "route", "aspect_type": "create"})
    assert odd.json() == {"status": "stored"}  # an unknown event type is kept, not lost
    rows = query(stack["db"], "select event_type, payload from public.ingested_items order by event_type")
    assert [r[0] for r in rows] == ["activity.update", "route.create"]
    assert rows[0][1] == event


def test_webhook_events_flow_through_the_worker(stack: dict[str, Any], tmp_path: Path) -> None:
    sim: StravaSimulator = stack["sim"]
    athlete = sim.add_athlete(activities=3)
    _, headers = user(stack["db"], "alice")
    account = connect(stack, headers, sim_athlete=athlete.id).json()["account_id"]
    subscribe(stack)
    env = strava_env(stack["db"], stack["sim_url"])
    control = f"{stack['sim_url']}/_sim/activities"
    with running_worker(env, tmp_path / "worker.log"):
        wait_for(lambda: scalar(stack["db"], "select count(*) from public.posts") == 3, 60, "the backfill")
        created = httpx.post(
            control, json={"athlete_id": athlete.id, "fields": {"name": "Hill Repeats"}}, timeout=60
        ).json()
        assert sim.deliveries[-1]["status"] == 200, sim.deliveries
        wait_for(
            lambda: scalar(stack["db"], "select count(*) from public.posts where text_content like 'Hill Repeats%%'"),
            60,
            "the created activity",
        )
        httpx.put(
            control,
            json={
                "athlete_id": athlete.id,
                "activity_id": created["id"],
                "fields": {"name": "Hill Repeats x8"},
                "description": "legs gone",
            },
        )
        wait_for(
            lambda: (
                scalar(
                    stack["db"],
                    "select text_content from public.posts where platform_post_id = %s",
                    (str(created["id"]),),
                )
                == "Hill Repeats x8\n\nlegs gone"
            ),
            60,
            "the edit",
        )
        httpx.request("DELETE", control, content=json.dumps({"athlete_id": athlete.id, "activity_id": created["id"]}))
        wait_for(
            lambda: scalar(
                stack["db"],
                "select deleted_on_platform from public.posts where platform_post_id = %s",
                (str(created["id"]),),
            ),
            60,
            "the deletion",
        )
        httpx.post(f"{stack['sim_url']}/_sim/deauthorize", json={"athlete_id": athlete.id})
        wait_for(
            lambda: (
                scalar(stack["db"], "select status::text from public.connected_accounts where id = %s", (account,))
                == "disconnected"
            ),
            60,
            "the deauthorization",
        )
    tokens = query(
        stack["db"], "select access_token, refresh_token from public.connected_accounts where id = %s", (account,)
    )[0]
    assert tokens == (None, None)
    assert scalar(stack["db"], "select kind from public.notifications") == "account_deauthorized"
    assert scalar(stack["db"], "select count(*) from public.posts") == 4  # the archive stays
    deliveries = [d["status"] for d in sim.deliveries]
    assert deliveries and set(deliveries) == {200}


def test_unsubscribe_and_status(stack: dict[str, Any]) -> None:
    subscription_id = subscribe(stack)
    env = {**strava_env(stack["db"], stack["sim_url"]), "TROVE_PUBLIC_URL": stack["url"]}

    def trove(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "trove.cli", "strava", *args], env=env, capture_output=True, text=True, check=False
        )

    status = json.loads(trove("status").stdout)
    assert status["trove"]["subscription_id"] == subscription_id
    assert [s["id"] for s in status["strava"]] == [int(subscription_id)]
    again = trove("subscribe")  # one subscription per application
    assert again.returncode == 1 and f"already subscribed (subscription {subscription_id})" in again.stderr
    assert trove("unsubscribe").stdout.strip() == f"unsubscribed from {subscription_id}"
    assert stack["sim"].subscription is None
    assert scalar(stack["db"], "select count(*) from public.webhook_subscriptions") == 0
    assert trove("unsubscribe").stdout.strip() == "no subscription to remove"
