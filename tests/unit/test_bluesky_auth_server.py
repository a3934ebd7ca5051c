"""The simulator's atproto authorization server over real HTTP: a tiny simulator mounts it on one local server, the
client's metadata document and JWKS are served by a second one (the authorization server fetches them), and the
tests play the client with pyjwt-made client assertions and DPoP proofs: PAR with the nonce dance, the consent
redirect, code and refresh grants, and each refusal a real server gives."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from base64 import urlsafe_b64encode
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trove.db.cluster import free_port
from trove.simulators.base import PlatformSimulator
from trove.simulators.bluesky_auth import AtprotoAuthServer, jwk_thumbprint
from trove.simulators.serve import BackgroundServer

ALICE = "did:plc:alice2c3d4e5f6g7h8i9j0k1"
BOB = "did:plc:bob3c4d5e6f7g8h9i0j1k2l3"
HANDLES = {"alice.test": ALICE, "bob.test": BOB}
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = "atproto transition:generic"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class AuthSim(PlatformSimulator[str]):
    """The smallest simulator that mounts the authorization server, plus one protected route."""

    auth: AtprotoAuthServer

    def platform_routes(self) -> list[Route]:
        self.auth = AtprotoAuthServer(self, self.resolve, default_login=lambda: ALICE)
        return [*self.auth.routes(), Route("/xrpc/whoami", self.whoami, methods=["GET"])]

    def resolve(self, hint: str) -> str | None:
        return HANDLES.get(hint) or (hint if hint in HANDLES.values() else None)

    def configure(self, body: dict[str, Any]) -> None:
        super().configure(body)
        self.auth.configure(body)

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.auth.stats()}

    async def whoami(self, request: Request) -> Response:
        did, refusal = self.auth.authenticate(request)
        if refusal is not None:
            return refusal
        return JSONResponse({"did": did}, headers=self.auth.nonce_headers())


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: ec.EllipticCurvePrivateKey, kid: str | None = None) -> dict[str, Any]:
    jwk = dict(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True))
    return {**jwk, "kid": kid, "use": "sig", "alg": "ES256"} if kid else jwk


def b64url(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Agent:
    """The client: its keys, the documents it publishes, and the requests it makes."""

    sim_url: str
    client_url: str
    documents: dict[str, Any]
    http: httpx.Client
    client_key: ec.EllipticCurvePrivateKey = field(default_factory=new_key)
    kid: str = "key-1"
    dpop_key: ec.EllipticCurvePrivateKey = field(default_factory=new_key)
    nonce: str | None = None

    def __post_init__(self) -> None:
        self.documents["client-metadata.json"] = self.metadata()
        self.documents["jwks.json"] = {"keys": [public_jwk(self.client_key, self.kid)]}

    @property
    def client_id(self) -> str:
        return f"{self.client_url}/oauth/client-metadata.json"

    @property
    def redirect_uri(self) -> str:
        return f"{self.client_url}/oauth/callback"

    def metadata(self, **changes: Any) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_name": "Trove test",
            "application_type": "web",
            "redirect_uris": [self.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": SCOPE,
            "dpop_bound_access_tokens": True,
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks_uri": f"{self.client_url}/oauth/jwks.json",
            **changes,
        }

    def assertion(self, key: ec.EllipticCurvePrivateKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.sim_url,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 60,
            **claims,
        }
        return jwt.encode(body, key or self.client_key, algorithm="ES256", headers={"kid": self.kid})

    def proof(
        self,
        method: str,
        url: str,
        key: ec.EllipticCurvePrivateKey | None = None,
        jwk: dict[str, Any] | None = None,
        typ: str = "dpop+jwt",
        **claims: Any,
    ) -> str:
        key = key or self.dpop_key
        body = {"jti": secrets.token_urlsafe(12), "htm": method, "htu": url, "iat": int(time.time()), **claims}
        if self.nonce is not None and "nonce" not in claims:
            body["nonce"] = self.nonce
        headers = {"typ": typ, "jwk": jwk or public_jwk(key)}
        return jwt.encode(body, key, algorithm="ES256", headers=headers)

    def post(
        self, path: str, form: dict[str, str], assertion: str | None = None, proof: str | None = None, **proof_args: Any
    ) -> httpx.Response:
        """One request, authenticated as the client, with a DPoP proof (made here unless given); the nonce
        the answer carries is kept for the next proof."""
        url = self.sim_url + path
        data = {
            "client_id": self.client_id,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion or self.assertion(),
            **form,
        }
        response = self.http.post(url, data=data, headers={"DPoP": proof or self.proof("POST", url, **proof_args)})
        self.nonce = response.headers.get("DPoP-Nonce", self.nonce)
        return response

    def post_retrying(self, path: str, form: dict[str, str], **proof_args: Any) -> httpx.Response:
        """As clients do: a use_dpop_nonce answer is retried once with a fresh proof and the same body (the
        same client assertion too: the refused request must not have spent it)."""
        assertion = self.assertion()
        response = self.post(path, form, assertion=assertion, **proof_args)
        if response.status_code == 400 and response.json().get("error") == "use_dpop_nonce":
            response = self.post(path, form, assertion=assertion, **proof_args)
        return response

    def get_resource(self, access_token: str, key: ec.EllipticCurvePrivateKey | None = None) -> httpx.Response:
        url = f"{self.sim_url}/xrpc/whoami"
        for _ in range(2):
            proof = self.proof("GET", url, key=key, ath=b64url(hashlib.sha256(access_token.encode()).digest()))
            response = self.http.get(url, headers={"Authorization": f"DPoP {access_token}", "DPoP": proof})
            self.nonce = response.headers.get("DPoP-Nonce", self.nonce)
            if response.status_code != 401 or response.json().get("error") != "use_dpop_nonce":
                break
        return response

    # --- the flow -----------------------------------------------------------------------------------------
    def push(self, login_hint: str | None = "alice.test", **changes: str) -> tuple[httpx.Response, dict[str, str]]:
        verifier = secrets.token_urlsafe(48)
        form = {
            "response_type": "code",
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": secrets.token_urlsafe(16),
            "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
            "code_challenge_method": "S256",
            **({"login_hint": login_hint} if login_hint else {}),
            **changes,
        }
        return self.post_retrying("/oauth/par", form), {**form, "code_verifier": verifier}

    def consent(self, request_uri: str, **sim: str) -> httpx.Response:
        params = {"client_id": self.client_id, "request_uri": request_uri, **sim}
        return self.http.get(f"{self.sim_url}/oauth/authorize", params=params, follow_redirects=False)

    def authorize(self, login_hint: str | None = "alice.test") -> tuple[dict[str, str], dict[str, str]]:
        """PAR and consent: (the callback's query, the request made)."""
        par, request = self.push(login_hint)
        assert par.status_code == 201, par.text
        redirect = self.consent(par.json()["request_uri"])
        assert redirect.status_code == 302
        location = redirect.headers["location"]
        assert location.startswith(self.redirect_uri + "?")
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}, request

    def redeem(self, callback: dict[str, str], request: dict[str, str], **proof_args: Any) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": self.redirect_uri,
            "code_verifier": request["code_verifier"],
        }
        return self.post_retrying("/oauth/token", form, **proof_args)

    def connect(self, login_hint: str | None = "alice.test") -> dict[str, Any]:
        callback, request = self.authorize(login_hint)
        response = self.redeem(callback, request)
        assert response.status_code == 200, response.text
        return response.json()

    def refresh(self, refresh_token: str, **proof_args: Any) -> httpx.Response:
        return self.post_retrying(
            "/oauth/token", {"grant_type": "refresh_token", "refresh_token": refresh_token}, **proof_args
        )


