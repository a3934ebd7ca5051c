"""What every platform simulator shares: request counting, rate-limit windows, scripted faults, OAuth codes and
tokens (expiry, rotating refresh tokens), webhook delivery with retries, and the generic /_sim controls (config,
stats). A platform's simulator extends `PlatformSimulator` and adds only its API shape: its routes, payloads,
error bodies and headers, through the hooks below.

The pure parts (windows, token issue and expiry, fault countdowns) take `now` so that they can be tested without
a server.
"""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

# The simulators' videos: a tiny MP4 that really plays (VP9, 16x16, four frames at 4 fps; 938 bytes, made once
# with FFmpeg's libvpx through PyAV): an ftyp box first, so it sniffs as video/mp4, and a browser plays the copy.
PLAYABLE_MP4 = base64.b64decode(
    "AAAAHGZ0eXBpc29tAAACAGlzb21pc28ybXA0MQAAAAhmcmVlAAAAfW1kYXSCSYNCAADwAPYAOCQcGEoAADBgAAAQv//8MBT/////"
    "X3j///0XAACGAECSnABQAAADYAAAGT/+IH//Xb///msAAIYAQJKcAE7gAANgAAAZP/8HP//Sv///iQAAhgBAkpwAUAAAA2AAABk/"
    "/qA//67f//81gAAAAAMJbW9vdgAAAGxtdmhkAAAAAAAAAAAAAAAAAAAD6AAAA+gAAQAAAQAAAAAAAAAAAAAAAAEAAAAAAAAAAAAA"
    "AAAAAAABAAAAAAAAAAAAAAAAAABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAgAAAjN0cmFrAAAAXHRraGQAAAADAAAA"
    "AAAAAAAAAAABAAAAAAAAA+gAAAAAAAAAAAAAAAAAAAAAAAEAAAAAAAAAAAAAAAAAAAABAAAAAAAAAAAAAAAAAABAAAAAABAAAAAQ"
    "AAAAAAAkZWR0cwAAABxlbHN0AAAAAAAAAAEAAAPoAAAAAAABAAAAAAGrbWRpYQAAACBtZGhkAAAAAAAAAAAAAAAAAABAAAAAQABV"
    "xAAAAAAALWhkbHIAAAAAAAAAAHZpZGUAAAAAAAAAAAAAAABWaWRlb0hhbmRsZXIAAAABVm1pbmYAAAAUdm1oZAAAAAEAAAAAAAAA"
    "AAAAACRkaW5mAAAAHGRyZWYAAAAAAAAAAQAAAAx1cmwgAAAAAQAAARZzdGJsAAAAjnN0c2QAAAAAAAAAAQAAAH52cDA5AAAAAAAA"
    "AAEAAAAAAAAAAAAAAAAAAAAAABAAEABIAAAASAAAAAAAAAABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAGP//AAAA"
    "FHZwY0MBAAAAAAqCAgICAAAAAAAUYnRydAAAAAAAAAOoAAAAAAAAABhzdHRzAAAAAAAAAAEAAAAEAAAQAAAAABRzdHNzAAAAAAAA"
    "AAEAAAABAAAAHHN0c2MAAAAAAAAAAQAAAAEAAAAEAAAAAQAAACRzdHN6AAAAAAAAAAAAAAAEAAAAJwAAABoAAAAaAAAAGgAAABRz"
    "dGNvAAAAAAAAAAEAAAAsAAAAYnVkdGEAAABabWV0YQAAAAAAAAAhaGRscgAAAAAAAAAAbWRpcmFwcGwAAAAAAAAAAAAAAAAtaWxz"
    "dAAAACWpdG9vAAAAHWRhdGEAAAABAAAAAExhdmY2Mi4xMi4xMDI="
)


# Who a token or code belongs to: the platform's account id (a number on some platforms, a string on others).
Owner = TypeVar("Owner", bound=Hashable)


# A tiny valid JPEG (1x1 px): the base of the images simulators serve.
JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f141d1a1f"
    "1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b080001000101011100ffc4001f0000"
    "010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000017d010203000411"
    "05122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445"
    "464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9"
    "aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100"
    "003f00fbfcffd9"
)


