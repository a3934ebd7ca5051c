"""Shared by the benchmarks: a throwaway migrated cluster, timing and the BENCH line format."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from trove.db.cluster import Cluster, free_port
from trove.db.migrate import migrate

# The benchmarks run on their own throwaway local stack: its published JWT secret is allowed there only.
os.environ.setdefault("TROVE_LOCAL_STACK", "1")


def report(name: str, value: float, unit: str) -> None:
    print(f"BENCH {name} {value:.3f} {unit}", flush=True)


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    cluster = Cluster(root=Path(tempfile.mkdtemp(prefix="trove-bench-pg-")), port=free_port(), durable=False)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


def create_migrated_database(cluster: Cluster, name: str) -> str:
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = cluster.url(name)
    migrate(url, local_stack=True, log=lambda _: None)
    return url


def timings_ms(action: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def wait_up(url: str, seconds: float = 30.0) -> None:
    """Until `url` answers with anything but a server error (a relay answers 502 while its service starts)."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


def median(samples: list[float]) -> float:
    return statistics.median(samples)
