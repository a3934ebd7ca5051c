"""Queue peers (issue 16): Trove's work queue against the two queues people would pick instead, on the same
throwaway Postgres, the same machine, the same no-op job and the same item count, in one run; and against the
physical floor of that Postgres. Each gets its own database of the cluster.

1. Trove: its real worker (trove.worker.Worker, concurrency 8, adaptive claims, batched completion) with a
   no-op job, one process, timed from its start to the queue drained (bench_queue.worker_throughput); and
   the SQL alone (claims of 32, each batch completed in one statement), for reference.
2. procrastinate (PyPI), installed only for the bench into its own venv under the state dir
   (.local/bench-peers/venv, created on first use and kept): its schema applied, the jobs deferred in one
   batch_defer (not timed), then a worker with Trove's worker concurrency (8) timed until it has caught up
   (wait=False). See peers/procrastinate_drain.py.
3. graphile-worker (npm), installed only for the bench into .local/bench-peers/node from peers/package.json:
   0.17.3, the newest whose engines admit Debian's node 20 (0.18 wants node >= 22.18). Its schema migrated,
   the jobs added in one addJobs call (not timed), then a worker pool with concurrency 8 timed until its jobs
   table is empty. See peers/graphile_drain.cjs.
4. Physical floor: the items of Trove's own ingested_items table moved through the same state changes
   (pending -> processing with lease and attempt -> completed) by the fewest statements: one UPDATE per state
   change (a row cannot change twice in one statement), both in one transaction. No queue on this Postgres
   writes less per item.

Every queue table gets planner statistics after it is filled and before its drain (untimed), as autovacuum
gives a live one: on a fresh table without them, procrastinate's fetch sorts every queued job on each call and
its figure falls with the queue's length (about 150 items/s at 6000), while Trove's barely moves.

A peer that cannot be installed (no registry, no node) is named on stderr and the script exits non-zero:
no figure is ever made up."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from bench_queue import ITEMS, fill_queue, throughput, worker_throughput
from common import create_migrated_database, report, throwaway_cluster
from trove.config import state_dir
from trove.db.cluster import Cluster

PEERS_SOURCE = Path(__file__).parent / "peers"
# The peers' Python side: procrastinate pinned, on the same psycopg build as Trove's venv.
PYTHON_REQUIREMENTS = ["procrastinate==3.10.0", "psycopg[binary]==3.3.9"]
CONCURRENCY = 8  # trove.worker.Worker's default concurrency
INSTALL_TIMEOUT = 900.0
DRAIN_TIMEOUT = 600.0

CLAIM_ALL = """
update public.ingested_items
set status = 'processing', locked_by = 'floor', locked_until = now() + interval '1 minute',
    attempts = attempts + 1, started_at = now()
where status = 'pending'
"""
COMPLETE_ALL = """
update public.ingested_items
set status = 'completed', locked_by = null, locked_until = null, completed_at = now(), error_message = null
where status = 'processing' and locked_by = 'floor'
"""


class PeerError(RuntimeError):
    """A peer could not be installed or did not drain its queue; the message says which and why."""


def peers_dir() -> Path:
    return state_dir() / "bench-peers"


def _run_install(args: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as error:
        raise PeerError(f"{what}: no answer within {INSTALL_TIMEOUT:.0f}s ({' '.join(args)})") from error
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise PeerError(f"{what} failed (exit {proc.returncode}): {' '.join(args)}\n{tail}")


def procrastinate_python() -> Path:
    """The peers' venv python with procrastinate, created and installed on first use, kept across runs."""
    venv = peers_dir() / "venv"
    python = venv / "bin" / "python"
    marker = venv / "bench-requirements.txt"
    wanted = "\n".join(PYTHON_REQUIREMENTS) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    if venv.exists():
        shutil.rmtree(venv)
    print(f"# installing {', '.join(PYTHON_REQUIREMENTS)} into {venv}", file=sys.stderr, flush=True)
    _run_install([sys.executable, "-m", "venv", str(venv)], "creating the procrastinate venv")
    _run_install(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PYTHON_REQUIREMENTS],
        f"pip install {' '.join(PYTHON_REQUIREMENTS)}",
    )
    marker.write_text(wanted)
    return python


