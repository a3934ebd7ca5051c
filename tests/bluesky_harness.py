"""The Bluesky simulator in the test process (every role on one real port, its nameserver on a UDP port), the
HTTP service configured for it, and accounts connected through the real atproto OAuth flow (PAR, PKCE, DPoP,
private_key_jwt, the client metadata fetched from the service)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.strava_harness import user
from tests.worker_harness import RING, TEST_KEY

from trove.config import PROJECT_ROOT
from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.simulators.bluesky import BlueskySimulator, DnsServer
from trove.simulators.serve import BackgroundServer

CLIENT_KEY = (
    ec.generate_private_key(ec.SECP256R1())
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    .decode()
)

__all__ = ["bluesky_env", "bluesky_simulator", "bluesky_stack", "connect_by_handle", "user"]


@contextmanager
def bluesky_simulator(**kwargs: Any) -> Iterator[tuple[BlueskySimulator, str, int]]:
    """(simulator, its URL, its nameserver's UDP port)."""
    sim = BlueskySimulator(**kwargs)
    with DnsServer(sim.did_for_handle, 0) as dns, BackgroundServer(sim.app, free_port()) as server:
        sim.base_url = server.url
        yield sim, server.url, dns.port


def bluesky_settings(sim_url: str, dns_port: int) -> dict[str, str]:
    return {
        "TROVE_BLUESKY_CLIENT_KEY": CLIENT_KEY,
        "TROVE_BLUESKY_PLC_URL": sim_url,
        "TROVE_BLUESKY_APPVIEW_URL": sim_url,
        "TROVE_BLUESKY_JETSTREAM_URL": sim_url.replace("http://", "ws://", 1),
        "TROVE_BLUESKY_DNS": f"127.0.0.1:{dns_port}",
        "TROVE_BLUESKY_INSECURE_HTTP": "1",
        "TROVE_LOCAL_STACK": "1",
    }


def bluesky_env(db_url: str, sim_url: str, dns_port: int, service_url: str = "") -> dict[str, str]:
    """The worker's environment (a real process)."""
    env = {
        **os.environ,
        **bluesky_settings(sim_url, dns_port),
        "DATABASE_URL": db_url,
        "TROVE_TOKEN_KEYS": f"test:{TEST_KEY}",
        "PYTHONPATH": str(PROJECT_ROOT),
        "TROVE_PLATFORMS": "",
        "TROVE_MEDIA_ALLOW_LOOPBACK": "1",
    }
    if service_url:
        env["TROVE_PUBLIC_URL"] = service_url
    return env


@contextmanager
def bluesky_stack(db_url: str, monkeypatch: pytest.MonkeyPatch, **sim_kwargs: Any) -> Iterator[dict[str, Any]]:
    """Simulator + HTTP service on real ports; the service configured for the simulator."""
    with bluesky_simulator(**sim_kwargs) as (sim, sim_url, dns_port):
        port = free_port()
        for name, value in bluesky_settings(sim_url, dns_port).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("TROVE_PUBLIC_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("TROVE_TOKEN_KEYS", f"test:{TEST_KEY}")
        monkeypatch.delenv("TROVE_PLATFORMS", raising=False)
        with BackgroundServer(create_app(db_url, RING), port) as service:
            yield {
                "sim": sim,
                "sim_url": sim_url,
                "dns_port": dns_port,
                "url": service.url,
                "db": db_url,
                "env": bluesky_env(db_url, sim_url, dns_port, service.url),
            }


def connect_by_handle(
    stack: dict[str, Any], headers: dict[str, str], handle: str, **authorize_params: str
) -> httpx.Response:
    """The whole flow in one browser: start with the handle, consent on the authorization server, callback."""
    with httpx.Client(timeout=30.0) as browser:
        start = browser.post(
            f"{stack['url']}/functions/v1/oauth-bluesky/start", headers=headers, json={"login_hint": handle}
        )
        if start.status_code != 200:
            return start
        url = start.json()["url"]
        if authorize_params:
            url += "&" + httpx.QueryParams(authorize_params).__str__()
        consent = browser.get(url)
        assert consent.status_code == 302, consent.text
        return browser.get(consent.headers["location"])
