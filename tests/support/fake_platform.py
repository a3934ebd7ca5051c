"""A platform that exists only in the tests: a real local HTTP server with pagination, bearer tokens that
expire, rotating refresh tokens, rate-limit headers and scripted failures. Tests steer it over HTTP
(POST /_control), so worker processes talk to it exactly as to a real platform."""

from __future__ import annotations

import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class PlatformState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.item_count = 0
        self.access_token = "access-" + secrets.token_hex(8)
        self.refresh_token = "refresh-" + secrets.token_hex(8)
        self.token_expires_at = time.time() + 3600
        self.token_ttl = 3600.0
        self.rate_limit = 1000
        self.rate_used = 0
        self.fail_next: list[int] = []  # statuses to answer the next item requests with
        self.fail_on: dict[str, int] = {}  # item request number (1-based, as text) -> status to answer with
        self.page_delay = 0.0
        self.refresh_delay = 0.0
        self.refresh_calls = 0
        self.item_requests = 0
        self.error_body = ""
        self.codes: set[str] = set()  # authorization codes handed out and not yet exchanged

    def item(self, n: int) -> dict[str, Any]:
        return {
            "id": n,
            "text": f"post number {n}",
            "created_at": (EPOCH + timedelta(minutes=n)).isoformat(),
            "likes": n % 7,
            "photo": {"id": f"photo-{n}", "url": f"https://cdn.fake.test/{n}.jpg?sig={secrets.token_hex(4)}"},
        }


class Handler(BaseHTTPRequestHandler):
    state: PlatformState

    def log_message(self, *_: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        state = self.state
        url = urlparse(self.path)
        if url.path == "/_control":
            changes = json.loads(self._body() or b"{}")
            with state.lock:
                for key, value in changes.items():
                    setattr(state, key, value)
                snapshot = {k: v for k, v in vars(state).items() if k not in ("lock", "codes")}
            self._send(200, snapshot)
            return
        if url.path == "/oauth/token":
            form = parse_qs(self._body().decode())
            if form.get("grant_type", [""])[0] == "authorization_code":
                with state.lock:
                    granted = form.get("code", [""])[0] in state.codes
                    state.codes.discard(form.get("code", [""])[0])
                    body = {
                        "access_token": state.access_token,
                        "refresh_token": state.refresh_token,
                        "expires_in": int(state.token_ttl),
                        "scope": "read",
                        "user": {"id": "alice-owner", "handle": "alice.fake.test", "name": "Alice"},
                    }
                self._send(200, body) if granted else self._send(400, {"error": "invalid_grant"})
                return
            with state.lock:
                state.refresh_calls += 1
                delay = state.refresh_delay
            time.sleep(delay)
            with state.lock:
                if form.get("refresh_token", [""])[0] != state.refresh_token:
                    self._send(400, {"error": "invalid_grant", "message": "refresh token is not valid"})
                    return
                state.access_token = "access-" + secrets.token_hex(8)
                state.refresh_token = "refresh-" + secrets.token_hex(8)
                state.token_expires_at = time.time() + state.token_ttl
                body = {
                    "access_token": state.access_token,
                    "refresh_token": state.refresh_token,
                    "expires_in": int(state.token_ttl),
                    "scope": "read",
                }
            self._send(200, body)
            return
        self._send(404, {"error": "not found"})

    def do_GET(self) -> None:
        state = self.state
        url = urlparse(self.path)
        if url.path == "/oauth/authorize":  # the user approves at once
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            code = secrets.token_hex(8)
            with state.lock:
                state.codes.add(code)
            self.send_response(302)
            self.send_header("Location", f"{query['redirect_uri']}?state={query['state']}&code={code}&scope=read")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if url.path != "/items":
            self._send(404, {"error": "not found"})
            return
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with state.lock:
            state.item_requests += 1
            delay = state.page_delay
        time.sleep(delay)
        with state.lock:
            scripted = state.fail_on.get(str(state.item_requests))
            if state.fail_next or scripted:
                status = state.fail_next.pop(0) if state.fail_next else scripted
                self._send(status, {"error": f"scripted {status}", "detail": state.error_body})
                return
            if (
                self.headers.get("Authorization") != f"Bearer {state.access_token}"
                or time.time() > state.token_expires_at
            ):
                self._send(401, {"error": "invalid token"})
                return
            if state.rate_used >= state.rate_limit:
                self._send(429, {"error": "rate limited"}, self._rate_headers())
                return
            state.rate_used += 1
            limit = int(query.get("limit", 50))
            if "before" in query:
                top = min(int(query["before"]) - 1, state.item_count)
                ids = list(range(top, max(top - limit, 0), -1))
            else:
                after = int(query.get("after", 0))
                ids = list(range(after + 1, min(after + limit, state.item_count) + 1))
            items = [state.item(n) for n in ids]
            headers = self._rate_headers()
        self._send(200, {"items": items}, headers)

    def _rate_headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.state.rate_limit), "X-RateLimit-Usage": str(self.state.rate_used)}


class FakePlatform:
    def __init__(self) -> None:
        self.state = PlatformState()
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakePlatform:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def control(self, **changes: Any) -> dict[str, Any]:
        return httpx.post(f"{self.url}/_control", json=changes).json()
