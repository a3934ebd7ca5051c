"""The Strava simulator in the test process (real HTTP on a free port) and accounts connected through its
OAuth flow."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import psycopg
import pytest
from tests.worker_harness import RING, TEST_KEY

from trove.config import PROJECT_ROOT
from trove.crypto import encrypt
from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.http.auth import issue_local_token
from trove.platforms.strava.client import StravaConfig
from trove.platforms.strava.oauth import StravaOAuth
from trove.simulators.serve import BackgroundServer
from trove.simulators.strava import StravaSimulator

CLIENT_ID, CLIENT_SECRET = "trove-test", "trove-test-secret"


@contextmanager
def strava_simulator(**kwargs: Any) -> Iterator[tuple[StravaSimulator, str]]:
    sim = StravaSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **kwargs)
    with BackgroundServer(sim.app, free_port()) as server:
        sim.base_url = server.url
        yield sim, server.url


@contextmanager
def service_stack(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Simulator + HTTP service, both on real ports; the service configured for the simulator."""
    with strava_simulator() as (sim, sim_url):
        port = free_port()
        monkeypatch.setenv("STRAVA_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("STRAVA_CLIENT_SECRET", CLIENT_SECRET)
        monkeypatch.setenv("STRAVA_BASE_URL", sim_url)
        monkeypatch.setenv("TROVE_PUBLIC_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("TROVE_TOKEN_KEYS", f"test:{TEST_KEY}")
        monkeypatch.delenv("TROVE_PLATFORMS", raising=False)
        with BackgroundServer(create_app(db_url, RING), port) as service:
            yield {"sim": sim, "sim_url": sim_url, "url": service.url, "db": db_url}


def clear_of_a_window_edge(seconds: float = 90.0) -> None:
    """Strava's windows are quarter hours of the clock: a test that counts a window's usage waits until the
    next edge is at least `seconds` away (a run across :00/:15/:30/:45 would see the count start over)."""
    import time

    left = 900 - time.time() % 900
    if left < seconds:
        time.sleep(left + 1)


def user(db_url: str, name: str) -> tuple[str, dict[str, str]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        user_id = str(conn.execute("select tests.create_user(%s)", (name,)).fetchone()[0])
    return user_id, {"Authorization": f"Bearer {issue_local_token(user_id)}"}


def consent_on_strava(browser: httpx.Client, authorize_url: str, **params: Any) -> httpx.Response:
    """The user approves (or not) on "Strava": simulator-only parameters pick the athlete and the answer."""
    return browser.get(authorize_url + ("&" + urlencode(params) if params else ""))


def start_connect(stack: dict[str, Any], browser: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    """Start connecting from this browser (it keeps the binding cookie start sets)."""
    start = browser.post(f"{stack['url']}/functions/v1/oauth-strava/start", headers=headers)
    assert start.status_code == 200, start.text
    return dict(start.json())


def connect(stack: dict[str, Any], headers: dict[str, str], **authorize_params: Any) -> httpx.Response:
    """The whole flow in one browser: start, consent on the simulator, back to our callback."""
    with httpx.Client() as browser:
        consent = consent_on_strava(browser, start_connect(stack, browser, headers)["url"], **authorize_params)
        assert consent.status_code == 302
        return browser.get(consent.headers["location"])


def strava_env(db_url: str, sim_url: str) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "STRAVA_CLIENT_ID": CLIENT_ID,
        "STRAVA_CLIENT_SECRET": CLIENT_SECRET,
        "STRAVA_BASE_URL": sim_url,
        "TROVE_TOKEN_KEYS": f"test:{TEST_KEY}",
        "PYTHONPATH": str(PROJECT_ROOT),
        "TROVE_PLATFORMS": "",
    }


def connect_strava(db_url: str, sim_url: str, athlete_id: int, name: str = "alice") -> str:
    """What the OAuth callback does, without the HTTP service: authorize, exchange, store encrypted."""
    config = StravaConfig(CLIENT_ID, CLIENT_SECRET, sim_url)
    redirect = httpx.get(
        f"{sim_url}/oauth/authorize",
        params={
            "client_id": CLIENT_ID,
            "redirect_uri": "http://cb.test/",
            "response_type": "code",
            "scope": "read,activity:read_all",
            "state": "s",
            "sim_athlete": athlete_id,
        },
    )
    code = parse_qs(urlparse(redirect.headers["location"]).query)["code"][0]

    async def exchange() -> Any:
        async with httpx.AsyncClient() as http:
            return await StravaOAuth(config).exchange(http, code)

    connection = asyncio.run(exchange())
    tokens = connection.tokens
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select tests.create_user(%s)", (name,))
        account_id = conn.execute(
            "insert into public.connected_accounts (user_id, platform, platform_user_id, username, token_expires_at,"
            " scope) values (tests.id('user', %s), 'strava', %s, %s, %s, %s) returning id::text",
            (name, connection.platform_user_id, connection.username, tokens.expires_at, "read,activity:read_all"),
        ).fetchone()[0]
        conn.execute(
            "update public.connected_accounts set access_token = %s, refresh_token = %s where id = %s",
            (
                encrypt(RING, tokens.access_token, account_id=account_id, column="access_token"),
                encrypt(RING, tokens.refresh_token or "", account_id=account_id, column="refresh_token"),
                account_id,
            ),
        )
    return account_id


def subscribe(stack: dict[str, Any]) -> str:
    """`trove strava subscribe` against the stack's simulator, as an operator runs it; the subscription id."""
    env = {**strava_env(stack["db"], stack["sim_url"]), "TROVE_PUBLIC_URL": stack["url"]}
    proc = subprocess.run(
        [sys.executable, "-m", "trove.cli", "strava", "subscribe"], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return str(stack["sim"].subscription["id"])
