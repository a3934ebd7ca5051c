"""Security probe of the Bluesky platform package (an independent review). Each failing test names a defect
and what an attacker gains; the few passing ones pin a defence that was checked to hold. No database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest

from trove.json_input import unstorable_text
from trove.media.download import DownloadFailure, check_destination
from trove.platforms.base import Account, ConnectRefused, SyncError, TransientError
from trove.platforms.bluesky import identity, stream
from trove.platforms.bluesky.client import xrpc_get
from trove.platforms.bluesky.config import BlueskyConfig
from trove.platforms.bluesky.identity import DidDocument, authorization_server, check_url, pds_endpoint, resolve_did
from trove.platforms.bluesky.stream import JetstreamConsumer, parse_frame
from trove.platforms.bluesky.sync import BlueskyConnector
from trove.redact import redact

ALICE = "did:plc:" + "a" * 24
SECURE = BlueskyConfig()  # production settings: https only, private networks refused


def doc_with_pds(endpoint: str) -> DidDocument:
    body = {
        "id": ALICE,
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": endpoint}],
    }
    return DidDocument(ALICE, (), tuple(body["service"]), body)


@asynccontextmanager
async def loopback_listener() -> AsyncIterator[tuple[int, list[int]]]:
    """A TCP server on 127.0.0.1 that counts the connections it gets (and closes them at once)."""
    accepted: list[int] = []

    async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        await server.wait_closed()


# --- 1. SSRF: check_url only recognises canonical IP literals ------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://2130706433",  # 127.0.0.1 as one decimal number
        "https://0x7f000001",  # ... in hex
        "https://127.1",  # ... shortened
        "https://0177.0.0.1",  # ... in octal
        "https://0",  # 0.0.0.0: this host
        "https://2852039166",  # 169.254.169.254 (cloud metadata) as one decimal number
    ],
)
def test_check_url_refuses_loopback_and_metadata_in_every_ipv4_spelling(url: str) -> None:
    """Defect: `_is_local_host` asks ipaddress.ip_address(), which only parses dotted-quad IPv4, while the
    OS resolver (getaddrinfo/inet_aton) accepts decimal, hex, octal and short forms. A DID document whose
    serviceEndpoint (or an AS metadata endpoint, a PAR/token endpoint, a redirect target) is spelled this way
    passes the "points at a private network address" check. Gain: requests from the worker/HTTP service to
    loopback and link-local services."""
    with pytest.raises(ConnectRefused):
        check_url(url, insecure=False, what="the PDS")


def test_pds_on_decimal_loopback_reaches_this_machine() -> None:
    """Defect (end to end): any signed-in user sends login_hint=<their did:web> whose document names
    `https://2130706433:<port>` as PDS; /start's begin() then connects to 127.0.0.1:<port> (and the error it
    returns - "could not connect" / "timed out" / "answered HTTP 4xx" - is a port-scan oracle over the
    operator's loopback). Gain: SSRF into this host."""

    async def main() -> int:
        async with loopback_listener() as (port, accepted):
            try:
                pds = pds_endpoint(doc_with_pds(f"https://2130706433:{port}"))
            except ConnectRefused:
                return 0  # refused before any connection: the defence holds
            async with httpx.AsyncClient() as http:
                with pytest.raises((ConnectRefused, TransientError)):
                    await authorization_server(http, pds, SECURE)
            await asyncio.sleep(0.05)
            return len(accepted)

    assert asyncio.run(main()) == 0, "the PDS check let a request reach 127.0.0.1"


def test_pds_hostname_resolving_to_a_private_address_is_not_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect: check_url never resolves names, so an https host whose A record is 127.0.0.1 / 10.x /
    169.254.169.254 (an internal service name, a nip.io-style name, a rebinding domain) is called. The media
    downloader resolves and pins addresses (trove/media/download.py); the identity/XRPC/OAuth fetches don't.
    Gain: SSRF from the HTTP service (/start, any user) and the worker (every sync re-resolves the PDS) to
    internal https services; the PAR refusal's `error`/`error_description` are even echoed back by /start."""
    real = socket.getaddrinfo

    def fake(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("pds.intranet.acme-corp.com", b"pds.intranet.acme-corp.com"):
            host = "127.0.0.1"  # what an internal DNS name answers
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)

    async def main() -> int:
        async with loopback_listener() as (port, accepted):
            try:
                pds = pds_endpoint(doc_with_pds(f"https://pds.intranet.acme-corp.com:{port}"))
                async with httpx.AsyncClient() as http:
                    await authorization_server(http, pds, SECURE)
            except (ConnectRefused, TransientError):
                pass
            await asyncio.sleep(0.05)
            return len(accepted)

    assert asyncio.run(main()) == 0, "a name resolving to 127.0.0.1 was connected to"


