"""`trove strava subscribe|unsubscribe|status`: Strava allows one push subscription per application.

Strava's events are unsigned, so the callback URL we register carries a fresh random secret as its last path
segment; only hashes of it and of the verify token are stored. Subscribing stores both first, because Strava
calls our webhook endpoint to check them before it answers. The secret cannot be changed on a live
subscription: rotating it (`subscribe --rotate`) deletes the subscription at Strava and creates a new one."""

from __future__ import annotations

import os
import secrets
from typing import Any

import httpx
import psycopg

from trove.platforms.base import SubscriptionError, secret_hash
from trove.platforms.strava.client import StravaConfig
from trove.queries.webhooks import (
    CONFIRM_SUBSCRIPTION,
    DELETE_SUBSCRIPTION,
    DROP_STAGED_SUBSCRIPTION,
    LIVE_SUBSCRIPTION_ID,
    MARK_ACCOUNTS_SUBSCRIBED,
    MARK_ACCOUNTS_UNSUBSCRIBED,
    STAGE_SUBSCRIPTION,
    SUBSCRIPTION_ID,
    SUBSCRIPTION_STATUS,
)

PLATFORM = "strava"


def _strava_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    errors = ", ".join(f"{e.get('field')} {e.get('code')}" for e in body.get("errors") or [])
    return f"HTTP {response.status_code}: {body.get('message', '')}{' (' + errors + ')' if errors else ''}"


def subscribe(conninfo: str, callback_url: str, config: StravaConfig | None = None, *, rotate: bool = False) -> str:
    """Register `callback_url`/<new secret> with Strava; `rotate` replaces a live subscription first."""
    config = config or StravaConfig.from_environment()
    verify_token = os.environ.get("STRAVA_WEBHOOK_VERIFY_TOKEN") or secrets.token_urlsafe(24)
    secret = secrets.token_urlsafe(32)
    base = callback_url.rstrip("/")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        current = conn.execute(LIVE_SUBSCRIPTION_ID, (PLATFORM,)).fetchone()
        if current is not None:
            if not rotate:
                # Never clobber the live subscription: Strava allows one per application.
                raise SubscriptionError(
                    f"already subscribed (subscription {current[0]}); unsubscribe first,"
                    " or subscribe --rotate to replace it with a new secret URL"
                )
            unsubscribe(conninfo, config)
        # The stored URL never holds the secret: it is shown as <secret>.
        conn.execute(STAGE_SUBSCRIPTION, (PLATFORM, f"{base}/<secret>", secret_hash(verify_token), secret_hash(secret)))
        response = httpx.post(
            f"{config.api}/push_subscriptions",
            data={
                "client_id": config.client_id,
                "client_secret": config.client_secret,
                "callback_url": f"{base}/{secret}",
                "verify_token": verify_token,
            },
            timeout=30.0,
        )
        if response.status_code not in (200, 201):
            conn.execute(DROP_STAGED_SUBSCRIPTION, (PLATFORM,))
            raise SubscriptionError(f"Strava refused the subscription: {_strava_error(response)}")
        subscription_id = str(response.json()["id"])
        conn.execute(CONFIRM_SUBSCRIPTION, (subscription_id, PLATFORM))
        conn.execute(MARK_ACCOUNTS_SUBSCRIBED, (subscription_id, PLATFORM))
    return subscription_id


def unsubscribe(conninfo: str, config: StravaConfig | None = None) -> str | None:
    config = config or StravaConfig.from_environment()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(SUBSCRIPTION_ID, (PLATFORM,)).fetchone()
        if row is None or row[0] is None:
            return None
        response = httpx.delete(
            f"{config.api}/push_subscriptions/{row[0]}",
            params={"client_id": config.client_id, "client_secret": config.client_secret},
            timeout=30.0,
        )
        if response.status_code not in (204, 404):
            raise SubscriptionError(f"Strava refused to delete subscription {row[0]}: {_strava_error(response)}")
        conn.execute(DELETE_SUBSCRIPTION, (PLATFORM,))
        conn.execute(MARK_ACCOUNTS_UNSUBSCRIBED, (PLATFORM,))
        return str(row[0])


def status(conninfo: str, config: StravaConfig | None = None) -> dict[str, Any]:
    config = config or StravaConfig.from_environment()
    response = httpx.get(
        f"{config.api}/push_subscriptions",
        params={"client_id": config.client_id, "client_secret": config.client_secret},
        timeout=30.0,
    )
    if response.status_code != 200:
        raise SubscriptionError(f"Strava refused to list subscriptions: {_strava_error(response)}")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(SUBSCRIPTION_STATUS, (PLATFORM,)).fetchone()
    listed = response.json()
    for entry in listed if isinstance(listed, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("callback_url"), str):
            # The secret is a credential: never printed.
            entry["callback_url"] = entry["callback_url"].rstrip("/").rsplit("/", 1)[0] + "/<secret>"
    return {
        "strava": listed,
        "trove": {"subscription_id": row[0], "callback_url": row[1]} if row else None,
    }


class StravaSubscriptions:
    def __init__(self, config: StravaConfig) -> None:
        self.config = config

    def subscribe(self, conninfo: str, callback_url: str, *, rotate: bool = False) -> str:
        return subscribe(conninfo, callback_url, self.config, rotate=rotate)

    def unsubscribe(self, conninfo: str) -> str | None:
        return unsubscribe(conninfo, self.config)

    def status(self, conninfo: str) -> dict[str, Any]:
        return status(conninfo, self.config)
