"""Bluesky (atproto) OAuth as a confidential web client (atproto.com/specs/oauth).

Connecting starts from the handle the user gives: it is resolved to a DID, its PDS and that PDS's
authorization server; the request is pushed (PAR) with PKCE S256, a client assertion (private_key_jwt, our
client key) and a DPoP proof from a key made for this connect. The browser goes to the authorization endpoint
with only the request_uri. The callback's `iss` must be the server we asked, the token response's `sub` the
DID we resolved. Tokens are DPoP-bound: the key, the server's last nonce and where to refresh are the
TokenSet's binding (stored encrypted). Refresh tokens rotate on every refresh.

Our client id is the URL of our client metadata document, served with our JWKS by the HTTP service from
`documents()` at /functions/v1/oauth-bluesky/<name> (trove.config.public_url() is its base).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from trove.config import public_url
from trove.platforms.base import (
    AuthorizationStart,
    Connection,
    ConnectRefused,
    InvalidGrantError,
    TokenSet,
    TransientError,
)
from trove.platforms.bluesky.config import BlueskyConfig
from trove.platforms.bluesky.dpop import (
    ALG,
    CLIENT_ASSERTION_TYPE,
    NonceHolder,
    client_assertion,
    client_jwks,
    dpop_post,
    key_from_jwk,
    new_dpop_key,
    pkce_pair,
    private_jwk,
)
from trove.platforms.bluesky.identity import (
    INVALID_HANDLE,
    Fetched,
    authorization_server,
    is_valid_did,
    resolve_identity,
)

SCOPES = "atproto transition:generic"
MAX_TOKEN_LENGTH = 8192
MAX_EXPIRES_IN = 365 * 24 * 3600


def _printable(value: Any, limit: int = 200) -> str:
    text = str(value) if value is not None else ""
    return "".join(c for c in text if c.isprintable() and c.isascii())[:limit]


def _server_error(fetched: Fetched) -> tuple[str, str]:
    """The OAuth error code and description of a refusal, made safe to show (an attacker may write them)."""
    try:
        body = fetched.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"http_{fetched.status_code}", ""
    return _printable(body.get("error"), 64) or f"http_{fetched.status_code}", _printable(body.get("error_description"))


def _json_object(fetched: Fetched, what: str) -> dict[str, Any]:
    try:
        body = fetched.json()
    except ValueError as bad:
        raise TransientError(f"{what}: the answer is not JSON") from bad
    if not isinstance(body, dict):
        raise TransientError(f"{what}: the answer is not a JSON object")
    return body


def _token_string(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_TOKEN_LENGTH or not value.isascii():
        raise ValueError(f"the token response has a malformed {name}")
    return value


class BlueskyOAuth:
    scopes = SCOPES
    required_scopes = frozenset({"atproto"})

    def __init__(self, config: BlueskyConfig) -> None:
        self.config = config

    def configured(self) -> bool:
        return self.config.configured()

    def _assertion_form(self, issuer: str, grant: Mapping[str, str]) -> dict[str, str]:
        """The grant plus our client authentication: a fresh assertion (its jti is single-use) every call."""
        return {
            **grant,
            "client_id": self.config.client_id,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": client_assertion(self.config.client_key, self.config.client_id, issuer),
        }

    # --- begin ------------------------------------------------------------------------------------------
    async def begin(
        self, http: httpx.AsyncClient, redirect_uri: str, state: str, login_hint: str | None
    ) -> AuthorizationStart:
        if not login_hint or not login_hint.strip():
            raise ConnectRefused(
                "login_hint_required", "give your Bluesky handle (like alice.bsky.social) to say which account"
            )
        identity = await resolve_identity(http, login_hint, self.config)
        server = await authorization_server(http, identity.pds, self.config)
        verifier, challenge = pkce_pair()
        key, nonce = new_dpop_key(), NonceHolder()
        request = {
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": SCOPES,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            # The account the server should ask for: the handle when it checked out both ways, else the DID.
            "login_hint": identity.handle if identity.handle != INVALID_HANDLE else identity.did,
        }
        fetched = await dpop_post(
            http,
            server.par_endpoint,
            lambda: self._assertion_form(server.issuer, request),
            key,
            nonce,
            insecure=self.config.insecure_http,
        )
        if fetched.status_code >= 500 or fetched.status_code == 429:
            raise TransientError(f"{server.issuer} failed the pushed authorization request: HTTP {fetched.status_code}")
        if fetched.status_code not in (200, 201):
            error, description = _server_error(fetched)
            raise ConnectRefused(
                "authorization_refused",
                f"{server.issuer} refused to start connecting ({error}{': ' + description if description else ''})",
            )
        request_uri = _json_object(fetched, f"{server.issuer} pushed authorization request").get("request_uri")
        if not isinstance(request_uri, str) or not request_uri or len(request_uri) > 2048:
            raise TransientError(f"{server.issuer} answered the pushed authorization request without a request_uri")
        query = httpx.QueryParams(client_id=self.config.client_id, request_uri=request_uri)
        return AuthorizationStart(
            url=str(httpx.URL(server.authorization_endpoint).copy_merge_params(query)),
            session={
                "did": identity.did,
                "handle": identity.handle,
                "pds": identity.pds,
                "issuer": server.issuer,
                "token_endpoint": server.token_endpoint,
                "code_verifier": verifier,
                "dpop_key": private_jwk(key),
                "dpop_nonce": nonce.value,
            },
        )

    # --- exchange ---------------------------------------------------------------------------------------
    async def exchange(
        self,
        http: httpx.AsyncClient,
        code: str,
        redirect_uri: str,
        params: Mapping[str, str],
        session: dict[str, Any],
    ) -> Connection:
        try:
            did, issuer, pds = str(session["did"]), str(session["issuer"]), str(session["pds"])
            token_endpoint, verifier = str(session["token_endpoint"]), str(session["code_verifier"])
            key = key_from_jwk(session["dpop_key"])
        except (KeyError, TypeError, ValueError) as bad:
            raise ConnectRefused("invalid_session", "this connect attempt lost its state: start again") from bad
        # RFC 9207: the callback names its issuer, which must be the server we sent the user to.
        if params.get("iss") != issuer:
            raise ConnectRefused(
                "wrong_issuer", "the answer came from another authorization server than the one asked: start again"
            )
        nonce = NonceHolder(session.get("dpop_nonce") or None)
        grant = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        fetched = await dpop_post(
            http,
            token_endpoint,
            lambda: self._assertion_form(issuer, grant),
            key,
            nonce,
            insecure=self.config.insecure_http,
        )
        if fetched.status_code >= 500 or fetched.status_code == 429:
            raise TransientError(f"{issuer} failed the code exchange: HTTP {fetched.status_code}")
        if fetched.status_code != 200:
            error, description = _server_error(fetched)
            if error == "invalid_grant":
                raise InvalidGrantError(f"{issuer} refused the authorization code (expired or already used)")
            raise ConnectRefused(
                "token_refused",
                f"{issuer} refused the code exchange ({error}{': ' + description if description else ''})",
            )
        body = _json_object(fetched, f"{issuer} code exchange")
        if body.get("sub") != did:
            raise ConnectRefused(
                "wrong_account", "the authorization server answered for another account than the handle given"
            )
        scope = body.get("scope")
        if not isinstance(scope, str) or "atproto" not in scope.split():
            raise ConnectRefused(
                "missing_scope", "Trove needs the atproto permission to archive your Bluesky account: connect again"
            )
        tokens = self._token_set(body, issuer, token_endpoint, did, key, nonce, previous_refresh=None)
        handle = str(session.get("handle") or INVALID_HANDLE)
        return Connection(
            tokens=tokens,
            platform_user_id=did,
            # "handle.invalid" says nothing about the account: its DID does.
            username=handle if handle != INVALID_HANDLE else did,
            metadata={"pds": pds, "issuer": issuer, "handle": handle},
        )

    def _token_set(
        self,
        body: Mapping[str, Any],
        issuer: str,
        token_endpoint: str,
        did: str,
        key: Any,
        nonce: NonceHolder,
        previous_refresh: str | None,
    ) -> TokenSet:
        """A token response as a TokenSet whose binding is all a refresh needs (and the latest nonce)."""
        token_type = body.get("token_type")
        if not isinstance(token_type, str) or token_type.lower() != "dpop":
            raise ConnectRefused("token_invalid", f"{issuer} issued tokens that are not DPoP-bound")
        try:
            access = _token_string(body, "access_token")
            refresh = _token_string(body, "refresh_token") or previous_refresh
        except ValueError as bad:
            raise TransientError(f"{issuer}: {bad}") from bad
        if access is None:
            raise TransientError(f"{issuer} answered without an access token")
        expires_in = body.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int) and not isinstance(expires_in, bool) and 0 < expires_in <= MAX_EXPIRES_IN:
            expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
        scope = body.get("scope")
        return TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_at=expires_at,
            scope=scope if isinstance(scope, str) else None,
            binding={
                "dpop_key": private_jwk(key),
                "dpop_nonce": nonce.value,
                "issuer": issuer,
                "token_endpoint": token_endpoint,
                "did": did,
            },
        )

    # --- refresh ----------------------------------------------------------------------------------------
    async def refresh(self, http: httpx.AsyncClient, refresh_token: str, binding: Mapping[str, Any] | None) -> TokenSet:
        """New tokens bound to the same DPoP key. InvalidGrantError: only the user can reconnect (the token
        was revoked or rotated away, or what we kept cannot refresh); TransientError: try again later."""
        if binding is None:
            raise InvalidGrantError("the Bluesky tokens were stored without their DPoP key: reconnect the account")
        try:
            issuer, did = str(binding["issuer"]), str(binding["did"])
            # Checked when the account connected; stored encrypted by us since.
            token_endpoint = str(binding["token_endpoint"])
            key = key_from_jwk(binding["dpop_key"])
        except (KeyError, TypeError, ValueError) as bad:
            raise InvalidGrantError("the stored Bluesky session cannot be refreshed: reconnect the account") from bad
        if not is_valid_did(did):
            raise InvalidGrantError("the stored Bluesky session names no valid account: reconnect it")
        nonce = NonceHolder(binding.get("dpop_nonce") or None)
        grant = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        fetched = await dpop_post(
            http,
            token_endpoint,
            lambda: self._assertion_form(issuer, grant),
            key,
            nonce,
            insecure=self.config.insecure_http,
        )
        if fetched.status_code != 200:
            error, _description = _server_error(fetched)
            if fetched.status_code in (400, 401) and error == "invalid_grant":
                raise InvalidGrantError(f"{issuer} refused the refresh token (revoked or expired)")
            # Anything else (our client key refused, 5xx, a rate limit) is never read as the user's revocation:
            # that would disconnect every account for an operator's or a server's problem.
            raise TransientError(f"{issuer} failed the token refresh: HTTP {fetched.status_code} ({error})")
        body = _json_object(fetched, f"{issuer} token refresh")
        if body.get("sub") != did:
            raise InvalidGrantError(f"{issuer} refreshed the tokens of another account: reconnect the account")
        try:
            return self._token_set(body, issuer, token_endpoint, did, key, nonce, previous_refresh=refresh_token)
        except ConnectRefused as refused:
            raise InvalidGrantError(refused.detail) from refused

    # --- documents --------------------------------------------------------------------------------------
    def documents(self) -> Mapping[str, dict[str, Any]]:
        if not self.configured():
            return {}
        config = self.config
        return {
            "client-metadata.json": {
                "client_id": config.client_id,
                "client_name": "Trove",
                "client_uri": public_url(),
                "application_type": "web",
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": SCOPES,
                "response_types": ["code"],
                "redirect_uris": [config.redirect_uri],
                "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_signing_alg": ALG,
                "dpop_bound_access_tokens": True,
                "jwks_uri": config.jwks_uri,
            },
            "jwks.json": client_jwks(config.client_key),
        }