@pytest.mark.parametrize("did", ["did:web:metadata.google.internal", "did:web:admin.localhost", "did:web:nas.local"])
def test_did_web_under_a_reserved_tld_is_not_fetched(did: str) -> None:
    """Defect: normalize_handle refuses .local/.localhost/.internal/... because resolution would point at
    this network, but `_did_document_url` checks did:web hosts with is_valid_handle only (no TLD check) and
    never passes the URL through check_url. `*.localhost` resolves to loopback on systemd/nss-myhostname
    hosts; `.internal`/`.local` are internal names. Gain: SSRF to internal names via login_hint=did:web:..."""
    requested: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(404)

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            with pytest.raises(ConnectRefused):
                await resolve_did(http, did, SECURE)

    asyncio.run(main())
    assert requested == [], f"fetched {requested}"


def test_media_downloader_refuses_decimal_loopback() -> None:
    """Defence holds (the model for the fix above): media URLs are resolved and every address checked."""
    with pytest.raises(DownloadFailure):
        asyncio.run(check_destination("https://2130706433/xrpc/com.atproto.sync.getBlob", loopback_ok=False))


# --- 2. Deeply nested JSON escapes every error class -----------------------------------------------------
def test_deeply_nested_xrpc_answer_is_a_sync_error() -> None:
    """Defect: client.xrpc_get and identity._get_document parse with json.loads and catch ValueError only;
    a hostile PDS (or DID document / AS metadata) answering `[[[[...` 50k deep raises RecursionError. In the
    sync that is not a SyncError: SyncRunner.run doesn't fail the request, the lease expires and the sync is
    claimed again forever (no backoff, no error count, no notification); in /start it is a 500. Gain: a
    permanently spinning sync (worker time, PDS traffic) from one document."""
    deep = b"[" * 50_000

    async def main() -> None:
        transport = httpx.MockTransport(lambda _request: httpx.Response(200, content=deep))
        async with httpx.AsyncClient(transport=transport) as http:
            with pytest.raises(SyncError):
                await xrpc_get(http, "https://pds.example.com", "com.atproto.repo.listRecords", {}, window_name="pds")

    asyncio.run(main())


def test_deeply_nested_did_document_is_refused_cleanly() -> None:
    """Same defect on the identity path (/start answers 500 instead of a 400 the user can act on)."""

    async def main() -> None:
        transport = httpx.MockTransport(lambda _request: httpx.Response(200, content=b'{"a":' * 10_000))
        async with httpx.AsyncClient(transport=transport) as http:
            with pytest.raises((ConnectRefused, TransientError)):
                await resolve_did(http, ALICE, SECURE)

    asyncio.run(main())


