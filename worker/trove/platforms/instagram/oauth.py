"""Instagram Login (developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login): the
consent at www.instagram.com, the code exchanged at api.instagram.com for a short-lived token (an hour), that
one exchanged at once for a long-lived token (60 days), the profile, and the webhook fields subscribed.

A long-lived token has no refresh token: it is refreshed itself (`refresh_access_token`, allowed once it is
24 hours old, for another 60 days). So the token is stored as its own refresh credential, and
`TokenSet.refresh_at` asks for a refresh a week before it lapses, even when the account is idle. A refused
refresh means the user must reconnect (`token_expired`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from trove.platforms.base import (
    AuthError,
    AuthorizationStart,
    Connection,
    ConnectRefused,
    InvalidGrantError,
    TokenSet,
    TransientError,
)
from trove.platforms.instagram.client import (
    PROFILE_FIELDS,
    SCOPES,
    InstagramConfig,
    bearer,
    meta_error,
    parse_json_body,
    raise_for_status,
)
from trove.platforms.instagram.normalize import decimal_id, storable

# Renew a week before the 60 days are up, and never before Instagram allows it (24 hours after issue).
RENEW_BEFORE_EXPIRY = timedelta(days=7)
MIN_TOKEN_AGE = timedelta(hours=24, minutes=5)
# Account types the API serves; a personal account has no API at all.
PROFESSIONAL = frozenset({"BUSINESS", "MEDIA_CREATOR", "CREATOR"})
# Webhook fields Trove wants for each account (comments on its media, @mentions, a story's insights).
WEBHOOK_FIELDS = "comments,mentions,story_insights"
MAX_TOKEN = 4096


def long_lived(body: Any, now: datetime | None = None) -> TokenSet:
    """A long-lived token answer ({access_token, token_type, expires_in}) as tokens to store."""
    if not isinstance(body, dict):
        raise TransientError("Instagram's token answer is not a JSON object")
    token, expires_in = body.get("access_token"), body.get("expires_in")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN:
        raise TransientError("Instagram's token answer has no access_token")
    now = now or datetime.now(UTC)
    seconds = expires_in if isinstance(expires_in, int) and not isinstance(expires_in, bool) else 60 * 86400
    expires_at = now + timedelta(seconds=max(min(seconds, 90 * 86400), 3600))
    refresh_at = max(expires_at - RENEW_BEFORE_EXPIRY, min(now + MIN_TOKEN_AGE, expires_at - timedelta(minutes=10)))
    return TokenSet(token, token, expires_at, None, refresh_at=refresh_at)


class InstagramOAuth:
    scopes = SCOPES
    required_scopes = frozenset({"instagram_business_basic"})

    def __init__(self, config: InstagramConfig) -> None:
        self.config = config

    def configured(self) -> bool:
        return bool(self.config.client_id and self.config.app_secret)

    def documents(self) -> Mapping[str, dict[str, Any]]:
        return {}

    async def begin(
        self, http: httpx.AsyncClient, redirect_uri: str, state: str, login_hint: str | None
    ) -> AuthorizationStart:
        query = httpx.QueryParams(
            client_id=self.config.client_id,
            redirect_uri=redirect_uri,
            response_type="code",
            scope=SCOPES,
            state=state,
        )
        return AuthorizationStart(f"{self.config.authorize_url}/oauth/authorize?{query}")

    async def exchange(
        self,
        http: httpx.AsyncClient,
        code: str,
        redirect_uri: str,
        params: Mapping[str, str],
        session: dict[str, Any],
    ) -> Connection:
        # Instagram appends "#_" to the code in the browser; a client that passes the fragment on strips it.
        code = code.removesuffix("#_")
        response = await http.post(
            f"{self.config.api_url}/oauth/access_token",
            data={
                "client_id": self.config.client_id,
                "client_secret": self.config.app_secret,
                "grant_type": "authorization_code",
                "redirect_uri": redirect_uri,
                "code": code,
            },
        )
        if response.status_code == 400:
            message = str(meta_error(response).get("message") or "the code was refused")[:300]
            raise InvalidGrantError(f"Instagram refused the authorization code: {message}")
        raise_for_status(response, "code exchange")
        body = parse_json_body(response)
        granted = body.get("data", [body])[0] if isinstance(body, dict) and isinstance(body.get("data"), list) else body
        if not isinstance(granted, dict) or not isinstance(granted.get("access_token"), str):
            raise TransientError("Instagram's code exchange answered without an access token")
        permissions = granted.get("permissions")
        scope = ",".join(permissions) if isinstance(permissions, list) else permissions
        short = granted["access_token"]

        response = await http.get(
            f"{self.config.graph_url}/access_token",
            params={"grant_type": "ig_exchange_token", "client_secret": self.config.app_secret},
            headers=bearer(short),
        )
        raise_for_status(response, "long-lived token exchange")
        tokens = long_lived(parse_json_body(response))
        tokens = TokenSet(
            tokens.access_token, tokens.refresh_token, tokens.expires_at, scope if isinstance(scope, str) else None,
            refresh_at=tokens.refresh_at,
        )  # fmt: skip

        response = await http.get(
            f"{self.config.graph}/me", params={"fields": PROFILE_FIELDS}, headers=bearer(tokens.access_token)
        )
        raise_for_status(response, "profile")
        profile = parse_json_body(response)
        if not isinstance(profile, dict):
            raise TransientError("Instagram's profile answer is not a JSON object")
        user_id = decimal_id(profile.get("user_id")) or decimal_id(granted.get("user_id"))
        username = profile.get("username")
        if user_id is None or not isinstance(username, str) or not 0 < len(username) <= 64:
            raise ConnectRefused("unknown_account", "Instagram did not say which account this is: nothing connected")
        account_type = profile.get("account_type")
        if account_type not in PROFESSIONAL:
            raise ConnectRefused(
                "personal_account",
                f"@{storable(username)} is a personal Instagram account ({account_type or 'type unknown'}): Instagram's"
                " API serves only professional (business or creator) accounts. Switch the account to professional"
                " in Instagram's settings and connect again, or import your data download (Instagram: Your"
                " activity > Download your information, JSON format) instead. Nothing was connected.",
            )
        subscribed = await self._subscribe_webhooks(http, tokens.access_token)
        counts = ("followers_count", "follows_count", "media_count")
        metadata: dict[str, Any] = {"account_type": account_type, "webhook_fields": subscribed}
        metadata.update({key: profile[key] for key in counts if isinstance(profile.get(key), int)})
        name, picture = profile.get("name"), profile.get("profile_picture_url")
        return Connection(
            tokens=tokens,
            platform_user_id=user_id,
            username=storable(username),
            display_name=storable(name)[:200] if isinstance(name, str) and name else None,
            avatar_url=picture if isinstance(picture, str) and picture.startswith("https://") else None,
            metadata=metadata,
        )

    async def _subscribe_webhooks(self, http: httpx.AsyncClient, token: str) -> str | None:
        """Ask Instagram to send this account's comment, mention and story-insight webhooks to the app; the
        fields subscribed, or None when Instagram refused (the archive works without: polling finds it all)."""
        try:
            response = await http.post(
                f"{self.config.graph}/me/subscribed_apps",
                params={"subscribed_fields": WEBHOOK_FIELDS},
                headers=bearer(token),
            )
        except httpx.HTTPError:
            return None
        return WEBHOOK_FIELDS if response.status_code == 200 else None

    async def refresh(self, http: httpx.AsyncClient, token: str) -> TokenSet:
        response = await http.get(
            f"{self.config.graph_url}/refresh_access_token",
            params={"grant_type": "ig_refresh_token"},
            headers=bearer(token),
        )
        if response.status_code >= 400:
            error = meta_error(response)
            code = error.get("code")
            message = str(error.get("message") or "")[:300]
            if code == 190 or response.status_code == 401:
                # Lapsed or revoked: only the user can give Trove access again.
                raise AuthError(f"Instagram refused to refresh the token (code 190: {message}); reconnect the account")
            if code == 10:
                raise TransientError(f"Instagram will not refresh the token yet: {message}")
        raise_for_status(response, "token refresh")
        return long_lived(parse_json_body(response))
