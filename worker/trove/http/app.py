"""The HTTP service: FastAPI on 127.0.0.1:54321 locally. Routes live in one module per concern."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from trove.config import database_url
from trove.crypto import KeyRing
from trove.http import health, imports, keys, media, oauth, openapi, read, sync, wake, webhooks
from trove.http.cache import cache_from_environment
from trove.http.fast_read import CachedReads
from trove.http.local_auth import mount_local_auth
from trove.http.relay import through_the_relay
from trove.http.versions import ArchiveVersions
from trove.media.storage import storage_from_environment
from trove.platforms import load_platforms
from trove.web.pages import install as install_web_app

MAX_REQUEST_BYTES = 1024 * 1024


def served_app() -> FastAPI:
    """The app of one process of `trove serve --processes N`: its logs redacted, as in the parent."""
    from trove.http.log_redaction import install_log_redaction

    install_log_redaction()
    return create_app()


def create_app(conninfo: str | None = None, ring: KeyRing | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            conninfo or database_url(),
            min_size=1,
            max_size=10,
            kwargs={"autocommit": True},
            open=False,
        )
        await pool.open(wait=False)
        app.state.pool = pool
        app.state.conninfo = conninfo or database_url()
        app.state.versions = ArchiveVersions(app.state.conninfo, pool)
        app.state.ring = ring or KeyRing.from_environment()
        app.state.platforms = load_platforms()
        async with httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0)) as http:
            app.state.http = http
            app.state.storage = storage_from_environment(http)
            app.state.cache = cache_from_environment()
            listener = asyncio.create_task(app.state.versions.run())
            try:
                yield
            finally:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)  # whatever it ended with, shut down
        await pool.close()

    # Every body is capped (routes that take events set a smaller cap): 413 before it is read whole.
    app = FastAPI(title="Trove", version="0.1.0", lifespan=lifespan, max_body_size=MAX_REQUEST_BYTES)

    @app.exception_handler(RecursionError)
    async def too_deep(_: Request, __: RecursionError) -> JSONResponse:
        # A body nested deeper than Python's parser recurses: the caller's input, not our failure.
        return JSONResponse({"error": "invalid_json", "detail": "the body is nested too deeply"}, status_code=400)

    @app.exception_handler(psycopg.errors.DataError)
    async def bad_data(_: Request, error: psycopg.errors.DataError) -> JSONResponse:
        # Input Postgres cannot take (a value out of range, a malformed literal): the caller's mistake.
        reason = error.diag.message_primary or str(error) or "a value Postgres cannot take"
        return JSONResponse({"detail": f"invalid input: {reason}"}, status_code=400)

    @app.exception_handler(ValueError)
    async def bad_value(_: Request, error: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    app.include_router(health.router)
    # The URLs the Edge Functions relay (supabase/functions/) answer only through it once it is set up.
    app.include_router(oauth.router, dependencies=[Depends(through_the_relay)])
    app.include_router(webhooks.router, dependencies=[Depends(through_the_relay)])
    app.include_router(media.router)
    app.include_router(read.router)
    app.include_router(keys.router)
    app.include_router(sync.router)
    app.include_router(imports.router)
    app.include_router(wake.router)
    mount_local_auth(app)  # Supabase Auth's REST API, on the local stack only (on Supabase: its own Auth)
    install_web_app(app)  # the web app (/app): pages over the same reads, under RLS as the signed-in user
    app.add_middleware(CachedReads)  # read API cache hits answered before routing
    openapi.install(app)  # the schema as the service really answers (statuses, security, media types)
    return app
