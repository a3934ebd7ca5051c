"""Copying one media file into storage, safely: media URLs come from platform payloads, so they are
untrusted. Only http(s); no connection to private, loopback or link-local addresses (loopback only when
TROVE_MEDIA_ALLOW_LOOPBACK=1, for the local simulators); redirects followed by hand, each hop checked, at
most 5; timeouts on connect, each read and the whole transfer. The connection goes to the very address that
was checked (Host header and TLS SNI keep the name), so a name re-resolving elsewhere in between (DNS
rebinding) cannot redirect it. The body is streamed to storage in 64 KiB
chunks (a 50 MB video never sits in memory), its type sniffed from the first bytes, its size capped."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from trove.media.sniff import MAX_SNIFF, sniff
from trove.media.storage import Storage, StorageError

MAX_BYTES = 50 * 1024 * 1024
MAX_REDIRECTS = 5
CHUNK = 64 * 1024
# Read timeout: $TROVE_MEDIA_READ_TIMEOUT seconds between bytes (default 20).
TIMEOUT = httpx.Timeout(
    connect=5.0, read=float(os.environ.get("TROVE_MEDIA_READ_TIMEOUT") or 20.0), write=10.0, pool=5.0
)
TOTAL_SECONDS = 300.0


class DownloadFailure(Exception):
    """kind: gone (404/410: unavailable), expired (403: refresh the URL first), rejected (size or type:
    final), transient (retry with backoff)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Downloaded:
    path: str
    content_type: str
    size: int
    sha256: str


def allow_loopback() -> bool:
    return os.environ.get("TROVE_MEDIA_ALLOW_LOOPBACK") == "1"


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_destination(url: str, loopback_ok: bool, resolve: Resolver = system_resolver) -> list[str]:
    """The addresses to connect to (IPv4 first), once every address the name resolves to is acceptable."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadFailure("rejected", f"refusing a non-http(s) media URL ({parts.scheme or 'no'} scheme)")
    try:
        addresses = await resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, OSError) as error:
        raise DownloadFailure("transient", f"cannot resolve {parts.hostname}: {error}") from error
    if not addresses:
        raise DownloadFailure("transient", f"cannot resolve {parts.hostname}: no address")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if address.is_loopback and loopback_ok:
            continue
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
        ):
            raise DownloadFailure(
                "rejected", f"refusing to fetch media from {parts.hostname} ({address}): not a public address"
            )
    return sorted(dict.fromkeys(addresses), key=lambda text: ":" in text)


async def open_pinned(http: httpx.AsyncClient, url: str, addresses: list[str]) -> httpx.Response:
    """The response head from the first checked address that accepts the connection."""
    failure: httpx.ConnectError | None = None
    for address in addresses:
        target, headers, extensions = pinned_request(url, address)
        request = http.build_request("GET", target, headers=headers, extensions=extensions, timeout=TIMEOUT)
        try:
            return await http.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as error:
            failure = error
    assert failure is not None
    raise failure


def pinned_request(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL rewritten to the checked address, with the Host header (and TLS SNI, which httpx also
    verifies the certificate against) of the original name."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    original_host = parts.netloc.rsplit("@", 1)[-1]  # never send userinfo on
    extensions: dict[str, Any] = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), {"Host": original_host}, extensions


async def download(
    http: httpx.AsyncClient,
    storage: Storage,
    url: str,
    path_for: Callable[[str], str],
    *,
    loopback_ok: bool | None = None,
    resolve: Resolver = system_resolver,
) -> Downloaded:
    """Stream `url` into storage at path_for(extension)."""
    loopback_ok = allow_loopback() if loopback_ok is None else loopback_ok
    try:
        async with asyncio.timeout(TOTAL_SECONDS):
            for _ in range(MAX_REDIRECTS + 1):
                response = await open_pinned(http, url, await check_destination(url, loopback_ok, resolve))
                try:
                    if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    return await _store(response, storage, path_for)
                finally:
                    await response.aclose()
            raise DownloadFailure("rejected", f"more than {MAX_REDIRECTS} redirects")
    except TimeoutError as error:
        raise DownloadFailure("transient", f"the transfer took longer than {TOTAL_SECONDS:.0f}s") from error
    except httpx.TimeoutException as error:
        raise DownloadFailure("transient", f"timed out ({type(error).__name__})") from error
    except httpx.HTTPError as error:
        raise DownloadFailure("transient", f"{type(error).__name__}: {error}") from error
    except (StorageError, OSError) as error:  # storage down or full: nothing was stored, try again later
        raise DownloadFailure("transient", f"storing the file failed: {error}") from error


async def _store(response: httpx.Response, storage: Storage, path_for: Callable[[str], str]) -> Downloaded:
    status = response.status_code
    if status in (404, 410):
        raise DownloadFailure("gone", f"HTTP {status}: the file is gone")
    if status == 403:
        raise DownloadFailure("expired", "HTTP 403: the URL has expired or is refused")
    if status >= 400:
        raise DownloadFailure("transient", f"HTTP {status}")
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BYTES:
        raise DownloadFailure("rejected", f"the file is {int(declared)} bytes, over the {MAX_BYTES} byte limit")
    upload = await storage.begin()
    try:
        size, digest, head, kind = 0, hashlib.sha256(), b"", None
        async for chunk in response.aiter_bytes(CHUNK):
            if kind is None:
                head += chunk
                if len(head) >= MAX_SNIFF:
                    kind = _kind(head, response)
            size += len(chunk)
            if size > MAX_BYTES:
                raise DownloadFailure("rejected", f"the file is over the {MAX_BYTES} byte limit")
            digest.update(chunk)
            await upload.write(chunk)
        if kind is None:
            kind = _kind(head, response)
        content_type, ext = kind
        path = path_for(ext)
        await upload.commit(path, content_type)
    except BaseException:
        await upload.abort()
        raise
    return Downloaded(path, content_type, size, digest.hexdigest())


def _kind(head: bytes, response: httpx.Response) -> tuple[str, str]:
    found = sniff(head)
    if found is None:
        declared = response.headers.get("content-type", "unknown")
        raise DownloadFailure(
            "rejected", f"not an image, video or audio file (declared {declared}, content starts {head[:8]!r})"
        )
    return found
