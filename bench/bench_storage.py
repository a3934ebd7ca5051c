"""Bytes on disk per archived post (issue 16, storage): the demo archive of all three platforms, built by the
real `trove run --once` (simulators, OAuth, backfills, media, then each demo account's export imported) on a
throwaway cluster, then measured table by table: heap, TOAST (the big raw payloads) and each index, divided by
the posts archived; per platform, the raw JSON bytes kept per post (every API page and event in ingested_items,
the latest raw form in ingested_posts) as stored; and what lz4 would store for the same payloads against the
default pglz, in the same run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from common import create_migrated_database, report, throwaway_cluster
from trove.config import PROJECT_ROOT
from trove.crypto import generate_key
from trove.db.cluster import free_port
from trove.db.local import apply_seed

POSTS = 300  # per platform's demo account
TABLES = ("ingested_items", "ingested_posts", "posts", "media_downloads", "post_media", "engagement_history")


def free_run(start: int, count: int) -> bool:
    for port in range(start, start + count):
        with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
            try:
                tcp.bind(("127.0.0.1", port))
                udp.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def build_archive(url: str, state: Path) -> None:
    sim_port = free_port()
    while not free_run(sim_port, 4):
        sim_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRAVA_", "INSTAGRAM_", "BLUESKY_", "TROVE_"))}
    env |= {
        "DATABASE_URL": url,
        "TROVE_HTTP_PORT": str(free_port()),
        "TROVE_SIMULATOR_PORT": str(sim_port),
        "TROVE_STATE_DIR": str(state),
        "TROVE_TOKEN_KEYS": f"bench:{generate_key()}",
        "TROVE_LOCAL_STACK": "1",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "trove.cli", "run", "--once", "--activities", str(POSTS)],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"trove run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="trove-bench-storage-") as tmp, throwaway_cluster() as cluster:
        url = create_migrated_database(cluster, "bench_storage")
        apply_seed(url)
        build_archive(url, Path(tmp))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("vacuum analyze")
            posts = conn.execute("select count(*) from public.posts").fetchone()[0]
            assert posts >= 3 * POSTS, f"only {posts} posts archived"
            total = 0
            for table in TABLES:
                heap, toast, indexes = conn.execute(
                    "select pg_relation_size(c.oid), coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),"
                    " pg_indexes_size(c.oid) from pg_class c where c.oid = %s::regclass",
                    (f"public.{table}",),
                ).fetchone()
                total += heap + toast + indexes
                report(f"storage_{table}_heap_bytes_per_post", heap / posts, "bytes")
                report(f"storage_{table}_toast_bytes_per_post", toast / posts, "bytes")
                report(f"storage_{table}_indexes_bytes_per_post", indexes / posts, "bytes")
            report("storage_total_bytes_per_post", total / posts, "bytes")
            for index, size in conn.execute(
                "select indexrelname, pg_relation_size(indexrelid) from pg_stat_user_indexes"
                " where schemaname = 'public' and relname in ('ingested_items', 'ingested_posts', 'posts')"
                " order by 2 desc limit 4"
            ):
                report(f"storage_index_{index}_bytes_per_post", size / posts, "bytes")
            for platform, count, raw_items, raw_posts in conn.execute(
                """
                select p.platform::text, p.posts,
                       (select coalesce(sum(pg_column_size(i.payload)), 0) from public.ingested_items i
                        where i.platform = p.platform),
                       (select coalesce(sum(pg_column_size(r.post_data)), 0) from public.ingested_posts r
                        where r.platform = p.platform)
                from (select platform, count(*) as posts from public.posts group by 1) as p order by 1
                """
            ).fetchall():
                report(f"storage_{platform}_raw_items_bytes_per_post", raw_items / count, "bytes")
                report(f"storage_{platform}_latest_raw_bytes_per_post", raw_posts / count, "bytes")
            # The same payloads stored with lz4 (recompressed: through text, as a new value).
            conn.execute("create table bench_lz4 (payload jsonb compression lz4)")
            conn.execute("insert into bench_lz4 select payload::text::jsonb from public.ingested_items")
            pglz, lz4 = conn.execute(
                "select (select sum(pg_column_size(payload)) from public.ingested_items),"
                " (select sum(pg_column_size(payload)) from bench_lz4)"
            ).fetchone()
            report("storage_raw_items_lz4_vs_pglz", lz4 / pglz, "ratio")


if __name__ == "__main__":
    main()
