"""The Edge Functions of supabase/functions/ as Deno runs them (installed by the project's setup), relaying to
the real service: a signed Instagram webhook arrives through the relay with its signature still valid (the raw
body byte for byte), a tampered one is refused by the service, Meta's verification GET answers through it, and
a service that cannot be reached is a clear 502."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.test_instagram import sign
from tests.instagram_harness import instagram_stack, subscribe_webhooks
from tests.worker_harness import scalar, wait_for

from trove.config import PROJECT_ROOT
from trove.db.cluster import free_port

DENO = PROJECT_ROOT / ".local" / "deno" / "node_modules" / ".bin" / "deno"
FUNCTIONS = PROJECT_ROOT / "supabase" / "functions"


def relay(function: str, service_url: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DENO_DIR": str(PROJECT_ROOT / ".local" / "deno-cache"),
        "NO_COLOR": "1",
        "PORT": str(port),
        "TROVE_SERVICE_URL": service_url,
        "TROVE_RELAY_SECRET": "relay-secret",
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
