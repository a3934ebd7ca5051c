"""`trove run` (what `make run` ends with): the HTTP service and the worker, and, with no Strava
credentials configured, the Strava simulator with a demo athlete whose activities get archived for the
demo user (connected through the real OAuth flow, webhooks subscribed). Prints where to look, then keeps
everything running until Ctrl-C (or exits after the archive is done with --once)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

from trove.config import HTTP_PORT, SIMULATOR_PORT, public_url, state_dir
from trove.http.auth import issue_local_token

DEMO_USER_ID = "00000000-0000-4000-8000-000000000001"  # supabase/seed.sql


def _wait_http(url: str, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up at {url}")


class Supervisor:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "trove.cli", *args], env=env, stdout=log, stderr=log)
        self.children.append((name, proc))

    def check(self) -> None:
        for name, proc in self.children:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}); see {self.log_dir / (name + '.log')}")

    def stop(self) -> None:
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in self.children:
            try:
                proc.wait(timeout=35)
            except subprocess.TimeoutExpired:
                proc.kill()


def run(conninfo: str, *, once: bool = False, activities: int = 300) -> None:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", conninfo)
    simulated = not (env.get("STRAVA_CLIENT_ID") and env.get("STRAVA_CLIENT_SECRET"))
    supervisor = Supervisor(state_dir() / "logs")
    sim_url = f"http://127.0.0.1:{SIMULATOR_PORT}"
    if simulated:
        env |= {
            "STRAVA_CLIENT_ID": "trove-demo",
            "STRAVA_CLIENT_SECRET": "trove-demo-secret",
            "STRAVA_BASE_URL": sim_url,
            "TROVE_MEDIA_ALLOW_LOOPBACK": "1",  # the simulator's photo files are on this machine
        }
    browser = httpx.Client(timeout=30.0)
    try:
        if simulated:
            supervisor.start(
                "strava-simulator",
                ["simulate", "strava", "--port", str(SIMULATOR_PORT), "--activities", str(activities), "--generous"],
                env,
            )
            _wait_http(f"{sim_url}/_sim/stats", "the Strava simulator")
        supervisor.start("http", ["serve", "--port", str(HTTP_PORT)], env)
        supervisor.start("worker", ["worker"], env)
        service = public_url()
        _wait_http(f"{service}/health", "the HTTP service")
        token = issue_local_token(DEMO_USER_ID, "demo@trove.local", ttl_seconds=30 * 24 * 3600)
        headers = {"Authorization": f"Bearer {token}"}
        # The simulated consent: this client plays the browser (start sets the cookie the callback must carry
        # back). Real Strava: a handoff link binds the flow to the browser you open it in.
        start = browser.post(
            f"{service}/functions/v1/oauth-strava/start", headers=headers, json={"handoff": not simulated}
        )
        if start.status_code != 200:
            raise RuntimeError(f"starting the Strava connect failed ({start.status_code}): {start.text}")
        print("\nTrove is running.")
        print(f"  HTTP service:  {service}  (health: {service}/health)")
        print(f"  database:      psql {conninfo}")
        print(f"  logs:          {supervisor.log_dir}/")
        if not simulated:
            print("\nConnect your Strava account: open this link in a browser and approve:")
            print(f"  {start.json()['handoff_url']}")
        else:
            print(f"  Strava:        simulated at {sim_url} (set STRAVA_CLIENT_ID/SECRET to use the real one)")
            consent = browser.get(start.json()["url"])  # the simulator approves at once
            callback = browser.get(consent.headers["location"])
            if callback.status_code not in (200, 201):
                raise RuntimeError(f"connecting the demo account failed: {callback.text}")
            account = callback.json()
            env_sub = {**env, "TROVE_PUBLIC_URL": service}
            # A fresh simulator knows no subscription: drop the one a previous run recorded, then subscribe.
            subprocess.run(
                [sys.executable, "-m", "trove.cli", "strava", "unsubscribe"],
                env=env_sub,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            subprocess.run(
                [sys.executable, "-m", "trove.cli", "strava", "subscribe"],
                env=env_sub,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            print(f"\nArchiving the demo athlete's {activities} activities for demo@trove.local ...", flush=True)
            with psycopg.connect(conninfo, autocommit=True) as conn:
                while True:
                    supervisor.check()
                    status = conn.execute(
                        "select status::text from public.sync_logs where id = %s", (account["sync_log_id"],)
                    ).fetchone()[0]
                    if status not in ("queued", "running"):
                        break
                    time.sleep(0.5)
                posts, details, media = conn.execute(
                    "select (select count(*) from public.posts where account_id = %(a)s),"
                    " (select count(*) from public.ingested_posts where account_id = %(a)s and not detail_pending),"
                    " (select count(*) from public.media_downloads where platform = 'strava')",
                    {"a": account["account_id"]},
                ).fetchone()
            with psycopg.connect(conninfo, autocommit=True) as conn:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    waiting = conn.execute(
                        "select count(*) from public.media_downloads where status in ('pending', 'downloading')"
                    ).fetchone()[0]
                    if waiting == 0:
                        break
                    time.sleep(0.5)
                copied = conn.execute(
                    "select count(*) from public.media_downloads where status = 'downloaded'"
                ).fetchone()[0]
            print(
                f"  backfill {status}: {posts} activities archived, {details} with full detail;"
                f" {copied} of {media} photos copied to {state_dir() / 'media'}"
            )
            print("\nLook at it:")
            print(
                f'  psql {conninfo} -c "select created_at_platform, text_content from posts'
                ' order by created_at_platform desc limit 10"'
            )
            print(
                f"  curl -X POST {sim_url}/_sim/activities -H 'content-type: application/json'"
                f' -d \'{{"athlete_id": {demo_athlete_id(sim_url)}, "fields": {{"name": "New run"}}}}\''
                "   # a new activity arrives by webhook"
            )
            print(f"  demo user token (for the API): {token}")
        if once:
            return
        print("\nCtrl-C stops everything.", flush=True)
        while True:
            supervisor.check()
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        browser.close()
        supervisor.stop()


def demo_athlete_id(sim_url: str) -> str:
    athletes = httpx.get(f"{sim_url}/_sim/stats", timeout=5.0).json().get("athletes", {})
    return next(iter(athletes), "134815")
