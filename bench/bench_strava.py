"""Strava figures: backfill throughput against the simulator (generous limits, so the engine is measured,
not the budget) and the API calls spent to archive N activities: the summary pass (list pages, 200 per
call), then details (one call each, plus one for photos when an activity has any)."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from common import create_migrated_database, report, throwaway_cluster
from trove.accounts import save_connection
from trove.crypto import KeyRing, generate_key
from trove.db.cluster import free_port
from trove.platforms.strava.client import StravaConfig
from trove.platforms.strava.sync import StravaConnector
from trove.simulators.serve import BackgroundServer
from trove.simulators.strava import StravaSimulator
from trove.worker import Worker

ACTIVITIES = 1000
USER_ID = "00000000-0000-4000-8000-0000000000b1"


async def archive(url: str, sim: StravaSimulator, sim_url: str) -> dict[str, float]:
    config = StravaConfig("bench", "bench-secret", sim_url)
    connector = StravaConnector(config)
    ring = KeyRing.parse(f"b:{generate_key()}")
    athlete = sim.add_athlete(ACTIVITIES)
    async with httpx.AsyncClient() as http:
        consent = await http.get(
            f"{sim_url}/oauth/authorize",
            params={
                "client_id": "bench",
                "redirect_uri": "http://cb/",
                "scope": "read,activity:read_all",
                "state": "s",
                "sim_athlete": athlete.id,
            },
        )
        code = parse_qs(urlparse(consent.headers["location"]).query)["code"][0]
        connection = await connector.oauth.exchange(http, code)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("insert into auth.users (id, email) values (%s, 'bench@trove.local')", (USER_ID,))
        sim.requests.clear()
        start = time.perf_counter()
        async with conn.transaction():
            saved = await save_connection(
                conn,
                ring,
                user_id=USER_ID,
                platform="strava",
                platform_user_id=connection.platform_user_id,
                username=connection.username,
                tokens=connection.tokens,
                scope="read,activity:read_all",
            )
        worker = Worker(url, {"strava": connector}, ring, poll_interval=0.2, lease=timedelta(minutes=5))
        task = asyncio.create_task(worker.run())
        summary_done = None
        while True:
            posts = (await (await conn.execute("select count(*) from public.posts")).fetchone())[0]
            if summary_done is None and posts >= ACTIVITIES:
                summary_done = time.perf_counter()
                summary_calls = dict(sim.requests)
            status = (
                await (
                    await conn.execute("select status::text from public.sync_logs where id = %s", (saved.sync_log_id,))
                ).fetchone()
            )[0]
            if status not in ("queued", "running"):
                break
            await asyncio.sleep(0.05)
        done = time.perf_counter()
        worker.request_stop()
        await task
    assert status == "success", status
    return {
        "summary_seconds": (summary_done or done) - start,
        "total_seconds": done - start,
        "list_calls": summary_calls.get("athlete.activities", 0),
        "detail_calls": sim.requests.get("activity", 0),
        "photo_calls": sim.requests.get("activity.photos", 0),
    }


def main() -> None:
    with throwaway_cluster() as cluster:
        url = create_migrated_database(cluster, "bench_strava")
        sim = StravaSimulator(
            client_id="bench", client_secret="bench-secret", overall_limits=(10**6, 10**7), read_limits=(10**6, 10**7)
        )
        with BackgroundServer(sim.app, free_port()) as server:
            sim.base_url = server.url
            figures = asyncio.run(archive(url, sim, server.url))
    report("strava_backfill_summary_pass", ACTIVITIES / figures["summary_seconds"], "activities/s")
    report("strava_backfill_with_details", ACTIVITIES / figures["total_seconds"], "activities/s")
    report("strava_api_calls_summary_pass_per_1000", figures["list_calls"] * 1000 / ACTIVITIES, "calls")
    report(
        "strava_api_calls_details_per_1000",
        (figures["detail_calls"] + figures["photo_calls"]) * 1000 / ACTIVITIES,
        "calls",
    )
    report(
        "strava_detail_vs_summary_cost_ratio",
        (figures["detail_calls"] + figures["photo_calls"]) / max(figures["list_calls"], 1),
        "x",
    )


if __name__ == "__main__":
    main()
