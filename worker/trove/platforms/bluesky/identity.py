"""atproto identity: handle -> DID -> DID document -> PDS -> its OAuth authorization server.

Specs: atproto.com/specs/handle, /specs/did, /specs/oauth. Everything here is hostile input (a handle is a DNS
name someone else controls, a DID document is whatever a server returns): syntax is checked before anything is
fetched, every response is size-capped, every URL must be https (http only with TROVE_BLUESKY_INSECURE_HTTP on
the local stack), and a handle only counts when it resolves back to the DID (bidirectional check).

Handle resolution: the DNS TXT record `_atproto.<handle>` ("did=<did>") is asked first, against
TROVE_BLUESKY_DNS when set (the simulator's nameserver) or the system resolver; only when DNS has no answer,
https://<handle>/.well-known/atproto-did (the spec prefers DNS when both answer). Several TXT records naming
different DIDs are refused. The well-known method uses http:// instead of https:// in insecure mode (the
local stack has no TLS), but there is no base-URL override: on the local stack handles resolve through the
simulator's nameserver.

Errors: what the user can act on (a handle that does not resolve, a broken DID document, a PDS without
OAuth) raises ConnectRefused(code, detail); network trouble, timeouts and 5xx raise TransientError. The sync
uses resolve_pds (cached 10 minutes) and maps ConnectRefused to its own errors.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver
import httpx

from trove.json_input import parse_json
from trove.media.download import DownloadFailure, Resolver, check_destination, pinned_request, system_resolver
from trove.platforms.base import ConnectRefused, TransientError
from trove.platforms.bluesky.config import BlueskyConfig

INVALID_HANDLE = "handle.invalid"
MAX_HANDLE_LENGTH = 253
MAX_DID_LENGTH = 2048
# Sizes we read at most: a DID is at most 2 KiB; DID documents and OAuth metadata are a few KiB.
WELL_KNOWN_DID_LIMIT = 4096
DOCUMENT_LIMIT = 64 * 1024
HTTP_TIMEOUT = httpx.Timeout(10.0)
DNS_LIFETIME = 4.0  # seconds for the whole TXT lookup (retries included)
PDS_CACHE_TTL = 600.0

# atproto.com/specs/handle: ASCII labels of 1..63 letters, digits and inner hyphens; at least two labels;
# the last (the TLD) starts with a letter, so an IPv4 address is never a handle.
_HANDLE = re.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
# TLDs the handle spec says are never valid for handles (registration-time, but none of them can resolve
# publicly, and .local/.localhost/.internal would point resolution at this network). ".test" stays allowed.
DISALLOWED_TLDS = frozenset({"local", "arpa", "invalid", "localhost", "internal", "example", "alt", "onion"})
# atproto.com/specs/did
_DID = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$")
_DID_PLC = re.compile(r"^did:plc:[a-z2-7]{24}$")
_REDIRECTS = {301, 302, 303, 307, 308}


# --- syntax ---------------------------------------------------------------------------------------------
def is_valid_handle(value: str) -> bool:
    return len(value) <= MAX_HANDLE_LENGTH and value.isascii() and bool(_HANDLE.match(value))


def normalize_handle(value: str) -> str:
    """What the user typed ("@Alice.bsky.social") as a handle ("alice.bsky.social"), or ConnectRefused."""
    handle = value.strip().removeprefix("@").removeprefix("at://").lower()
    if not is_valid_handle(handle):
        raise ConnectRefused(
            "invalid_handle", "that is not a Bluesky handle: give it as a domain name, like alice.bsky.social"
        )
    if handle.rsplit(".", 1)[1] in DISALLOWED_TLDS:
        raise ConnectRefused("invalid_handle", f"handles under .{handle.rsplit('.', 1)[1]} cannot be resolved")
    return handle


def is_valid_did(value: str) -> bool:
    return len(value) <= MAX_DID_LENGTH and value.isascii() and bool(_DID.match(value))


def _require_did(value: str) -> str:
    if not is_valid_did(value):
        raise ConnectRefused("invalid_did", "that is not a valid DID (did:plc:... or did:web:...)")
    return value


def _is_local_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:  # the spellings the system resolver also takes: 2130706433, 0x7f000001, 127.1, 0177.0.0.1
            address = ipaddress.ip_address(socket.inet_aton(host))
        except OSError:
            return False  # a name: fetch_bounded checks what it resolves to
    return not address.is_global


def check_url(url: Any, *, insecure: bool, what: str, origin_only: bool = False) -> str:
    """An https URL we may call (http too in insecure mode), without a trailing slash; ConnectRefused if not.
    Outside insecure mode, hosts on this machine or private networks are refused too (a DID document or a
    metadata document must not point us at the operator's network)."""
    if not isinstance(url, str) or len(url) > 2048 or not url.isascii():
        raise ConnectRefused("invalid_url", f"{what} is not a URL")
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port  # .port raises ValueError for a bad port
    except ValueError as bad:
        raise ConnectRefused("invalid_url", f"{what} is not a valid URL") from bad
    if parts.scheme not in (("https", "http") if insecure else ("https",)):
        raise ConnectRefused("insecure_url", f"{what} must be an https:// URL")
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        raise ConnectRefused("invalid_url", f"{what} is not a valid URL")
    if not insecure and _is_local_host(host):
        raise ConnectRefused("insecure_url", f"{what} points at a private network address")
    if origin_only and (parts.path not in ("", "/") or parts.query):
        raise ConnectRefused("invalid_url", f"{what} must be an origin (https://host), with no path")
    return url.rstrip("/") if not parts.query else url


# --- bounded HTTP ---------------------------------------------------------------------------------------
RESOLVE: Resolver = system_resolver  # name -> addresses (the system's; tests that proxy every request swap it)


class HostNotFound(TransientError):
    """The name does not resolve (now: it may later, so it stays transient where that matters)."""


async def _pinned(url: str, *, insecure: bool, what: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The request to send for `url`: to a checked address of its host (see fetch_bounded)."""
    try:
        addresses = await check_destination(url, loopback_ok=insecure, resolve=RESOLVE)
    except DownloadFailure as failure:
        if failure.kind == "rejected":
            host = urlsplit(url).hostname
            raise ConnectRefused("insecure_url", f"{what}: {host} is not a public address") from failure
        if isinstance(failure.__cause__, socket.gaierror):
            raise HostNotFound(f"{what}: {failure}") from failure
        raise TransientError(f"{what}: {failure}") from failure
    return pinned_request(url, addresses[0])


class ResponseTooLarge(TransientError):
    """A server answered with more than we read; retrying later is all that can be done."""


@dataclass(frozen=True)
class Fetched:
    """A response read in full, within a size cap."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str

    def json(self) -> Any:
        """The body as JSON: UTF-8, nested at most 32 deep, every string storable (ValueError if not)."""
        return parse_json(self.content)

    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


async def fetch_bounded(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    limit: int,
    what: str,
    insecure: bool = False,
    max_redirects: int = 0,
    **kwargs: Any,
) -> Fetched:
    """One request whose body is read up to `limit` bytes (ResponseTooLarge beyond); network trouble is a
    TransientError. Redirects are followed only up to `max_redirects`, each target checked like the first.

    Every URL here may come from someone else's DID document or metadata: the name is resolved first and
    refused (ConnectRefused) unless every address is public (loopback too in insecure mode, the local
    stack's simulator), and the connection goes to the very address checked (no DNS rebinding between the
    check and the connect); Host and TLS SNI keep the name."""
    for _hop in range(max_redirects + 1):
        target, pinned_headers, extensions = await _pinned(url, insecure=insecure, what=what)
        headers = {**kwargs.pop("headers", {}), **pinned_headers}
        try:
            async with http.stream(
                method,
                target,
                follow_redirects=False,
                timeout=HTTP_TIMEOUT,
                headers=headers,
                extensions=extensions,
                **kwargs,
            ) as response:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise ResponseTooLarge(f"{what}: the answer is larger than {limit} bytes")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise ResponseTooLarge(f"{what}: the answer is larger than {limit} bytes")
        except httpx.TimeoutException as failure:
            raise TransientError(f"{what}: timed out ({type(failure).__name__})") from failure
        except httpx.TransportError as failure:
            raise TransientError(f"{what}: could not connect ({type(failure).__name__})") from failure
        location = response.headers.get("location")
        if response.status_code in _REDIRECTS and location and _hop < max_redirects:
            url = check_url(urljoin(url, location), insecure=insecure, what=f"{what} (redirect)")
            continue
        return Fetched(response.status_code, response.headers, bytes(body), url)
    raise AssertionError("unreachable")  # the loop always returns on its last hop


async def _get_document(
    http: httpx.AsyncClient, url: str, config: BlueskyConfig, *, what: str, not_found: tuple[str, str]
) -> dict[str, Any]:
    """GET a JSON object: 404/410 -> ConnectRefused(not_found), 5xx/429 -> TransientError."""
    fetched = await fetch_bounded(
        http,
        "GET",
        url,
        limit=DOCUMENT_LIMIT,
        what=what,
        insecure=config.insecure_http,
        headers={"Accept": "application/json"},
    )
    if fetched.status_code in (404, 410):
        raise ConnectRefused(*not_found)
    if fetched.status_code >= 500 or fetched.status_code == 429:
        raise TransientError(f"{what}: HTTP {fetched.status_code}")
    if fetched.status_code != 200:
        raise ConnectRefused("identity_unavailable", f"{what} answered HTTP {fetched.status_code}")
    try:
        body = fetched.json()
    except ValueError as bad:
        raise ConnectRefused("identity_unavailable", f"{what} is not JSON") from bad
    if not isinstance(body, dict):
        raise ConnectRefused("identity_unavailable", f"{what} is not a JSON object")
    return body


# --- handle -> DID --------------------------------------------------------------------------------------
def _resolver(config: BlueskyConfig) -> dns.asyncresolver.Resolver:
    if config.dns is None:
        resolver = dns.asyncresolver.Resolver()  # the system's (/etc/resolv.conf)
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*config.dns)]
    resolver.lifetime = DNS_LIFETIME
    return resolver


