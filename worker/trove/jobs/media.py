"""Media copies (seed 5): one file from the platform into storage per job."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from trove.jobs import JobContext, heartbeat
from trove.media.download import DownloadFailure
from trove.media.download import download as download_file
from trove.media.storage import storage_path
from trove.platforms.base import SyncError
from trove.queries.media import FRESH_MEDIA_URL, LOCK_ARCHIVE_VERSION, MEDIA_COPIED, MEDIA_JOB
from trove.queries.queue import COMPLETE_WORK, FAIL_WORK, GIVE_UP_WORK
from trove.redact import redact
from trove.tokens import fresh_account

log = logging.getLogger("trove.worker")
QUEUE = "media_downloads"  # the work table this job drains


async def copy_media_files(ctx: JobContext, ids: list[str]) -> None:
    for media_id in ids:
        await copy_media(ctx, media_id)


async def copy_media(ctx: JobContext, media_id: str) -> None:
    """Copy one media file into storage: 404/410 -> unavailable; 403 -> ask the connector for a fresh URL
    and try once more; oversize or not media -> failed at once; other trouble -> backoff, then failed."""
    async with ctx.pool.connection() as conn:
        cur = await conn.execute(MEDIA_JOB, (media_id,))
        row = await cur.fetchone()
    if row is None:
        return
    user_id, platform, media_key, url, post_data, account_id = row
    host = urlsplit(url).hostname or ""
    semaphore = ctx.host_slots.setdefault(host, asyncio.Semaphore(ctx.per_host))
    outcome: tuple[str, str] | None = None
    async with semaphore, heartbeat(ctx, QUEUE, media_id):
        for attempt in (1, 2):
            try:
                done = await download_file(
                    ctx.http, ctx.storage, url, lambda ext: storage_path(user_id, platform, media_key, ext)
                )
            except DownloadFailure as failure:
                if failure.kind == "expired" and attempt == 1:
                    fresh = await fresh_media_url(ctx, user_id, platform, account_id, post_data, media_key)
                    if fresh:
                        url = fresh
                        continue
                    outcome = ("gone", f"{failure}; the platform has no fresh URL for it")
                else:
                    outcome = (failure.kind, str(failure))
                break
            async with ctx.pool.connection() as conn, conn.transaction():
                await conn.execute(LOCK_ARCHIVE_VERSION, (user_id,))
                await conn.execute(MEDIA_COPIED, (done.path, done.content_type, done.size, done.sha256, url, media_id))
                await conn.execute(COMPLETE_WORK, (QUEUE, media_id, ctx.worker_id))
            return
    kind, message = outcome or ("transient", "no outcome")
    message = redact(message)
    log.info("media %s (%s): %s", media_id, kind, message)
    async with ctx.pool.connection() as conn:
        if kind == "rejected":
            await conn.execute(GIVE_UP_WORK, (QUEUE, media_id, ctx.worker_id, message))
        else:
            await conn.execute(FAIL_WORK, (QUEUE, media_id, ctx.worker_id, message, kind == "gone"))


async def fresh_media_url(
    ctx: JobContext, user_id: str, platform: str, account_id: str, post_data: dict[str, Any], media_key: str
) -> str | None:
    connector = ctx.connectors.get(platform)
    if connector is None:
        return None
    try:
        async with ctx.pool.connection() as conn:
            account = await fresh_account(conn, ctx.ring, connector, ctx.http, account_id)
        fresh = await connector.refresh_media_url(ctx.http, account, post_data, media_key)
    except (SyncError, httpx.HTTPError, LookupError) as error:
        log.info("media: could not refresh the URL of %s: %s", media_key, redact(str(error)))
        return None
    if fresh:
        async with ctx.pool.connection() as conn:
            await conn.execute(FRESH_MEDIA_URL, (fresh, user_id, platform, media_key))
    return fresh
