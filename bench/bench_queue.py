"""Queue figures (issue: sync engine, issue 16): items claimed+completed per second with a no-op handler, in
the same run: the SQL alone (claims of one row or of 32, each item completed in its own statement or the
batch in one, one and two processes) and the real worker (`trove.worker.Worker`: its claims with adaptive
sizes, its jobs, batched completion) with a no-op job, one and two processes, with how busy the whole machine
was meanwhile (on 2 cores, one worker process already keeps Postgres and itself busy: a second one has little
left to use); and NOTIFY wake-up latency of the real worker (insert -> handler start), p50/p99."""

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
WORKER_ITEMS = 30_000  # the real worker drains 6,000 in under a second: too short to compare one process with two
START_UP = 3.0  # seconds every process of a run is given to start before they all begin at once
WAKEUPS = 200


def fill_queue(url: str, count: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("delete from public.ingested_items")
        conn.execute(
            "insert into public.ingested_items (source, platform, event_type, payload)"
            " select 'webhook', 'bluesky', 'bench', jsonb_build_object('n', n) from generate_series(1, %s) as n",
            (count,),
        )


def start_together(at: float) -> float:
    """Wait for the moment every process of a run starts at (set by the parent past their start-up), so the
    time measured is draining, not processes starting one after another."""
    time.sleep(max(at - time.time(), 0.0))
    return time.time()


def drain(
    url: str, batch: int, worker: str, complete_together: bool = False, at: float = 0.0
) -> tuple[int, float, float]:
    """Claim and complete with a no-op handler until the queue is empty, each item in its own statement or
    the whole batch in one (complete_work_batch); items done, and when the draining began and ended (wall
    clock, the process started and connected: as the peers' drain scripts time themselves)."""
    done = 0
    with psycopg.connect(url, autocommit=True) as conn:
        began = start_together(at)
        while True:
            with conn.transaction():
                ids = [
                    row[0]
                    for row in conn.execute(
                        "select trove_private.claim_work('ingested_items', %s, %s, '1 minute')", (worker, batch)
                    )
                ]
                if complete_together and ids:
                    conn.execute(
                        "select trove_private.complete_work_batch('ingested_items', %s::uuid[], %s)", (ids, worker)
                    )
                else:
                    for item_id in ids:
                        conn.execute("select trove_private.complete_work('ingested_items', %s, %s)", (item_id, worker))
            if not ids:
                return done, began, time.time()
            done += len(ids)


def throughput(url: str, batch: int, processes: int, complete_together: bool = False) -> float:
    fill_queue(url, ITEMS)
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        at = time.time() + START_UP
        return rate(
            pool.starmap(drain, [(url, batch, f"bench-{i}", complete_together, at) for i in range(processes)]), ITEMS
        )


def rate(runs: list[tuple[int, float, float]], items: int) -> float:
    """Items per second from the first process's start to the last one's end."""
    done = sum(run[0] for run in runs)
    assert done == items, f"drained {done} of {items}"
    return done / (max(run[2] for run in runs) - min(run[1] for run in runs))


class IdleConnector:
    """A platform with nothing to sync: the worker only drains the no-op queue."""

    platform = "bluesky"


def worker_drain(url: str, worker_id: str, at: float = 0.0) -> tuple[int, float, float]:
    """The real worker with a no-op job on ingested_items (its own queues swapped for that one, in this
    process only): claims with adaptive sizes, jobs spawned per free slot, each batch completed in one
    statement. Runs Worker.drain (the bounded pass of the wake endpoint) until the queue is empty."""
    import trove.worker as worker_module
    from trove.jobs import JobContext, process_items

    async def nothing(ctx: JobContext, conn: Any, item_id: str) -> None:
        return None

    async def job(ctx: JobContext, ids: list[str]) -> None:
        await process_items(ctx, "ingested_items", ids, nothing, together=True)

    worker_module.QUEUES = (worker_module.Queue("ingested_items", job, one_per_job=False, grows=True),)
    worker = Worker(url, {"bluesky": IdleConnector()}, KeyRing.parse(f"b:{generate_key()}"), worker_id=worker_id)  # type: ignore[dict-item]
    began = start_together(at)
    done = asyncio.run(worker.drain(600.0, 10**9))
    return done, began, time.time()


def machine_ticks() -> tuple[int, int]:
    """(all, idle) CPU ticks of the whole machine so far, from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks), ticks[3] + ticks[4]  # idle and iowait


def worker_throughput(url: str, processes: int, items: int = ITEMS) -> tuple[float, float]:
    """Items completed per second by `processes` real workers, and how busy the whole machine was meanwhile
    (Postgres included: whether a second process had any CPU left to use). The count is the table's: a
    worker's count is of its claims, and an item two workers' claims crossed on (a claim's snapshot still saw
    it ready and locked it for an instant) is given back by hold_work and claimed again."""
    fill_queue(url, items)
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        at = time.time() + START_UP
        pending = pool.starmap_async(worker_drain, [(url, f"bench-worker-{i}", at) for i in range(processes)])
        time.sleep(max(at - time.time(), 0.0) + 0.1)
        all_before, idle_before = machine_ticks()
        runs = pending.get()
        all_after, idle_after = machine_ticks()
    with psycopg.connect(url) as conn:
        completed = conn.execute("select count(*) from public.ingested_items where status = 'completed'").fetchone()
    assert completed is not None and completed[0] == items, f"completed {completed} of {items}"
    busy = 1 - (idle_after - idle_before) / max(all_after - all_before, 1)
    return rate([(items, min(run[1] for run in runs), max(run[2] for run in runs))], items), busy


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
        together = throughput(url, 32, 1, complete_together=True)
        together_two = throughput(url, 32, 2, complete_together=True)
        worker_one, busy_one = worker_throughput(url, 1, WORKER_ITEMS)
        worker_two, busy_two = worker_throughput(url, 2, WORKER_ITEMS)
        report("queue_claim_complete_1proc_batch1", one_row, "items/s")
        report("queue_claim_complete_1proc_batch32", batched, "items/s")
        report("queue_claim_complete_2proc_batch1", one_row_two, "items/s")
        report("queue_claim_complete_2proc_batch32", batched_two, "items/s")
        report("queue_claim_complete_together_1proc_batch32", together, "items/s")
        report("queue_claim_complete_together_2proc_batch32", together_two, "items/s")
        report("queue_worker_noop_1proc", worker_one, "items/s")
        report("queue_worker_noop_2proc", worker_two, "items/s")
        report("queue_worker_noop_1proc_machine_busy", 100 * busy_one, "%")
        report("queue_worker_noop_2proc_machine_busy", 100 * busy_two, "%")
        report("queue_batched_vs_one_row_ratio", batched / one_row, "x")
        report("queue_complete_together_vs_per_item_ratio", together / batched, "x")
        report("queue_two_vs_one_process_ratio", batched_two / batched, "x")
        report("queue_worker_two_vs_one_process_ratio", worker_two / worker_one, "x")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("delete from public.ingested_items")
        latencies = asyncio.run(wakeup_latencies(url))
        report("notify_wakeup_latency_p50", median(latencies), "ms")
        report("notify_wakeup_latency_p99", percentile(latencies, 99), "ms")


if __name__ == "__main__":
    main()