# --- rate limits ----------------------------------------------------------------------------------------------
@dataclass
class FixedWindow:
    """One counter over fixed windows aligned to the epoch, as platforms count: 900 s gives quarter hours starting
    at :00/:15/:30/:45, 86400 s the UTC day."""

    limit: int
    seconds: int
    used: int = 0
    index: int = 0  # which window `used` counts, now // seconds

    def roll(self, now: float) -> None:
        index = int(now // self.seconds)
        if index != self.index:
            self.index, self.used = index, 0

    def exhausted(self) -> bool:
        return self.used >= self.limit

    def resets_at(self) -> int:
        return (self.index + 1) * self.seconds


class RateLimit:
    """Windows that count the same requests (say 15 minutes and a day): a request is refused when any of them is
    full (whether a refused request still counts is the platform's rule: see `charge`)."""

    def __init__(self, *windows: FixedWindow) -> None:
        self.windows = list(windows)

    def roll(self, now: float) -> None:
        for window in self.windows:
            window.roll(now)

    def exhausted(self) -> bool:
        return any(window.exhausted() for window in self.windows)

    def take(self) -> None:
        for window in self.windows:
            window.used += 1

    def limits(self) -> list[int]:
        return [window.limit for window in self.windows]

    def usage(self) -> list[int]:
        return [window.used for window in self.windows]

    def set_limits(self, limits: Sequence[int]) -> None:
        for window, limit in zip(self.windows, limits, strict=True):
            window.limit = limit

    def set_usage(self, usage: Sequence[int], now: float) -> None:
        self.roll(now)  # so that the next request does not roll the usage just set away
        for window, used in zip(self.windows, usage, strict=True):
            window.used = used


def charge(limits: Sequence[RateLimit], *, count_refused: bool = False) -> bool:
    """Count one request against every limit it falls under; False when one of them was already full. A refused
    request counts in none of them, or, with `count_refused` (some platforms' rule: a 429 still uses up the
    windows), in all of them all the same, so usage can pass the limit."""
    allowed = not any(limit.exhausted() for limit in limits)
    if allowed or count_refused:
        for limit in limits:
            limit.take()
    return allowed


# --- OAuth ----------------------------------------------------------------------------------------------------
@dataclass
class Token(Generic[Owner]):
    owner: Owner
    scope: str
    expires_at: int


@dataclass(frozen=True)
class Issued:
    access_token: str
    refresh_token: str
    expires_at: int
    expires_in: int


# --- the simulator --------------------------------------------------------------------------------------------
class PlatformSimulator(Generic[Owner]):
    """A Starlette app (`self.app`) with the state and flows every platform shares; `Owner` is the type of the
    platform's account ids.

    A platform's simulator overrides:
    - `platform_routes()`: its API and its own /_sim routes (the base adds /_sim/config and /_sim/stats);
    - `rate_limits()`: its named `RateLimit`s (rolled on every API call, configurable as `<name>_limits` and
      `<name>_usage` in /_sim/config, reported as `<name>_usage` in /_sim/stats);
    - `rate_headers()`, `rate_limited()`, `server_error()`: its headers and bodies for `gate`, and
      `refused_requests_count` when its refused requests still count toward the limits;
    - `authenticate()`: who the request's token belongs to, or the platform's 401 (see `bearer`);
    - for the authorize redirect: `authorize_refused()`, `authorizing_owner()`, and maybe `authorize_answer()`;
    - `configure()` and `stats()` to add its own /_sim settings and figures (calling super()).
    It builds its token endpoint and webhook bodies on `new_code`/`redeem_code`/`issue_tokens`/`rotate_refresh`/
    `revoke` and `deliver`.
    """

    default_scope = "read"
    # Whether a request refused for a full rate-limit window still counts toward the windows (see `charge`).
    refused_requests_count = False

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        token_ttl: int = 6 * 3600,
        seed: int = 1,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.random = random.Random(seed)
        self.codes: dict[str, tuple[Owner, str]] = {}
        self.access_tokens: dict[str, Token[Owner]] = {}
        self.refresh_tokens: dict[str, tuple[Owner, str]] = {}
        # Scripted faults: statuses for the next API requests; after fail_later_in more requests, answer one with
        # fail_later_status; after expire_tokens_in more, expire every access token; blip_rate: random 503s.
        self.fail_next: list[int] = []
        self.fail_later_in: int | None = None
        self.fail_later_status = 429
        self.expire_tokens_in: int | None = None
        self.blip_rate = 0.0
        self.base_url = ""  # learned from the first API request: URLs in payloads point back at us
        self.requests: dict[str, int] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.delivery_timeout = 10.0
        self.app = Starlette(routes=[*self.platform_routes(), *self.sim_routes()])

    # --- hooks ----------------------------------------------------------------------------------------------
    def platform_routes(self) -> list[Route]:
        return []

    def rate_limits(self) -> dict[str, RateLimit]:
        return {}

    def rate_headers(self) -> dict[str, str]:
        return {}

    def rate_limited(self, headers: dict[str, str]) -> Response:
        return JSONResponse({"error": "rate limit exceeded"}, status_code=429, headers=headers)

    def server_error(self, status: int, headers: dict[str, str]) -> Response:
        return JSONResponse({"error": "server error"}, status_code=status, headers=headers)

    def authenticate(self, request: Request) -> tuple[Any, Response | None]:
        """(the account the request acts for, None) or (None, the platform's refusal)."""
        token = self.bearer(request)
        if token is None:
            return None, JSONResponse({"error": "invalid token"}, status_code=401)
        return token.owner, None

    # --- requests -------------------------------------------------------------------------------------------
    def _count(self, name: str) -> None:
        self.requests[name] = self.requests.get(name, 0) + 1

    async def gate(
        self, request: Request, name: str, charged: Sequence[RateLimit]
    ) -> tuple[Any, Response | None, dict[str, str]]:
        """What every API call goes through, in this order: counted, rate-limited against `charged`, scripted
        faults, then the token. Returns (account, None, rate headers) or (None, the response to send, headers)."""
        self._count(name)
        if not self.base_url:
            self.base_url = str(request.base_url).rstrip("/")
        now = time.time()
        for limit in self.rate_limits().values():
            limit.roll(now)  # all of them: the headers report every window, charged or not
        allowed = charge(charged, count_refused=self.refused_requests_count)
        headers = self.rate_headers()
        if not allowed:
            return None, self.rate_limited(headers), headers
        status = self.scripted_fault(now)
        if status is not None:
            return None, self.server_error(status, headers), headers
        account, error = self.authenticate(request)
        if error is not None:
            error.headers.update(headers)  # a refused token still shows the rate limits, as on the platforms
            return None, error, headers
        return account, None, headers

    # --- scripted faults ------------------------------------------------------------------------------------
    def scripted_fault(self, now: float) -> int | None:
        """Advance the countdowns by one request; the status to fail this request with, if any."""
        if self.expire_tokens_in is not None:
            self.expire_tokens_in -= 1
            if self.expire_tokens_in < 0:
                self.expire_tokens_in = None
                self.expire_tokens(now)
        if self.fail_later_in is not None:
            self.fail_later_in -= 1
            if self.fail_later_in < 0:
                self.fail_later_in = None
                self.fail_next.append(self.fail_later_status)
        if self.fail_next or (self.blip_rate and self.random.random() < self.blip_rate):
            return self.fail_next.pop(0) if self.fail_next else 503
        return None

    # --- OAuth ----------------------------------------------------------------------------------------------
    def new_code(self, owner: Owner, scope: str) -> str:
        code = secrets.token_hex(20)
        self.codes[code] = (owner, scope)
        return code

    def redeem_code(self, code: str) -> tuple[Owner, str] | None:
        """A code works once."""
        return self.codes.pop(code, None)

    def issue_tokens(self, owner: Owner, scope: str, now: float | None = None) -> Issued:
        access, refresh = secrets.token_hex(20), secrets.token_hex(20)
        expires_at = int(time.time() if now is None else now) + self.token_ttl
        self.access_tokens[access] = Token(owner, scope, expires_at)
        self.refresh_tokens[refresh] = (owner, scope)
        return Issued(access, refresh, expires_at, self.token_ttl)

    def rotate_refresh(self, refresh_token: str) -> tuple[Owner, str] | None:
        """Refresh tokens rotate: the one presented is spent whether or not new tokens follow."""
        return self.refresh_tokens.pop(refresh_token, None)

    def valid_token(self, access_token: str, now: float | None = None) -> Token[Owner] | None:
        token = self.access_tokens.get(access_token)
        if token is None or token.expires_at <= (time.time() if now is None else now):
            return None
        return token

    def bearer(self, request: Request) -> Token[Owner] | None:
        """The unexpired token of an `Authorization: Bearer` header."""
        header = request.headers.get("authorization", "")
        return self.valid_token(header.removeprefix("Bearer ").strip()) if header.startswith("Bearer ") else None

    def expire_tokens(self, now: float) -> None:
        for token in self.access_tokens.values():
            token.expires_at = int(now) - 1

    def revoke(self, owner: Owner) -> None:
        """Forget every access and refresh token of `owner` (deauthorization)."""
        for key in [k for k, v in self.access_tokens.items() if v.owner == owner]:
            del self.access_tokens[key]
        for key in [k for k, v in self.refresh_tokens.items() if v[0] == owner]:
            del self.refresh_tokens[key]

    def authorize_refused(self, request: Request) -> Response:
        """The answer to an authorize request with an unknown client or no redirect_uri."""
        return JSONResponse({"error": "invalid_request"}, status_code=400)

    def authorizing_owner(self, params: QueryParams) -> Owner:
        """Who grants access: the simulator has no login page, so the request (or a default) says."""
        raise NotImplementedError

    def authorize_answer(self, state: str, code: str, scope: str) -> dict[str, str]:
        """The query the authorize redirect carries back to the client."""
        return {"state": state, "code": code, "scope": scope}

    async def authorize(self, request: Request) -> Response:
        """The consent screen, granted at once: `sim_deny` refuses, `sim_grant_scope` grants other scopes than
        asked (as a user unticking boxes)."""
        params = request.query_params
        redirect_uri = params.get("redirect_uri", "")
        if params.get("client_id") != self.client_id or not redirect_uri:
            return self.authorize_refused(request)
        state = params.get("state", "")
        if params.get("sim_deny"):
            return RedirectResponse(f"{redirect_uri}?{urlencode({'state': state, 'error': 'access_denied'})}", 302)
        owner = self.authorizing_owner(params)
        scope = params.get("sim_grant_scope") or params.get("scope", self.default_scope)
        code = self.new_code(owner, scope)
        return RedirectResponse(f"{redirect_uri}?{urlencode(self.authorize_answer(state, code, scope))}", 302)

    # --- webhooks -------------------------------------------------------------------------------------------
    def delivery_headers(self, body: bytes) -> dict[str, str]:
        """Headers a platform adds to a delivery, such as a signature over the body."""
        return {}

    async def deliver(self, callback: str, event: dict[str, Any], attempts: int = 4) -> int | None:
        """POST `event` as JSON to `callback` until it answers 200, pausing longer after each failure; record the
        event with the last status (None when nothing answered)."""
        status = None
        for attempt in range(attempts):
            try:
                async with httpx.AsyncClient(timeout=self.delivery_timeout) as client:
                    outgoing = client.build_request("POST", callback, json=event)
                    outgoing.headers.update(self.delivery_headers(outgoing.content))
                    status = (await client.send(outgoing)).status_code
                if status == 200:
                    break
            except httpx.HTTPError:
                status = None
            await asyncio.sleep(0.2 * (attempt + 1))
        self.deliveries.append({"event": event, "status": status})
        return status

    # --- /_sim controls -------------------------------------------------------------------------------------
    def configure(self, body: dict[str, Any]) -> None:
        """Apply /_sim/config settings (keys absent are left as they are)."""
        if "fail_next" in body:
            self.fail_next = list(body["fail_next"])
        if "blip_rate" in body:
            self.blip_rate = float(body["blip_rate"])
        if "token_ttl" in body:
            self.token_ttl = int(body["token_ttl"])
        now = time.time()
        for name, limit in self.rate_limits().items():
            if f"{name}_limits" in body:
                limit.set_limits(body[f"{name}_limits"])
            if f"{name}_usage" in body:
                limit.set_usage(body[f"{name}_usage"], now)
        for key in ("fail_later_in", "fail_later_status", "expire_tokens_in"):
            if key in body:
                setattr(self, key, body[key])
        if body.get("expire_tokens"):
            self.expire_tokens(now)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            **{f"{name}_usage": limit.usage() for name, limit in self.rate_limits().items()},
            "deliveries": self.deliveries[-20:],
        }

    async def sim_config(self, request: Request) -> Response:
        self.configure(await request.json())
        return JSONResponse(self.stats())

    async def sim_stats(self, _: Request) -> Response:
        return JSONResponse(self.stats())

    def sim_routes(self) -> list[Route]:
        return [
            Route("/_sim/config", self.sim_config, methods=["POST"]),
            Route("/_sim/stats", self.sim_stats, methods=["GET"]),
        ]
