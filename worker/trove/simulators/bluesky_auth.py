"""An atproto OAuth authorization server for the Bluesky simulator, shaped like bsky.social's: server metadata at
/.well-known/oauth-authorization-server, pushed authorization requests (/oauth/par), a consent that is granted at
once (/oauth/authorize), and a token endpoint (/oauth/token) issuing DPoP-bound tokens with rotating refresh
tokens; /oauth/revoke as RFC 7009.

It holds clients to the atproto profile (https://atproto.com/specs/oauth) the way a real server does:
- the client_id is the URL of its metadata document, fetched over HTTP on every request and validated;
- confidential clients authenticate with private_key_jwt (an ES256 assertion signed by a key of the document's
  `jwks`/`jwks_uri`, single-use `jti`), the same key for the code exchange and refreshes as for the PAR;
- every PAR, token (and resource) request carries a DPoP proof (RFC 9449) with the current server nonce, which
  rotates; codes and tokens are bound to the proof's key (its RFC 7638 thumbprint), PKCE is S256 only;
- the authorization response names the issuer (`iss`) and the token response the account (`sub`).

`PlatformSimulator` keeps the codes and tokens (`new_code`, `issue_tokens`, `rotate_refresh`, `revoke`); this
class adds what atproto binds to them. `resource_owner`/`authenticate` check a DPoP-bound access token for the
PDS routes of the simulator that mounts it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import time
from base64 import urlsafe_b64encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from trove.simulators.base import PlatformSimulator

METADATA_PATH = "/.well-known/oauth-authorization-server"
PAR_PATH = "/oauth/par"
AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
REVOKE_PATH = "/oauth/revoke"

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
SCOPES = ("atproto", "transition:generic", "transition:chat.bsky", "transition:email")

# Bounds on what clients send or serve us: forms, fetched documents, JWTs, identifiers.
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 64
MAX_DOCUMENT_BYTES = 64 * 1024
MAX_JWT_CHARS = 8 * 1024
MAX_URL_CHARS = 2048
MAX_ID_CHARS = 256
MAX_STATE_CHARS = 1024
MAX_PENDING = 10_000  # PAR requests and codes kept at once (oldest dropped first)
FETCH_TIMEOUT = 5.0

DPOP_IAT_SKEW = 60  # a proof's iat must be within this many seconds of now
ASSERTION_MAX_AGE = 300  # a client assertion issued longer ago than this is refused
ASSERTION_MAX_LIFETIME = 3600  # ... and so is one that claims to live longer (it bounds the replay cache)
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
PKCE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
LOOPBACK_NAMES = frozenset({"localhost"})


class OAuthError(Exception):
    """An OAuth refusal: the JSON error body and its status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error, self.description, self.status = error, description, status


