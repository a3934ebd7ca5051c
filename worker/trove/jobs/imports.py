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
from trove.queries.imports import IMPORT_JOB
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
        log.warning("import %s failed, will retry: %s", import_id, message)
        async with ctx.pool.connection() as conn:
            await conn.execute(FAIL_WORK, (QUEUE, import_id, ctx.worker_id, message, isinstance(error, LookupError)))
        return
    async with ctx.pool.connection() as conn:
        if result.status == "failed":
            await conn.execute(FAIL_WORK, (QUEUE, import_id, ctx.worker_id, result.error or "failed", True))
        else:
            await conn.execute(COMPLETE_WORK, (QUEUE, import_id, ctx.worker_id))
        cur = await conn.execute(IMPORT_JOB, (import_id,))
        row = await cur.fetchone()
    if row is not None:  # read to the end, or never readable: the upload is not needed any more
        with contextlib.suppress(OSError):
            (imports_dir(state_dir()) / row[2]).unlink()
    log.info("import %s: %s (%s records)", import_id, result.status, result.progress.records)
