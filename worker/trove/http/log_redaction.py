"""Logging for the processes that serve HTTP (`trove serve`, the simulators): no secret reaches a log line.

uvicorn's access log writes each request's path and query string, so an OAuth callback's `code` and `state`,
a webhook handshake's `hub.verify_token` or a secret webhook path segment would land in the log as they came.
Here uvicorn installs no handlers of its own (`log_config=None`): its records propagate to the root handler,
whose `RedactingFilter` (trove.redact) scrubs every formatted line. Its access and error loggers also get
`ArgsRedactor`, which scrubs a record's arguments in place at the source, keeping their shape (uvicorn's
AccessFormatter unpacks them), so a handler attached to them later still never sees a secret."""

from __future__ import annotations

import logging
import socket
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


def install_log_redaction(level: int = logging.INFO) -> None:
    """Root handler with redaction (every line), plus redaction at the source on uvicorn's loggers."""
    configure_logging(level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        if not any(isinstance(f, ArgsRedactor) for f in logger.filters):
            logger.addFilter(ArgsRedactor())


def serve_redacted(app: Any, port: int, host: str = "127.0.0.1", *, access_log: bool = True) -> None:
    """uvicorn in the foreground, its logs (access log included) through the redacting root handler."""
    install_log_redaction()
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=None, access_log=access_log)


def serve_processes(
    factory: str, processes: int, port: int, host: str = "127.0.0.1", *, access_log: bool = True
) -> None:
    """Several processes on one port (uvicorn's supervisor): each builds its app through `factory`
    ("module:function"), which must install the log redaction itself (a child process starts afresh)."""
    install_log_redaction()
    config = uvicorn.Config(
        factory, factory=True, workers=processes, host=host, port=port, log_level="info", log_config=None,
        access_log=access_log,
    )  # fmt: skip
    Multiprocess(config, sockets=[listening_socket(host, port)]).run()


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket the processes share, as uvicorn would bind it but created as TCP explicitly: asyncio sets
    TCP_NODELAY only on connections of a socket whose protocol says TCP, and without it every keep-alive
    answer (headers and body written apart) waits out Nagle and a delayed ACK: 40 ms a request."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock
