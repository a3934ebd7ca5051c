"""Keeps secrets out of logs and stored error texts: every token value the process handles is
registered here, and text is scrubbed of them before it leaves, along with:

- the value of any secret-looking query parameter, wherever it appears (`code`, `state`, `token`, `key`,
  `secret`, `sig`, `access_token`, `refresh_token`, `id_token`, `client_secret`, `password`,
  `hub.verify_token`, `hub.challenge`, and names ending in `_token`, `_secret` or `_key`);
- on our ingress paths, `/functions/v1/oauth-<platform>/...` and `/functions/v1/webhook-<platform>...`, every
  query value, and on webhook paths every path segment after `webhook-<platform>/` (the callback URL's
  secret); the path itself stays readable: `/functions/v1/webhook-<platform>/[redacted]?hub.mode=[redacted]`;
- bearer tokens."""

from __future__ import annotations

import logging
import re

_SECRETS: set[str] = set()
MASK = "[redacted]"
_VALUE = r"[^&\s\"'#<>]+"
_SECRET_NAMES = (
    r"(?:hub(?:\.|%2E))?(?:verify_token|challenge)"
    r"|access_token|refresh_token|id_token|client_secret|code|state|token|key|secret|sig|signature|password"
    r"|[A-Za-z0-9_]*_(?:token|secret|key)"
)
# A parameter name starts the string or follows ?, &, ;, whitespace or a quote: "error_code=" is not "code=".
_QUERY_SECRET = re.compile(rf"((?:^|(?<=[?&;\s\"',(]))(?:{_SECRET_NAMES})=){_VALUE}", re.IGNORECASE)
_INGRESS = re.compile(
    r"(?P<base>/functions/v1/(?P<kind>oauth|webhook)-[A-Za-z0-9_-]+)"
    r"(?P<rest>/[^\s?#\"'<>]*)?(?:\?(?P<query>[^\s#\"'<>]*))?"
)
_BEARER = re.compile(r"((?:Bearer|DPoP)\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def _mask_query(query: str) -> str:
    """Every value of a query string masked, the names kept: `a=[redacted]&b=[redacted]`."""
    return "&".join(
        f"{part.split('=', 1)[0]}={MASK}" if "=" in part else (MASK if part else part) for part in query.split("&")
    )


def _ingress(match: re.Match[str]) -> str:
    rest = match["rest"] or ""
    if match["kind"] == "webhook" and rest.strip("/"):
        rest = "/" + "/".join(MASK if segment else segment for segment in rest[1:].split("/"))
    query = match["query"]
    return match["base"] + rest + ("" if query is None else "?" + _mask_query(query))


def register_secret(value: str | None) -> None:
    if value and len(value) >= 6:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _INGRESS.sub(_ingress, text)
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, text)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)


class RedactingFilter(logging.Filter):
    """Attach to handlers: formats the record's message and scrubs it (and any exception text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
