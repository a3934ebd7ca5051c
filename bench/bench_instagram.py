"""Instagram figures against the real local stack: the simulator over real HTTP in this process; `trove serve`
and `trove worker` as real processes; real Postgres. The account is connected through Instagram Login.

1. API calls to archive the account's N media (every shape: carousels, reels, videos) and its live stories,
   counted by the simulator once the backfill's sync log is done and every file is copied: media pages (50 a
   call, carousel children inline), stories pages, media-by-id calls (refreshes), CDN downloads; as calls per
   100 items, against the floor of one call per 50 media.
2. Webhook ingest: signed comment deliveries POSTed one after another to /functions/v1/webhook-instagram
   (each a new comment, so each is stored), p50/p99 in ms, against GET /health of the same service in the same
   run (the stack's floor) as a ratio."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from bench_bluesky import _healthy, process, scalar, wait_for
from common import create_migrated_database, median, percentile, report, throwaway_cluster
from trove.config import PROJECT_ROOT
from trove.crypto import generate_key
from trove.db.cluster import free_port
from trove.http.auth import issue_local_token
from trove.simulators.instagram import InstagramSimulator
from trove.simulators.serve import BackgroundServer

MEDIA, STORIES = 1000, 3
DELIVERIES = 500
CLIENT_ID, SECRET = "bench-instagram", "bench-instagram-secret"
USER_ID = "00000000-0000-4000-8000-0000000000c3"


def connect(service: str, token: str) -> dict[str, str]:
    with httpx.Client(timeout=30.0) as browser:
        start = browser.post(
            f"{service}/functions/v1/oauth-instagram/start", headers={"Authorization": f"Bearer {token}"}
        )
        consent = browser.get(start.json()["url"])
        done = browser.get(consent.headers["location"])
        assert done.status_code == 201, done.text
        return dict(done.json())


def timed(call: object, count: int) -> list[float]:
    samples = []
    for n in range(count):
        began = time.perf_counter()
        call(n)  # type: ignore[operator]
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="trove-bench-instagram-"))
    try:
        run(work)
    except BaseException:
        print(f"bench_instagram failed; the service and worker logs are in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)


def run(work: Path) -> None:
    with throwaway_cluster() as cluster:
        url = create_migrated_database(cluster, "bench_instagram")
        sim = InstagramSimulator(client_id=CLIENT_ID, client_secret=SECRET)
        account = sim.add_account(posts=MEDIA, stories=STORIES)
        with BackgroundServer(sim.app, free_port()) as sim_server:
            sim.base_url = sim_server.url
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
                "TROVE_LOCAL_STACK": "1",
                "INSTAGRAM_CLIENT_ID": CLIENT_ID,
                "INSTAGRAM_APP_SECRET": SECRET,
                "INSTAGRAM_AUTHORIZE_URL": sim_server.url,
                "INSTAGRAM_API_URL": sim_server.url,
                "INSTAGRAM_GRAPH_URL": sim_server.url,
            }
            with process(["serve", "--port", str(port)], env, work / "service.log"):
                wait_for(lambda: _healthy(service_url), 30, "the HTTP service")
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("insert into auth.users (id, email) values (%s, 'bench@trove.local')", (USER_ID,))
                answer = connect(service_url, issue_local_token(USER_ID))
                before = dict(sim.requests)
                started = time.perf_counter()
                with process(["worker", "--poll-interval", "0.2"], env, work / "worker.log"):
                    status = wait_for(
                        lambda: (
                            (s := scalar(url, "select status::text from public.sync_logs where id = %s",
                                         (answer["sync_log_id"],)))
                            not in ("queued", "running") and s
                        ),
                        300,
                        "the backfill",
                    )  # fmt: skip
                    assert status == "success", status
                    wait_for(
                        lambda: (
                            scalar(
                                url,
                                "select count(*) from public.media_downloads"
                                " where status in ('pending', 'downloading')",
                            )
                            == 0
                        ),
                        300,
                        "the media copies",
                        0.2,
                    )
                    seconds = time.perf_counter() - started
                    items = scalar(url, "select count(*) from public.posts")
                    calls = {name: sim.requests.get(name, 0) - before.get(name, 0) for name in sim.requests}

                    hook = f"{service_url}/functions/v1/webhook-instagram"
                    target = account.media[0].id
                    with httpx.Client(timeout=10.0) as client:

                        def deliver(n: int) -> None:
                            body = json.dumps(
                                {"object": "instagram", "entry": [{"id": account.user_id, "time": 1700000000 + n,
                                 "changes": [{"field": "comments", "value": {
                                     "from": {"id": "17841400000000001", "username": "bench"},
                                     "media": {"id": target, "media_product_type": "FEED"},
                                     "id": str(18000000000000000 + n), "text": f"comment {n}"}}]}]}
                            ).encode()  # fmt: skip
                            signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                            answer = client.post(hook, content=body, headers={"X-Hub-Signature-256": signature})
                            assert answer.status_code == 200, answer.text

                        def health(_: int) -> None:
                            assert client.get(f"{service_url}/health").status_code == 200

                        timed(deliver, 20)  # warm-up
                        timed(health, 20)
                        ingest = timed(lambda n: deliver(n + 100), DELIVERIES)
                        floor = timed(health, DELIVERIES)

    api_calls = calls.get("me.media", 0) + calls.get("me.stories", 0) + calls.get("node", 0) + calls.get("me", 0)
    print(f"# {items} items ({MEDIA} media, {STORIES} stories) archived and copied in {seconds:.1f}s")
    report("instagram_backfill_api_calls", api_calls, "calls")
    report("instagram_backfill_media_pages", calls.get("me.media", 0), "calls")
    report("instagram_backfill_story_pages", calls.get("me.stories", 0), "calls")
    report("instagram_backfill_media_by_id", calls.get("node", 0), "calls")
    report("instagram_backfill_cdn_downloads", calls.get("cdn", 0), "files")
    report("instagram_backfill_calls_per_100_items", 100 * api_calls / items, "calls")
    report("instagram_backfill_calls_vs_floor_ratio", api_calls / math.ceil(MEDIA / 50), "x")
    report("instagram_backfill_throughput", items / seconds, "items/s")
    report("instagram_webhook_ingest_p50", median(ingest), "ms")
    report("instagram_webhook_ingest_p99", percentile(ingest, 99), "ms")
    report("instagram_health_p99", percentile(floor, 99), "ms")
    report("instagram_webhook_ingest_vs_health_p99_ratio", percentile(ingest, 99) / percentile(floor, 99), "x")


if __name__ == "__main__":
    main()
