"""Bluesky figures against the real local stack: the simulator (PDS, AppView, PLC, authorization server,
Jetstream, DNS) over real HTTP, WebSocket and UDP in this process; `trove serve` and `trove worker` as real
processes; real Postgres. The account is connected by its handle through the real atproto OAuth flow.

1. API calls to archive the demo account's N posts and reposts: ours (com.atproto.repo.listRecords pages,
   then app.bsky.feed.getPosts hydration, 25 URIs a call; counted by the simulator once the backfill's sync
   log is done) against the seeds' getAuthorFeed-only read (pages of 100 until the cursor ends, made here
   with httpx against the same simulator). Records each one yields: the AppView's feed leaves out what it
   hides; the repository does not.
2. Jetstream event -> post visible through GET /api/posts: with the worker following the account, posts are
   created in the simulator (sim.write: each a Jetstream create) while one client polls the read API as a
   reader would (every 10 ms, newest first, every page back to the oldest post still awaited). A post's
   latency runs from its creation to the arrival of the first response that lists it, so it includes the
   poll's round trip (reported, as the figure's resolution). Three runs: a baseline of one post at a time
   (4/s, the pipeline idle in between), 1,000 posts paced at a steady 50/s (the headline p50/p99; throughput
   = posts / (last one visible - first one created), so at most the offered 50/s), then 1,000 in one burst
   (created as fast as the simulator takes them) for the throughput the pipeline reaches when it is the
   bottleneck. Logs of the service and the worker stay in a temporary directory if the run fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).parent))
from common import create_migrated_database, median, percentile, report, throwaway_cluster
from trove.config import PROJECT_ROOT
from trove.crypto import generate_key
from trove.db.cluster import free_port
from trove.http.auth import issue_local_token
from trove.simulators.bluesky import POST, REPOST, BlueskySimulator, DnsServer
from trove.simulators.serve import BackgroundServer

POSTS = 1000  # posts + reposts in the demo account's repository
EVENTS = 1000  # Jetstream creates, paced
RATE = 50.0  # events per second in the paced run
BURST = 1000  # Jetstream creates at once
USER_ID = "00000000-0000-4000-8000-0000000000b2"
FEED_PAGE = 100
POLL_EVERY = 0.01  # the reader polls at most every 10 ms: finer than the figures, light on two cores
IDLE_EVENTS, IDLE_RATE = 40, 4.0  # the baseline: one post at a time, the pipeline idle in between


def author_feed_read(sim_url: str, did: str) -> tuple[int, int]:
    """The seeds' way: getAuthorFeed (limit 100) until the cursor ends. (calls, feed items archived)."""
    calls, seen = 0, set()
    cursor: str | None = None
    with httpx.Client(timeout=30.0) as http:
        while True:
            params = {"actor": did, "limit": FEED_PAGE, **({"cursor": cursor} if cursor else {})}
            page = http.get(f"{sim_url}/xrpc/app.bsky.feed.getAuthorFeed", params=params)
            page.raise_for_status()
            calls += 1
            body = page.json()
            for item in body["feed"]:
                reason = item.get("reason") or {}
                seen.add((item["post"]["uri"], reason.get("indexedAt")))  # a repost: its subject, when
            cursor = body.get("cursor")
            if not cursor:
                return calls, len(seen)


