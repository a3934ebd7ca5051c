"""The Edge Function relay's added latency (issue 18): the same Strava webhook event posted to the real
`trove serve` directly and through the real webhook-strava function (Deno, supabase/functions/) relaying to
it, alternating one request each way so both see the same machine; p50 and p99 of each and what the relay
adds. Every event after the first is a duplicate, the path a retried delivery takes (one insert that finds
the row already stored)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from common import create_migrated_database, percentile, report, throwaway_cluster, wait_up
from trove.config import PROJECT_ROOT
from trove.crypto import generate_key
from trove.db.cluster import free_port
from trove.platforms.base import secret_hash

ROUNDS = 1_000
DENO = PROJECT_ROOT / ".local" / "deno" / "node_modules" / ".bin" / "deno"
SECRET = "bench-callback-secret"
RELAY_SECRET = "bench-relay-secret-" + "x" * 24


def main() -> None:
    if not DENO.exists():
        raise SystemExit("Deno is installed by `make setup` (scripts/install-deno.sh)")
    with throwaway_cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        url = create_migrated_database(cluster, "bench_relay")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "insert into public.webhook_subscriptions"
                " (platform, subscription_id, callback_url, verify_token_hash, callback_secret_hash)"
                " values ('strava', '77', 'https://bench.invalid/', %s, %s)",
                (secret_hash("verify"), secret_hash(SECRET)),
            )
        port, relay_port = free_port(), free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "TROVE_TOKEN_KEYS": f"b:{generate_key()}",
            "PYTHONPATH": str(PROJECT_ROOT),
            "TROVE_STATE_DIR": tmp,
            "TROVE_PLATFORMS": "",
            "STRAVA_CLIENT_ID": "1",
            "STRAVA_CLIENT_SECRET": "bench",
            "TROVE_RELAY_SECRET": RELAY_SECRET,
        }
        service = subprocess.Popen(
            [sys.executable, "-m", "trove.cli", "serve", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        relay = subprocess.Popen(
            [str(DENO), "run", "--allow-net", "--allow-env",
             str(PROJECT_ROOT / "supabase" / "functions" / "webhook-strava" / "index.ts")],
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "NO_COLOR": "1",
                "DENO_DIR": str(PROJECT_ROOT / ".local" / "deno-cache"), "PORT": str(relay_port),
                "TROVE_SERVICE_URL": f"http://127.0.0.1:{port}", "TROVE_RELAY_SECRET": RELAY_SECRET,
                "SUPABASE_DB_URL": url,
            },
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_up(f"http://127.0.0.1:{port}/health")
            wait_up(f"http://127.0.0.1:{relay_port}/functions/v1/webhook-strava")
            path = f"/functions/v1/webhook-strava/{SECRET}"
            event = json.dumps({
                "aspect_type": "create", "event_time": 1516126040, "object_id": 1, "object_type": "activity",
                "owner_id": 2, "subscription_id": 77, "updates": {},
            }).encode()  # fmt: skip
            headers = {"Content-Type": "application/json", "X-Trove-Relay-Secret": RELAY_SECRET}
            times: dict[str, list[float]] = {"direct": [], "relayed": []}
            with httpx.Client() as client:
                bases = {"direct": f"http://127.0.0.1:{port}", "relayed": f"http://127.0.0.1:{relay_port}"}
                for base in bases.values():  # warm both paths (connections, Deno's JIT)
                    for _ in range(50):
                        client.post(base + path, content=event, headers=headers).raise_for_status()
                for _ in range(ROUNDS):
                    for name, base in bases.items():
                        started = time.perf_counter()
                        answer = client.post(base + path, content=event, headers=headers)
                        times[name].append((time.perf_counter() - started) * 1000)
                        if answer.json() != {"status": "duplicate"}:
                            raise SystemExit(f"{name}: {answer.status_code} {answer.text}")
            with psycopg.connect(url) as conn:
                kept = conn.execute("select count(*) from public.webhook_inbox").fetchone()[0]
            if kept:
                raise SystemExit(f"{kept} deliveries went to the inbox: the service was too slow to measure")
        finally:
            for proc in (relay, service):
                proc.terminate()
                proc.wait(timeout=30)
    direct, relayed = times["direct"], times["relayed"]
    for name, values in times.items():
        report(f"relay_webhook_{name}_p50", percentile(values, 50), "ms")
        report(f"relay_webhook_{name}_p99", percentile(values, 99), "ms")
    report("relay_added_p50", percentile(relayed, 50) - percentile(direct, 50), "ms")
    report("relay_added_p99", percentile(relayed, 99) - percentile(direct, 99), "ms")
    report("relay_p50_vs_direct", percentile(relayed, 50) / percentile(direct, 50), "ratio")


if __name__ == "__main__":
    main()