@pytest.fixture
def world() -> Iterator[tuple[AuthSim, Agent]]:
    sim = AuthSim(client_id="unused", client_secret="unused", token_ttl=300)
    documents: dict[str, Any] = {}

    async def document(request: Request) -> Response:
        name = request.path_params["name"]
        return JSONResponse(documents[name]) if name in documents else JSONResponse({"error": "nope"}, 404)

    client_app = Starlette(routes=[Route("/oauth/{name}", document, methods=["GET"])])
    with (
        BackgroundServer(sim.app, free_port()) as server,
        BackgroundServer(client_app, free_port()) as client_server,
        httpx.Client(timeout=10) as http,
    ):
        yield sim, Agent(server.url, client_server.url, documents, http)


def error_of(response: httpx.Response) -> str:
    return str(response.json().get("error"))


# --- metadata ---------------------------------------------------------------------------------------------------
def test_metadata_names_the_endpoints_and_the_atproto_requirements(world: tuple[AuthSim, Agent]) -> None:
    _, agent = world
    meta = agent.http.get(f"{agent.sim_url}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == agent.sim_url
    assert meta["pushed_authorization_request_endpoint"] == f"{agent.sim_url}/oauth/par"
    assert meta["authorization_endpoint"] == f"{agent.sim_url}/oauth/authorize"
    assert meta["token_endpoint"] == f"{agent.sim_url}/oauth/token"
    assert meta["require_pushed_authorization_requests"] is True
    assert meta["dpop_signing_alg_values_supported"] == ["ES256"]
    assert meta["token_endpoint_auth_methods_supported"] == ["none", "private_key_jwt"]
    assert meta["token_endpoint_auth_signing_alg_values_supported"] == ["ES256"]
    assert {"atproto", "transition:generic"} <= set(meta["scopes_supported"])
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["client_id_metadata_document_supported"] is True


# --- the happy path ---------------------------------------------------------------------------------------------
def test_the_whole_flow_with_the_nonce_dance(world: tuple[AuthSim, Agent]) -> None:
    sim, agent = world
    par, request = agent.push()
    assert par.status_code == 201, par.text
    body = par.json()
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:req-")
    assert body["expires_in"] == 300
    assert sim.auth.refusals == {"use_dpop_nonce": 1}, "the first PAR had no nonce"

    redirect = agent.consent(body["request_uri"])
    assert redirect.status_code == 302
    callback = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["location"]).query).items()}
    assert callback["state"] == request["state"]
    assert callback["iss"] == agent.sim_url
    assert callback["code"]
    again = agent.consent(body["request_uri"])
    assert again.status_code == 400 and error_of(again) == "invalid_request", "a request_uri works once"

    tokens = agent.redeem(callback, request)
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["DPoP-Nonce"] == agent.nonce
    issued = tokens.json()
    assert issued["token_type"] == "DPoP"
    assert issued["sub"] == ALICE
    assert issued["scope"] == SCOPE
    assert issued["expires_in"] == 300
    assert issued["access_token"] and issued["refresh_token"]

    whoami = agent.get_resource(issued["access_token"])
    assert whoami.status_code == 200 and whoami.json() == {"did": ALICE}
    bearer = agent.http.get(
        f"{agent.sim_url}/xrpc/whoami", headers={"Authorization": f"Bearer {issued['access_token']}"}
    )
    assert bearer.status_code == 401 and error_of(bearer) == "invalid_token"
    assert bearer.headers["WWW-Authenticate"].startswith("DPoP ")
    assert agent.get_resource(issued["access_token"], key=new_key()).status_code == 401, "bound to the DPoP key"

    refreshed = agent.refresh(issued["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    fresh = refreshed.json()
    assert fresh["sub"] == ALICE and fresh["token_type"] == "DPoP"
    assert fresh["refresh_token"] != issued["refresh_token"] and fresh["access_token"] != issued["access_token"]
    assert agent.get_resource(fresh["access_token"]).json() == {"did": ALICE}

    replayed = agent.refresh(issued["refresh_token"])
    assert replayed.status_code == 400 and error_of(replayed) == "invalid_grant", "refresh tokens rotate"
    # A replayed refresh token means a copy exists: the session it belonged to ends (as on bsky.social).
    assert error_of(agent.refresh(fresh["refresh_token"])) == "invalid_grant"
    assert agent.get_resource(fresh["access_token"]).status_code == 401

    stats = agent.http.get(f"{agent.sim_url}/_sim/stats").json()["oauth"]
    assert stats["requests"]["par"] == 2 and stats["requests"]["token"] == 1 and stats["requests"]["refresh"] == 3
    assert stats["refusals"]["use_dpop_nonce"] >= 1 and stats["refusals"]["invalid_grant"] == 2


def test_login_hint_picks_the_account_and_no_hint_is_the_default_one(world: tuple[AuthSim, Agent]) -> None:
    _, agent = world
    assert agent.connect("bob.test")["sub"] == BOB
    assert agent.connect(BOB)["sub"] == BOB
    assert agent.connect(None)["sub"] == ALICE


def test_a_client_that_publishes_its_keys_inline_works_too(world: tuple[AuthSim, Agent]) -> None:
    _, agent = world
    document = agent.metadata(jwks=agent.documents.pop("jwks.json"))
    del document["jwks_uri"]
    agent.documents["client-metadata.json"] = document
    assert agent.connect()["sub"] == ALICE


# --- nonces -----------------------------------------------------------------------------------------------------
def test_a_forced_nonce_rotation_refuses_the_old_nonce_once(world: tuple[AuthSim, Agent]) -> None:
    sim, agent = world
    issued = agent.connect()
    rotations = sim.auth.nonce_rotations
    old = agent.nonce
    config = agent.http.post(f"{agent.sim_url}/_sim/config", json={"rotate_dpop_nonce": True})
    assert config.json()["oauth"]["dpop_nonce_rotations"] == rotations + 1

    stale = agent.post("/oauth/token", {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert stale.status_code == 400 and error_of(stale) == "use_dpop_nonce"
    assert stale.json()["error_description"]
    assert stale.headers["DPoP-Nonce"] != old
    retried = agent.refresh(issued["refresh_token"])
    assert retried.status_code == 200, "the refused request did not spend the refresh token"

    # The PDS side shares the nonce: a stale one is a 401 with the DPoP challenge, and the retry works.
    agent.http.post(f"{agent.sim_url}/_sim/config", json={"rotate_dpop_nonce": True})
    url, access_token = f"{agent.sim_url}/xrpc/whoami", retried.json()["access_token"]
    ath = b64url(hashlib.sha256(access_token.encode()).digest())
    stale = agent.http.get(
        url, headers={"Authorization": f"DPoP {access_token}", "DPoP": agent.proof("GET", url, ath=ath)}
    )
    assert stale.status_code == 401 and error_of(stale) == "use_dpop_nonce"
    assert 'error="use_dpop_nonce"' in stale.headers["WWW-Authenticate"]
    assert agent.get_resource(access_token).json() == {"did": ALICE}


def test_a_scheduled_rotation_keeps_the_previous_nonce_for_a_grace_period() -> None:
    auth = AtprotoAuthServer(PlatformSimulator[str](client_id="x", client_secret="y"), lambda _: None)
    auth.nonce_lifetime, auth.nonce_grace = 100.0, 10.0
    start = time.time()
    first = auth.current_nonce(start)
    assert auth.current_nonce(start + 99) == first
    second = auth.current_nonce(start + 100)
    assert second != first and auth.nonce_rotations == 1
    assert auth.nonce_ok(first, start + 105) and auth.nonce_ok(second, start + 105)
    assert not auth.nonce_ok(first, start + 111), "the grace period is over"
    assert not auth.nonce_ok("", start + 105) and not auth.nonce_ok(None, start + 105)


# --- refusals ---------------------------------------------------------------------------------------------------
def test_a_wrong_pkce_verifier_is_refused_and_spends_the_code(world: tuple[AuthSim, Agent]) -> None:
    _, agent = world
    callback, request = agent.authorize()
    wrong = agent.redeem(callback, {**request, "code_verifier": secrets.token_urlsafe(48)})
    assert wrong.status_code == 400 and error_of(wrong) == "invalid_grant"
    assert error_of(agent.redeem(callback, request)) == "invalid_grant", "a code works once"


def test_the_code_is_bound_to_the_dpop_key_of_the_par(world: tuple[AuthSim, Agent]) -> None:
    _, agent = world
    callback, request = agent.authorize()
    other = agent.redeem(callback, request, key=new_key())
    assert other.status_code == 400 and error_of(other) == "invalid_dpop_proof"


def test_a_replayed_client_assertion_is_refused(world: tuple[AuthSim, Agent]) -> None:
    _, agent = world
    _, request = agent.push()  # and learn the nonce
    form = {k: v for k, v in request.items() if k != "code_verifier"}
    assertion = agent.assertion()
    assert agent.post("/oauth/par", form, assertion=assertion).status_code == 201
    replay = agent.post("/oauth/par", form, assertion=assertion)
    assert replay.status_code == 400 and error_of(replay) == "invalid_client"
    assert "replayed" in replay.json()["error_description"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"key": "other"}, "does not verify"),
        ({"aud": "https://bsky.social"}, "aud"),
        ({"iss": "https://evil.example/client-metadata.json"}, "iss"),
        ({"sub": "https://evil.example/client-metadata.json"}, "sub"),
        ({"exp": 1_700_000_000}, "expired"),
        ({"iat": 1_700_000_000}, "iat"),
    ],
)
def test_a_client_assertion_that_does_not_hold_is_refused(
    world: tuple[AuthSim, Agent], claims: dict[str, Any], reason: str
) -> None:
    _, agent = world
    _, request = agent.push()
    form = {k: v for k, v in request.items() if k != "code_verifier"}
    key = new_key() if claims.pop("key", None) else None
    refused = agent.post("/oauth/par", form, assertion=agent.assertion(key=key, **claims))
    assert refused.status_code == 400 and error_of(refused) == "invalid_client"
    assert reason in refused.json()["error_description"]


def test_the_dpop_key_must_not_be_the_client_key(world: tuple[AuthSim, Agent]) -> None:
    _, agent = world
    agent.push()
    _, request = agent.push()
    form = {k: v for k, v in request.items() if k != "code_verifier"}
    refused = agent.post("/oauth/par", form, key=agent.client_key)
    assert error_of(refused) == "invalid_client"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("htu", "htu"),
        ("htm", "htm"),
        ("old_iat", "iat"),
        ("future_iat", "iat"),
        ("private_jwk", "private key"),
        ("typ", "typ"),
        ("replayed_jti", "replayed"),
        ("no_proof", "DPoP header"),
        ("foreign_jwk", "does not verify"),
    ],
)
def test_a_dpop_proof_that_does_not_hold_is_refused(world: tuple[AuthSim, Agent], change: str, reason: str) -> None:
    _, agent = world
    _, request = agent.push()
    form = {k: v for k, v in request.items() if k != "code_verifier"}
    url = f"{agent.sim_url}/oauth/par"
    now = int(time.time())
    proofs = {
        "htu": lambda: agent.proof("POST", f"{agent.sim_url}/oauth/token"),
        "htm": lambda: agent.proof("GET", url),
        "old_iat": lambda: agent.proof("POST", url, iat=now - 300),
        "future_iat": lambda: agent.proof("POST", url, iat=now + 300),
        "private_jwk": lambda: agent.proof(
            "POST", url, jwk=dict(jwt.algorithms.ECAlgorithm.to_jwk(agent.dpop_key, as_dict=True))
        ),
        "typ": lambda: agent.proof("POST", url, typ="JWT"),
        "foreign_jwk": lambda: agent.proof("POST", url, jwk=public_jwk(new_key())),
    }
    if change == "replayed_jti":
        proof = agent.proof("POST", url)
        assert agent.post("/oauth/par", form, proof=proof).status_code == 201
    elif change == "no_proof":
        refused = agent.http.post(
            url,
            data={
                **form,
                "client_id": agent.client_id,
                "client_assertion_type": JWT_BEARER,
                "client_assertion": agent.assertion(),
            },
        )
        assert refused.status_code == 400 and error_of(refused) == "invalid_dpop_proof"
        assert reason in refused.json()["error_description"] and refused.headers["DPoP-Nonce"]
        return
    else:
        proof = proofs[change]()
    refused = agent.post("/oauth/par", form, proof=proof)
    assert refused.status_code == 400 and error_of(refused) == "invalid_dpop_proof", refused.text
    assert reason in refused.json()["error_description"]


