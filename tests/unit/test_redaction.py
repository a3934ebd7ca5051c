"""Log redaction alone: which values every log line masks, and uvicorn's access records keeping their shape."""

from __future__ import annotations

import logging

import pytest

from trove.http.log_redaction import ArgsRedactor
from trove.redact import redact


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "GET /functions/v1/oauth-strava/callback?state=s1&code=c1&error=access_denied HTTP/1.1",
            "GET /functions/v1/oauth-strava/callback?state=[redacted]&code=[redacted]&error=[redacted] HTTP/1.1",
        ),
        (
            "POST /functions/v1/webhook-strava/abc/def/ HTTP/1.1",
            "POST /functions/v1/webhook-strava/[redacted]/[redacted]/ HTTP/1.1",
        ),
        ("POST /functions/v1/webhook-strava HTTP/1.1", "POST /functions/v1/webhook-strava HTTP/1.1"),
        (
            "GET /api/posts?q=bread&cursor=c&hub%2Everify_token=v&client_secret=x&sig=y HTTP/1.1",
            "GET /api/posts?q=bread&cursor=c&hub%2Everify_token=[redacted]&client_secret=[redacted]&sig=[redacted]"
            " HTTP/1.1",
        ),
        (
            "https://x.test/cb?refresh_token=r&id_token=i&error_code=5",
            "https://x.test/cb?refresh_token=[redacted]&id_token=[redacted]&error_code=5",
        ),
    ],
)
def test_redaction_rules(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_args_redactor_keeps_uvicorns_access_record_shape() -> None:
    from uvicorn.logging import AccessFormatter

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/functions/v1/oauth-strava/callback?code=abc&state=def", "1.1", 400),
        None,
    )
    assert ArgsRedactor().filter(record)
    line = AccessFormatter("%(client_addr)s - %(request_line)s %(status_code)s", use_colors=False).format(record)
    path = "/functions/v1/oauth-strava/callback?code=[redacted]&state=[redacted]"
    assert line == f"127.0.0.1:5000 - GET {path} HTTP/1.1 400 Bad Request"
