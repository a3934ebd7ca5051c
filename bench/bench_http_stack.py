"""The HTTP stack (issue 16): `/api/posts` of the real `trove serve` against a bare endpoint of the same
framework (FastAPI on uvicorn) answering the same bytes, the stack's ceiling on this machine; load from wrk
(Debian's) with 8 connections, in one run: the cached page (same parameters), uncached pages (each request a
page not asked for before: its own `until`), and the bare endpoint. Both with one process and with two
(`trove serve --processes 2`; one per core here), both without an access log (the bare endpoint has none);
and Trove's cached page once more with its (redacted) access log on, to show what that costs. Requests/s,
p50 and p99, and the ratios."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from common import create_migrated_database, report, throwaway_cluster, wait_up
from trove.config import PROJECT_ROOT
from trove.crypto import generate_key
from trove.db.cluster import free_port
from trove.http.auth import issue_local_token

POSTS = 20_000
SECONDS = 10
# Each request a page never asked for before (its own `until`), as cheap in SQL as the cached one.
UNCACHED = """
counter = 0
request = function()
  counter = counter + 1
  local till = os.date("!%Y-%m-%dT%H:%M:%SZ", 1600000000 + counter * 60)  -- (`until` is a Lua keyword)
  return wrk.format(nil, "/api/posts?limit=20&until=" .. till)
end
"""


def seed(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        user = conn.execute(
            "insert into auth.users (id, email) values (gen_random_uuid(), 'http@bench.test') returning id::text"
        ).fetchone()[0]
        conn.execute(
            "insert into public.connected_accounts (user_id, platform, platform_user_id, username)"
            " values (%s, 'bluesky', 'did:plc:http', 'http')",
            (user,),
        )
        conn.execute(
            "insert into public.posts (account_id, platform, platform_post_id, content_type, text_content,"
            " created_at_platform)"
            " select ca.id, 'bluesky', 'p' || n, 'post', 'post number ' || n || ' about the river',"
            " timestamptz '2020-01-01' + n * interval '7 minutes'"
            " from public.connected_accounts as ca cross join generate_series(1, %s) as n",
            (POSTS,),
        )
        conn.execute("vacuum analyze public.posts")
    return str(user)


def wrk(url: str, token: str, script: Path | None = None, seconds: int = SECONDS) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) from wrk's own report."""
    args = ["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {token}"]
    if script is not None:
        args += ["-s", str(script)]
    ran = subprocess.run([*args, url], capture_output=True, text=True, check=True)
    out = ran.stdout
    if ran.stderr.strip():  # a script wrk could not run (it then goes on without it, measuring something else)
        raise SystemExit(f"wrk: {ran.stderr.strip()}")
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rps, ms("50"), ms("99")


def measure(
    url: str, env: dict[str, str], tmp: str, token: str, processes: int
) -> dict[str, tuple[float, float, float]]:
    """wrk against the bare endpoint and Trove, each run with `processes` processes."""
    port, bare_port = free_port(), free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "trove.cli", "serve", "--port", str(port), "--processes", str(processes)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    bare = None
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(f"{base}/health")
        page = httpx.get(f"{base}/api/posts?limit=20", headers={"Authorization": f"Bearer {token}"})
        assert page.status_code == 200, page.text
        body = Path(tmp) / "page.json"
        body.write_bytes(page.content)
        bare = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "peers" / "bare_app.py"), str(bare_port), str(body),
             str(processes)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_up(f"http://127.0.0.1:{bare_port}/api/posts")
        script = Path(tmp) / "uncached.lua"
        script.write_text(UNCACHED)
        # Warm both up first, untimed: the service's connection pool grows to the load, the processes settle.
        wrk(f"http://127.0.0.1:{bare_port}/api/posts?limit=20", token, seconds=2)
        wrk(f"{base}/api/posts?limit=20", token, seconds=3)
        return {
            "bare": wrk(f"http://127.0.0.1:{bare_port}/api/posts?limit=20", token),
            "api_posts_cached": wrk(f"{base}/api/posts?limit=20", token),
            "api_posts_uncached": wrk(f"{base}/api/posts", token, script),
        }
    finally:
        service.terminate()
        service.wait(timeout=30)
        if bare is not None:
            bare.terminate()
            bare.wait(timeout=30)


def main() -> None:
    with throwaway_cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        url = create_migrated_database(cluster, "bench_http")
        user = seed(url)
        token = issue_local_token(user)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "TROVE_TOKEN_KEYS": f"b:{generate_key()}",
            "PYTHONPATH": str(PROJECT_ROOT),
            "TROVE_STATE_DIR": tmp,
            "TROVE_PLATFORMS": "",
        }
        runs = {
            processes: measure(url, {**env, "TROVE_ACCESS_LOG": "0"}, tmp, token, processes) for processes in (1, 2)
        }
        logged = measure(url, env, tmp, token, 1)["api_posts_cached"]
    for processes, figures in runs.items():
        suffix = "" if processes == 1 else f"_{processes}proc"
        for name, (rps, p50, p99) in figures.items():
            report(f"http_{name}{suffix}_throughput", rps, "req/s")
            report(f"http_{name}{suffix}_p50", p50, "ms")
            report(f"http_{name}{suffix}_p99", p99, "ms")
        bare = figures["bare"][0]
        report(f"http_cached_vs_bare{suffix}", figures["api_posts_cached"][0] / bare, "ratio")
        report(f"http_uncached_vs_bare{suffix}", figures["api_posts_uncached"][0] / bare, "ratio")
    report("http_api_posts_cached_access_log_throughput", logged[0], "req/s")
    report("http_api_posts_cached_access_log_p99", logged[2], "ms")
    report("http_access_log_cost_ratio", logged[0] / runs[1]["api_posts_cached"][0], "ratio")
    report("http_two_vs_one_process_cached_ratio", runs[2]["api_posts_cached"][0] / runs[1]["api_posts_cached"][0], "x")


if __name__ == "__main__":
    main()