# --- pure helpers ---------------------------------------------------------------------------------------------
def b64url(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638: SHA-256 over the key's required members, in lexicographic order, without whitespace."""
    members = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}
    names = members.get(str(jwk.get("kty")))
    if names is None or any(not isinstance(jwk.get(name), str) for name in names):
        raise OAuthError("invalid_dpop_proof", "jwk is not a usable public key")
    canonical = json.dumps({name: jwk[name] for name in names}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def pkce_challenge(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def access_token_hash(token: str) -> str:
    """A DPoP proof's `ath`."""
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


def normalize_url(url: str) -> str | None:
    """scheme://host[:port]/path with the scheme and host lowercased, default ports, query and fragment dropped:
    how a DPoP `htu` is compared with the request's URL. None for what is no URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_jwk(jwk: Any, what: str, error: str) -> dict[str, Any]:
    """An ES256 (P-256) public JWK, refused with `error` when it is anything else or carries private parts."""
    if not isinstance(jwk, dict):
        raise OAuthError(error, f"{what} is not a JSON object")
    if PRIVATE_JWK_MEMBERS & jwk.keys():
        raise OAuthError(error, f"{what} contains private key material")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise OAuthError(error, f"{what} must be an EC P-256 key")
    return jwk


def es256_key(jwk: dict[str, Any], what: str, error: str) -> Any:
    try:
        return jwt.PyJWK(jwk, algorithm="ES256").key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise OAuthError(error, f"{what} is not a valid ES256 key ({exc})") from None


def header_text(text: str) -> str:
    """A description fit for a quoted WWW-Authenticate parameter."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "'" for c in text)


def decode_jwt(token: str, key: Any, what: str, error: str, **kwargs: Any) -> dict[str, Any]:
    """jwt.decode, every failure (a hostile token can also make it overflow) an OAuthError."""
    try:
        return jwt.decode(token, key, algorithms=["ES256"], **kwargs)
    except jwt.ExpiredSignatureError:
        raise OAuthError(error, f"{what} has expired") from None
    except jwt.InvalidAudienceError:
        raise OAuthError(error, f"{what} aud must be the issuer") from None
    except jwt.InvalidIssuerError:
        raise OAuthError(error, f"{what} iss must be the client_id") from None
    except (jwt.PyJWTError, ValueError, OverflowError, TypeError) as exc:
        raise OAuthError(error, f"{what} does not verify ({exc})") from None


def unverified_header(token: str, what: str, error: str) -> dict[str, Any]:
    if not isinstance(token, str) or not token or len(token) > MAX_JWT_CHARS:
        raise OAuthError(error, f"{what} is missing or too long")
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise OAuthError(error, f"{what} is not a JWT ({exc})") from None
    if not isinstance(header, dict):
        raise OAuthError(error, f"{what} has no JOSE header")
    return header


class SeenOnce:
    """Identifiers that may be used only once (DPoP and assertion `jti`s), remembered until they expire; bounded,
    the oldest forgotten first when a flood fills it."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self.until: dict[str, float] = {}

    def first_use(self, key: str, until: float, now: float) -> bool:
        if key in self.until and self.until[key] > now:
            return False
        if len(self.until) >= self.limit:
            for old in [k for k, v in self.until.items() if v <= now]:
                del self.until[old]
            while len(self.until) >= self.limit:
                del self.until[next(iter(self.until))]
        self.until[key] = until
        return True


def trim(entries: dict[str, Any], limit: int = MAX_PENDING) -> None:
    while len(entries) >= limit:
        del entries[next(iter(entries))]


# --- state ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Client:
    client_id: str
    metadata: dict[str, Any]
    auth_method: str  # "private_key_jwt" or "none"
    keys: dict[str, dict[str, Any]]  # kid -> public JWK
    redirect_uris: tuple[str, ...]
    scopes: frozenset[str]
    grant_types: frozenset[str]


@dataclass
class Pushed:
    """A pushed authorization request, waiting for the browser."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str
    code_challenge: str
    login_hint: str | None
    dpop_jkt: str
    kid: str | None
    expires_at: float


@dataclass
class PendingCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    dpop_jkt: str
    kid: str | None
    expires_at: float


@dataclass
class Session:
    """One authorization and the tokens issued under it (refreshes included): what they are bound to."""

    did: str
    client_id: str
    jkt: str
    kid: str | None
    scope: str
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    access_tokens: set[str] = field(default_factory=set)
    refresh_token: str | None = None


# --- the server -----------------------------------------------------------------------------------------------
class AtprotoAuthServer:
    """The authorization server routes and state for a simulator whose accounts are DIDs.

    `resolve_login(login_hint)` names the DID a handle or DID hint stands for (None: no such account);
    `default_login()` names the account that consents when the client gave no hint (without it,
    `resolve_login("")` is asked).
    """

    def __init__(
        self,
        sim: PlatformSimulator[str],
        resolve_login: Callable[[str], str | None],
        *,
        default_login: Callable[[], str | None] | None = None,
    ) -> None:
        self.sim = sim
        self.resolve_login = resolve_login
        self.default_login = default_login
        self.request_uri_ttl = 300
        self.code_ttl = 120
        self.nonce_lifetime = 180.0  # seconds a DPoP nonce is current
        self.nonce_grace = 30.0  # seconds the previous nonce is still accepted after a rotation
        self.allow_http_clients = False  # http:// client_ids beyond loopback hosts (a stack on a private network)
        self.token_sub_override: str | None = None
        self.pushed: dict[str, Pushed] = {}
        self.codes: dict[str, PendingCode] = {}
        self.sessions: dict[str, Session] = {}
        self.access_sessions: dict[str, Session] = {}
        self.refresh_sessions: dict[str, Session] = {}
        self.spent_refresh: dict[str, str] = {}  # rotated refresh token -> session id (a replay ends the session)
        self.dpop_jtis = SeenOnce()
        self.assertion_jtis = SeenOnce()
        self.counts: dict[str, int] = {}
        self.refusals: dict[str, int] = {}
        self.nonce_rotations = 0
        self._nonce = secrets.token_urlsafe(24)
        self._nonce_at = time.time()
        self._previous_nonce: str | None = None
        self._previous_until = 0.0

    # --- mounting ---------------------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route(METADATA_PATH, self.metadata, methods=["GET"]),
            Route(PAR_PATH, self.par, methods=["POST"]),
            Route(AUTHORIZE_PATH, self.authorize, methods=["GET"]),
            Route(TOKEN_PATH, self.token, methods=["POST"]),
            Route(REVOKE_PATH, self.revoke_endpoint, methods=["POST"]),
        ]

    def issuer(self, request: Request) -> str:
        if not self.sim.base_url:
            self.sim.base_url = str(request.base_url).rstrip("/")
        return self.sim.base_url

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    # --- DPoP nonces ------------------------------------------------------------------------------------------
    def current_nonce(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        if now - self._nonce_at >= self.nonce_lifetime:
            self.rotate_nonce(now, keep_previous=True)
        return self._nonce

    def rotate_nonce(self, now: float | None = None, keep_previous: bool = False) -> None:
        """A new nonce; the old one stays acceptable for `nonce_grace` seconds only on a scheduled rotation."""
        now = time.time() if now is None else now
        self._previous_nonce = self._nonce if keep_previous else None
        self._previous_until = now + self.nonce_grace
        self._nonce, self._nonce_at = secrets.token_urlsafe(24), now
        self.nonce_rotations += 1

    def nonce_ok(self, nonce: Any, now: float) -> bool:
        if not isinstance(nonce, str) or not nonce:
            return False
        if hmac.compare_digest(nonce, self.current_nonce(now)):
            return True
        previous = self._previous_nonce
        return previous is not None and now < self._previous_until and hmac.compare_digest(nonce, previous)

    def nonce_headers(self) -> dict[str, str]:
        """What every DPoP-protected response carries (also for the PDS routes)."""
        return {"DPoP-Nonce": self.current_nonce()}

    # --- responses --------------------------------------------------------------------------------------------
    def _json(self, body: dict[str, Any], status: int = 200) -> JSONResponse:
        return JSONResponse(
            body,
            status_code=status,
            headers={**self.nonce_headers(), "Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _refuse(self, error: OAuthError) -> JSONResponse:
        self.refusals[error.error] = self.refusals.get(error.error, 0) + 1
        return self._json({"error": error.error, "error_description": error.description}, error.status)

    # --- requests ---------------------------------------------------------------------------------------------
    async def read_form(self, request: Request) -> dict[str, str]:
        """The urlencoded body, bounded, every parameter at most once (RFC 6749 §3.1)."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", f"the body must be at most {MAX_FORM_BYTES} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise OAuthError("invalid_request", f"the body must be at most {MAX_FORM_BYTES} bytes")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except (UnicodeDecodeError, ValueError):
            raise OAuthError("invalid_request", "the body is not a valid form") from None
        form: dict[str, str] = {}
        for name, value in pairs:
            if name in form:
                raise OAuthError("invalid_request", f"parameter {name!r} is repeated")
            form[name] = value
        return form

    def verify_dpop(
        self,
        request: Request,
        access_token: str | None = None,
        now: float | None = None,
        server: str = "Authorization server",
    ) -> str:
        """Check the request's DPoP proof (RFC 9449 §4.3) and return the thumbprint of its key."""
        now = time.time() if now is None else now
        proofs = request.headers.getlist("dpop")
        if len(proofs) != 1:
            raise OAuthError("invalid_dpop_proof", "exactly one DPoP header is required")
        proof = proofs[0]
        header = unverified_header(proof, "the DPoP proof", "invalid_dpop_proof")
        if header.get("typ") != "dpop+jwt":
            raise OAuthError("invalid_dpop_proof", 'the DPoP proof typ must be "dpop+jwt"')
        if header.get("alg") != "ES256":
            raise OAuthError("invalid_dpop_proof", "the DPoP proof must be signed with ES256")
        jwk = public_jwk(header.get("jwk"), "the DPoP proof jwk", "invalid_dpop_proof")
        key = es256_key(jwk, "the DPoP proof jwk", "invalid_dpop_proof")
        claims = decode_jwt(
            proof,
            key,
            "the DPoP proof",
            "invalid_dpop_proof",
            options={"require": ["jti", "htm", "htu", "iat"], "verify_iat": False, "verify_aud": False},
        )
        if claims["htm"] != request.method:
            raise OAuthError("invalid_dpop_proof", f"DPoP htm must be {request.method}")
        htu = claims["htu"]
        expected = normalize_url(str(request.url))
        if not isinstance(htu, str) or len(htu) > MAX_URL_CHARS or normalize_url(htu) != expected:
            raise OAuthError("invalid_dpop_proof", "DPoP htu does not match the request URL")
        iat = claims["iat"]
        if not isinstance(iat, int | float) or isinstance(iat, bool) or not abs(now - iat) <= DPOP_IAT_SKEW:
            raise OAuthError("invalid_dpop_proof", f"DPoP iat must be within {DPOP_IAT_SKEW} s of now")
        jti = claims["jti"]
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_ID_CHARS:
            raise OAuthError("invalid_dpop_proof", "DPoP jti must be a short string")
        if access_token is not None and claims.get("ath") != access_token_hash(access_token):
            raise OAuthError("invalid_dpop_proof", "DPoP ath does not match the access token")
        if not self.nonce_ok(claims.get("nonce"), now):
            # Checked last: a proof that only lacks the nonce is the normal first request of a client.
            raise OAuthError("use_dpop_nonce", f"{server} requires nonce in DPoP proof")
        if not self.dpop_jtis.first_use(jti, now + 2 * DPOP_IAT_SKEW, now):
            raise OAuthError("invalid_dpop_proof", "DPoP proof replayed (jti already used)")
        return jwk_thumbprint(jwk)

    # --- clients ----------------------------------------------------------------------------------------------
    def check_client_url(self, url: Any, what: str, error: str) -> str:
        if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
            raise OAuthError(error, f"{what} is missing or too long")
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:
            raise OAuthError(error, f"{what} is not a URL") from None
        if not host or parts.fragment or parts.username or parts.password:
            raise OAuthError(error, f"{what} must be an absolute URL without credentials or fragment")
        if parts.scheme == "https" or (parts.scheme == "http" and (is_loopback(host) or self.allow_http_clients)):
            return url
        raise OAuthError(error, f"{what} must be an https URL")

    async def fetch_json(self, url: str, what: str) -> dict[str, Any]:
        """A JSON object served at `url` (no redirects, bounded), or invalid_client_metadata."""
        self._count("client_document_fetches")
        try:
            async with (
                httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as http,
                http.stream("GET", url, headers={"Accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    raise OAuthError("invalid_client_metadata", f"{what} answered HTTP {response.status_code}")
                media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if media_type != "application/json":
                    raise OAuthError("invalid_client_metadata", f"{what} is not served as application/json")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise OAuthError("invalid_client_metadata", f"{what} exceeds {MAX_DOCUMENT_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise OAuthError("invalid_client_metadata", f"{what} could not be fetched ({type(exc).__name__})") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise OAuthError("invalid_client_metadata", f"{what} is not JSON") from None
        if not isinstance(document, dict):
            raise OAuthError("invalid_client_metadata", f"{what} is not a JSON object")
        return document

    async def load_client(self, client_id: Any) -> Client:
        """Fetch and validate the client metadata document its client_id names (and its JWKS)."""
        client_id = self.check_client_url(client_id, "client_id", "invalid_client")
        doc = await self.fetch_json(client_id, "the client metadata document")

        def bad(description: str) -> OAuthError:
            return OAuthError("invalid_client_metadata", description)

        if doc.get("client_id") != client_id:
            raise bad("client_id in the metadata document must equal its URL")
        redirect_uris = doc.get("redirect_uris")
        if (
            not isinstance(redirect_uris, list)
            or not redirect_uris
            or not all(isinstance(u, str) for u in redirect_uris)
        ):
            raise bad("redirect_uris must be a non-empty list of URLs")
        if doc.get("dpop_bound_access_tokens") is not True:
            raise bad("dpop_bound_access_tokens must be true")
        scope = doc.get("scope")
        if not isinstance(scope, str) or "atproto" not in scope.split():
            raise bad('scope must include "atproto"')
        grant_types = doc.get("grant_types")
        if not isinstance(grant_types, list) or "authorization_code" not in grant_types:
            raise bad('grant_types must include "authorization_code"')
        response_types = doc.get("response_types", ["code"])
        if not isinstance(response_types, list) or "code" not in response_types:
            raise bad('response_types must include "code"')
        method = doc.get("token_endpoint_auth_method")
        keys: dict[str, dict[str, Any]] = {}
        if method == "private_key_jwt":
            alg = doc.get("token_endpoint_auth_signing_alg", "ES256")
            if alg != "ES256":
                raise bad("token_endpoint_auth_signing_alg must be ES256")
            keys = await self.client_keys(doc)
        elif method != "none":
            raise bad('token_endpoint_auth_method must be "private_key_jwt" (or "none" for a public client)')
        return Client(
            client_id=client_id,
            metadata=doc,
            auth_method=method,
            keys=keys,
            redirect_uris=tuple(redirect_uris),
            scopes=frozenset(scope.split()),
            grant_types=frozenset(g for g in grant_types if isinstance(g, str)),
        )

    async def client_keys(self, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """kid -> public JWK from `jwks` or the document `jwks_uri` names (exactly one of them)."""
        if ("jwks" in doc) == ("jwks_uri" in doc):
            raise OAuthError("invalid_client_metadata", "exactly one of jwks and jwks_uri is required")
        if "jwks" in doc:
            jwks = doc["jwks"]
        else:
            uri = self.check_client_url(doc["jwks_uri"], "jwks_uri", "invalid_client_metadata")
            jwks = await self.fetch_json(uri, "the client JWKS")
        listed = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(listed, list) or len(listed) > 50:
            raise OAuthError("invalid_client_metadata", "the client JWKS must hold a list of (at most 50) keys")
        keys: dict[str, dict[str, Any]] = {}
        for jwk in listed:
            if isinstance(jwk, dict) and PRIVATE_JWK_MEMBERS & jwk.keys():
                raise OAuthError("invalid_client_metadata", "the client JWKS contains private key material")
            if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
                continue  # other kinds of keys may be listed; only ES256 ones can sign our assertions
            if jwk.get("use", "sig") != "sig" or jwk.get("alg", "ES256") != "ES256":
                continue
            kid = jwk.get("kid")
            if isinstance(kid, str) and kid and len(kid) <= MAX_ID_CHARS:
                keys[kid] = jwk
        if not keys:
            raise OAuthError("invalid_client_metadata", "the client JWKS has no ES256 signing key with a kid")
        return keys

    async def authenticate_client(
        self, form: dict[str, str], issuer: str, dpop_jkt: str, now: float | None = None
    ) -> tuple[Client, str | None]:
        """The client and the kid of the key its assertion was signed with (None for a public client)."""
        now = time.time() if now is None else now
        client = await self.load_client(form.get("client_id"))
        assertion_type, assertion = form.get("client_assertion_type"), form.get("client_assertion")
        if client.auth_method == "none":
            if assertion_type or assertion:
                raise OAuthError("invalid_client", "a public client must not send a client assertion")
            return client, None
        if assertion_type != JWT_BEARER:
            raise OAuthError("invalid_client", f"client_assertion_type must be {JWT_BEARER}")
        header = unverified_header(assertion or "", "client_assertion", "invalid_client")
        if header.get("alg") != "ES256":
            raise OAuthError("invalid_client", "client_assertion must be signed with ES256")
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in client.keys:
            raise OAuthError("invalid_client", "client_assertion kid names no key of the client's JWKS")
        jwk = client.keys[kid]
        key = es256_key(jwk, f"client key {kid}", "invalid_client_metadata")
        if jwk_thumbprint(jwk) == dpop_jkt:
            raise OAuthError("invalid_client", "the DPoP proof and the client assertion must use different keys")
        claims = decode_jwt(
            assertion or "",
            key,
            "client_assertion",
            "invalid_client",
            audience=issuer,
            issuer=client.client_id,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"], "verify_iat": False},
        )
        if claims["sub"] != client.client_id:
            raise OAuthError("invalid_client", "client_assertion sub must be the client_id")
        iat, exp, jti = claims["iat"], claims["exp"], claims["jti"]
        if not isinstance(iat, int | float) or not now - ASSERTION_MAX_AGE <= iat <= now + DPOP_IAT_SKEW:
            raise OAuthError("invalid_client", f"client_assertion iat must be within the last {ASSERTION_MAX_AGE} s")
        if not isinstance(exp, int | float) or exp - iat > ASSERTION_MAX_LIFETIME:
            raise OAuthError("invalid_client", f"client_assertion may live at most {ASSERTION_MAX_LIFETIME} s")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_ID_CHARS:
            raise OAuthError("invalid_client", "client_assertion jti must be a short string")
        if not self.assertion_jtis.first_use(f"{client.client_id} {jti}", float(exp), now):
            raise OAuthError("invalid_client", "client_assertion replayed (jti already used)")
        return client, kid

    # --- endpoints --------------------------------------------------------------------------------------------
    async def metadata(self, request: Request) -> Response:
        self._count("metadata")
        issuer = self.issuer(request)
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": issuer + AUTHORIZE_PATH,
                "token_endpoint": issuer + TOKEN_PATH,
                "pushed_authorization_request_endpoint": issuer + PAR_PATH,
                "revocation_endpoint": issuer + REVOKE_PATH,
                "require_pushed_authorization_requests": True,
                "request_parameter_supported": False,
                "request_uri_parameter_supported": True,
                "require_request_uri_registration": True,
                "scopes_supported": list(SCOPES),
                "subject_types_supported": ["public"],
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "ui_locales_supported": ["en-US"],
                "display_values_supported": ["page", "popup", "touch"],
                "prompt_values_supported": ["none", "login", "consent", "select_account"],
                "authorization_response_iss_parameter_supported": True,
                "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
                "revocation_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
                "revocation_endpoint_auth_signing_alg_values_supported": ["ES256"],
                "dpop_signing_alg_values_supported": ["ES256"],
                "client_id_metadata_document_supported": True,
                "protected_resources": [issuer],
            }
        )

    async def par(self, request: Request) -> Response:
        self._count("par")
        try:
            form = await self.read_form(request)
            jkt = self.verify_dpop(request)
            client, kid = await self.authenticate_client(form, self.issuer(request), jkt)
            pushed = self.pushed_request(form, client, jkt, kid)
        except OAuthError as error:
            return self._refuse(error)
        request_uri = f"{REQUEST_URI_PREFIX}req-{secrets.token_hex(16)}"
        trim(self.pushed)
        self.pushed[request_uri] = pushed
        return self._json({"request_uri": request_uri, "expires_in": self.request_uri_ttl}, 201)

    def pushed_request(self, form: dict[str, str], client: Client, jkt: str, kid: str | None) -> Pushed:
        for name in ("request", "request_uri"):
            if name in form:
                raise OAuthError("invalid_request", f"{name} is not supported in a pushed authorization request")
        if form.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", 'response_type must be "code"')
        if form.get("response_mode", "query") != "query":
            raise OAuthError("invalid_request", 'response_mode must be "query"')
        redirect_uri = form.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            raise OAuthError("invalid_request", "redirect_uri is not one of the client's redirect_uris")
        if "#" in redirect_uri:
            raise OAuthError("invalid_request", "redirect_uri must not have a fragment")
        requested = form.get("scope", "").split()
        if "atproto" not in requested:
            raise OAuthError("invalid_scope", 'scope must include "atproto"')
        for scope in requested:
            if scope not in SCOPES:
                raise OAuthError("invalid_scope", f"scope {scope!r} is not supported")
            if scope not in client.scopes:
                raise OAuthError("invalid_scope", f"scope {scope!r} is not declared in the client metadata")
        state = form.get("state", "")
        if not state or len(state) > MAX_STATE_CHARS:
            raise OAuthError("invalid_request", "state is required (at most 1024 characters)")
        if form.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        challenge = form.get("code_challenge", "")
        if not PKCE_CHALLENGE.fullmatch(challenge):
            raise OAuthError("invalid_request", "code_challenge must be a base64url SHA-256 digest")
        if form.get("dpop_jkt", jkt) != jkt:
            raise OAuthError("invalid_dpop_proof", "dpop_jkt does not match the DPoP proof's key")
        hint = form.get("login_hint") or None
        if hint is not None and len(hint) > 512:
            raise OAuthError("invalid_request", "login_hint is too long")
        return Pushed(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scope=" ".join(dict.fromkeys(requested)),
            state=state,
            code_challenge=challenge,
            login_hint=hint,
            dpop_jkt=jkt,
            kid=kid,
            expires_at=time.time() + self.request_uri_ttl,
        )

    async def authorize(self, request: Request) -> Response:
        """The consent screen, granted at once for the hinted account (no login page). Sim options in the query:
        `sim_deny=1` refuses, `sim_login=<handle or DID>` logs in as another account than the hint."""
        self._count("authorize")
        params = request.query_params
        request_uri = params.get("request_uri", "")
        pushed = self.pushed.pop(request_uri, None)  # a request_uri works once
        if pushed is None or pushed.expires_at <= time.time():
            return self._refuse(OAuthError("invalid_request", "unknown, used or expired request_uri"))
        if params.get("client_id") != pushed.client_id:
            return self._refuse(OAuthError("invalid_request", "client_id does not match the pushed request"))
        answer = {"state": pushed.state, "iss": self.issuer(request)}
        login = params.get("sim_login") or pushed.login_hint
        if login:
            did = self.resolve_login(login)
        else:
            did = self.default_login() if self.default_login is not None else self.resolve_login("")
        if params.get("sim_deny") or did is None:
            self.refusals["access_denied"] = self.refusals.get("access_denied", 0) + 1
            reason = "The user denied access" if params.get("sim_deny") else "No such account"
            answer = {"error": "access_denied", "error_description": reason, **answer}
        else:
            code = self.sim.new_code(did, pushed.scope)
            trim(self.codes)
            self.codes[code] = PendingCode(
                client_id=pushed.client_id,
                redirect_uri=pushed.redirect_uri,
                code_challenge=pushed.code_challenge,
                dpop_jkt=pushed.dpop_jkt,
                kid=pushed.kid,
                expires_at=time.time() + self.code_ttl,
            )
            answer = {"code": code, **answer}
        separator = "&" if "?" in pushed.redirect_uri else "?"
        return RedirectResponse(f"{pushed.redirect_uri}{separator}{urlencode(answer)}", 302)

    async def token(self, request: Request) -> Response:
        try:
            form = await self.read_form(request)
            grant_type = form.get("grant_type")
            self._count({"authorization_code": "token", "refresh_token": "refresh"}.get(str(grant_type), "token"))
            if grant_type not in ("authorization_code", "refresh_token"):
                raise OAuthError("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
            jkt = self.verify_dpop(request)
            client, kid = await self.authenticate_client(form, self.issuer(request), jkt)
            if grant_type == "authorization_code":
                return self._json(self.redeem(form, client, kid, jkt))
            return self._json(self.refresh(form, client, kid, jkt))
        except OAuthError as error:
            return self._refuse(error)

    def redeem(self, form: dict[str, str], client: Client, kid: str | None, jkt: str) -> dict[str, Any]:
        code = form.get("code", "")
        pending = self.codes.pop(code, None)
        entry = self.sim.redeem_code(code)  # both spent, whatever follows: a code works once
        if pending is None or entry is None or pending.expires_at <= time.time():
            raise OAuthError("invalid_grant", "unknown, used or expired code")
        if pending.client_id != client.client_id:
            raise OAuthError("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri") != pending.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
        verifier = form.get("code_verifier", "")
        if not PKCE_VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
            pkce_challenge(verifier), pending.code_challenge
        ):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        if kid != pending.kid:
            raise OAuthError("invalid_grant", "the client must authenticate with the same key as for the PAR")
        if jkt != pending.dpop_jkt:
            raise OAuthError("invalid_dpop_proof", "the DPoP key differs from the authorization request's")
        did, scope = entry
        session = Session(did=did, client_id=client.client_id, jkt=jkt, kid=kid, scope=scope)
        trim(self.sessions)
        self.sessions[session.id] = session
        return self.issue(session)

    def refresh(self, form: dict[str, str], client: Client, kid: str | None, jkt: str) -> dict[str, Any]:
        if "refresh_token" not in client.grant_types:
            raise OAuthError("unauthorized_client", 'the client metadata does not list the "refresh_token" grant')
        token = form.get("refresh_token", "")
        if token in self.spent_refresh:
            # A rotated refresh token presented again: someone holds a copy; end the whole session, as bsky does.
            session_id = self.spent_refresh.pop(token)
            if session_id in self.sessions:
                self.end_session(self.sessions[session_id])
            raise OAuthError("invalid_grant", "refresh token replayed; the session is revoked")
        session = self.refresh_sessions.get(token)
        if session is None or token not in self.sim.refresh_tokens:
            raise OAuthError("invalid_grant", "unknown or revoked refresh token")
        if session.client_id != client.client_id:
            raise OAuthError("invalid_grant", "the refresh token was issued to another client")
        if kid != session.kid:
            raise OAuthError("invalid_grant", "the client must authenticate with the key it used for the session")
        if jkt != session.jkt:
            # Not spent: the holder of the right key may still use it.
            raise OAuthError("invalid_dpop_proof", "the refresh token is bound to another DPoP key")
        self.sim.rotate_refresh(token)
        del self.refresh_sessions[token]
        trim(self.spent_refresh, 100_000)
        self.spent_refresh[token] = session.id
        return self.issue(session)

    def issue(self, session: Session) -> dict[str, Any]:
        issued = self.sim.issue_tokens(session.did, session.scope)
        self._forget_expired(session)
        session.access_tokens.add(issued.access_token)
        session.refresh_token = issued.refresh_token
        self.access_sessions[issued.access_token] = session
        self.refresh_sessions[issued.refresh_token] = session
        return {
            "access_token": issued.access_token,
            "token_type": "DPoP",
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token,
            "scope": session.scope,
            "sub": self.token_sub_override or session.did,
        }

    def _forget_expired(self, session: Session) -> None:
        """Drop the session's access tokens that the simulator no longer honours (bounded memory)."""
        for token in [t for t in session.access_tokens if self.sim.valid_token(t) is None]:
            session.access_tokens.discard(token)
            self.access_sessions.pop(token, None)

    def end_session(self, session: Session) -> None:
        for token in session.access_tokens:
            self.access_sessions.pop(token, None)
            self.sim.access_tokens.pop(token, None)
        if session.refresh_token is not None:
            self.refresh_sessions.pop(session.refresh_token, None)
            self.sim.refresh_tokens.pop(session.refresh_token, None)
        session.access_tokens.clear()
        self.sessions.pop(session.id, None)

    def revoke(self, did: str) -> None:
        """Forget every token of `did` (the user revoked the app)."""
        self.sim.revoke(did)
        for session in [s for s in self.sessions.values() if s.did == did]:
            self.end_session(session)

    async def revoke_endpoint(self, request: Request) -> Response:
        """RFC 7009: the session a token belongs to ends; 200 whether or not the token was known."""
        self._count("revoke")
        try:
            form = await self.read_form(request)
            jkt = self.verify_dpop(request)
            client, _ = await self.authenticate_client(form, self.issuer(request), jkt)
        except OAuthError as error:
            return self._refuse(error)
        token = form.get("token", "")
        session = self.access_sessions.get(token) or self.refresh_sessions.get(token)
        if session is not None and session.client_id == client.client_id:
            self.end_session(session)
        return self._json({})

    # --- resource servers (the simulator's PDS) ---------------------------------------------------------------
    def check_resource(self, request: Request) -> str:
        """The DID a DPoP-bound access token acts for: `Authorization: DPoP <token>` plus a proof for this
        request, signed by the token's key, with `ath` and the current nonce. OAuthError (status 401) otherwise."""
        self._count("resource_checks")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "dpop" or not token or len(token) > MAX_JWT_CHARS or not token.isascii():
            raise OAuthError("invalid_token", "a DPoP-bound access token is required (Authorization: DPoP ...)", 401)
        try:
            jkt = self.verify_dpop(request, access_token=token, server="Resource server")
        except OAuthError as error:
            raise OAuthError(error.error, error.description, 401) from None
        session = self.access_sessions.get(token)
        if session is None or self.sim.valid_token(token) is None:
            raise OAuthError("invalid_token", "the access token is unknown, revoked or expired", 401)
        if jkt != session.jkt:
            raise OAuthError("invalid_dpop_proof", "the access token is bound to another DPoP key", 401)
        return session.did

    def resource_owner(self, request: Request) -> str | None:
        try:
            return self.check_resource(request)
        except OAuthError as error:
            self.refusals[error.error] = self.refusals.get(error.error, 0) + 1
            return None

    def resource_refusal(self, error: OAuthError) -> Response:
        """A PDS's 401 for a refused token: XRPC body, WWW-Authenticate (RFC 9449 §7.1) and a fresh nonce."""
        self.refusals[error.error] = self.refusals.get(error.error, 0) + 1
        challenge = f'DPoP algs="ES256", error="{error.error}", error_description="{header_text(error.description)}"'
        return JSONResponse(
            {"error": error.error, "message": error.description},
            status_code=error.status,
            headers={**self.nonce_headers(), "WWW-Authenticate": challenge},
        )

    def authenticate(self, request: Request) -> tuple[str | None, Response | None]:
        """For `PlatformSimulator.authenticate`: (the DID, None) or (None, the 401 to send)."""
        try:
            return self.check_resource(request), None
        except OAuthError as error:
            return None, self.resource_refusal(error)

    # --- /_sim ------------------------------------------------------------------------------------------------
    def configure(self, body: dict[str, Any]) -> None:
        """/_sim/config keys: rotate_dpop_nonce (true: a new nonce now, the old one refused at once),
        dpop_nonce_lifetime / dpop_nonce_grace (seconds), token_sub_override (a DID the token responses name as
        `sub` instead of the account's; null clears it), revoke (a DID whose tokens end), allow_http_clients,
        request_uri_ttl / code_ttl (seconds)."""
        if "dpop_nonce_lifetime" in body:
            self.nonce_lifetime = max(0.001, float(body["dpop_nonce_lifetime"]))
        if "dpop_nonce_grace" in body:
            self.nonce_grace = max(0.0, float(body["dpop_nonce_grace"]))
        if body.get("rotate_dpop_nonce"):
            self.rotate_nonce(keep_previous=False)
        if "token_sub_override" in body:
            override = body["token_sub_override"]
            self.token_sub_override = str(override) if override else None
        if body.get("revoke"):
            self.revoke(str(body["revoke"]))
        if "allow_http_clients" in body:
            self.allow_http_clients = bool(body["allow_http_clients"])
        for key, attr in (("request_uri_ttl", "request_uri_ttl"), ("code_ttl", "code_ttl")):
            if key in body:
                setattr(self, attr, max(1, int(body[key])))

    def stats(self) -> dict[str, Any]:
        return {
            "oauth": {
                "requests": dict(self.counts),
                "refusals": dict(self.refusals),
                "dpop_nonce_rotations": self.nonce_rotations,
                "pending_requests": len(self.pushed),
                "sessions": len(self.sessions),
                "token_sub_override": self.token_sub_override,
            }
        }
