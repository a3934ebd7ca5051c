"""Run by bench/bench_queue_peers.py with the peers' venv python (procrastinate is not in Trove's venv):
    python procrastinate_drain.py URL ITEMS CONCURRENCY
Applies procrastinate's schema, defers ITEMS no-op jobs in one batch_defer and analyzes the jobs table (not
timed), then times a worker with CONCURRENCY slots that stops once it has caught up with the queue
(wait=False). Prints one JSON line."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from procrastinate import App, PsycopgConnector


async def drain(url: str, items: int, concurrency: int) -> dict[str, float]:
    # A pool as large as the worker needs: its default (4 connections) would cap the concurrency.
    app = App(connector=PsycopgConnector(conninfo=url, min_size=concurrency + 2, max_size=concurrency + 2))

    @app.task(name="noop")
    async def noop(n: int) -> None:
        return None

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        await noop.batch_defer_async(*({"n": n} for n in range(items)))
        # Planner statistics, as autovacuum gives a live table: without them each fetch sorts every queued job.
        await app.connector.execute_query_async("analyze procrastinate_jobs")
        start = time.perf_counter()
        await app.run_worker_async(wait=False, concurrency=concurrency, install_signal_handlers=False)
        seconds = time.perf_counter() - start
        row = await app.connector.execute_query_one_async(
            "select count(*) filter (where status = 'succeeded') as done,"
            " count(*) filter (where status <> 'succeeded') as left_over from procrastinate_jobs"
        )
    return {"seconds": seconds, "done": row["done"], "left_over": row["left_over"]}


def main() -> None:
    url, items, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(asyncio.run(drain(url, items, concurrency))), flush=True)


if __name__ == "__main__":
    main()
