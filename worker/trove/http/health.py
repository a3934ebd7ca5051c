from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from trove.queries.health import PING

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    try:
        async with request.app.state.pool.connection(timeout=2.0) as conn:
            await conn.execute(PING)
    except Exception as error:  # the service is up, the database is not: say so
        return JSONResponse({"status": "degraded", "database": f"unavailable: {type(error).__name__}"}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})
