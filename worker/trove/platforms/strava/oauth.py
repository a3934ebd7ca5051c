"""Strava OAuth2 (developers.strava.com/docs/authentication): authorize URL, code exchange (which also says
who the athlete is) and refresh. Strava rotates refresh tokens: the one a refresh returns replaces ours."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from trove.platforms.base import AuthorizationStart, Connection, InvalidGrantError, TokenSet, TransientError
from trove.platforms.strava.client import SCOPES, StravaConfig, raise_for_status, tokens_from

# The athlete's profile fields kept on the account (connected_accounts.metadata).
PROFILE_FIELDS = ("firstname", "lastname", "city", "country", "premium", "sex")


class StravaOAuth:
    scopes = SCOPES
    required_scopes = frozenset({"read", "activity:read_all"})

    def __init__(self, config: StravaConfig) -> None:
        self.config = config

    def configured(self) -> bool:
        return bool(self.config.client_id and self.config.client_secret)

    async def begin(
        self, http: httpx.AsyncClient, redirect_uri: str, state: str, login_hint: str | None
    ) -> AuthorizationStart:
        # Strava's consent page asks who is signing in itself; nothing to keep until the callback.
        return AuthorizationStart(self.config.authorize_url(redirect_uri, state))

    def documents(self) -> Mapping[str, dict[str, Any]]:
        return {}

    async def _token(self, http: httpx.AsyncClient, grant: dict[str, str]) -> httpx.Response:
        """The token endpoint, for a code exchange and a refresh alike (our client credentials plus the grant)."""
        credentials = {"client_id": self.config.client_id, "client_secret": self.config.client_secret}
        return await http.post(f"{self.config.base_url}/oauth/token", data={**credentials, **grant})

    async def exchange(
        self,
        http: httpx.AsyncClient,
        code: str,
        redirect_uri: str = "",
        params: Mapping[str, str] | None = None,
        session: dict[str, Any] | None = None,
    ) -> Connection:
        response = await self._token(http, {"code": code, "grant_type": "authorization_code"})
        if response.status_code == 400:
            raise InvalidGrantError("Strava refused the authorization code (expired or already used)")
        raise_for_status(response, "code exchange")
        body = response.json()
        athlete = body.get("athlete") or {}
        athlete_id = str(athlete.get("id") or "")
        if not athlete_id:
            raise InvalidGrantError("Strava did not say which athlete this is")
        return Connection(
            tokens=tokens_from(body),
            platform_user_id=athlete_id,
            username=athlete.get("username") or athlete_id,
            display_name=" ".join(filter(None, [athlete.get("firstname"), athlete.get("lastname")])) or None,
            avatar_url=athlete.get("profile"),
            metadata={key: athlete.get(key) for key in PROFILE_FIELDS},
        )

    async def refresh(self, http: httpx.AsyncClient, refresh_token: str) -> TokenSet:
        response = await self._token(http, {"grant_type": "refresh_token", "refresh_token": refresh_token})
        if response.status_code == 400:  # {"resource": "RefreshToken", "code": "invalid"}: revoked or rotated away
            raise InvalidGrantError("Strava refused the refresh token")
        if response.status_code == 401:
            # Our application's credentials were refused (a rotated client secret): the operator's to fix.
            # Never read as the user's revocation: that would disconnect every account.
            raise TransientError("Strava refused this application's client id or secret (token refresh: HTTP 401)")
        raise_for_status(response, "token refresh")
        return tokens_from(response.json())