def client_key() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "trove.cli", *args], env=env, stdout=out, stderr=out)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def scalar(url: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def connect_by_handle(service: str, headers: dict[str, str], handle: str) -> dict[str, Any]:
    """Start with the handle, consent on the simulator's authorization server, back to our callback."""
    with httpx.Client(timeout=30.0) as browser:
        start = browser.post(
            f"{service}/functions/v1/oauth-bluesky/start", headers=headers, json={"login_hint": handle}
        )
        start.raise_for_status()
        consent = browser.get(start.json()["url"])
        assert consent.status_code == 302, consent.text
        done = browser.get(consent.headers["location"])
        assert done.status_code == 201, done.text
        return dict(done.json())


class Watcher:
    """One reader of GET /api/posts (newest first) and the moment each post created here is first listed.

    The worker applies stream events in concurrent batches, so posts do not become visible in creation order:
    a post created early can show up below a hundred newer ones. Each poll therefore reads every page from the
    newest post down to the oldest one still awaited (`since` = its createdAt), so nothing slips past."""

    def __init__(self, service: str, token: str) -> None:
        self.http = httpx.Client(base_url=service, headers={"Authorization": f"Bearer {token}"}, timeout=30.0)
        self.lock = threading.Lock()
        self.pending: dict[str, datetime] = {}  # created, not yet listed: text -> its createdAt
        self.created: dict[str, float] = {}
        self.seen: dict[str, float] = {}
        self.rounds: list[float] = []

    def created_now(self, text: str, created_at: datetime) -> None:
        with self.lock:
            self.created[text] = time.perf_counter()
            self.pending[text] = created_at

    def poll(self) -> None:
        """One poll (all the pages it takes), if any post is awaited."""
        with self.lock:
            if not self.pending:
                return
            since = min(self.pending.values()) - timedelta(milliseconds=1)
        start = time.perf_counter()
        cursor = None
        while True:
            params: dict[str, Any] = {"platforms": "bluesky", "limit": FEED_PAGE, "since": since.isoformat()}
            if cursor:
                params["cursor"] = cursor
            page = self.http.get("/api/posts", params=params)
            page.raise_for_status()
            now = time.perf_counter()
            body = page.json()
            with self.lock:
                for post in body["posts"]:
                    if self.pending.pop(post["text"], None) is not None:
                        self.seen[post["text"]] = now
            cursor = body.get("next_cursor")
            if not cursor:
                break
        self.rounds.append((time.perf_counter() - start) * 1000)

    def until_seen(self, texts: set[str], writing: threading.Thread, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while writing.is_alive() or not texts <= self.seen.keys():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(texts - self.seen.keys())} posts never became visible through /api/posts")
            started = time.perf_counter()
            self.poll()
            time.sleep(max(0.0, POLL_EVERY - (time.perf_counter() - started)))


def write_posts(sim: BlueskySimulator, watcher: Watcher, texts: list[str], rate: float | None) -> None:
    """Create the posts (each a Jetstream create) at `rate` per second, or all at once."""
    start = time.perf_counter()
    for n, text in enumerate(texts):
        if rate:
            wait = start + n / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        created_at = datetime.now(UTC)
        watcher.created_now(text, created_at)
        sim.write(sim.demo_did, POST, None, {"$type": POST, "text": text, "createdAt": created_at.isoformat()})


def stream_run(sim: BlueskySimulator, watcher: Watcher, tag: str, count: int, rate: float | None) -> dict[str, Any]:
    texts = [f"{tag} {n}" for n in range(count)]
    hydrations = sim.requests.get("app.bsky.feed.getPosts", 0)
    rounds = len(watcher.rounds)
    writer = threading.Thread(target=write_posts, args=(sim, watcher, texts, rate))
    writer.start()
    watcher.until_seen(set(texts), writer, timeout=count / (rate or count) + 90)
    writer.join()
    latencies = [(watcher.seen[text] - watcher.created[text]) * 1000 for text in texts]
    first = min(watcher.created[text] for text in texts)
    return {
        "latencies": latencies,
        "throughput": count / (max(watcher.seen[text] for text in texts) - first),
        "poll_rounds": watcher.rounds[rounds:],
        "hydration_calls": sim.requests.get("app.bsky.feed.getPosts", 0) - hydrations,
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="trove-bench-bluesky-"))
    try:
        run(work)
    except BaseException:
        print(f"bench_bluesky failed; the service and worker logs are in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)


def run(work: Path) -> None:
    with throwaway_cluster() as cluster:
        url = create_migrated_database(cluster, "bench_bluesky")
        # Generous rate limits: the engine is measured, not the budget.
        sim = BlueskySimulator(posts=POSTS, rate_limit=(10**7, 300))
        did = sim.demo_did
        in_repo = len(sim.accounts[did].collection(POST)) + len(sim.accounts[did].collection(REPOST))
        with DnsServer(sim.did_for_handle, 0) as dns, BackgroundServer(sim.app, free_port()) as sim_server:
            sim.base_url = sim_server.url
            before = sim.requests.get("app.bsky.feed.getAuthorFeed", 0)
            feed_calls, feed_records = author_feed_read(sim_server.url, did)
            assert sim.requests.get("app.bsky.feed.getAuthorFeed", 0) - before == feed_calls

            port = free_port()
            service_url = f"http://127.0.0.1:{port}"
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "TROVE_TOKEN_KEYS": f"b:{generate_key()}",
                "PYTHONPATH": str(PROJECT_ROOT),
                "TROVE_STATE_DIR": str(work),
                "TROVE_MEDIA_DIR": str(work / "media"),
                "TROVE_MEDIA_ALLOW_LOOPBACK": "1",
                "TROVE_PLATFORMS": "",
                "TROVE_PUBLIC_URL": service_url,
                "TROVE_BLUESKY_CLIENT_KEY": client_key(),
                "TROVE_BLUESKY_PLC_URL": sim_server.url,
                "TROVE_BLUESKY_APPVIEW_URL": sim_server.url,
                "TROVE_BLUESKY_JETSTREAM_URL": sim_server.url.replace("http://", "ws://", 1),
                "TROVE_BLUESKY_DNS": f"127.0.0.1:{dns.port}",
                "TROVE_BLUESKY_INSECURE_HTTP": "1",
                "TROVE_LOCAL_STACK": "1",
            }
            with process(["serve", "--port", str(port)], env, work / "service.log"):
                wait_for(lambda: _healthy(service_url), 30, "the HTTP service")
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("insert into auth.users (id, email) values (%s, 'bench@trove.local')", (USER_ID,))
                token = issue_local_token(USER_ID)
                answer = connect_by_handle(service_url, {"Authorization": f"Bearer {token}"}, sim.accounts[did].handle)
                listed = sim.requests.get("com.atproto.repo.listRecords", 0)
                hydrated = sim.requests.get("app.bsky.feed.getPosts", 0)
                profiled = sim.requests.get("app.bsky.actor.getProfile", 0)
                started = time.perf_counter()
                worker_args = ["worker", "--poll-interval", "0.2"]
                with process(worker_args, env, work / "worker.log"):
                    status = wait_for(
                        lambda: (
                            (s := scalar(url, "select status::text from public.sync_logs where id = %s",
                                         (answer["sync_log_id"],)))
                            not in ("queued", "running") and s
                        ),
                        120,
                        "the backfill",
                    )  # fmt: skip
                    backfill_seconds = time.perf_counter() - started
                    assert status == "success", status
                    list_calls = sim.requests.get("com.atproto.repo.listRecords", 0) - listed
                    hydrate_calls = sim.requests.get("app.bsky.feed.getPosts", 0) - hydrated
                    profile_calls = sim.requests.get("app.bsky.actor.getProfile", 0) - profiled
                    repo_records = scalar(
                        url, "select count(*) from public.posts where account_id = %s", (answer["account_id"],)
                    )
                    # Quiet before the stream runs: the backfill's media copied, the stream followed and live.
                    wait_for(
                        lambda: (
                            scalar(url, "select count(*) from public.media_downloads where status = 'pending'") == 0
                        ),
                        120,
                        "the media copies",
                        0.2,
                    )
                    wait_for(lambda: sim.stats()["subscribers"] >= 1, 30, "the worker to follow on Jetstream")
                    watcher = Watcher(service_url, token)
                    stream_run(sim, watcher, "warm-up", 5, RATE)
                    idle = stream_run(sim, watcher, "idle", IDLE_EVENTS, IDLE_RATE)
                    paced = stream_run(sim, watcher, "paced", EVENTS, RATE)
                    burst = stream_run(sim, watcher, "burst", BURST, None)
                    listed_during_stream = sim.requests.get("com.atproto.repo.listRecords", 0) - listed - list_calls

    repo_calls = list_calls + hydrate_calls + profile_calls  # the profile: once a sync, for the pinned post
    print(f"# {in_repo} records in the repository; backfill done in {backfill_seconds:.1f}s")
    report("bluesky_backfill_calls_repo", repo_calls, "calls")
    report("bluesky_backfill_calls_repo_listrecords", list_calls, "calls")
    report("bluesky_backfill_calls_repo_getposts", hydrate_calls, "calls")
    report("bluesky_backfill_calls_authorfeed", feed_calls, "calls")
    report("bluesky_backfill_calls_repo_vs_authorfeed_ratio", repo_calls / feed_calls, "x")
    report("bluesky_backfill_records_repo", repo_records, "records")
    report("bluesky_backfill_records_authorfeed", feed_records, "records")
    report("bluesky_backfill_records_repo_vs_authorfeed_ratio", repo_records / feed_records, "x")
    report("bluesky_backfill_throughput", repo_records / backfill_seconds, "records/s")
    print(
        f"# Jetstream: {IDLE_EVENTS} posts at {IDLE_RATE:.0f}/s (idle baseline), {EVENTS} at {RATE:.0f}/s,"
        f" then {BURST} at once; visible = listed by GET /api/posts, polled every {POLL_EVERY * 1000:.0f} ms"
    )
    report("bluesky_jetstream_idle_visible_p50", median(idle["latencies"]), "ms")
    report("bluesky_jetstream_visible_p50", median(paced["latencies"]), "ms")
    report("bluesky_jetstream_visible_p99", percentile(paced["latencies"], 99), "ms")
    report("bluesky_jetstream_visible_max", max(paced["latencies"]), "ms")
    report("bluesky_jetstream_visible_p50_vs_idle_ratio", median(paced["latencies"]) / median(idle["latencies"]), "x")
    report("bluesky_jetstream_throughput", paced["throughput"], "events/s")
    report("bluesky_jetstream_poll_roundtrip_p50", median(paced["poll_rounds"]), "ms")
    report("bluesky_jetstream_getposts_calls_per_event", paced["hydration_calls"] / EVENTS, "calls")
    report("bluesky_jetstream_burst_visible_p50", median(burst["latencies"]), "ms")
    report("bluesky_jetstream_burst_visible_p99", percentile(burst["latencies"], 99), "ms")
    report("bluesky_jetstream_burst_throughput", burst["throughput"], "events/s")
    report("bluesky_jetstream_burst_getposts_calls_per_event", burst["hydration_calls"] / BURST, "calls")
    report("bluesky_jetstream_listrecords_calls", listed_during_stream, "calls")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