def graphile_worker_dir() -> Path:
    """.local/bench-peers/node with graphile-worker installed by npm from peers/package.json, kept across runs."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise PeerError(f"graphile-worker needs `{tool}`, which is not on PATH (Debian's nodejs and npm)")
    target = peers_dir() / "node"
    wanted = (PEERS_SOURCE / "package.json").read_text()
    marker = target / "installed-package.json"
    installed = (target / "node_modules" / "graphile-worker" / "package.json").exists()
    if not (installed and marker.exists() and marker.read_text() == wanted):
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        (target / "package.json").write_text(wanted)
        print(f"# installing graphile-worker with npm into {target}", file=sys.stderr, flush=True)
        _run_install(
            ["npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--omit=dev"],
            "npm install graphile-worker",
            cwd=target,
        )
        marker.write_text(wanted)
    # The script runs from beside its node_modules; refreshed every run so edits to it take effect.
    shutil.copyfile(PEERS_SOURCE / "graphile_drain.cjs", target / "graphile_drain.cjs")
    return target


def create_database(cluster: Cluster, name: str) -> str:
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    return cluster.url(name)


def peer_throughput(name: str, args: list[str], cwd: Path | None = None) -> float:
    """Runs a peer's drain script; it prints one JSON line with the timed seconds and the jobs done."""
    try:
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=DRAIN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as error:
        raise PeerError(f"{name}: did not drain {ITEMS} jobs within {DRAIN_TIMEOUT:.0f}s") from error
    if proc.returncode != 0:
        raise PeerError(f"{name} drain failed (exit {proc.returncode}):\n{proc.stderr.strip()[-3000:]}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise PeerError(f"{name} drain printed nothing:\n{proc.stderr.strip()[-3000:]}")
    result = json.loads(lines[-1])
    if result["done"] != ITEMS:
        raise PeerError(f"{name} drained {result['done']} of {ITEMS} jobs: {result}")
    return ITEMS / float(result["seconds"])


def analyzed_queue(url: str) -> str:
    """Fills Trove's queue and gathers planner statistics on it; bench_queue's throughput refills it alike."""
    fill_queue(url, ITEMS)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("analyze public.ingested_items")
    return url


def physical_floor(url: str) -> float:
    analyzed_queue(url)
    with psycopg.connect(url, autocommit=True) as conn:
        start = time.perf_counter()
        with conn.transaction():
            claimed = conn.execute(CLAIM_ALL).rowcount
            completed = conn.execute(COMPLETE_ALL).rowcount
        elapsed = time.perf_counter() - start
    assert claimed == completed == ITEMS, f"floor moved {claimed} / {completed} of {ITEMS}"
    return ITEMS / elapsed


def main() -> int:
    try:
        python = procrastinate_python()
        node_dir = graphile_worker_dir()
    except PeerError as error:
        print(f"bench_queue_peers: cannot install a queue peer: {error}", file=sys.stderr)
        return 1
    with throwaway_cluster() as cluster:
        try:
            trove_url = create_migrated_database(cluster, "peer_trove")
            trove, _ = worker_throughput(analyzed_queue(trove_url), 1)
            report("queue_peer_trove_worker", trove, "items/s")
            sql_only = throughput(analyzed_queue(trove_url), 32, 1, complete_together=True)
            report("queue_peer_trove_sql_batch32", sql_only, "items/s")
            procrastinate = peer_throughput(
                "procrastinate",
                [
                    str(python),
                    str(PEERS_SOURCE / "procrastinate_drain.py"),
                    create_database(cluster, "peer_procrastinate"),
                    str(ITEMS),
                    str(CONCURRENCY),
                ],
            )
            report("queue_peer_procrastinate", procrastinate, "items/s")
            graphile = peer_throughput(
                "graphile-worker",
                [
                    "node",
                    "graphile_drain.cjs",
                    create_database(cluster, "peer_graphile_worker"),
                    str(ITEMS),
                    str(CONCURRENCY),
                ],
                cwd=node_dir,
            )
            report("queue_peer_graphile_worker", graphile, "items/s")
            floor = physical_floor(create_migrated_database(cluster, "peer_floor"))
            report("queue_peer_physical_floor", floor, "items/s")
        except PeerError as error:
            print(f"bench_queue_peers: {error}", file=sys.stderr)
            return 1
    report("queue_trove_vs_procrastinate", trove / procrastinate, "ratio")
    report("queue_trove_vs_graphile_worker", trove / graphile, "ratio")
    report("queue_trove_vs_physical_floor", trove / floor, "ratio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
