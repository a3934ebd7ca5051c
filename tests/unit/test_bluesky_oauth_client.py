"""Bluesky's OAuth client parts alone: DPoP proofs, PKCE, client assertions, handle and DID syntax, and
identity resolution against real local servers (a UDP nameserver built with dnspython, small HTTP apps on
BackgroundServer), no database."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit

import dns.message
import dns.rcode
import dns.rrset
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from trove.config import ConfigError
from trove.db.cluster import free_port
from trove.media.download import system_resolver
from trove.platforms.base import ConnectRefused, InvalidGrantError, TransientError
from trove.platforms.bluesky import identity
from trove.platforms.bluesky.config import BlueskyConfig, parse_nameserver
from trove.platforms.bluesky.dpop import (
    NonceHolder,
    client_assertion,
    client_jwks,
    dpop_post,
    dpop_proof,
    dpop_request,
    jwk_thumbprint,
    key_from_jwk,
    new_dpop_key,
    pkce_challenge,
    pkce_pair,
    private_jwk,
    public_jwk,
)
from trove.platforms.bluesky.identity import (
    INVALID_HANDLE,
    DidDocument,
    ResponseTooLarge,
    TTLCache,
    authorization_server,
    handle_of,
    is_valid_did,
    is_valid_handle,
    normalize_handle,
    pds_endpoint,
    resolve_did,
    resolve_handle,
    resolve_identity,
    resolve_pds,
)
from trove.platforms.bluesky.oauth import BlueskyOAuth
from trove.simulators.base import PlatformSimulator
from trove.simulators.bluesky_auth import AtprotoAuthServer
from trove.simulators.serve import BackgroundServer

ALICE = "did:plc:" + "a" * 24
BOB = "did:plc:" + "b" * 24


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- DPoP, PKCE, client assertions ----------------------------------------------------------------------
def test_dpop_proof_headers_and_claims_verify_with_its_own_public_key() -> None:
    key = new_dpop_key()
    proof = dpop_proof(key, "post", "https://pds.example/xrpc/x?cursor=1#frag", nonce="n-1", now=1_700_000_000)
    header = jwt.get_unverified_header(proof)
    assert header["typ"] == "dpop+jwt" and header["alg"] == "ES256"
    assert header["jwk"] == public_jwk(key) and "d" not in header["jwk"]
    verifying = ECAlgorithm.from_jwk(json.dumps(header["jwk"]))
    claims = jwt.decode(proof, verifying, algorithms=["ES256"], options={"verify_iat": False})
    assert claims["htm"] == "POST"
    assert claims["htu"] == "https://pds.example/xrpc/x"  # no query, no fragment
    assert claims["iat"] == 1_700_000_000 and claims["nonce"] == "n-1"
    assert len(claims["jti"]) >= 16 and "ath" not in claims
    again = jwt.decode(dpop_proof(key, "POST", "https://pds.example/x"), verifying, algorithms=["ES256"])
    assert again["jti"] != claims["jti"] and "nonce" not in again


def test_dpop_proof_binds_the_access_token() -> None:
    key = new_dpop_key()
    proof = dpop_proof(key, "GET", "https://pds.example/xrpc/y", access_token="tok.en-1")
    claims = jwt.decode(proof, key.public_key(), algorithms=["ES256"])
    assert claims["ath"] == b64url(hashlib.sha256(b"tok.en-1").digest())


def test_pkce_s256_matches_rfc7636_appendix_b() -> None:
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128 and set(verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
    assert challenge == pkce_challenge(verifier) and pkce_pair()[0] != verifier


def test_client_assertion_verifies_against_the_published_jwks() -> None:
    client_key = ec.generate_private_key(ec.SECP256R1())
    jwks = client_jwks(client_key)
    (published,) = jwks["keys"]
    assert published["use"] == "sig" and published["alg"] == "ES256" and "d" not in published
    assertion = client_assertion(client_key, "https://trove.example/cm.json", "https://bsky.social", now=1000)
    assert jwt.get_unverified_header(assertion)["kid"] == published["kid"] == jwk_thumbprint(published)
    claims = jwt.decode(
        assertion,
        ECAlgorithm.from_jwk(json.dumps(published)),
        algorithms=["ES256"],
        audience="https://bsky.social",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == claims["sub"] == "https://trove.example/cm.json"
    assert claims["exp"] - claims["iat"] == 60 and claims["jti"]


def test_jwk_round_trip_and_thumbprint_canonical_form() -> None:
    key = new_dpop_key()
    stored = private_jwk(key)
    assert key_from_jwk(stored).private_numbers() == key.private_numbers()
    with pytest.raises(ValueError):
        key_from_jwk(public_jwk(key))  # no private part: cannot sign
    with pytest.raises(ValueError):
        key_from_jwk({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"})
    jwk = public_jwk(key)
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    assert jwk_thumbprint(jwk) == b64url(hashlib.sha256(canonical.encode()).digest())
    assert jwk_thumbprint({**jwk, "kid": "x", "use": "sig"}) == jwk_thumbprint(jwk)  # only required members


# --- syntax ---------------------------------------------------------------------------------------------
GOOD_HANDLES = ["alice.bsky.social", "4chan.org", "a.co", "xn--ls8h.test", "john-doe.example.com", "A.B.Cd"]
BAD_HANDLES = [
    "alice",  # one label
    "alice.bsky.social.",  # trailing dot
    ".alice.com",
    "alice..com",
    "-alice.com",
    "alice-.com",
    "alice_b.com",
    "alíce.com",
    "127.0.0.1",  # an IPv4 address: the TLD starts with a digit
    "a.1com",
    "alice.com:80",
    "alice com.com",
    "a" * 64 + ".com",  # a label over 63
    ("a." * 126) + "com",  # 255 characters
    "",
]


@pytest.mark.parametrize("handle", GOOD_HANDLES)
def test_valid_handles(handle: str) -> None:
    assert is_valid_handle(handle)


@pytest.mark.parametrize("handle", BAD_HANDLES)
def test_invalid_handles(handle: str) -> None:
    assert not is_valid_handle(handle)
    with pytest.raises(ConnectRefused) as refused:
        normalize_handle(handle)
    assert refused.value.code == "invalid_handle"


def test_normalize_handle() -> None:
    assert normalize_handle("  @Alice.BSKY.social ") == "alice.bsky.social"
    assert len(("a." * 125) + "com") == 253 and is_valid_handle(("a." * 125) + "com")
    for reserved in ("printer.local", "x.localhost", "db.internal", "handle.invalid", "a.onion"):
        assert is_valid_handle(reserved)  # syntactically a handle, but never resolvable
        with pytest.raises(ConnectRefused):
            normalize_handle(reserved)


@pytest.mark.parametrize(
    ("did", "valid"),
    [
        (ALICE, True),
        ("did:web:example.com", True),
        ("did:method:val:two", True),
        ("did:m:v%3A8080", True),
        ("did:METHOD:val", False),
        ("DID:plc:abc", False),
        ("did:m:", False),
        ("did:m:val:", False),
        ("did:m:val%", False),
        ("did:m:val/path", False),
        ("did:m:val#frag", False),
        ("did:m:val?q", False),
        ("did:plc:" + "a" * 3000, False),
        ("did:plc:ábc", False),
    ],
)
def test_did_syntax(did: str, valid: bool) -> None:
    assert is_valid_did(did) is valid


# --- a local nameserver ---------------------------------------------------------------------------------
class Nameserver(asyncio.DatagramProtocol):
    """TXT answers from `zone` (name -> texts); names absent from it are NXDOMAIN."""

    def __init__(self, zone: dict[str, list[str]]) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # a selector transport is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        texts = self.zone.get(question.name.to_text().lower())
        if texts is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif texts:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, "IN", "TXT", [json.dumps(t) for t in texts])
            )
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@asynccontextmanager
async def nameserver(zone: dict[str, list[str]]) -> AsyncIterator[tuple[str, int]]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: Nameserver(zone), local_addr=("127.0.0.1", 0))
    try:
        yield transport.get_extra_info("sockname")[:2]
    finally:
        transport.close()


def absolute_form(app: Any) -> Any:
    """Lets the test app serve as an HTTP proxy: http://<handle>/... requests arrive in absolute form."""

    async def proxied(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("http://"):
            path = urlsplit(scope["path"]).path
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await app(scope, receive, send)

    return proxied


def plc_document(did: str, handle: str | None, pds: str, **extra: Any) -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "alsoKnownAs": [f"at://{handle}"] if handle else [],
        "verificationMethod": [],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds}],
        **extra,
    }