def test_a_refresh_with_another_dpop_key_is_refused_and_does_not_spend_the_token(
    world: tuple[AuthSim, Agent],
) -> None:
    _, agent = world
    issued = agent.connect()
    other = agent.refresh(issued["refresh_token"], key=new_key())
    assert other.status_code == 400 and error_of(other) == "invalid_dpop_proof"
    assert agent.refresh(issued["refresh_token"]).status_code == 200


def test_revoked_tokens_refresh_to_invalid_grant(world: tuple[AuthSim, Agent]) -> None:
    _, agent = world
    alice, bob = agent.connect(), agent.connect("bob.test")
    agent.http.post(f"{agent.sim_url}/_sim/config", json={"revoke": ALICE})
    refused = agent.refresh(alice["refresh_token"])
    assert refused.status_code == 400 and error_of(refused) == "invalid_grant"
    assert agent.get_resource(alice["access_token"]).status_code == 401
    assert agent.refresh(bob["refresh_token"]).status_code == 200, "only that account's tokens"
    unknown = agent.refresh("not-a-token")
    assert error_of(unknown) == "invalid_grant"


def test_the_revocation_endpoint_ends_the_session(world: tuple[AuthSim, Agent]) -> None:
    _, agent = world
    issued = agent.connect()
    assert agent.post_retrying("/oauth/revoke", {"token": issued["access_token"]}).status_code == 200
    assert error_of(agent.refresh(issued["refresh_token"])) == "invalid_grant"


