"""Media for readers: signed, expiring URLs of our copies (local backend served here, with Range for
video), and a post's media list for its owner."""

from __future__ import annotations

import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from trove.http.auth import User, as_user, current_user
from trove.media.storage import LocalStorage
from trove.media.urls import media_for_post
from trove.queries.posts import VISIBLE_POST

router = APIRouter()
TYPES = {
    "jpg": "image/jpeg",
    "heic": "image/heic",
    "heif": "image/heif",
    "avif": "image/avif",
    "m4a": "audio/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "ogg": "audio/ogg",
    "aac": "audio/aac",
    # Activity files kept from an export, as they came.
    "gpx": "application/gpx+xml",
    "tcx": "application/vnd.garmin.tcx+xml",
    "fit": "application/vnd.ant.fit",
    "gz": "application/gzip",
}


@router.get("/media/{path:path}", response_model=None)
async def serve_media(path: str, request: Request, expires: str = "", sig: str = "") -> Response:
    storage = request.app.state.storage
    if not isinstance(storage, LocalStorage):
        return JSONResponse({"error": "not_here", "detail": "media is served by Supabase Storage"}, status_code=404)
    if not expires or not sig:
        return JSONResponse({"error": "unsigned", "detail": "media URLs must be signed (expires and sig)"}, 403)
    if not storage.verify(path, expires, sig):
        return JSONResponse({"error": "invalid_signature", "detail": "the signature is wrong or has expired"}, 403)
    try:
        file = storage.file(path)
    except FileNotFoundError:
        file = None
    if file is None or not file.is_file():
        return JSONResponse({"error": "not_found", "detail": "no such media"}, status_code=404)
    ext = file.suffix.lstrip(".")
    media_type = TYPES.get(ext) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
    if not media_type.startswith(("image/", "video/", "audio/")):
        # An activity file from an export (GPX is XML): downloaded, never rendered on our origin.
        headers["Content-Disposition"] = "attachment"
    return FileResponse(file, media_type=media_type, headers=headers)


@router.get("/api/posts/{post_id}/media")
async def post_media(post_id: str, request: Request, user: Annotated[User, Depends(current_user)]) -> dict[str, Any]:
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await as_user(conn, user.id)  # RLS: another user's post looks exactly like a missing one
        found = await (await conn.execute(VISIBLE_POST, (post_id,))).fetchone()
        if found is None:
            raise HTTPException(404, "no such post")
        return {"post_id": post_id, "media": await media_for_post(conn, request.app.state.storage, post_id)}
