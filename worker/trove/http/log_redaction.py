"""Logging for the processes that serve HTTP (`trove serve`, the simulators): no secret reaches a log line.

uvicorn's access log writes each request's path and query string, so an OAuth callback's `code` and `state`,
a webhook handshake's `hub.verify_token` or a secret webhook path segment would land in the log as they came.
Here uvicorn installs no handlers of its own (`log_config=None`): its records propagate to the root handler,
whose `RedactingFilter` (trove.redact) scrubs every formatted line. Its access and error loggers also get
`ArgsRedactor`, which scrubs a record's arguments in place at the source, keeping their shape (uvicorn's
AccessFormatter unpacks them), so a handler attached to them later still never sees a secret."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from trove.redact import configure_logging, redact

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def _scrub(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class ArgsRedactor(logging.Filter):
    """Scrubs a record's string arguments, leaving their number and kinds as they were (and its message, when it
    has no arguments: a template is left alone, redacting `code=%s` would break its formatting)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.args and isinstance(record.msg, str):
            record.msg = redact(record.msg)
        elif isinstance(record.args, tuple):
            record.args = tuple(_scrub(a) for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: _scrub(v) for k, v in record.args.items()}
        return True


def access_log_wanted() -> bool:
    """The access log is on unless TROVE_ACCESS_LOG=0."""
    return os.environ.get("TROVE_ACCESS_LOG", "1") != "0"


def install_log_redaction(level: int = logging.INFO) -> None:
    """Root handler with redaction (every line), plus redaction at the source on uvicorn's loggers. With the
    access log off, its logger reaches no handler at all (uvicorn logs a request only when one would take it)."""
    configure_logging(level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = name != "uvicorn.access" or access_log_wanted()
        if not any(isinstance(f, ArgsRedactor) for f in logger.filters):
            logger.addFilter(ArgsRedactor())


def serve_redacted(app: Any, port: int, host: str = "127.0.0.1") -> None:
    """uvicorn in the foreground, its logs (access log included) through the redacting root handler."""
    install_log_redaction()
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=None, access_log=access_log_wanted())


def serve_processes(factory: str, processes: int, port: int, host: str = "127.0.0.1") -> None:
    """Several processes on one port (uvicorn's supervisor): each builds its app through `factory`
    ("module:function"), which must install the log redaction itself (a child process starts afresh)."""
    install_log_redaction()
    config = uvicorn.Config(
        factory, factory=True, workers=processes, host=host, port=port, log_level="info", log_config=None,
        access_log=access_log_wanted(),
    )  # fmt: skip
    try:
        sock = listening_socket(host, port)
    except OSError as error:
        logging.getLogger("uvicorn.error").error("cannot listen on %s port %s: %s", host, port, error)
        sys.exit(3)  # as uvicorn exits when it cannot bind
    logging.getLogger("uvicorn.error").info("listening on http://%s:%s with %s processes", host, port, processes)
    Multiprocess(config, sockets=[sock]).run()


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket the processes share, as uvicorn would bind it but created as TCP explicitly: asyncio sets
    TCP_NODELAY only on connections of a socket whose protocol says TCP, and without it every keep-alive
    answer (headers and body written apart) waits out Nagle and a delayed ACK: 40 ms a request."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