def test_a_sub_override_names_another_account(world: tuple[AuthSim, Agent]) -> None:
    _, agent = world
    agent.http.post(f"{agent.sim_url}/_sim/config", json={"token_sub_override": BOB})
    issued = agent.connect()
    assert issued["sub"] == BOB
    agent.http.post(f"{agent.sim_url}/_sim/config", json={"token_sub_override": None})
    assert agent.refresh(issued["refresh_token"]).json()["sub"] == ALICE


def test_sim_deny_and_unknown_accounts_redirect_with_access_denied(world: tuple[AuthSim, Agent]) -> None:
    _, agent = world
    for login_hint, sim in (("alice.test", {"sim_deny": "1"}), ("nobody.test", {})):
        par, request = agent.push(login_hint)
        redirect = agent.consent(par.json()["request_uri"], **sim)
        assert redirect.status_code == 302
        query = parse_qs(urlsplit(redirect.headers["location"]).query)
        assert query["error"] == ["access_denied"] and query["state"] == [request["state"]]
        assert query["iss"] == [agent.sim_url] and "code" not in query


@pytest.mark.parametrize(
    ("document", "error", "reason"),
    [
        ({"dpop_bound_access_tokens": False}, "invalid_client_metadata", "dpop_bound_access_tokens"),
        ({"client_id": "https://elsewhere.example/c.json"}, "invalid_client_metadata", "client_id"),
        ({"scope": "transition:generic"}, "invalid_client_metadata", "atproto"),
        ({"grant_types": ["refresh_token"]}, "invalid_client_metadata", "authorization_code"),
        ({"token_endpoint_auth_method": "client_secret_post"}, "invalid_client_metadata", "private_key_jwt"),
        ({"redirect_uris": ["http://127.0.0.1:1/elsewhere"]}, "invalid_request", "redirect_uri"),
        ({"jwks_uri": "http://127.0.0.1:1/jwks.json"}, "invalid_client_metadata", "could not be fetched"),
        ({"jwks_uri": "http://jwks.example/jwks.json"}, "invalid_client_metadata", "https"),
    ],
)
def test_a_client_metadata_document_that_does_not_hold_is_refused(
    world: tuple[AuthSim, Agent], document: dict[str, Any], error: str, reason: str
) -> None:
    _, agent = world
    agent.push()
    agent.documents["client-metadata.json"] = agent.metadata(**document)
    refused, _ = agent.push()
    assert refused.status_code == 400 and error_of(refused) == error, refused.text
    assert reason in refused.json()["error_description"]


