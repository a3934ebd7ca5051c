"""What keeps the web app's pages safe to open and its forms safe to submit: a CSRF token on every form (and
on the app's own fetches) and the headers every page carries (a strict Content-Security-Policy among them).

The CSRF token is the HMAC, under a key derived from the service's token keys, of a random per-browser cookie
value and of who is signed in: a page from another site cannot read it (same-origin policy), a value planted
in the cookie by someone else is useless without the key, and a token from before signing in does not work
after. A request that says it comes from another origin (Origin, Sec-Fetch-Site) is refused before that."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, Response

from trove.config import public_url
from trove.web.session import cookie_name, secure_cookies

CSRF_COOKIE = "trove_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def csrf_key(request: Request) -> bytes:
    key: bytes | None = getattr(request.app.state, "csrf_key", None)
    if key is None:
        ring = request.app.state.ring  # its current key, through HMAC: never the key itself
        key = hmac.new(ring.keys[ring.current], b"trove web app csrf", hashlib.sha256).digest()
        request.app.state.csrf_key = key
    return key


def browser_value(request: Request) -> str:
    """This browser's CSRF cookie value, made (and set on the response by `finish`) when it has none."""
    value = getattr(request.state, "csrf_browser", None)
    if value is None:
        sent = request.cookies.get(cookie_name(CSRF_COOKIE), "")
        value = sent if 32 <= len(sent) <= 64 and sent.replace("-", "").replace("_", "").isalnum() else ""
        if not value:
            value = secrets.token_urlsafe(32)
            request.state.csrf_new = True
        request.state.csrf_browser = value
    return str(value)


def csrf_token(request: Request, user_id: str | None) -> str:
    message = f"{browser_value(request)}|{user_id or ''}".encode()
    return hmac.new(csrf_key(request), message, hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    ours = {_origin(public_url()), _origin(str(request.base_url))}
    return _origin(origin) in ours


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_csrf(request: Request, user_id: str | None, sent: str | None) -> None:
    if not same_origin(request):
        raise HTTPException(403, "this form was sent from another site")
    if not request.cookies.get(cookie_name(CSRF_COOKIE)):
        raise HTTPException(403, "this form has expired (no session cookie): reload the page and try again")
    expected = csrf_token(request, user_id)
    if not sent or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, "this form has expired: reload the page and try again")


def content_security_policy(media_origins: list[str]) -> str:
    media = " ".join(["'self'", *media_origins])
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {media} data:",
            f"media-src {media}",
            "connect-src 'self'",
            "font-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


def finish(request: Request, response: Response, media_origins: list[str]) -> Response:
    """The headers every page and answer of the app carries, and the CSRF cookie when it was made here."""
    response.headers["Content-Security-Policy"] = content_security_policy(media_origins)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    if getattr(request.state, "csrf_new", False):
        response.set_cookie(
            cookie_name(CSRF_COOKIE),
            browser_value(request),
            max_age=365 * 86400,
            path="/",
            secure=secure_cookies(),
            httponly=True,
            samesite="lax",
        )
    return response
