"""The connector for the test platform (tests/support/fake_platform.py), registered as 'bluesky' (a
platform must be one of the enum's). Loaded by worker processes through $TROVE_PLATFORMS."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from trove.platforms.base import (
    Account,
    AuthError,
    AuthorizationStart,
    Connection,
    Enrichment,
    InboundEvent,
    InvalidGrantError,
    MediaRef,
    NormalizedPost,
    NotFoundError,
    Page,
    RateLimitedError,
    RateLimitReading,
    Subscription,
    SyncMode,
    TokenSet,
    TransientError,
    WebhookAction,
    WebhookRefused,
)

PAGE_SIZE = int(os.environ.get("FAKE_PAGE_SIZE", "50"))


class FakeConnector:
    platform = "bluesky"
    poll_interval = timedelta(hours=1)
    poll_on_event = True
    ephemeral_interval = None  # nothing here vanishes by itself
    enrich_batch = 1
    detail_keys: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.base_url = os.environ["FAKE_PLATFORM_URL"]

    async def fetch_page(
        self, http: httpx.AsyncClient, account: Account, mode: SyncMode, cursor: dict[str, Any] | None
    ) -> Page:
        if mode == "backfill":
            params = {"before": (cursor or {}).get("before", 10**9), "limit": PAGE_SIZE}
        else:
            params = {"after": (cursor or {}).get("after", account.sync_state.get("newest_id", 0)), "limit": PAGE_SIZE}
        response = await http.get(
            f"{self.base_url}/items", params=params, headers={"Authorization": f"Bearer {account.access_token}"}
        )
        if response.status_code == 401:
            raise AuthError("HTTP 401 from the platform")
        if response.status_code == 404:
            raise NotFoundError("HTTP 404: the account does not exist")
        if response.status_code == 429:
            raise RateLimitedError("HTTP 429 rate limited", datetime.now(UTC) + timedelta(minutes=15))
        if response.status_code >= 400:
            raise TransientError(f"HTTP {response.status_code}: {response.text}")
        items = response.json()["items"]
        posts = [self.normalize(item) for item in items]
        ids = [item["id"] for item in items]
        full = len(items) == PAGE_SIZE
        if mode == "backfill":
            next_cursor = {"before": min(ids)} if full and min(ids) > 1 else None
        else:
            next_cursor = {"after": max(ids)} if full else None
        newest = max([account.sync_state.get("newest_id", 0), *ids])
        readings = [
            RateLimitReading(
                "15min",
                timedelta(minutes=15),
                int(response.headers["X-RateLimit-Limit"]),
                int(response.headers["X-RateLimit-Usage"]),
            )
        ]
        return Page("items", response.json(), posts, next_cursor, readings, {"newest_id": newest})

    async def refresh_token(
        self, http: httpx.AsyncClient, refresh_token: str, binding: dict[str, Any] | None = None
    ) -> TokenSet:
        response = await http.post(
            f"{self.base_url}/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
        if response.status_code == 400 and response.json().get("error") == "invalid_grant":
            raise InvalidGrantError("invalid_grant")
        if response.status_code >= 400:
            raise TransientError(f"token refresh failed with HTTP {response.status_code}")
        body = response.json()
        return TokenSet(
            body["access_token"],
            body["refresh_token"],
            datetime.now(UTC) + timedelta(seconds=body["expires_in"]),
            body.get("scope"),
        )

    def normalize(self, post_data: dict[str, Any]) -> NormalizedPost:
        return NormalizedPost(
            platform_post_id=f"fake:{post_data['id']}",
            created_at=datetime.fromisoformat(post_data["created_at"]),
            post_data=post_data,
            text=post_data["text"],
            engagement={"likes": post_data["likes"]},
            media=(MediaRef(post_data["photo"]["id"], post_data["photo"]["url"]),),
        )

    def handle_event(self, event_type: str, payload: dict[str, Any]) -> WebhookAction:
        return WebhookAction(
            platform_user_id=str(payload["owner_id"]), kind="ignore" if event_type == "ping" else "sync"
        )

    def enrich_cost(self, post_data: dict[str, Any]) -> int:
        return 0

    async def refresh_media_url(
        self, http: httpx.AsyncClient, account: Account, post_data: dict[str, Any], media_key: str
    ) -> str | None:
        response = await http.get(f"{self.base_url}/media-url/{media_key}")
        return response.json()["url"] if response.status_code == 200 else None

    async def enrich(self, http: httpx.AsyncClient, account: Account, post_data: dict[str, Any]) -> Enrichment:
        raise AssertionError("the fake platform's posts are complete: nothing to enrich")


# --- the same test platform as a whole Platform: OAuth connect and signed webhooks, registered by a test ----
class FakeOAuth:
    scopes = "read"
    required_scopes = frozenset({"read"})

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def configured(self) -> bool:
        return True

    async def begin(
        self, http: httpx.AsyncClient, redirect_uri: str, state: str, login_hint: str | None
    ) -> AuthorizationStart:
        query = urlencode({"redirect_uri": redirect_uri, "state": state})
        return AuthorizationStart(f"{self.base_url}/oauth/authorize?{query}")

    def documents(self) -> Mapping[str, dict[str, Any]]:
        return {}

    async def exchange(
        self,
        http: httpx.AsyncClient,
        code: str,
        redirect_uri: str = "",
        params: Mapping[str, str] | None = None,
        session: dict[str, Any] | None = None,
    ) -> Connection:
        response = await http.post(
            f"{self.base_url}/oauth/token", data={"grant_type": "authorization_code", "code": code}
        )
        if response.status_code == 400:
            raise InvalidGrantError("the test platform refused the code")
        body = response.json()
        tokens = TokenSet(
            body["access_token"],
            body["refresh_token"],
            datetime.now(UTC) + timedelta(seconds=body["expires_in"]),
            body["scope"],
        )
        user = body["user"]
        return Connection(tokens, user["id"], user["handle"], user["name"])


class FakeWebhooks:
    """Signed like Instagram's: X-Fake-Signature is the HMAC-SHA256 of the raw body with the app secret."""

    secret = b"fake-app-secret"

    def handshake(self, params: Mapping[str, str], secret: str | None, ours: Subscription) -> dict[str, Any]:
        raise WebhookRefused(404, "no_handshake", "the test platform has no subscription handshake")

    def receive(
        self, body: bytes, headers: Mapping[str, str], secret: str | None, ours: Subscription
    ) -> list[InboundEvent]:
        expected = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("x-fake-signature", ""), expected):
            raise WebhookRefused(403, "invalid_signature", "the body is not signed with the app secret")
        event = json.loads(body)
        return [InboundEvent("post.created", hashlib.sha256(body).hexdigest(), event)]


class FakeTestPlatform:
    name = "bluesky"

    def __init__(self) -> None:
        self.connector = FakeConnector()
        self.oauth = FakeOAuth(self.connector.base_url)
        self.webhooks = FakeWebhooks()
        self.subscriptions = None
        self.simulator = None
        self.demo = None
        self.stream = None
