"""Media URLs for readers (seed 7.2, 7.3): our copy through a signed URL (1 hour) once downloaded, else
the platform's original URL."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from trove.media.storage import Storage
from trove.queries.media import MEDIA_FOR_POST

SIGNED_URL_TTL = 3600


async def media_for_post(conn: AsyncConnection[Any], storage: Storage, post_id: str) -> list[dict[str, Any]]:
    cur = await conn.execute(MEDIA_FOR_POST, (post_id,))
    items = []
    for media_id, key, status, original, path, content_type, size in await cur.fetchall():
        copied = status == "downloaded" and path is not None
        items.append(
            {
                "id": media_id,
                "media_key": key,
                "status": status,
                "url": await storage.signed_url(path, SIGNED_URL_TTL) if copied else original,
                "copy": copied,
                "content_type": content_type,
                "byte_size": size,
            }
        )
    return items