# --- 3. Raw pages Postgres cannot store ------------------------------------------------------------------
def test_list_records_page_with_a_nul_is_refused_before_it_is_stored() -> None:
    """Defect: normalize() refuses posts with \\u0000 or unpaired surrogates (unstorable_text), but the raw
    listRecords / getPosts bodies go to store_raw_page as Jsonb unchecked. Postgres' jsonb refuses \\u0000
    and lone surrogates (DataError) outside the per-post savepoint, so the page's transaction fails, and since
    DataError is not a SyncError the sync is re-claimed at every lease expiry forever. Gain: a PDS (any
    self-hosted one) or a record the AppView returns (getPosts carries other people's posts: repost subjects)
    wedges an account's archive."""
    record = {
        "uri": f"at://{ALICE}/app.bsky.feed.post/3kabc",
        "cid": "bafyreia",
        "value": {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-01-01T00:00:00Z"},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("listRecords"):
            body = json.dumps({"records": [record], "x-unread": "nul\u0000 and \ud800"})
            return httpx.Response(200, content=body.encode())
        return httpx.Response(200, json={"posts": []})

    connector = BlueskyConnector(SECURE)
    account = Account("acc", "user", "bluesky", ALICE, "alice.test", None, {})
    identity.PDS_CACHE.put(ALICE, "https://pds.example.com")
    try:

        async def main() -> Any:
            async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
                return await connector.fetch_page(http, account, "backfill", None)

        try:
            page = asyncio.run(main())
        except SyncError:
            return  # refused as a sync error: the defence holds
    finally:
        identity.PDS_CACHE.invalidate(ALICE)
    for _event_type, payload in [(page.event_type, page.payload), *page.more_payloads]:
        assert unstorable_text(payload) is None, "the raw page cannot be stored as jsonb"


# --- 4. Jetstream ----------------------------------------------------------------------------------------
def test_frame_with_time_us_beyond_bigint_is_malformed() -> None:
    """Defect: parse_frame accepts any non-negative int as time_us; the consumer saves it as the cursor
    (stream_cursors.resume_from is bigint), so 2**63 makes host.store raise NumericValueOutOfRange. With the
    consumer-death defect below that one frame stops real-time ingestion for up to 10 000 accounts. (A future
    time_us that fits is accepted too and ratchets the cursor forward for good: greatest().)"""
    frame = json.dumps({"did": ALICE, "time_us": 2**63, "kind": "identity", "identity": {"did": ALICE}})
    assert parse_frame(frame).event_type == "jetstream.malformed"


class FakeHost:
    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.connects = 0
        self.stored: list[Any] = []

    async def followed(self) -> frozenset[str]:
        return frozenset({ALICE})

    async def followed_changed(self) -> None:
        await self.stopping.wait()

    async def load_cursor(self, consumer: str) -> int | None:
        return 10_000_000

    async def catch_up(self, platform_user_ids: frozenset[str]) -> None:
        return None

    async def store(self, consumer: str, events: list[Any], cursor: int | None) -> None:
        if not events:
            return  # a cursor-only write
        if self.connects == 1:
            raise psycopg.OperationalError("the database went away for a moment")
        self.stored.extend(events)
        self.stopping.set()


class FakeSocket:
    def __init__(self, host: FakeHost) -> None:
        self.host, self.sent = host, False

    async def send(self, _message: str) -> None:
        return None

    async def recv(self) -> str:
        if not self.sent:
            self.sent = True
            return json.dumps({"did": ALICE, "time_us": 1, "kind": "identity", "identity": {"did": ALICE, "seq": 1}})
        await asyncio.sleep(3600)
        raise AssertionError


def test_consumer_survives_a_failed_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect: `_connection` retries only OSError/WebSocketException/TimeoutError. Anything host.store raises
    (a psycopg OperationalError during a database blip, PoolTimeout, the bigint overflow above) ends that
    connection's task; `run` never looks at it again (it only waits for the followed set to change), and
    run_stream sees nothing wrong. Real-time ingestion of the shard stops until the worker restarts."""
    host = FakeHost()

    @asynccontextmanager
    async def fake_connect(_url: str, **_kwargs: Any) -> AsyncIterator[FakeSocket]:
        host.connects += 1
        yield FakeSocket(host)

    monkeypatch.setattr(stream, "connect", fake_connect)

    async def main() -> None:
        async with httpx.AsyncClient() as http:
            with contextlib.suppress(TimeoutError):  # it returns once a store succeeded (stopping is set)
                await asyncio.wait_for(JetstreamConsumer(SECURE).run(http, host), timeout=4.0)

    asyncio.run(main())
    assert host.connects >= 2 and host.stored, "the consumer died on one failed store and never reconnected"


# --- 5. Logs ---------------------------------------------------------------------------------------------
def test_dpop_authorization_header_is_redacted() -> None:
    """Defect (hardening): redact() masks `Bearer <token>` but not `DPoP <token>`, the scheme every
    Bluesky request uses; an access token not yet registered in memory (the HTTP service's code exchange
    never calls register_secret) would be logged verbatim by anything that logs the request headers."""
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkaWQ6cGxjOmFhYSJ9.c2lnbmF0dXJl"
    assert token not in redact(f"GET /xrpc/x Authorization: DPoP {token}")
