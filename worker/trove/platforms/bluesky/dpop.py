"""The JOSE parts of atproto OAuth: DPoP proofs (RFC 9449) with server nonces, PKCE S256 (RFC 7636) and
private_key_jwt client assertions (RFC 7523). Keys are ES256 (P-256); signing is pyjwt's, never ours.

A DPoP key is made per connect and lives with the tokens (TokenSet.binding, as a private JWK): every request
with those tokens is signed with it. The client key (TROVE_BLUESKY_CLIENT_KEY) signs our client assertions;
its kid is its RFC 7638 thumbprint, as published in our JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from trove.platforms.bluesky.identity import Fetched, fetch_bounded

ALG = "ES256"
ASSERTION_LIFETIME = 60  # seconds: a client assertion is used at once
TOKEN_RESPONSE_LIMIT = 64 * 1024
MAX_NONCE_LENGTH = 512


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- keys -----------------------------------------------------------------------------------------------
def new_dpop_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The key as a private JWK (secret: it is stored encrypted in TokenSet.binding, never logged)."""
    return dict(ECAlgorithm.to_jwk(key, as_dict=True))


def public_jwk(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> dict[str, str]:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    return {name: jwk[name] for name in ("kty", "crv", "x", "y")}


def key_from_jwk(jwk: Mapping[str, Any]) -> ec.EllipticCurvePrivateKey:
    """A stored private JWK back as a key; ValueError when it is not an EC P-256 private key."""
    if not isinstance(jwk, Mapping) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" not in jwk:
        raise ValueError("not an EC P-256 private JWK")
    try:
        key = ECAlgorithm.from_jwk(dict(jwk))
    except (jwt.InvalidKeyError, ValueError, TypeError) as bad:
        raise ValueError("not an EC P-256 private JWK") from bad
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("not an EC P-256 private JWK")
    return key


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members (EC: crv, kty, x, y) in lexicographic order, no spaces."""
    required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def client_kid(client_key: ec.EllipticCurvePrivateKey) -> str:
    return jwk_thumbprint(public_jwk(client_key))


def client_jwks(client_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """Our JWKS document: the client key's public half, with its kid."""
    jwk = public_jwk(client_key)
    return {"keys": [{**jwk, "kid": jwk_thumbprint(jwk), "use": "sig", "alg": ALG}]}


# --- proofs and assertions ------------------------------------------------------------------------------
def htu(url: str) -> str:
    """The proof's target: the request URL without query and fragment (RFC 9449 section 4.2)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def access_token_hash(access_token: str) -> str:
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def dpop_proof(
    key: ec.EllipticCurvePrivateKey,
    method: str,
    url: str,
    nonce: str | None = None,
    access_token: str | None = None,
    *,
    now: float | None = None,
) -> str:
    """A DPoP proof JWT for one request (ath binds it to an access token when one is sent)."""
    claims: dict[str, Any] = {
        "jti": secrets.token_urlsafe(16),
        "htm": method.upper(),
        "htu": htu(url),
        "iat": int(now if now is not None else time.time()),
    }
    if nonce:
        claims["nonce"] = nonce
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    return jwt.encode(claims, key, algorithm=ALG, headers={"typ": "dpop+jwt", "jwk": public_jwk(key)})


def pkce_challenge(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge); the verifier is 64 characters of [A-Za-z0-9_-]."""
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_challenge(verifier)


def client_assertion(
    client_key: ec.EllipticCurvePrivateKey, client_id: str, audience: str, *, now: float | None = None
) -> str:
    """private_key_jwt (RFC 7523): iss = sub = our client id, aud = the authorization server's issuer."""
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": secrets.token_urlsafe(16),
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    return jwt.encode(claims, client_key, algorithm=ALG, headers={"kid": client_kid(client_key)})


CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --- requests with nonce handling -----------------------------------------------------------------------
@dataclass
class NonceHolder:
    """The last DPoP-Nonce one server gave us (nonces are per server: one holder per origin)."""

    value: str | None = None

    def update(self, headers: httpx.Headers) -> None:
        nonce = headers.get("dpop-nonce")
        if nonce and len(nonce) <= MAX_NONCE_LENGTH and nonce.isascii() and nonce.isprintable():
            self.value = nonce


def wants_nonce(fetched: Fetched) -> bool:
    """The server refused the proof for its nonce: 400 {"error": "use_dpop_nonce"} (authorization servers)
    or 401 with WWW-Authenticate: DPoP error="use_dpop_nonce" (resource servers)."""
    if fetched.status_code == 400:
        try:
            body = fetched.json()
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("error") == "use_dpop_nonce"
    if fetched.status_code == 401:
        challenge = fetched.headers.get("www-authenticate", "")
        return challenge.lower().startswith("dpop") and 'error="use_dpop_nonce"' in challenge
    return False


async def dpop_request(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    key: ec.EllipticCurvePrivateKey,
    nonce_holder: NonceHolder,
    *,
    form: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
    access_token: str | None = None,
    limit: int = TOKEN_RESPONSE_LIMIT,
    insecure: bool = False,
) -> Fetched:
    """One request with a DPoP proof (and `Authorization: DPoP <token>` when given), retried once with the
    server's new nonce when it asks for one; every DPoP-Nonce it sends is remembered in `nonce_holder`.
    `form` may be a function so each attempt gets fresh single-use values (a client assertion's jti)."""
    fetched: Fetched | None = None
    for _attempt in range(2):
        headers = {"DPoP": dpop_proof(key, method, url, nonce_holder.value, access_token)}
        if access_token is not None:
            headers["Authorization"] = f"DPoP {access_token}"
        data = dict(form() if callable(form) else form) if form is not None else None
        sent_nonce = nonce_holder.value
        fetched = await fetch_bounded(
            http,
            method,
            url,
            limit=limit,
            what=f"{method} {htu(url)}",
            insecure=insecure,
            headers=headers,
            data=data,
        )
        nonce_holder.update(fetched.headers)
        if not wants_nonce(fetched) or nonce_holder.value in (None, sent_nonce):
            break  # answered, or asked for a nonce without giving a new one: retrying cannot help
    assert fetched is not None
    return fetched


async def dpop_post(
    http: httpx.AsyncClient,
    url: str,
    form: Mapping[str, str] | Callable[[], Mapping[str, str]],
    key: ec.EllipticCurvePrivateKey,
    nonce_holder: NonceHolder,
    *,
    insecure: bool = False,
) -> Fetched:
    """A form POST to an authorization server (PAR, token) with DPoP and the nonce retry; `insecure`: the
    local stack's simulator on this machine may be reached."""
    return await dpop_request(http, "POST", url, key, nonce_holder, form=form, insecure=insecure)
