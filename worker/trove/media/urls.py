"""Media URLs for readers (seed 7.2, 7.3): our copy through a signed URL (1 hour) once downloaded, else
the platform's original URL."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from trove.media.storage import Storage

SIGNED_URL_TTL = 3600


async def media_for_post(conn: AsyncConnection[Any], storage: Storage, post_id: str) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """
        select md.id::text, md.media_key, md.status::text, md.original_url, md.storage_path, md.content_type,
               md.byte_size
        from public.posts as p
        join public.ingested_posts as ip on ip.platform = p.platform and ip.platform_post_id = p.platform_post_id
        join public.post_media as pm on pm.ingested_post_id = ip.id
        join public.media_downloads as md on md.id = pm.media_download_id
        where p.id = %s
        order by pm.position, md.created_at, md.media_key
        """,
        (post_id,),
    )
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
