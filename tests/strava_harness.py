"""The Strava simulator in the test process (real HTTP on a free port) and accounts connected through its
OAuth flow."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import psycopg
from tests.worker_harness import RING, TEST_KEY

from trove.config import PROJECT_ROOT
from trove.connectors.strava import StravaConfig, StravaConnector
from trove.crypto import encrypt
from trove.db.cluster import free_port
from trove.simulators.serve import BackgroundServer
from trove.simulators.strava import StravaSimulator

CLIENT_ID, CLIENT_SECRET = "trove-test", "trove-test-secret"


@contextmanager
def strava_simulator(**kwargs: Any) -> Iterator[tuple[StravaSimulator, str]]:
    sim = StravaSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **kwargs)
    with BackgroundServer(sim.app, free_port()) as server:
        sim.base_url = server.url
        yield sim, server.url


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
        "TROVE_CONNECTORS": "",
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
            return await StravaConnector(config).exchange_code(http, code)

    tokens, athlete = asyncio.run(exchange())
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select tests.create_user(%s)", (name,))
        account_id = conn.execute(
            "insert into public.connected_accounts (user_id, platform, platform_user_id, username, token_expires_at,"
            " scope) values (tests.id('user', %s), 'strava', %s, %s, %s, %s) returning id::text",
            (name, str(athlete["id"]), athlete["username"], tokens.expires_at, "read,activity:read_all"),
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
