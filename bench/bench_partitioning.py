"""Partitioning ingested_items by month (issue 16, item 4: measure before deciding). The same rows in Trove's
table and in a copy partitioned by month on received_at (12 months, the same indexes, the primary key
widened to (id, received_at) as partitioning demands), in one run: the queue's daily churn (the newest
items claimed and completed, then VACUUM), a month's new rows written, and a read of the newest page; time
of each and the ratios. Raw payloads are kept forever (no retention drops old months), so what partitioning
could buy is cheaper upkeep of the recent rows; what it costs is below in PARTITION_LIMITS.

Decided (2026-12-02, 300,000 rows): not partitioned. VACUUM after a day's churn is 3x cheaper on the one
partition that changed (about 21 ms against 64 ms) and writes are a little faster, but the newest page reads
1.5x slower, and the dedupe indexes that store every webhook, stream and import record exactly once cannot
exist across partitions (a retried delivery in another month would be stored twice). At this size VACUUM is
cheap either way; look again when the table holds tens of millions of rows."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from common import create_migrated_database, report, throwaway_cluster

ROWS = 300_000
MONTHS = 12
CHURN = 5_000  # items claimed and completed a round (a busy day of webhook events)
ROUNDS = 3

# What the partitioned table cannot keep (Postgres: a unique index on a partitioned table must contain the
# partition key): the three dedupe indexes that store a webhook, stream or import record once.
PARTITION_LIMITS = "no unique (platform, external_id) or (account_id, external_id) across months"

PARTITIONED = """
create table public.ingested_items_by_month (like public.ingested_items including defaults including constraints)
partition by range (received_at);
alter table public.ingested_items_by_month add primary key (id, received_at);
create index on public.ingested_items_by_month (status);
create index on public.ingested_items_by_month (platform);
create index on public.ingested_items_by_month (account_id);
create index on public.ingested_items_by_month (user_id);
create index on public.ingested_items_by_month (received_at desc);
create index on public.ingested_items_by_month (platform, external_id);
create index on public.ingested_items_by_month (run_after) where status in ('pending', 'failed');
create index on public.ingested_items_by_month (locked_until) where status = 'processing';
"""

FILL = """
insert into public.{table} (source, platform, event_type, external_id, payload, status, received_at, completed_at)
select 'webhook', 'bluesky', 'post.create', '{prefix}' || n,
       jsonb_build_object('n', n, 'text', repeat('archived words ', 20),
                          'uri', 'at://did:plc:x/app.bsky.feed.post/' || n),
       'completed', timestamptz '{start}' + (n::float / {rows}) * interval '{months} months', now()
from generate_series(1, {rows}) as n
"""


def create_partitions(conn: psycopg.Connection) -> None:
    conn.execute(PARTITIONED)
    for month in range(MONTHS + 1):
        conn.execute(
            f"create table public.ingested_items_m{month:02d} partition of public.ingested_items_by_month"
            f" for values from (timestamptz '2026-01-01' + interval '{month} months')"
            f" to (timestamptz '2026-01-01' + interval '{month + 1} months')"
        )


def churn(conn: psycopg.Connection, table: str, vacuumed: str) -> float:
    """The newest CHURN items go through the queue's state changes, then VACUUM of what autovacuum would
    visit (the table, or the one partition that changed): its time in ms."""
    conn.execute(
        f"update public.{table} set status = 'processing', locked_by = 'w', attempts = attempts + 1"
        f" where id in (select id from public.{table} order by received_at desc limit {CHURN})"
    )
    conn.execute(
        f"update public.{table} set status = 'completed', locked_by = null, completed_at = now()"
        f" where status = 'processing'"
    )
    started = time.perf_counter()
    conn.execute(f"vacuum public.{vacuumed}")
    return (time.perf_counter() - started) * 1000


def timed(conn: psycopg.Connection, sql: str) -> float:
    started = time.perf_counter()
    conn.execute(sql)
    return (time.perf_counter() - started) * 1000


def size(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(
        "select coalesce(sum(pg_total_relation_size(c.oid)), 0) from pg_class as c"
        " where c.oid = %s::regclass or c.oid in (select inhrelid from pg_inherits where inhparent = %s::regclass)",
        (f"public.{table}", f"public.{table}"),
    ).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    with throwaway_cluster() as cluster:
        url = create_migrated_database(cluster, "bench_partitioning")
        with psycopg.connect(url, autocommit=True) as conn:
            create_partitions(conn)
            for table in ("ingested_items", "ingested_items_by_month"):
                conn.execute(FILL.format(table=table, prefix="e", start="2026-01-01", months=MONTHS, rows=ROWS))
                conn.execute(f"vacuum analyze public.{table}")
            newest = f"ingested_items_m{MONTHS - 1:02d}"  # where the newest rows, and the churn, are
            vacuum = {
                table: statistics.median(churn(conn, table, vacuumed) for _ in range(ROUNDS))
                for table, vacuumed in (("ingested_items", "ingested_items"), ("ingested_items_by_month", newest))
            }
            write = {
                table: timed(conn, FILL.format(table=table, prefix="new", start="2026-12-01", months=1, rows=20_000))
                for table in ("ingested_items", "ingested_items_by_month")
            }
            read = {
                table: statistics.median(
                    timed(conn, f"select id from public.{table} order by received_at desc limit 50") for _ in range(50)
                )
                for table in ("ingested_items", "ingested_items_by_month")
            }
            sizes = {table: size(conn, table) for table in ("ingested_items", "ingested_items_by_month")}
    for label, figures in (("vacuum_after_churn", vacuum), ("write_20k_rows", write), ("read_newest_page", read)):
        report(f"partitioning_{label}_plain", figures["ingested_items"], "ms")
        report(f"partitioning_{label}_by_month", figures["ingested_items_by_month"], "ms")
        report(
            f"partitioning_{label}_by_month_vs_plain",
            figures["ingested_items_by_month"] / figures["ingested_items"],
            "ratio",
        )
    report("partitioning_bytes_plain", sizes["ingested_items"], "bytes")
    report("partitioning_bytes_by_month", sizes["ingested_items_by_month"], "bytes")
    print(f"# partitioned by month, the table could not keep: {PARTITION_LIMITS}", flush=True)


if __name__ == "__main__":
    main()
