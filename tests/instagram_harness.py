"""The Instagram simulator in the test process (real HTTP on a free port), the HTTP service configured for it,
and accounts connected through Instagram Login as a browser would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from tests.strava_harness import user
from tests.worker_harness import RING, TEST_KEY

from trove.config import PROJECT_ROOT
from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.simulators.instagram import InstagramSimulator
from trove.simulators.serve import BackgroundServer

CLIENT_ID, APP_SECRET = "trove-test-instagram", "instagram-test-app-secret"

__all__ = ["connect", "instagram_env", "instagram_stack", "subscribe_webhooks", "user"]


def instagram_settings(sim_url: str) -> dict[str, str]:
    return {
        "INSTAGRAM_CLIENT_ID": CLIENT_ID,
        "INSTAGRAM_APP_SECRET": APP_SECRET,
        "INSTAGRAM_AUTHORIZE_URL": sim_url,
        "INSTAGRAM_API_URL": sim_url,
        "INSTAGRAM_GRAPH_URL": sim_url,
        "INSTAGRAM_WEBHOOK_SETUP_URL": f"{sim_url}/_sim/webhooks",
    }


def instagram_env(db_url: str, sim_url: str, service_url: str = "", **extra: str) -> dict[str, str]:
    """The worker's (and the CLI's) environment: a real process."""
    env = {
        **os.environ,
        **instagram_settings(sim_url),
        "DATABASE_URL": db_url,
        "TROVE_TOKEN_KEYS": f"test:{TEST_KEY}",
        "PYTHONPATH": str(PROJECT_ROOT),
        "TROVE_PLATFORMS": "",
        "TROVE_MEDIA_ALLOW_LOOPBACK": "1",
        **extra,
    }
    if service_url:
        env["TROVE_PUBLIC_URL"] = service_url
    return env


@contextmanager
def instagram_stack(
    db_url: str, monkeypatch: pytest.MonkeyPatch, *, posts: int = 60, stories: int = 3, **settings: str
) -> Iterator[dict[str, Any]]:
    """Simulator (one professional account) + HTTP service on real ports."""
    sim = InstagramSimulator(client_id=CLIENT_ID, client_secret=APP_SECRET)
    account = sim.add_account(posts=posts, stories=stories)
    with BackgroundServer(sim.app, free_port()) as sim_server:
        sim.base_url = sim_server.url
        port = free_port()
        for name, value in {**instagram_settings(sim_server.url), **settings}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("TROVE_PUBLIC_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("TROVE_TOKEN_KEYS", f"test:{TEST_KEY}")
        monkeypatch.delenv("TROVE_PLATFORMS", raising=False)
        with BackgroundServer(create_app(db_url, RING), port) as service:
            yield {
                "sim": sim,
                "sim_url": sim_server.url,
                "account": account,
                "url": service.url,
                "db": db_url,
                "env": instagram_env(db_url, sim_server.url, service.url, **settings),
            }


def connect(stack: dict[str, Any], headers: dict[str, str], **authorize_params: str) -> httpx.Response:
    """The whole flow in one browser: start, consent on "Instagram", back to our callback."""
    with httpx.Client(timeout=30.0) as browser:
        start = browser.post(f"{stack['url']}/functions/v1/oauth-instagram/start", headers=headers)
        assert start.status_code == 200, start.text
        url = start.json()["url"]
        if authorize_params:
            url += "&" + str(httpx.QueryParams(authorize_params))
        consent = browser.get(url)
        assert consent.status_code in (302, 303, 307), consent.text
        return browser.get(consent.headers["location"])


def subscribe_webhooks(stack: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """`trove instagram subscribe`, as the operator runs it: the simulator verifies our endpoint at once."""
    return subprocess.run(
        [sys.executable, "-m", "trove.cli", "instagram", "subscribe"],
        env=stack["env"],
        capture_output=True,
        text=True,
        check=False,
    )