class World:
    """One local HTTP server playing the PLC directory, handles' well-known DIDs (by Host, reached as a proxy)
    and a PDS with its authorization server metadata; tests edit its dictionaries."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.well_known: dict[str, str] = {}
        self.hits: dict[str, int] = {}
        self.resource: dict[str, Any] = {}
        self.as_metadata: dict[str, Any] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def app(self) -> Any:
        async def plc(request: Request) -> Response:
            did = request.path_params["did"]
            self.hits[did] = self.hits.get(did, 0) + 1
            document = self.documents.get(did)
            if document is None:
                return JSONResponse({"message": "DID not registered"}, status_code=404)
            if isinstance(document, bytes):  # streamed, without a Content-Length
                return StreamingResponse(iter([document[i : i + 4096] for i in range(0, len(document), 4096)]))
            return JSONResponse(document)

        async def atproto_did(request: Request) -> Response:
            host = request.headers.get("host", "").split(":")[0]
            if host not in self.well_known:
                return PlainTextResponse("not found", status_code=404)
            return PlainTextResponse(self.well_known[host])

        async def resource(_: Request) -> Response:
            return JSONResponse(self.resource)

        async def as_metadata(_: Request) -> Response:
            return JSONResponse(self.as_metadata)

        return absolute_form(
            Starlette(
                routes=[
                    Route("/.well-known/atproto-did", atproto_did),
                    Route("/.well-known/oauth-protected-resource", resource),
                    Route("/.well-known/oauth-authorization-server", as_metadata),
                    Route("/{did}", plc),
                ]
            )
        )

    def config(self, dns_server: tuple[str, int] | None = None, insecure: bool = True) -> BlueskyConfig:
        return BlueskyConfig(plc_url=self.url, dns=dns_server, insecure_http=insecure)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    w = World()
    with BackgroundServer(w.app(), w.port):
        yield w


async def _through_the_proxy(host: str, port: int) -> list[str]:
    """Every name "resolves" to a public address that is never contacted: the world proxies every request (by
    its Host header), so fetch_bounded's address check passes and its pinned connection goes to the proxy."""
    return ["93.184.215.14"]  # a public address (example.com once), never contacted


