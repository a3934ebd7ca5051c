"""One platform, one package (issue 11): the engine never names a platform, and a platform added by
registering its package works through OAuth connect, a webhook and a sync with no edit to the engine."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path

import httpx
import pytest
from tests.support.fake_connector import FakeWebhooks
from tests.support.fake_platform import FakePlatform
from tests.worker_harness import RING, TEST_KEY, running_worker, scalar, wait_for, worker_env

from trove.config import PROJECT_ROOT
from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.http.auth import issue_local_token
from trove.platforms import BUILTIN
from trove.simulators.serve import BackgroundServer

PACKAGE = PROJECT_ROOT / "worker" / "trove"


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_only_the_registry_names_a_platform_outside_its_package(name: str) -> None:
    simulators = PACKAGE / "simulators"
    own = {PACKAGE / "platforms" / name, *simulators.glob(f"{name}.py"), *simulators.glob(f"{name}_*.py")}
    places = [*PACKAGE.rglob("*.py"), PROJECT_ROOT / "Makefile", *(PROJECT_ROOT / "scripts").rglob("*")]
    mentions = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
        for path in places
        if path.is_file() and not any(path == mine or mine in path.parents for mine in own)
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if re.search(name, line, re.IGNORECASE)
    ]
    assert mentions == [BUILTIN_LINE(name)], "\n".join(mentions)


def BUILTIN_LINE(name: str) -> str:
    lines = (PACKAGE / "platforms" / "__init__.py").read_text().splitlines()
    number, line = next((n, ln) for n, ln in enumerate(lines, 1) if f'"{name}": "trove.platforms.' in ln)
    return f"worker/trove/platforms/__init__.py:{number}: {line.strip()}"


def signed(body: bytes) -> dict[str, str]:
    signature = hmac.new(FakeWebhooks.secret, body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Fake-Signature": signature}


def test_an_extra_platform_works_end_to_end_through_the_registry(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    registration = "tests.support.fake_connector:FakeTestPlatform"
    with FakePlatform() as platform:
        platform.control(item_count=5)
        port = free_port()
        monkeypatch.setenv("FAKE_PLATFORM_URL", platform.url)
        monkeypatch.setenv("TROVE_PLATFORMS", registration)
        monkeypatch.setenv("TROVE_PUBLIC_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("TROVE_TOKEN_KEYS", f"test:{TEST_KEY}")
        with BackgroundServer(create_app(db_url, RING), port) as service:
            user_id = str(scalar(db_url, "select tests.create_user('alice')"))
            headers = {"Authorization": f"Bearer {issue_local_token(user_id)}"}
            # OAuth connect through the generic routes: the browser carries the binding cookie.
            with httpx.Client() as browser:
                start = browser.post(f"{service.url}/functions/v1/oauth-bluesky/start", headers=headers)
                assert start.status_code == 200, start.text
                consent = browser.get(start.json()["url"])
                assert consent.status_code == 302
                connected = browser.get(consent.headers["location"])
            assert connected.status_code == 201, connected.text
            assert connected.json()["username"] == "alice.fake.test"
            account = connected.json()["account_id"]
            env = worker_env(db_url, platform.url, TROVE_PLATFORMS=registration)
            with running_worker(env, tmp_path / "worker.log"):
                wait_for(lambda: scalar(db_url, "select count(*) from public.posts") == 5, 60, "the backfill")
                # A webhook through the generic door: the platform's own authentication decides.
                body = json.dumps({"owner_id": "alice-owner", "kind": "new post"}).encode()
                hook = f"{service.url}/functions/v1/webhook-bluesky"
                forged = httpx.post(hook, content=body, headers={**signed(body), "X-Fake-Signature": "0" * 64})
                assert (forged.status_code, forged.json()["error"]) == (403, "invalid_signature")
                assert scalar(db_url, "select count(*) from public.ingested_items where source = 'webhook'") == 0
                platform.control(item_count=7)
                accepted = httpx.post(hook, content=body, headers=signed(body))
                assert accepted.json() == {"status": "stored"}
                wait_for(lambda: scalar(db_url, "select count(*) from public.posts") == 7, 60, "the webhook's sync")
            assert (
                scalar(
                    db_url,
                    "select count(*) from public.sync_logs where account_id = %s and sync_type = 'webhook'"
                    " and status = 'success'",
                    (account,),
                )
                == 1
            )
            # A platform without a handshake or subscriptions says so through the same routes.
            assert httpx.get(f"{service.url}/functions/v1/webhook-bluesky").status_code == 404
            assert httpx.post(f"{service.url}/functions/v1/webhook-myspace", content=b"{}").status_code == 404
