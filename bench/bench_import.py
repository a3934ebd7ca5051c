"""Import throughput against the physical limit, in one run on one throwaway cluster: a 10,000-item
Instagram export (each post with its photo, copied from the ZIP to storage) imported by the real engine
(trove.imports.runner, the code `trove import` and the worker run), against

1. a plain COPY of the same records (post id, time, text, raw JSON) into a bare table: the physical limit
   of getting those rows into Postgres on this machine;
2. inserting the same rows one at a time, each its own transaction: what a naive importer does.

Figures: posts/s for each, and the engine's ratio to each."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool

sys.path.insert(0, str(Path(__file__).parent))
from common import create_migrated_database, report, throwaway_cluster
from trove.imports.archive import ExportArchive
from trove.imports.intake import receive
from trove.imports.runner import ImportRunner
from trove.jobs.imports import export_platforms
from trove.media.storage import LocalStorage
from trove.simulators.instagram_export import ExportItem, build_instagram_export

ITEMS = 10_000
USER_ID = "00000000-0000-4000-8000-0000000000d4"
# A bare table: logged like ours, no index, no trigger, no constraint.
BARE = "create table bench_bare (platform_post_id text, created_at timestamptz, text text, payload jsonb)"


def build(folder: Path) -> Path:
    items = [ExportItem("post", 1_500_000_000 + 600 * n, f"post {n} ☕ café") for n in range(ITEMS)]
    return build_instagram_export(folder / "export.zip", "bench.person", "Bench Person", items)


def rows_of(export: Path) -> list[tuple[str, Any, str | None, str]]:
    """The same records as the engine reads them, as the rows a bare loader would write."""
    platform = export_platforms()["instagram"]
    reader = platform.export
    assert reader is not None
    with ExportArchive(export) as archive:
        owner = reader.owner(archive)
        return [
            (r.post.platform_post_id, r.post.created_at, r.post.text, json.dumps(r.payload))
            for r in reader.records(archive, owner, {})
            if r.post is not None
        ]


async def run_engine(url: str, export: Path, data: bytes, state: Path) -> float:
    async with (
        AsyncConnectionPool(url, kwargs={"autocommit": True}, open=False) as pool,
        httpx.AsyncClient() as http,
    ):
        async with pool.connection() as conn:

            async def chunks() -> Any:
                yield data

            received = await receive(conn, state, USER_ID, export.name, chunks())
        storage = LocalStorage(state / "media", b"bench", "http://127.0.0.1:1")
        runner = ImportRunner(pool, export_platforms(), storage, http, state)
        began = time.perf_counter()
        result = await runner.run(received.import_id)
        elapsed = time.perf_counter() - began
    assert result.status == "success" and result.progress.posts_created == ITEMS, result
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="trove-bench-import-") as tmp, throwaway_cluster() as cluster:
        folder = Path(tmp)
        url = create_migrated_database(cluster, "bench_import")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "insert into auth.users (id, aud, role, email) values (%s, 'authenticated', 'authenticated',"
                " 'bench@trove.local')",
                (USER_ID,),
            )
            conn.execute(BARE)
        export = build(folder)
        rows = rows_of(export)
        assert len(rows) == ITEMS

        with psycopg.connect(url, autocommit=True) as conn:
            began = time.perf_counter()
            with conn.cursor() as cur, cur.copy("copy bench_bare from stdin") as copy:
                for row in rows:
                    copy.write_row(row)
            copy_seconds = time.perf_counter() - began
            conn.execute("truncate bench_bare")
            began = time.perf_counter()
            for row in rows:
                conn.execute("insert into bench_bare values (%s, %s, %s, %s)", row)
            single_seconds = time.perf_counter() - began

        engine_seconds = asyncio.run(run_engine(url, export, export.read_bytes(), folder / "state"))

    engine, copy_rate, single = ITEMS / engine_seconds, ITEMS / copy_seconds, ITEMS / single_seconds
    report("import_instagram_10k_posts_per_s", engine, "posts/s")
    report("import_copy_bare_rows_per_s", copy_rate, "rows/s")
    report("import_row_at_a_time_rows_per_s", single, "rows/s")
    report("import_engine_vs_copy", engine / copy_rate, "ratio")
    report("import_engine_vs_row_at_a_time", engine / single, "ratio")


if __name__ == "__main__":
    main()