def test_private_keys_in_the_client_jwks_are_refused(world: tuple[AuthSim, Agent]) -> None:
    _, agent = world
    private = dict(jwt.algorithms.ECAlgorithm.to_jwk(agent.client_key, as_dict=True)) | {"kid": agent.kid}
    agent.documents["jwks.json"] = {"keys": [private]}
    refused, _ = agent.push()
    assert error_of(refused) == "invalid_client_metadata" and "private" in refused.json()["error_description"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"scope": "transition:generic"}, "invalid_scope"),
        ({"scope": "atproto transition:email"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"state": ""}, "invalid_request"),
    ],
)
def test_a_pushed_request_that_does_not_hold_is_refused(
    world: tuple[AuthSim, Agent], change: dict[str, str], error: str
) -> None:
    _, agent = world
    refused, _ = agent.push(**change)
    assert refused.status_code == 400 and error_of(refused) == error, refused.text


def test_the_dpop_thumbprint_is_rfc_7638() -> None:
    # The example key of RFC 9449 §6.1 and its cnf.jkt; members beyond the required ones do not count.
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        "kid": "ignored",
    }
    assert jwk_thumbprint(jwk) == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


def test_hostile_requests_get_clear_errors_not_crashes(world: tuple[AuthSim, Agent]) -> None:
    _, agent = world
    _, request = agent.push()
    form = {k: v for k, v in request.items() if k != "code_verifier"}
    url = f"{agent.sim_url}/oauth/par"
    proof = agent.proof("POST", url)
    cases = [
        agent.http.post(url, content=b"a=" + b"x" * 70_000, headers={"DPoP": proof, **FORM}),
        agent.http.post(url, content=b"state=1&state=2", headers={"DPoP": proof, **FORM}),
        agent.http.post(url, json=form, headers={"DPoP": proof}),
        agent.http.post(url, content=b"\xff\xfe=1", headers={"DPoP": proof, **FORM}),
        agent.post("/oauth/par", form, proof="not.a.jwt"),
        agent.post("/oauth/par", form, proof=agent.proof("POST", url, exp=float("inf"))),
        agent.post("/oauth/par", form, proof=agent.proof("POST", url, iat=float("nan"))),
        agent.post("/oauth/par", form, assertion="x" * 10_000),
        agent.post("/oauth/par", {**form, "client_id": "javascript:alert(1)"}),
        agent.post("/oauth/par", {**form, "client_id": "http://[::1"}),
        agent.http.get(f"{agent.sim_url}/oauth/authorize", params={"request_uri": "urn:nope", "client_id": "x"}),
        agent.http.post(f"{agent.sim_url}/oauth/token", data={"grant_type": "password"}),
    ]
    for response in cases:
        assert response.status_code == 400, response.text
        assert response.json()["error"] and response.json()["error_description"]
    whoami = agent.http.get(
        f"{agent.sim_url}/xrpc/whoami", headers={"Authorization": "DPoP t\u00f6ken".encode(), "DPoP": proof}
    )
    assert whoami.status_code == 401 and error_of(whoami) == "invalid_token"
