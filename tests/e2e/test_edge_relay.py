"""The Edge Functions of supabase/functions/ as Deno runs them (installed by the project's setup), relaying to
the real service: a signed Instagram webhook arrives through the relay with its signature still valid (the raw
body byte for byte), a tampered one is refused by the service, Meta's verification GET answers through it, and
a service that cannot be reached is a clear 502; a Strava event through the relay, and with TROVE_RELAY_SECRET
set no relayed URL answers a direct call; webhooks kept in the inbox while the service is away are checked
like direct deliveries and processed once it is back (forged ones rejected, with the reason)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from tests.e2e.test_instagram import sign
from tests.instagram_harness import instagram_stack, subscribe_webhooks
from tests.strava_harness import service_stack, strava_env, user
from tests.worker_harness import query, running_worker, scalar, wait_for

from trove.config import PROJECT_ROOT
from trove.db.cluster import free_port

DENO = PROJECT_ROOT / ".local" / "deno" / "node_modules" / ".bin" / "deno"
FUNCTIONS = PROJECT_ROOT / "supabase" / "functions"
RELAY_SECRET = "relay-secret"


def relay(function: str, service_url: str, tmp_path: Path, **extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DENO_DIR": str(PROJECT_ROOT / ".local" / "deno-cache"),
        "NO_COLOR": "1",
        "PORT": str(port),
        "TROVE_SERVICE_URL": service_url,
        "TROVE_RELAY_SECRET": RELAY_SECRET,
        **extra,
    }
    log = (tmp_path / f"{function}.log").open("wb")
    proc = subprocess.Popen(
        [str(DENO), "run", "--allow-net", "--allow-env", str(FUNCTIONS / function / "index.ts")],
        env=env, stdout=log, stderr=log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            httpx.get(f"{url}/functions/v1/{function}", timeout=1)
            return True
        except httpx.HTTPError:
            return proc.poll() is not None

    wait_for(up, 60, f"the {function} relay")
    assert proc.poll() is None, (tmp_path / f"{function}.log").read_text()
    return proc, url


@pytest.fixture
def stack(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    assert DENO.exists(), "Deno is installed by the project's setup (scripts/install-deno.sh)"
    with instagram_stack(db_url, monkeypatch, posts=3, stories=0) as running:
        yield running


def test_a_signed_instagram_webhook_through_the_relay_keeps_its_signature(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    db_url = stack["db"]
    assert subscribe_webhooks(stack).returncode == 0
    proc, url = relay("webhook-instagram", stack["url"], tmp_path)
    try:
        hook = f"{url}/functions/v1/webhook-instagram"
        # Bytes a re-serializing proxy would change (spacing, key order, escapes): the signature is over them.
        body = (
            b'{"object":"instagram",  "entry":[{"time":9,"id":"' + stack["account"].user_id.encode()
            + b'","changes":[{"value":{"text":"caf\\u00e9 \xf0\x9f\x8e\x89","id":"777","from":{"id":"2",'
            b'"username":"fan"},"media":{"id":"1","media_product_type":"FEED"}},"field":"comments"}]}]}'
        )  # fmt: skip
        accepted = httpx.post(
            hook, content=body, headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
        )
        assert accepted.status_code == 200, accepted.text
        wait_for(
            lambda: scalar(db_url, "select count(*) from public.ingested_items where source = 'webhook'") == 1,
            what="the event stored",
        )
        tampered = httpx.post(hook, content=body + b" ", headers={"X-Hub-Signature-256": sign(body)})
        assert (tampered.status_code, tampered.json()["error"]) == (403, "invalid_signature")
        assert scalar(db_url, "select count(*) from public.ingested_items where source = 'webhook'") == 1
        # Meta's verification GET, query string and all, answered by the service through the relay.
        wrong = httpx.get(hook, params={"hub.mode": "subscribe", "hub.challenge": "42", "hub.verify_token": "guess"})
        assert wrong.status_code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_service_the_relay_cannot_reach_is_a_clear_502(tmp_path: Path) -> None:
    assert DENO.exists()
    proc, url = relay("webhook-strava", f"http://127.0.0.1:{free_port()}", tmp_path)
    try:
        answer = httpx.post(f"{url}/functions/v1/webhook-strava/secret", content=json.dumps({"a": 1}))
        assert answer.status_code == 502 and answer.json()["error"] == "service_unreachable"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def relayed_routes() -> list[tuple[str, str]]:
    """Every route of the service the Edge Functions relay (it depends on `through_the_relay`)."""
    from fastapi.routing import APIRoute, iter_route_contexts

    from trove.http.app import create_app
    from trove.http.relay import through_the_relay

    found = []
    for route in iter_route_contexts(create_app("postgresql://unused").routes):
        if isinstance(route.original_route, APIRoute) and any(
            d.call is through_the_relay for d in route.dependant.dependencies
        ):
            found.extend((method, route.path_format) for method in sorted(route.methods or ()))
    return found


def test_a_strava_event_through_the_relay_and_nothing_around_it(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Strava subscribes to the relay's URL (its check answered by the service through it); an event posted
    there is stored; with TROVE_RELAY_SECRET set the service answers none of the relayed URLs directly."""
    monkeypatch.setenv("TROVE_RELAY_SECRET", RELAY_SECRET)
    with service_stack(db_url, monkeypatch) as stack:
        proc, url = relay("webhook-strava", stack["url"], tmp_path)
        try:
            env = {**strava_env(db_url, stack["sim_url"]), "TROVE_PUBLIC_URL": url}
            done = subprocess.run(
                [sys.executable, "-m", "trove.cli", "strava", "subscribe"],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            hook = stack["sim"].subscription["callback_url"]
            assert hook.startswith(f"{url}/functions/v1/webhook-strava/")
            event = {
                "aspect_type": "create",
                "event_time": 1516126040,
                "object_id": 1360128428,
                "object_type": "activity",
                "owner_id": 134815,
                "subscription_id": int(stack["sim"].subscription["id"]),
                "updates": {},
            }
            answer = httpx.post(hook, json=event)
            assert (answer.status_code, answer.json()) == (200, {"status": "stored"})
            assert query(db_url, "select payload from public.ingested_items where source = 'webhook'") == [(event,)]
            direct = hook.replace(url, stack["url"])
            refused = httpx.post(direct, json={**event, "object_id": 1})
            assert refused.status_code == 401 and "relay" in refused.json()["detail"]
            wrong = httpx.post(direct, json={**event, "object_id": 2}, headers={"X-Trove-Relay-Secret": "guess"})
            assert wrong.status_code == 401
            assert scalar(db_url, "select count(*) from public.ingested_items") == 1
            routes = relayed_routes()
            assert len(routes) >= 8  # oauth-<platform>/... and webhook-<platform>[/<secret>], GET and POST
            for method, path in routes:
                concrete = path.replace("{platform}", "strava").replace("{secret}", "s").replace("{document}", "d")
                answer = httpx.request(method, f"{stack['url']}{concrete}")
                assert answer.status_code == 401, (method, path, answer.text)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_webhooks_kept_while_the_service_is_away_are_checked_and_processed_when_it_is_back(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    db_url = stack["db"]
    assert subscribe_webhooks(stack).returncode == 0
    away = f"http://127.0.0.1:{free_port()}"
    proc, url = relay("webhook-instagram", away, tmp_path, SUPABASE_DB_URL=db_url)
    try:
        hook = f"{url}/functions/v1/webhook-instagram"
        body = json.dumps({
            "object": "instagram",
            "entry": [{"time": 9, "id": stack["account"].user_id, "changes": [{"field": "comments", "value": {
                "text": "while you were out", "id": "778", "from": {"id": "2", "username": "fan"},
                "media": {"id": "1", "media_product_type": "FEED"},
            }}]}],
        }).encode()  # fmt: skip
        signed = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
        started = time.monotonic()
        credentials = {"Authorization": "Bearer x", "Cookie": "c=1", "X-Api-Key": "k", "Forwarded": "for=192.0.2.1"}
        kept = httpx.post(hook, content=body, headers={**signed, **credentials})
        assert (kept.status_code, kept.json()) == (200, {"status": "queued"}), kept.text
        assert time.monotonic() - started < 2.0  # within Strava's deadline, the strictest of the platforms
        assert httpx.post(hook, content=body, headers=signed).json() == {"status": "queued"}  # Meta retries
        forged = body.replace(b"while you were out", b"send me your token")
        assert httpx.post(hook, content=forged, headers=signed).json() == {"status": "queued"}
        too_big = httpx.post(hook, content=b"{" + b" " * 100_000 + b"}", headers=signed)
        assert too_big.status_code == 413  # not kept: bigger than the service takes of an event
        headers = query(db_url, "select headers from public.webhook_inbox order by received_at limit 1")[0][0]
        assert headers["x-hub-signature-256"] == sign(body) and headers["content-type"] == "application/json"
        assert not {"authorization", "cookie", "x-api-key", "forwarded", "x-trove-relay-secret"} & set(headers)
        other = httpx.post(f"{url}/functions/v1/webhook-strava/s", content=body, headers=signed)
        assert other.status_code == 404  # a function keeps only its own platform's deliveries
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("insert into public.webhook_inbox (request_path, body) values ('webhook-myspace', '\\x7b7d')")
        assert scalar(db_url, "select count(*) from public.webhook_inbox") == 4
        assert scalar(db_url, "select count(*) from public.ingested_items") == 0  # nothing believed yet
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    with running_worker(stack["env"], tmp_path / "worker.log"):
        wait_for(
            lambda: scalar(
                db_url, "select count(*) from public.webhook_inbox where status in ('completed', 'dead_letter')"
            ) == 4,
            60,
            "the inbox replayed",
        )  # fmt: skip
    outcomes = query(db_url, "select request_path, status::text, outcome from public.webhook_inbox")
    by_outcome = sorted((status, (outcome or "").split(":")[0:2]) for _, status, outcome in outcomes)
    # Done with: nothing of the delivery is left but what came and what became of it.
    assert query(db_url, "select distinct octet_length(body), headers::text from public.webhook_inbox") == [(0, "{}")]
    assert by_outcome == [
        ("completed", ["duplicate"]),
        ("completed", ["stored"]),
        ("dead_letter", ["rejected", " invalid_signature"]),
        ("dead_letter", ["rejected", " unknown_platform"]),
    ], outcomes
    stored = query(db_url, "select payload from public.ingested_items where source = 'webhook'")
    assert len(stored) == 1 and "while you were out" in json.dumps(stored[0][0])
    assert "send me your token" not in json.dumps(stored)


def test_the_read_api_through_the_api_function_and_nothing_else_through_any(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with service_stack(db_url, monkeypatch) as stack:
        _, headers = user(db_url, "alice")
        api, api_url = relay("api", stack["url"], tmp_path)
        hook, hook_url = relay("webhook-strava", stack["url"], tmp_path)
        try:
            direct = httpx.get(f"{stack['url']}/api/posts", params={"limit": 5}, headers=headers)
            relayed = httpx.get(f"{api_url}/functions/v1/api/posts", params={"limit": 5}, headers=headers)
            assert (relayed.status_code, relayed.json()) == (200, direct.json())
            assert relayed.headers["etag"] == direct.headers["etag"]  # the service's caching headers, as they are
            assert httpx.get(f"{api_url}/functions/v1/api/posts").status_code == 401  # the service authenticates
            for elsewhere in ("/functions/v1/api", "/functions/v1/health", "/functions/v1/webhook-strava"):
                assert httpx.get(api_url + elsewhere).status_code == 404, elsewhere
            for elsewhere in ("/functions/v1/wake", "/api/posts", "/functions/v1/api/posts"):
                assert httpx.post(hook_url + elsewhere, content=b"{}").status_code == 404, elsewhere
        finally:
            for proc in (api, hook):
                proc.terminate()
                proc.wait(timeout=30)


def test_an_answer_of_the_service_itself_is_never_kept(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service is up and answers 503 (Instagram's app secret is not configured): the relay passes that on
    and keeps nothing, so nobody can fill the inbox while the service runs."""
    with instagram_stack(db_url, monkeypatch, posts=1, stories=0, INSTAGRAM_APP_SECRET="") as stack:
        proc, url = relay("webhook-instagram", stack["url"], tmp_path, SUPABASE_DB_URL=db_url)
        try:
            answer = httpx.post(f"{url}/functions/v1/webhook-instagram", content=b"A" * 65536)
            assert (answer.status_code, answer.json()["error"]) == (503, "not_configured")
            assert scalar(db_url, "select count(*) from public.webhook_inbox") == 0
        finally:
            proc.terminate()
            proc.wait(timeout=30)
