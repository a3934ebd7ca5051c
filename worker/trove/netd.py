"""`trove netd`: the local stand-in for pg_net's background worker (supabase/local/03_pg_net.sql). It performs
the requests the database queued with net.http_post / net.http_get, once each, without retrying, and keeps
each answer in net._http_response, as pg_net does on Supabase. Woken by NOTIFY trove_net; also polls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx
import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from trove.redact import redact

log = logging.getLogger("trove.netd")

BATCH = 16
# Take the next requests (gone from the queue once taken: pg_net sends each once).
TAKE = """
    delete from net.http_request_queue
    where id in (select id from net.http_request_queue order by id limit %s for update skip locked)
    returning id, method, url, headers, body, timeout_milliseconds
"""
ANSWERED = """
    insert into net._http_response (id, status_code, content_type, headers, content, timed_out, error_msg)
    values (%s, %s, %s, %s, %s, %s, %s)
"""
# Answers are kept six hours, as pg_net's default ttl.
PURGE = "delete from net._http_response where created < now() - interval '6 hours'"


async def perform(http: httpx.AsyncClient, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """One request, its answer as a _http_response row; whatever goes wrong is that request's error (a URL
    or header it cannot even build included), never the dispatcher's. The timeout covers the whole request."""
    request_id, method, url, headers, body, timeout_ms = row
    try:
        async with asyncio.timeout(max(timeout_ms, 1) / 1000):
            response = await http.request(
                method, url, headers={str(k): str(v) for k, v in (headers or {}).items()},
                content=bytes(body) if body is not None else None,
            )  # fmt: skip
    except (TimeoutError, httpx.TimeoutException):
        return (request_id, None, None, None, None, True, "Timeout was reached")
    except Exception as error:  # a request it cannot make: recorded, as pg_net records it
        return (request_id, None, None, None, None, False, redact(f"{type(error).__name__}: {error}")[:500])
    return (
        request_id,
        response.status_code,
        response.headers.get("content-type"),
        Jsonb(dict(response.headers)),
        response.text[:100_000],
        False,
        None,
    )


async def run(conninfo: str, stopping: asyncio.Event, poll_interval: float = 1.0) -> None:
    wake = asyncio.Event()

    async def listen() -> None:
        while not stopping.is_set():
            try:
                async with await AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute("listen trove_net")
                    wake.set()
                    async for _ in conn.notifies():
                        wake.set()
            except psycopg.OperationalError:
                await asyncio.sleep(1.0)

    listener = asyncio.create_task(listen())
    async with httpx.AsyncClient(follow_redirects=False) as http:
        while not stopping.is_set():
            wake.clear()
            try:
                async with await AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    while rows := await (await conn.execute(TAKE, (BATCH,))).fetchall():
                        answers = await asyncio.gather(*(perform(http, row) for row in rows))
                        async with conn.cursor() as cur:
                            await cur.executemany(ANSWERED, answers)
                    await conn.execute(PURGE)
            except psycopg.OperationalError as error:
                log.warning("netd: database unavailable (%s)", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=poll_interval)
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
