"""A local HTTP file server for the media tests: real files, wrong types, huge and slow bodies, gone and
expiring URLs, redirects, flaky answers."""

from __future__ import annotations

import json
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

JPEG_HEAD = bytes.fromhex("ffd8ffe000104a46494600010100000100010000")
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def jpeg(size: int, seed: int = 0) -> bytes:
    body = bytes((i * 31 + seed) % 251 for i in range(size - len(JPEG_HEAD) - 2))
    return JPEG_HEAD + body + b"\xff\xd9"


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.valid_token = "fresh-1"
        self.flaky_left = 0
        self.hits: dict[str, int] = {}
        self.host_headers: dict[str, str] = {}  # path -> the Host header it was last asked with


class Handler(BaseHTTPRequestHandler):
    state: State
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:
        pass

    def _send(
        self, status: int, body: bytes, content_type: str = "image/jpeg", extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _chunked(self, chunks: Any, delay: float = 0.0) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
                if delay:
                    time.sleep(delay)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        with self.state.lock:
            self.state.hits[path] = self.state.hits.get(path, 0) + 1
            self.state.host_headers[path] = self.headers.get("Host", "")
        if path.startswith("/photo/"):
            seed = sum(path.encode())
            self._send(200, jpeg(200_000, seed))
        elif path.startswith("/sized/"):
            size = int(path.rsplit("/", 1)[1].split(".")[0])
            self._send(200, jpeg(size, size % 251))
        elif path == "/video.mp4":
            self._send(200, MP4_HEAD + bytes(1_000_000), "video/mp4")
        elif path == "/html.jpg":
            self._send(200, b"<html><body>Sign in to see this photo</body></html>" + b" " * 100, "image/jpeg")
        elif path == "/huge":
            self._chunked(MP4_HEAD + bytes(1 << 20) if i == 0 else bytes(1 << 20) for i in range(60))
        elif path == "/huge-declared":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(60 << 20))
            self.end_headers()
            try:
                self.wfile.write(MP4_HEAD)
            except BrokenPipeError:
                pass
        elif path == "/drip.mp4":
            self._chunked((MP4_HEAD + bytes(1 << 18) if i == 0 else bytes(1 << 18) for i in range(40)), delay=0.1)
        elif path == "/gone":
            self._send(404, b"not found", "text/plain")
        elif path == "/gone410":
            self._send(410, b"gone", "text/plain")
        elif path.startswith("/expiring/"):
            token = path.rsplit("/", 1)[1]
            if token != self.state.valid_token:
                self._send(403, b"<Error><Code>AccessDenied</Code></Error>", "application/xml")
            else:
                self._send(200, jpeg(5_000, 7))
        elif path.startswith("/media-url/"):  # the fake connector's "fresh URL" endpoint
            host = self.headers["Host"]
            body = json.dumps({"url": f"http://{host}/expiring/{self.state.valid_token}"}).encode()
            self._send(200, body, "application/json")
        elif path == "/flaky.jpg":
            with self.state.lock:
                fail = self.state.flaky_left > 0
                self.state.flaky_left -= 1
            self._send(503, b"busy", "text/plain") if fail else self._send(200, jpeg(3_000, 3))
        elif path == "/slow.jpg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                self.wfile.write(JPEG_HEAD)
                self.wfile.flush()
                time.sleep(5)
            except BrokenPipeError:
                pass
        elif path == "/redirect.jpg":
            self._send(302, b"", "text/plain", {"Location": "/photo/redirected.jpg"})
        elif path == "/redirect-private.jpg":
            self._send(302, b"", "text/plain", {"Location": "http://10.1.2.3/internal.jpg"})
        elif path == "/redirect-loop.jpg":
            self._send(302, b"", "text/plain", {"Location": "/redirect-loop.jpg"})
        else:
            self._send(404, b"no such path", "text/plain")


class FileServer:
    """tls: an SSLContext with the server's certificate; the server then speaks HTTPS."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.state = State()
        handler = type("BoundFileHandler", (Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed(hostname: str, directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A certificate for `hostname` only: the server's context, and a client context trusting just it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client
