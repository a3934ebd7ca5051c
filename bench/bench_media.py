"""Media figures: download throughput of the real worker process (1,000 files of mixed sizes from a local
server, MB/s and files/s) against curl fetching the same files from the same server with the same
parallelism in the same run (the ratio), and the worker's peak memory while it downloads 50 MB files, against
the same process's peak before them (streaming means the files never sit in memory)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from common import create_migrated_database, report, throwaway_cluster
from trove.config import PROJECT_ROOT
from trove.crypto import generate_key

FILES = 1000
CONCURRENCY = 16  # the worker's downloads at once (all from the one host here: --per-host too), and curl's
BIG_FILES = 3
BIG_SIZE = 50 * 1024 * 1024 - 4096  # just under the 50 MB cap
JPEG_HEAD = bytes.fromhex("ffd8ffe000104a46494600010100000100010000")
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
BLOCK = os.urandom(1 << 20)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:
        kind, size = self.path.strip("/").split("/")[:2]
        total = int(size.split(".")[0])
        head = JPEG_HEAD if kind == "small" else MP4_HEAD
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg" if kind == "small" else "video/mp4")
        self.send_header("Content-Length", str(total))
        self.end_headers()
        self.wfile.write(head)
        left = total - len(head)
        while left > 0:
            piece = BLOCK[: min(left, len(BLOCK))]
            self.wfile.write(piece)
            left -= len(piece)


def curl_seconds(base: str, sizes: list[tuple[str, int]], folder: Path, parallel: int) -> float:
    """curl fetching the same files, `parallel` at a time, each written to disk (as the worker stores them)."""
    config = folder / "curl.cfg"
    config.write_text(
        "".join(
            f'url = "{base}/{kind}/{size}.bin?n={n}"\noutput = "{folder}/{n}.bin"\n'
            for n, (kind, size) in enumerate(sizes)
        )
    )
    start = time.perf_counter()
    subprocess.run(
        [
            "curl",
            "--silent",
            "--no-progress-meter",
            "--fail",
            "--parallel",
            "--parallel-max",
            str(parallel),
            "--config",
            str(config),
        ],
        check=True,
    )
    elapsed = time.perf_counter() - start
    assert sum(path.stat().st_size for path in folder.glob("*.bin")) == sum(size for _, size in sizes)
    return elapsed


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def queue(url: str, sizes: list[tuple[str, int]], base: str, account: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        raw = conn.execute(
            "insert into public.ingested_posts (platform, account_id, platform_post_id, post_data, status)"
            " values ('bluesky', %s, %s, '{}', 'completed') returning id",
            (account, f"bench-{time.time_ns()}"),
        ).fetchone()[0]
        with conn.cursor() as cur:
            cur.executemany(
                "insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url)"
                " select %s, user_id, 'bluesky', %s, %s from public.connected_accounts where id = %s",
                [
                    (raw, f"{kind}-{n}-{size}", f"{base}/{kind}/{size}.bin?n={n}", account)
                    for n, (kind, size) in enumerate(sizes)
                ],
            )


def wait_done(url: str, proc: subprocess.Popen[bytes]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute(
            "select count(*) from public.media_downloads where status in ('pending', 'downloading')"
        ).fetchone()[0]:
            if proc.poll() is not None:
                raise RuntimeError("the worker died")
            time.sleep(0.05)
        failed = conn.execute("select count(*) from public.media_downloads where status <> 'downloaded'").fetchone()[0]
        assert failed == 0, f"{failed} downloads failed"


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rng = random.Random(3)
    sizes = [("small", rng.choice([20_000, 150_000, 600_000, 2_000_000])) for _ in range(FILES)]
    with throwaway_cluster() as cluster, tempfile.TemporaryDirectory() as media:
        url = create_migrated_database(cluster, "bench_media")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("insert into auth.users (id, email) values (gen_random_uuid(), 'bench@trove.local')")
            account = conn.execute(
                "insert into public.connected_accounts (user_id, platform, platform_user_id, username)"
                " select id, 'bluesky', 'did:plc:bench', 'bench' from public.users returning id::text"
            ).fetchone()[0]
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "TROVE_MEDIA_DIR": media,
            "TROVE_MEDIA_ALLOW_LOOPBACK": "1",
            "TROVE_TOKEN_KEYS": f"b:{generate_key()}",
            "PYTHONPATH": str(PROJECT_ROOT),
            "TROVE_PLATFORMS": "",
            "TROVE_STATE_DIR": media,
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "trove.cli",
                "worker",
                "--poll-interval",
                "0.1",
                "--concurrency",
                str(CONCURRENCY),
                "--per-host",
                str(CONCURRENCY),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.5)
            baseline_rss = peak_rss_kib(proc.pid)
            start = time.perf_counter()
            queue(url, sizes, base, account)
            wait_done(url, proc)
            elapsed = time.perf_counter() - start
            small_peak = peak_rss_kib(proc.pid)
            queue(url, [("big", BIG_SIZE)] * BIG_FILES, base, account)
            wait_done(url, proc)
            big_peak = peak_rss_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    with tempfile.TemporaryDirectory() as folder:
        curl_elapsed = curl_seconds(base, sizes, Path(folder), CONCURRENCY)
    total_mb = sum(size for _, size in sizes) / 1e6
    report("media_download_throughput", total_mb / elapsed, "MB/s")
    report("media_curl_throughput", total_mb / curl_elapsed, "MB/s")
    report("media_worker_vs_curl", curl_elapsed / elapsed, "ratio")
    report("media_download_files", FILES / elapsed, "files/s")
    report("media_worker_peak_rss_before_50mb_files", small_peak / 1024, "MiB")
    report("media_worker_peak_rss_with_50mb_files", big_peak / 1024, "MiB")
    report("media_worker_peak_rss_growth_from_50mb_files", (big_peak - small_peak) / 1024, "MiB")
    report("media_worker_idle_rss", baseline_rss / 1024, "MiB")


if __name__ == "__main__":
    main()
