"""Imports of export files handed in through POST /api/import: one file per job, its lease kept alive while
it runs (a big export takes minutes); an import killed halfway is claimed again and resumes."""

from __future__ import annotations

import contextlib
import functools
import logging

from trove.config import state_dir
from trove.imports.runner import ImportRunner, imports_dir
from trove.jobs import JobContext, heartbeat
from trove.platforms import load_platforms
from trove.platforms.base import Platform
from trove.queries.imports import IMPORT_JOB, UNFINISHED_WITH_FILE
from trove.queries.queue import COMPLETE_WORK, FAIL_WORK
from trove.redact import redact

log = logging.getLogger("trove.worker")
QUEUE = "imports"  # the work table this job drains


@functools.cache
def export_platforms() -> dict[str, Platform]:
    """Every platform that reads an export: no credentials are needed to read a file."""
    return {name: p for name, p in load_platforms().items() if p.export is not None}


async def run_imports(ctx: JobContext, ids: list[str]) -> None:
    for import_id in ids:
        await run_import(ctx, import_id)


async def run_import(ctx: JobContext, import_id: str) -> None:
    runner = ImportRunner(ctx.pool, export_platforms(), ctx.storage, ctx.http, state_dir())
    try:
        async with heartbeat(ctx, QUEUE, import_id):
            result = await runner.run(import_id)
    except Exception as error:  # retried with backoff: the database or a PDS was away
        message = redact(f"{type(error).__name__}: {error}")
        log.warning("import %s failed: %s", import_id, message)
        async with ctx.pool.connection() as conn:
            cur = await conn.execute(
                FAIL_WORK, (QUEUE, import_id, ctx.worker_id, message, isinstance(error, LookupError))
            )
            row = await cur.fetchone()
        if row is not None and row[0] == "dead_letter":  # out of attempts: the upload is not needed any more
            await remove_upload(ctx, import_id)
        return
    async with ctx.pool.connection() as conn:
        if result.status == "failed":
            await conn.execute(FAIL_WORK, (QUEUE, import_id, ctx.worker_id, result.error or "failed", True))
        else:
            await conn.execute(COMPLETE_WORK, (QUEUE, import_id, ctx.worker_id))
    await remove_upload(ctx, import_id)  # read to the end, or never readable
    log.info("import %s: %s (%s records)", import_id, result.status, result.progress.records)


async def remove_upload(ctx: JobContext, import_id: str) -> None:
    """The uploaded file, once its import has ended (unless the same file waits again for a newer import)."""
    async with ctx.pool.connection() as conn:
        cur = await conn.execute(IMPORT_JOB, (import_id,))
        row = await cur.fetchone()
        if row is None:
            return
        cur = await conn.execute(UNFINISHED_WITH_FILE, (row[2],))
        if await cur.fetchone() is not None:
            return
    with contextlib.suppress(OSError):
        (imports_dir(state_dir()) / row[2]).unlink()