def run(world: World, body: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    """Runs `body` with an HTTP client whose plain-http requests go through the world (its proxy role)."""

    async def main() -> Any:
        identity.RESOLVE = _through_the_proxy
        try:
            async with httpx.AsyncClient(proxy=world.url) as http:
                return await body(http)
        finally:
            identity.RESOLVE = system_resolver

    return asyncio.run(main())


def refused_code(world: World, body: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> str:
    with pytest.raises(ConnectRefused) as refused:
        run(world, body)
    return refused.value.code


# --- handle -> DID --------------------------------------------------------------------------------------
def test_dns_txt_resolution(world: World) -> None:
    zone = {
        "_atproto.alice.test.": ["did=" + ALICE],
        "_atproto.twice.test.": ["did=" + ALICE, "did=" + ALICE, "unrelated text"],
        "_atproto.two.test.": ["did=" + ALICE, "did=" + BOB],
        "_atproto.junk.test.": ["did=not-a-did"],
        "_atproto.empty.test.": [],  # the name exists, no TXT record
    }

    async def body(http: httpx.AsyncClient) -> None:
        async with nameserver(zone) as server:
            config = world.config(server)
            assert await resolve_handle(http, "Alice.Test", config) == ALICE
            assert await resolve_handle(http, "twice.test", config) == ALICE
            for handle, code in [
                ("two.test", "handle_conflict"),  # different DIDs: refused, never a guess
                ("junk.test", "handle_not_found"),
                ("nobody.test", "handle_not_found"),  # NXDOMAIN and no well-known DID
                ("empty.test", "handle_not_found"),
            ]:
                with pytest.raises(ConnectRefused) as refused:
                    await resolve_handle(http, handle, config)
                assert refused.value.code == code, handle

    run(world, body)


def test_well_known_fallback_when_dns_has_no_record(world: World) -> None:
    world.well_known.update({"web.test": f"  {BOB}\n", "garbage.test": "<html>hello</html>"})
    zone = {"_atproto.both.test.": ["did=" + ALICE]}
    world.well_known["both.test"] = BOB  # DNS is preferred when both answer (atproto.com/specs/handle)

    async def body(http: httpx.AsyncClient) -> None:
        async with nameserver(zone) as server:
            config = world.config(server)
            assert await resolve_handle(http, "web.test", config) == BOB
            assert await resolve_handle(http, "both.test", config) == ALICE
            with pytest.raises(ConnectRefused):
                await resolve_handle(http, "garbage.test", config)

    run(world, body)


def test_dns_trouble_is_transient_unless_the_well_known_answers(world: World, monkeypatch) -> None:
    monkeypatch.setattr(identity, "DNS_LIFETIME", 0.5)
    world.well_known["fallback.test"] = ALICE
    silent = ("127.0.0.1", free_port())  # nothing listens there: the lookup times out

    async def body(http: httpx.AsyncClient) -> None:
        config = world.config(silent)
        assert await resolve_handle(http, "fallback.test", config) == ALICE
        with pytest.raises(TransientError):
            await resolve_handle(http, "unknown.test", config)

    run(world, body)


# --- DID -> document -> PDS -----------------------------------------------------------------------------
def test_did_plc_document_and_pds(world: World) -> None:
    world.documents[ALICE] = plc_document(ALICE, "alice.test", "https://pds.example.com/")
    did_x = "did:plc:" + "x" * 24
    world.documents[did_x] = plc_document(BOB, "bob.test", "https://pds.example.com")  # about another DID

    async def body(http: httpx.AsyncClient) -> None:
        config = world.config()
        doc = await resolve_did(http, ALICE, config)
        assert doc.did == ALICE and handle_of(doc) == "alice.test"
        assert pds_endpoint(doc) == "https://pds.example.com"
        for did, code in [
            ("did:plc:" + "c" * 24, "did_not_found"),
            (did_x, "invalid_did_document"),
            ("did:plc:short", "invalid_did"),
            ("did:key:zQ3sh", "unsupported_did"),
            ("did:web:a.test:path", "invalid_did"),
            ("did:web:localhost%3A1", "invalid_did"),  # only in insecure mode
            ("not a did", "invalid_did"),
        ]:
            with pytest.raises(ConnectRefused) as refused:
                await resolve_did(http, did, world.config(insecure=did != "did:web:localhost%3A1"))
            assert refused.value.code == code, did

    run(world, body)


def test_oversized_documents_are_refused(world: World) -> None:
    big = plc_document(ALICE, "alice.test", "https://pds.example.com", padding="x" * 200_000)
    did_big, did_stream = "did:plc:" + "d" * 24, "did:plc:" + "e" * 24
    world.documents[did_big] = {**big, "id": did_big}
    world.documents[did_stream] = json.dumps({**big, "id": did_stream}).encode()
    world.well_known["huge.test"] = ALICE + " " * 10_000

    async def body(http: httpx.AsyncClient) -> None:
        for did in (did_big, did_stream):
            with pytest.raises(ResponseTooLarge):
                await resolve_did(http, did, world.config())
        async with nameserver({}) as server:
            with pytest.raises(ConnectRefused) as refused:
                await resolve_handle(http, "huge.test", world.config(server))
            assert refused.value.code == "handle_not_found"

    run(world, body)


def test_pds_endpoint_selection() -> None:
    def doc(*services: dict[str, Any]) -> DidDocument:
        return DidDocument(ALICE, (), services, {})

    pds = {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://pds.example.com"}
    labeler = {"id": "#atproto_labeler", "type": "AtprotoLabeler", "serviceEndpoint": "https://l.example.com"}
    assert pds_endpoint(doc(labeler, pds)) == "https://pds.example.com"
    assert pds_endpoint(doc({**pds, "id": f"{ALICE}#atproto_pds"})) == "https://pds.example.com"
    cases = [
        (doc(labeler), "no_pds"),
        (doc({**pds, "type": "Something"}), "no_pds"),
        (doc({**pds, "serviceEndpoint": "http://pds.example.com"}), "insecure_url"),
        (doc({**pds, "serviceEndpoint": "https://127.0.0.1:2583"}), "insecure_url"),
        (doc({**pds, "serviceEndpoint": "https://10.1.2.3"}), "insecure_url"),
        (doc({**pds, "serviceEndpoint": "https://localhost"}), "insecure_url"),
        (doc({**pds, "serviceEndpoint": "https://user:pw@pds.example.com"}), "invalid_url"),
        (doc({**pds, "serviceEndpoint": ["https://pds.example.com"]}), "invalid_url"),
        (doc({**pds, "serviceEndpoint": "ftp://pds.example.com"}), "insecure_url"),
    ]
    for document, code in cases:
        with pytest.raises(ConnectRefused) as refused:
            pds_endpoint(document)
        assert refused.value.code == code, document.services
    assert pds_endpoint(doc({**pds, "serviceEndpoint": "http://127.0.0.1:2583"}), insecure=True) == (
        "http://127.0.0.1:2583"
    )


def test_resolve_identity_checks_the_handle_both_ways(world: World) -> None:
    carol, mallory = "did:plc:" + "f" * 24, "did:plc:" + "g" * 24
    world.documents[carol] = plc_document(carol, "carol.test", "http://127.0.0.1:1")
    # mallory's document claims carol's handle, which does not point back at mallory
    world.documents[mallory] = plc_document(mallory, "carol.test", "http://127.0.0.1:1")
    zone = {"_atproto.carol.test.": ["did=" + carol], "_atproto.alias.test.": ["did=" + mallory]}

    async def body(http: httpx.AsyncClient) -> None:
        async with nameserver(zone) as server:
            config = world.config(server)
            found = await resolve_identity(http, "@Carol.test", config)
            assert (found.did, found.handle, found.pds) == (carol, "carol.test", "http://127.0.0.1:1")
            assert (await resolve_identity(http, carol, config)).handle == "carol.test"
            assert (await resolve_identity(http, mallory, config)).handle == INVALID_HANDLE
            assert (await resolve_identity(http, "alias.test", config)).handle == INVALID_HANDLE

    run(world, body)


def test_pds_cache(world: World) -> None:
    did = "did:plc:" + "h" * 24
    world.documents[did] = plc_document(did, None, "https://pds.example.com")
    now = [0.0]
    cache: TTLCache[str, str] = TTLCache(600, clock=lambda: now[0])

    async def body(http: httpx.AsyncClient) -> None:
        config = world.config()
        assert await resolve_pds(http, did, config, cache) == "https://pds.example.com"
        world.documents[did] = plc_document(did, None, "https://moved.example.com")
        now[0] = 599
        assert await resolve_pds(http, did, config, cache) == "https://pds.example.com"
        now[0] = 601
        assert await resolve_pds(http, did, config, cache) == "https://moved.example.com"

    run(world, body)
    assert world.hits[did] == 2
    small: TTLCache[int, int] = TTLCache(10, max_entries=2)
    for n in range(3):
        small.put(n, n)
    assert len(small) == 2 and small.get(0) is None and small.get(2) == 2


# --- PDS -> authorization server ------------------------------------------------------------------------
def as_metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "pushed_authorization_request_endpoint": f"{issuer}/oauth/par",
        "require_pushed_authorization_requests": True,
        "dpop_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["atproto", "transition:generic"],
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": True,
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
    }


def test_authorization_server_metadata(world: World) -> None:
    async def body(http: httpx.AsyncClient) -> None:
        config = world.config()
        world.resource.clear()
        world.resource.update({"resource": world.url, "authorization_servers": [world.url]})
        world.as_metadata.clear()
        world.as_metadata.update(as_metadata(world.url))
        server = await authorization_server(http, world.url, config)
        assert server.issuer == world.url and server.par_endpoint == f"{world.url}/oauth/par"
        for change, code in [
            ({"issuer": "https://elsewhere.example"}, "authorization_server_invalid"),
            ({"require_pushed_authorization_requests": False}, "authorization_server_invalid"),
            ({"dpop_signing_alg_values_supported": ["RS256"]}, "authorization_server_invalid"),
            ({"token_endpoint": "ftp://x.example"}, "insecure_url"),
        ]:
            world.as_metadata.update(change)
            with pytest.raises(ConnectRefused) as refused:
                await authorization_server(http, world.url, config)
            assert refused.value.code == code, change
            world.as_metadata.update(as_metadata(world.url))
        world.resource["resource"] = "https://other.example"
        with pytest.raises(ConnectRefused):
            await authorization_server(http, world.url, config)
        world.resource.update({"resource": world.url, "authorization_servers": [f"{world.url}/path"]})
        with pytest.raises(ConnectRefused):
            await authorization_server(http, world.url, config)  # an issuer is an origin
        with pytest.raises(ConnectRefused):  # http only in insecure mode
            await authorization_server(http, world.url, world.config(insecure=False))

    run(world, body)


# --- DPoP nonce retry -----------------------------------------------------------------------------------
def test_dpop_post_retries_once_with_the_new_nonce() -> None:
    seen: list[dict[str, Any]] = []
    nonces = {"current": "nonce-1"}

    async def token(request: Request) -> Response:
        claims = jwt.decode(
            request.headers["dpop"],
            ECAlgorithm.from_jwk(json.dumps(jwt.get_unverified_header(request.headers["dpop"])["jwk"])),
            algorithms=["ES256"],
        )
        form = dict(await request.form())
        seen.append({"nonce": claims.get("nonce"), "form": form, "htu": claims["htu"]})
        if "always" in nonces:
            nonces["current"] = f"always-{len(seen)}"
        headers = {"DPoP-Nonce": nonces["current"]}
        if claims.get("nonce") != nonces["current"]:
            if form.get("style") == "resource":
                return Response(status_code=401, headers={**headers, "WWW-Authenticate": 'DPoP error="use_dpop_nonce"'})
            return JSONResponse({"error": "use_dpop_nonce"}, status_code=400, headers=headers)
        return JSONResponse({"ok": True}, headers=headers)

    port = free_port()
    url = f"http://127.0.0.1:{port}/oauth/token"
    counter = iter(range(100))

    async def main() -> None:
        key, holder = new_dpop_key(), NonceHolder()
        async with httpx.AsyncClient() as http:
            fetched = await dpop_post(http, url, lambda: {"attempt": str(next(counter))}, key, holder, insecure=True)
            assert fetched.status_code == 200 and holder.value == "nonce-1"
            assert [s["nonce"] for s in seen] == [None, "nonce-1"]
            assert seen[0]["form"]["attempt"] != seen[1]["form"]["attempt"]  # fresh values each attempt
            nonces["current"] = "nonce-2"  # the server rotates: one more retry, remembered
            fetched = await dpop_post(http, url, {"style": "resource"}, key, holder, insecure=True)
            assert fetched.status_code == 200 and holder.value == "nonce-2"
            assert [s["nonce"] for s in seen[2:]] == ["nonce-1", "nonce-2"]
            # asked for a new nonce every time: exactly one retry, then the refusal is returned
            seen.clear()
            nonces["always"] = "yes"
            fetched = await dpop_post(http, url, {}, key, holder, insecure=True)
            assert len(seen) == 2 and fetched.status_code == 400 and holder.value == "always-2"

    app = Starlette(routes=[Route("/oauth/token", token, methods=["POST"])])
    with BackgroundServer(app, port):
        asyncio.run(main())


# --- configuration and documents ------------------------------------------------------------------------
def test_config_from_env(monkeypatch) -> None:
    for name in ("PLC_URL", "APPVIEW_URL", "JETSTREAM_URL", "DNS", "CLIENT_KEY", "INSECURE_HTTP"):
        monkeypatch.delenv(f"TROVE_BLUESKY_{name}", raising=False)
    config = BlueskyConfig.from_env()
    assert config.plc_url == "https://plc.directory" and config.dns is None and not config.configured()
    monkeypatch.setenv("TROVE_BLUESKY_PLC_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("TROVE_BLUESKY_DNS", "127.0.0.1:5353")
    monkeypatch.setenv("TROVE_BLUESKY_INSECURE_HTTP", "1")
    monkeypatch.setenv("TROVE_LOCAL_STACK", "1")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    monkeypatch.setenv("TROVE_PUBLIC_URL", "https://trove.example/")
    config = BlueskyConfig.from_env()
    assert config.plc_url == "http://127.0.0.1:9" and config.dns == ("127.0.0.1", 5353) and config.insecure_http
    assert config.client_id == "https://trove.example/functions/v1/oauth-bluesky/client-metadata.json"
    assert config.redirect_uri == "https://trove.example/functions/v1/oauth-bluesky/callback"
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@db.example.com/postgres")
    assert not BlueskyConfig.from_env().insecure_http  # off the local stack, plain HTTP is never allowed
    assert parse_nameserver("[::1]:53") == ("::1", 53) and parse_nameserver("10.0.0.1") == ("10.0.0.1", 53)
    for bad in ("dns.example.com:53", "127.0.0.1:0", "127.0.0.1:x"):
        with pytest.raises(ConfigError):
            parse_nameserver(bad)


def pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_documents(monkeypatch) -> None:
    monkeypatch.setenv("TROVE_PUBLIC_URL", "https://trove.example")
    assert BlueskyOAuth(BlueskyConfig()).documents() == {}
    client_key = ec.generate_private_key(ec.SECP256R1())
    config = BlueskyConfig(client_key_pem=pem(client_key))
    assert "PRIVATE" not in repr(config)
    documents = BlueskyOAuth(config).documents()
    metadata = documents["client-metadata.json"]
    base = "https://trove.example/functions/v1/oauth-bluesky"
    assert metadata["client_id"] == f"{base}/client-metadata.json" and metadata["jwks_uri"] == f"{base}/jwks.json"
    assert metadata["redirect_uris"] == [f"{base}/callback"] and metadata["client_uri"] == "https://trove.example"
    assert metadata["dpop_bound_access_tokens"] is True and metadata["token_endpoint_auth_method"] == "private_key_jwt"
    assert metadata["scope"] == "atproto transition:generic"
    assert documents["jwks.json"] == client_jwks(client_key)
    rsa_like = BlueskyConfig(client_key_pem="-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----")
    with pytest.raises(ConfigError) as bad:
        _ = rsa_like.client_key
    assert "nope" not in str(bad.value)
    p384 = BlueskyConfig(client_key_pem=pem(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(ConfigError):
        _ = p384.client_key


def test_begin_needs_a_handle() -> None:
    oauth = BlueskyOAuth(BlueskyConfig(client_key_pem=pem(ec.generate_private_key(ec.SECP256R1()))))

    async def main() -> None:
        async with httpx.AsyncClient() as http:
            for hint in (None, "  "):
                with pytest.raises(ConnectRefused) as refused:
                    await oauth.begin(http, "https://trove.example/cb", "state", hint)
                assert refused.value.code == "login_hint_required"

    asyncio.run(main())


# --- end to end against the simulator's authorization server --------------------------------------------
class AtprotoSim(PlatformSimulator[str]):
    """PLC directory, PDS (protected-resource metadata and one DPoP-protected route) and the atproto
    authorization server (trove.simulators.bluesky_auth) on one port, as the Bluesky simulator mounts them."""

    auth: AtprotoAuthServer
    accounts: ClassVar[dict[str, str]] = {"alice.test": ALICE, "bob.test": BOB}

    def platform_routes(self) -> list[Route]:
        self.auth = AtprotoAuthServer(self, self.login)
        return [
            *self.auth.routes(),
            Route("/.well-known/oauth-protected-resource", self.protected_resource),
            Route("/xrpc/whoami", self.whoami),
            Route("/{did}", self.plc),
        ]

    def login(self, hint: str) -> str | None:
        return self.accounts.get(hint) or (hint if hint in self.accounts.values() else None)

    def configure(self, body: dict[str, Any]) -> None:
        super().configure(body)
        self.auth.configure(body)

    async def plc(self, request: Request) -> Response:
        did = request.path_params["did"]
        handle = next((h for h, d in self.accounts.items() if d == did), None)
        if handle is None:
            return JSONResponse({"message": "DID not registered"}, status_code=404)
        return JSONResponse(plc_document(did, handle, self.auth.issuer(request)))

    async def protected_resource(self, request: Request) -> Response:
        url = self.auth.issuer(request)
        return JSONResponse({"resource": url, "authorization_servers": [url]})

    async def whoami(self, request: Request) -> Response:
        did, refusal = self.auth.authenticate(request)
        return refusal or JSONResponse({"did": did}, headers=self.auth.nonce_headers())


def test_connect_and_refresh_against_the_simulated_authorization_server(monkeypatch) -> None:
    sim = AtprotoSim(client_id="unused", client_secret="unused", token_ttl=300)
    oauth_holder: list[BlueskyOAuth] = []

    async def document(request: Request) -> Response:
        served = oauth_holder[0].documents()
        name = request.path_params["name"]
        return JSONResponse(served[name]) if name in served else JSONResponse({"error": "not_found"}, 404)

    trove_app = Starlette(routes=[Route("/functions/v1/oauth-bluesky/{name}", document)])
    zone = {"_atproto.alice.test.": ["did=" + ALICE], "_atproto.bob.test.": ["did=" + BOB]}

    async def main(sim_url: str) -> None:
        async with nameserver(zone) as server, httpx.AsyncClient(timeout=10) as http:
            config = BlueskyConfig(
                plc_url=sim_url,
                dns=server,
                insecure_http=True,
                client_key_pem=pem(ec.generate_private_key(ec.SECP256R1())),
            )
            oauth = BlueskyOAuth(config)
            oauth_holder.append(oauth)

            async def authorize(hint: str) -> tuple[dict[str, Any], dict[str, str]]:
                start = await oauth.begin(http, config.redirect_uri, "state-1", hint)
                assert start.url.startswith(f"{sim_url}/oauth/authorize?")
                assert "login_hint" not in start.url and "code_challenge" not in start.url  # pushed, not in the URL
                redirect = await http.get(start.url)
                assert redirect.status_code == 302, redirect.text
                location = redirect.headers["location"]
                assert location.startswith(config.redirect_uri + "?")
                return start.session, dict(httpx.URL(location).params)

            session, callback = await authorize("@Alice.test")
            assert session["did"] == ALICE and session["issuer"] == sim_url and session["handle"] == "alice.test"
            assert callback["iss"] == sim_url and callback["state"] == "state-1"
            with pytest.raises(ConnectRefused) as refused:  # RFC 9207: another issuer's answer is refused
                await oauth.exchange(http, callback["code"], config.redirect_uri, {**callback, "iss": "x"}, session)
            assert refused.value.code == "wrong_issuer"
            connection = await oauth.exchange(http, callback["code"], config.redirect_uri, callback, session)
            assert (connection.platform_user_id, connection.username) == (ALICE, "alice.test")
            assert connection.metadata["pds"] == sim_url and connection.metadata["issuer"] == sim_url
            tokens = connection.tokens
            assert tokens.binding is not None and tokens.refresh_token and tokens.expires_at is not None
            assert tokens.binding["did"] == ALICE and tokens.binding["dpop_key"] == session["dpop_key"]
            assert "atproto" in (tokens.scope or "").split()
            with pytest.raises(InvalidGrantError):  # a code works once
                await oauth.exchange(http, callback["code"], config.redirect_uri, callback, session)

            # the access token works at the PDS with the bound key (401 use_dpop_nonce retried with ath)
            key = key_from_jwk(tokens.binding["dpop_key"])
            whoami = await dpop_request(
                http,
                "GET",
                f"{sim_url}/xrpc/whoami",
                key,
                NonceHolder(),
                access_token=tokens.access_token,
                insecure=True,
            )
            assert whoami.status_code == 200 and whoami.json() == {"did": ALICE}

            # the server rotates its nonce: the refresh is retried once with the new one, which is kept
            refusals = sim.auth.refusals.get("use_dpop_nonce", 0)
            await http.post(f"{sim_url}/_sim/config", json={"rotate_dpop_nonce": True})
            refreshed = await oauth.refresh(http, tokens.refresh_token or "", tokens.binding)
            assert sim.auth.refusals["use_dpop_nonce"] == refusals + 1
            assert refreshed.binding is not None and refreshed.binding["dpop_nonce"] != tokens.binding["dpop_nonce"]
            assert refreshed.binding["dpop_key"] == tokens.binding["dpop_key"]
            assert refreshed.refresh_token != tokens.refresh_token and refreshed.access_token != tokens.access_token
            again = await oauth.refresh(http, refreshed.refresh_token or "", refreshed.binding)

            # tokens answering for another account are refused, at connect and at refresh
            await http.post(f"{sim_url}/_sim/config", json={"token_sub_override": BOB})
            session, callback = await authorize("alice.test")
            with pytest.raises(ConnectRefused) as refused:
                await oauth.exchange(http, callback["code"], config.redirect_uri, callback, session)
            assert refused.value.code == "wrong_account"
            assert again.binding is not None
            with pytest.raises(InvalidGrantError, match="another account"):
                await oauth.refresh(http, again.refresh_token or "", again.binding)
            await http.post(f"{sim_url}/_sim/config", json={"token_sub_override": None})

            # the user revokes the app: the refresh token is refused for good
            session, callback = await authorize("alice.test")
            connection = await oauth.exchange(http, callback["code"], config.redirect_uri, callback, session)
            await http.post(f"{sim_url}/_sim/config", json={"revoke": ALICE})
            with pytest.raises(InvalidGrantError, match="refused the refresh token"):
                await oauth.refresh(http, connection.tokens.refresh_token or "", connection.tokens.binding)
            with pytest.raises(InvalidGrantError):  # what we kept cannot refresh
                await oauth.refresh(http, "x", {"issuer": sim_url})

            # a handle nobody has, and no hint at all
            with pytest.raises(ConnectRefused) as refused:
                await oauth.begin(http, config.redirect_uri, "state-2", "nobody.test")
            assert refused.value.code == "handle_not_found"

    with BackgroundServer(sim.app, free_port()) as sim_server, BackgroundServer(trove_app, free_port()) as trove:
        monkeypatch.setenv("TROVE_PUBLIC_URL", trove.url)
        asyncio.run(main(sim_server.url))
