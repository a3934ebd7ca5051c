"""Import an export file (POST /api/import): the signed-in user uploads it as the request body; it is
streamed to the import directory and queued for the worker, and its progress is read at /api/import/{id}
(and, once the file is read, as the sync log of type 'import')."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from trove.config import state_dir
from trove.http.auth import User, as_user, current_user, known_user
from trove.imports.archive import Limits
from trove.imports.intake import Received, TooLarge, receive
from trove.queries.imports import IMPORT_STATUS

router = APIRouter(prefix="/api")

# The queue's states as the owner reads them.
STATES = {
    "pending": "queued",
    "processing": "running",
    "failed": "retrying",
    "completed": "completed",
    "dead_letter": "failed",
}


# The file is checked against the import limit as it streams (TROVE_IMPORT_MAX_BYTES, read per request), not
# against the service's 1 MiB body cap for everything else.
UNCAPPED = 2**50


@router.post("/import", status_code=202, response_model=None, max_body_size=UNCAPPED)
async def upload_export(request: Request, user: Annotated[User, Depends(known_user)]) -> JSONResponse:
    received = await take_upload(request, user.id)
    body = {
        "import_id": received.import_id,
        "status_url": f"/api/import/{received.import_id}",
        "joined": not received.new,
        "sha256": received.sha256,
        "byte_size": received.size,
    }
    return JSONResponse(body, status_code=202)


async def take_upload(request: Request, user_id: str) -> Received:
    """The export file as the request body (the API's and the web app's upload), streamed to the import
    directory and queued: 413 over the import limit, 415 for a form, 400 for an empty file."""
    limit = Limits.from_environment().total_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the file is over the import limit of {limit} bytes")
    if request.headers.get("content-type", "").startswith("multipart/"):
        # A form would be spooled whole before any check: the file goes as the body itself.
        raise HTTPException(415, "send the export file itself as the request body, not as a form")
    async with request.app.state.pool.connection() as conn:
        try:
            return await receive(conn, state_dir(), user_id, file_name(request), request.stream())
        except TooLarge as error:
            raise HTTPException(413, str(error)) from error
        except ValueError as error:
            raise HTTPException(400, str(error)) from error


def file_name(request: Request) -> str | None:
    """X-File-Name (UTF-8, as browsers send it; headers arrive as Latin-1) or ?name=."""
    header = request.headers.get("x-file-name")
    if header is not None:
        try:
            return header.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return header
    return request.query_params.get("name")


@router.get("/import/{import_id}")
async def import_status(
    import_id: str, request: Request, user: Annotated[User, Depends(current_user)]
) -> dict[str, Any]:
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await as_user(conn, user.id)  # RLS: only the owner's imports exist here
        cur = await conn.execute(IMPORT_STATUS, (import_id,))
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(404, "no such import")
    names = [
        "import_id",
        "status",
        "platform",
        "account_id",
        "sync_log_id",
        "file_name",
        "byte_size",
        "progress",
        "error_message",
        "created_at",
        "started_at",
        "completed_at",
    ]
    result = dict(zip(names, row, strict=True))
    result["status"] = STATES.get(result["status"], result["status"])
    for field in ("created_at", "started_at", "completed_at"):
        if result[field] is not None:
            result[field] = result[field].isoformat()
    if result["sync_log_id"]:
        result["sync_status_url"] = f"/api/sync/{result['sync_log_id']}/status"
    return result
