"""`trove instagram subscribe|unsubscribe|status`: Instagram's webhooks are configured once per app, in the
Meta app dashboard (callback URL, verify token, fields), and each connected account opts in when it connects
(`/me/subscribed_apps`, done by the OAuth callback).

Deliveries are signed with the app secret, so the callback URL carries no secret; Meta checks the verify
token with a GET before it saves the configuration. `subscribe` makes a new verify token and stores its hash
first; against the simulator (INSTAGRAM_WEBHOOK_SETUP_URL, set by `trove run`) it then configures the
webhook there, as the dashboard would; against Meta it prints what to paste into the dashboard."""

from __future__ import annotations

import os
import secrets
from typing import Any

import httpx
import psycopg

from trove.platforms.base import SubscriptionError, secret_hash
from trove.platforms.instagram.client import InstagramConfig
from trove.queries.webhooks import (
    CONFIRM_SUBSCRIPTION,
    DELETE_SUBSCRIPTION,
    DROP_STAGED_SUBSCRIPTION,
    LIVE_SUBSCRIPTION_ID,
    MARK_ACCOUNTS_SUBSCRIBED,
    MARK_ACCOUNTS_UNSUBSCRIBED,
    STAGE_SUBSCRIPTION,
    SUBSCRIPTION_STATUS,
)

PLATFORM = "instagram"
FIELDS = ["comments", "mentions", "story_insights"]
SUBSCRIPTION_ID = "app"  # one webhook configuration per Meta app


class InstagramSubscriptions:
    def __init__(self, config: InstagramConfig) -> None:
        self.config = config

    @staticmethod
    def setup_url() -> str | None:
        return os.environ.get("INSTAGRAM_WEBHOOK_SETUP_URL") or None

    def subscribe(self, conninfo: str, callback_url: str, *, rotate: bool = False) -> str:
        verify_token = os.environ.get("INSTAGRAM_WEBHOOK_VERIFY_TOKEN") or secrets.token_urlsafe(24)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            current = conn.execute(LIVE_SUBSCRIPTION_ID, (PLATFORM,)).fetchone()
            if current is not None and not rotate:
                raise SubscriptionError(
                    "already subscribed; subscribe --rotate makes a new verify token (enter it in the dashboard)"
                )
            # Stored first: the platform checks the verify token against our endpoint before it saves.
            conn.execute(STAGE_SUBSCRIPTION, (PLATFORM, callback_url, secret_hash(verify_token), None))
            setup = self.setup_url()
            if setup is None:
                print(
                    "In the Meta app dashboard (Instagram > API setup with Instagram login > Configure webhooks):\n"
                    f"  Callback URL: {callback_url}\n  Verify token: {verify_token}   (shown once)\n"
                    f"  Subscribe to: {', '.join(FIELDS)}"
                )
            else:
                response = httpx.post(
                    setup,
                    json={"callback_url": callback_url, "verify_token": verify_token, "fields": FIELDS},
                    timeout=30.0,
                )
                if response.status_code != 200:
                    conn.execute(DROP_STAGED_SUBSCRIPTION, (PLATFORM,))
                    raise SubscriptionError(
                        f"the webhook setup was refused: HTTP {response.status_code} {response.text[:300]}"
                    )
            conn.execute(CONFIRM_SUBSCRIPTION, (SUBSCRIPTION_ID, PLATFORM))
            conn.execute(MARK_ACCOUNTS_SUBSCRIBED, (SUBSCRIPTION_ID, PLATFORM))
        return SUBSCRIPTION_ID

    def unsubscribe(self, conninfo: str) -> str | None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            current = conn.execute(LIVE_SUBSCRIPTION_ID, (PLATFORM,)).fetchone()
            setup = self.setup_url()
            if setup is not None:
                httpx.delete(setup, timeout=30.0)
            conn.execute(DELETE_SUBSCRIPTION, (PLATFORM,))
            conn.execute(MARK_ACCOUNTS_UNSUBSCRIBED, (PLATFORM,))
        return str(current[0]) if current else None

    def status(self, conninfo: str) -> dict[str, Any]:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(SUBSCRIPTION_STATUS, (PLATFORM,)).fetchone()
        return {"trove": {"subscription_id": row[0], "callback_url": row[1], "fields": FIELDS} if row else None}
