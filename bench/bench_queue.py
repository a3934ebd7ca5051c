"""Queue figures (issue: sync engine): items claimed+completed per second with a no-op handler, batched
claims vs one-row claims, one and two processes, in the same run; and NOTIFY wake-up latency of the real
worker (insert -> handler start), p50/p99."""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from common import create_migrated_database, median, percentile, report, throwaway_cluster
from trove.crypto import KeyRing, generate_key
from trove.platforms.base import WebhookAction
from trove.worker import Worker

ITEMS = 6000
WAKEUPS = 200


def fill_queue(url: str, count: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("delete from public.ingested_items")
        conn.execute(
            "insert into public.ingested_items (source, platform, event_type, payload)"
            " select 'webhook', 'bluesky', 'bench', jsonb_build_object('n', n) from generate_series(1, %s) as n",
            (count,),
        )


def drain(url: str, batch: int, worker: str) -> int:
    """Claim and complete with a no-op handler until the queue is empty; returns items done."""
    done = 0
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            with conn.transaction():
                ids = [
                    row[0]
                    for row in conn.execute(
                        "select trove_private.claim_work('ingested_items', %s, %s, '1 minute')", (worker, batch)
                    )
                ]
                for item_id in ids:
                    conn.execute("select trove_private.complete_work('ingested_items', %s, %s)", (item_id, worker))
            if not ids:
                return done
            done += len(ids)


def throughput(url: str, batch: int, processes: int) -> float:
    fill_queue(url, ITEMS)
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        done = sum(pool.starmap(drain, [(url, batch, f"bench-{i}") for i in range(processes)]))
    elapsed = time.perf_counter() - start
    assert done == ITEMS, f"drained {done} of {ITEMS}"
    return done / elapsed


class StampingConnector:
    """Records when the worker's handler starts for each event."""

    platform = "bluesky"
    poll_interval = timedelta(hours=1)
    poll_on_event = True
    ephemeral_interval = None  # nothing here vanishes by itself
    enrich_batch = 1

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.arrived = asyncio.Event()

    def handle_event(self, event_type: str, payload: dict[str, Any]) -> WebhookAction:
        self.started[payload["token"]] = time.perf_counter()
        self.arrived.set()
        return WebhookAction(platform_user_id=None, kind="ignore")


async def wakeup_latencies(url: str) -> list[float]:
    connector = StampingConnector()
    worker = Worker(
        url,
        {"bluesky": connector},
        KeyRing.parse(f"b:{generate_key()}"),
        poll_interval=3600.0,  # type: ignore[dict-item]
    )
    task = asyncio.create_task(worker.run())
    latencies: list[float] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await asyncio.sleep(1.0)  # worker started and idle
        for _ in range(WAKEUPS):
            token = uuid.uuid4().hex
            connector.arrived.clear()
            sent = time.perf_counter()
            await conn.execute(
                "insert into public.ingested_items (source, platform, event_type, payload)"
                " values ('webhook', 'bluesky', 'bench', jsonb_build_object('token', %s::text))",
                (token,),
            )
            await asyncio.wait_for(connector.arrived.wait(), timeout=30)
            latencies.append((connector.started[token] - sent) * 1000)
            await asyncio.sleep(0.01)
    worker.request_stop()
    await task
    return latencies


def main() -> None:
    with throwaway_cluster() as cluster:
        url = create_migrated_database(cluster, "bench_queue")
        one_row = throughput(url, 1, 1)
        batched = throughput(url, 32, 1)
        batched_two = throughput(url, 32, 2)
        one_row_two = throughput(url, 1, 2)
        report("queue_claim_complete_1proc_batch1", one_row, "items/s")
        report("queue_claim_complete_1proc_batch32", batched, "items/s")
        report("queue_claim_complete_2proc_batch1", one_row_two, "items/s")
        report("queue_claim_complete_2proc_batch32", batched_two, "items/s")
        report("queue_batched_vs_one_row_ratio", batched / one_row, "x")
        report("queue_two_vs_one_process_ratio", batched_two / batched, "x")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("delete from public.ingested_items")
        latencies = asyncio.run(wakeup_latencies(url))
        report("notify_wakeup_latency_p50", median(latencies), "ms")
        report("notify_wakeup_latency_p99", percentile(latencies, 99), "ms")


if __name__ == "__main__":
    main()