async def _dns_dids(handle: str, config: BlueskyConfig) -> set[str]:
    """The DIDs the `_atproto.<handle>` TXT records name (empty: no record). TransientError when DNS failed."""
    try:
        answer = await _resolver(config).resolve(f"_atproto.{handle}.", "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return set()
    except dns.exception.DNSException as failure:  # timeouts, SERVFAIL, no nameserver configured
        raise TransientError(f"DNS lookup of _atproto.{handle} failed ({type(failure).__name__})") from failure
    dids = set()
    for record in answer:
        text = b"".join(getattr(record, "strings", ())).decode("ascii", errors="replace")
        if text.startswith("did="):
            dids.add(text.removeprefix("did=").strip())
    return dids


async def _well_known_did(http: httpx.AsyncClient, handle: str, config: BlueskyConfig) -> str | None:
    """https://<handle>/.well-known/atproto-did (http:// in insecure mode): the DID, or None without one."""
    scheme = "http" if config.insecure_http else "https"
    try:
        fetched = await fetch_bounded(
            http,
            "GET",
            f"{scheme}://{handle}/.well-known/atproto-did",
            limit=WELL_KNOWN_DID_LIMIT,
            what=f"{handle}/.well-known/atproto-did",
            insecure=config.insecure_http,
            max_redirects=3,
        )
    except ResponseTooLarge:
        return None  # not a DID, whatever it is
    except HostNotFound:
        return None  # no such host: this handle has no well-known DID
    except TransientError as failure:
        if isinstance(failure.__cause__, httpx.ConnectError):
            return None  # nothing serves it: this handle has no well-known DID
        raise
    except ConnectRefused:
        return None  # a redirect to somewhere we may not go
    if fetched.status_code >= 500 or fetched.status_code == 429:
        raise TransientError(f"{handle}/.well-known/atproto-did answered HTTP {fetched.status_code}")
    if fetched.status_code != 200:
        return None
    did = fetched.text().strip()
    return did if is_valid_did(did) else None


async def resolve_handle(http: httpx.AsyncClient, handle: str, config: BlueskyConfig) -> str:
    """The DID a handle names (DNS TXT first, then the HTTPS well-known). ConnectRefused: invalid_handle,
    handle_conflict (TXT records naming different DIDs), handle_not_found; TransientError: network trouble."""
    handle = normalize_handle(handle)
    dns_trouble: TransientError | None = None
    try:
        dids = await _dns_dids(handle, config)
    except TransientError as failure:
        dids, dns_trouble = set(), failure
    if len(dids) > 1:
        raise ConnectRefused("handle_conflict", f"{handle} has DNS records naming different accounts")
    if dids:
        did = dids.pop()
        if not is_valid_did(did):
            raise ConnectRefused("handle_not_found", f"the DNS record of {handle} does not hold a valid DID")
        return did
    did = await _well_known_did(http, handle, config)
    if did:
        return did
    if dns_trouble is not None:  # DNS could not say: the handle may well exist
        raise dns_trouble
    raise ConnectRefused("handle_not_found", f"no Bluesky account has the handle {handle}")


# --- DID -> DID document --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DidDocument:
    did: str
    also_known_as: tuple[str, ...]
    services: tuple[Mapping[str, Any], ...]
    raw: dict[str, Any] = field(repr=False)


def _did_document_url(did: str, config: BlueskyConfig) -> str:
    if did.startswith("did:plc:"):
        if not _DID_PLC.match(did):
            raise ConnectRefused("invalid_did", f"{did} is not a valid did:plc")
        return f"{config.plc_url}/{did}"
    if did.startswith("did:web:"):
        # atproto uses hostname-level did:web only (no path); a port (%3A) only for localhost testing.
        host = unquote(did.removeprefix("did:web:"))
        name, _, port = host.partition(":")
        if ":" in did.removeprefix("did:web:") or not (is_valid_handle(name) or name == "localhost"):
            raise ConnectRefused("invalid_did", f"{did} is not a did:web atproto can use (a hostname only)")
        if name != "localhost" and name.rsplit(".", 1)[-1].lower() in DISALLOWED_TLDS:
            raise ConnectRefused("invalid_did", f"{did}: a did:web under a local or reserved name is refused")
        if name == "localhost" or port:
            if not (config.insecure_http and name == "localhost" and (not port or port.isdigit())):
                raise ConnectRefused("invalid_did", f"{did}: did:web on localhost or with a port is for testing only")
            return f"http://{host}/.well-known/did.json"
        return f"https://{host}/.well-known/did.json"
    raise ConnectRefused("unsupported_did", "only did:plc and did:web accounts are supported")


def parse_did_document(did: str, body: dict[str, Any]) -> DidDocument:
    """The parts of a DID document atproto reads, checked to be of the right shape and about `did`."""
    if body.get("id") != did:
        raise ConnectRefused("invalid_did_document", f"the DID document of {did} is about another DID")
    aka, services = body.get("alsoKnownAs", []), body.get("service", [])
    if not isinstance(aka, list) or not all(isinstance(a, str) for a in aka):
        raise ConnectRefused("invalid_did_document", f"the DID document of {did} has a malformed alsoKnownAs")
    if not isinstance(services, list) or not all(isinstance(s, dict) for s in services):
        raise ConnectRefused("invalid_did_document", f"the DID document of {did} has a malformed service list")
    return DidDocument(did, tuple(aka), tuple(services), body)


async def resolve_did(http: httpx.AsyncClient, did: str, config: BlueskyConfig) -> DidDocument:
    """A DID's document: did:plc from the PLC directory, did:web from https://<host>/.well-known/did.json."""
    did = _require_did(did)
    url = _did_document_url(did, config)
    body = await _get_document(
        http, url, config, what=f"the DID document of {did}", not_found=("did_not_found", f"{did} does not exist")
    )
    return parse_did_document(did, body)


def pds_endpoint(doc: DidDocument, *, insecure: bool = False) -> str:
    """The account's PDS: the service `#atproto_pds` of type AtprotoPersonalDataServer (https required)."""
    for service in doc.services:
        if service.get("id") in ("#atproto_pds", f"{doc.did}#atproto_pds"):
            if service.get("type") != "AtprotoPersonalDataServer":
                break
            return check_url(service.get("serviceEndpoint"), insecure=insecure, what=f"the PDS of {doc.did}")
    raise ConnectRefused("no_pds", f"the DID document of {doc.did} names no personal data server")


def handle_of(doc: DidDocument) -> str | None:
    """The handle a DID document claims (its first at:// alias), unverified; None without a valid one."""
    for alias in doc.also_known_as:
        if alias.startswith("at://"):
            handle = alias.removeprefix("at://").lower()
            return handle if is_valid_handle(handle) else None
    return None


# --- handle or DID -> identity --------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    did: str
    handle: str  # verified both ways, else "handle.invalid"
    pds: str
    document: DidDocument = field(repr=False)


async def _verified_handle(
    http: httpx.AsyncClient, doc: DidDocument, config: BlueskyConfig, known: Mapping[str, str]
) -> str:
    """The handle the document claims when it resolves back to the DID; else "handle.invalid"."""
    claimed = handle_of(doc)
    if claimed is None:
        return INVALID_HANDLE
    if claimed in known:
        return claimed if known[claimed] == doc.did else INVALID_HANDLE
    try:
        return claimed if await resolve_handle(http, claimed, config) == doc.did else INVALID_HANDLE
    except ConnectRefused:
        return INVALID_HANDLE


async def resolve_identity(http: httpx.AsyncClient, handle_or_did: str, config: BlueskyConfig) -> Identity:
    """Who an account is and where its repository lives, from what the user typed (a handle or a DID)."""
    value = handle_or_did.strip()
    if value.startswith("did:"):
        doc = await resolve_did(http, value, config)
        handle = await _verified_handle(http, doc, config, {})
    else:
        typed = normalize_handle(value)
        did = await resolve_handle(http, typed, config)
        doc = await resolve_did(http, did, config)
        handle = await _verified_handle(http, doc, config, {typed: did})
    return Identity(doc.did, handle, pds_endpoint(doc, insecure=config.insecure_http), doc)


# --- PDS -> authorization server ------------------------------------------------------------------------
@dataclass(frozen=True)
class AuthorizationServer:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    par_endpoint: str
    metadata: dict[str, Any] = field(repr=False)


def _refuse_server(detail: str) -> ConnectRefused:
    return ConnectRefused("authorization_server_invalid", detail)


def _lists(metadata: Mapping[str, Any], key: str, value: str) -> bool:
    listed = metadata.get(key)
    return isinstance(listed, list) and value in listed


def parse_authorization_server(issuer: str, metadata: dict[str, Any], *, insecure: bool) -> AuthorizationServer:
    """RFC 8414 metadata, held to what atproto requires of an authorization server."""
    if metadata.get("issuer") != issuer:
        raise _refuse_server(f"the authorization server {issuer} names another issuer in its metadata")
    endpoints = {
        key: check_url(metadata.get(key), insecure=insecure, what=f"{key} of {issuer}")
        for key in ("authorization_endpoint", "token_endpoint", "pushed_authorization_request_endpoint")
    }
    requirements = [
        (metadata.get("require_pushed_authorization_requests") is True, "pushed authorization requests"),
        (_lists(metadata, "dpop_signing_alg_values_supported", "ES256"), "ES256 DPoP proofs"),
        (_lists(metadata, "token_endpoint_auth_methods_supported", "private_key_jwt"), "private_key_jwt"),
        (_lists(metadata, "token_endpoint_auth_signing_alg_values_supported", "ES256"), "ES256 client assertions"),
        (_lists(metadata, "code_challenge_methods_supported", "S256"), "PKCE S256"),
        (_lists(metadata, "scopes_supported", "atproto"), "the atproto scope"),
        (metadata.get("authorization_response_iss_parameter_supported") is True, "the iss callback parameter"),
        (metadata.get("client_id_metadata_document_supported") is True, "client metadata documents"),
    ]
    missing = [what for ok, what in requirements if not ok]
    if missing:
        raise _refuse_server(f"the authorization server {issuer} does not support {', '.join(missing)}")
    return AuthorizationServer(
        issuer,
        endpoints["authorization_endpoint"],
        endpoints["token_endpoint"],
        endpoints["pushed_authorization_request_endpoint"],
        metadata,
    )


async def authorization_server(http: httpx.AsyncClient, pds: str, config: BlueskyConfig) -> AuthorizationServer:
    """The PDS's authorization server: its protected-resource metadata names the issuer (RFC 9728), whose
    own metadata (RFC 8414) must name the same issuer and meet atproto's requirements."""
    insecure = config.insecure_http
    resource = await _get_document(
        http,
        f"{pds}/.well-known/oauth-protected-resource",
        config,
        what=f"the OAuth metadata of {pds}",
        not_found=("oauth_unsupported", f"the account's server {pds} does not support OAuth"),
    )
    if "resource" in resource and str(resource["resource"]).rstrip("/") != pds:
        raise _refuse_server(f"the OAuth metadata of {pds} is about another server")
    servers = resource.get("authorization_servers")
    if not isinstance(servers, list) or not servers:
        raise _refuse_server(f"the account's server {pds} names no authorization server")
    issuer = check_url(servers[0], insecure=insecure, what=f"the authorization server of {pds}", origin_only=True)
    metadata = await _get_document(
        http,
        f"{issuer}/.well-known/oauth-authorization-server",
        config,
        what=f"the metadata of {issuer}",
        not_found=("oauth_unsupported", f"the authorization server {issuer} publishes no metadata"),
    )
    return parse_authorization_server(issuer, metadata, insecure=insecure)


# --- DID -> PDS, cached (the sync) ----------------------------------------------------------------------
K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """A small in-memory cache whose entries expire `ttl` seconds after they were put (oldest evicted first
    beyond `max_entries`). One event loop per process: no lock needed for dict operations."""

    def __init__(self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.max_entries, self.clock = ttl, max_entries, clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self.clock() + self.ttl, value)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, key: K) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


PDS_CACHE: TTLCache[str, str] = TTLCache(PDS_CACHE_TTL)


async def resolve_pds(
    http: httpx.AsyncClient, did: str, config: BlueskyConfig, cache: TTLCache[str, str] = PDS_CACHE
) -> str:
    """Where a DID's repository lives now (accounts move between PDSs): cached for 10 minutes."""
    cached = cache.get(did)
    if cached is not None:
        return cached
    doc = await resolve_did(http, did, config)
    pds = pds_endpoint(doc, insecure=config.insecure_http)
    cache.put(did, pds)
    return pds
