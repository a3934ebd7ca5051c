"""`trove run` (what `make run` ends with): the HTTP service and the worker, and for every platform with a
demo (trove.platforms): with no credentials configured, its simulator with a demo account whose posts get
archived for the demo user (connected through the real OAuth flow, then whatever the platform's demo adds,
such as a webhook subscription), then the demo account's own export file imported (`trove import`); with
credentials, a link to connect your own account. Prints where to look, then keeps everything running until
Ctrl-C (or exits after the archive is done with --once)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from trove.config import HTTP_PORT, public_url, state_dir
from trove.demo_login import DEMO_USER_ID, set_demo_password
from trove.http.auth import issue_local_token
from trove.platforms import load_platforms
from trove.platforms.base import Demo, Platform
from trove.queries.demo import ARCHIVED, MEDIA_COPIED, MEDIA_WAITING
from trove.queries.sync_logs import SYNC_LOG_STATE

DEMO_EMAIL = "demo@trove.local"


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


@dataclass
class Demoed:
    platform: Platform
    demo: Demo
    simulated: bool
    simulator_url: str


def run(conninfo: str, *, once: bool = False, posts: int = 300) -> None:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", conninfo)
    demos = []
    for platform in load_platforms().values():
        if platform.demo is None or platform.oauth is None:
            continue
        simulated = not platform.demo.credentials_configured(env)
        url = f"http://127.0.0.1:{platform.demo.simulator_port}"
        demos.append(Demoed(platform, platform.demo, simulated, url))
        if simulated:
            env |= platform.demo.simulated_env(url)
            env["TROVE_MEDIA_ALLOW_LOOPBACK"] = "1"  # the simulators' media files are on this machine
    password = set_demo_password(conninfo)  # so a person can sign in to the web app as the demo user
    supervisor = Supervisor(state_dir() / "logs")
    browser = httpx.Client(timeout=30.0)
    try:
        for each in demos:
            if each.simulated:
                args = each.demo.simulator_args(each.demo.simulator_port, posts)
                supervisor.start(f"{each.platform.name}-simulator", args, env)
                _wait_http(f"{each.simulator_url}/_sim/stats", f"the {each.platform.name} simulator")
        supervisor.start("http", ["serve", "--port", str(HTTP_PORT)], env)
        supervisor.start("worker", ["worker"], env)
        # pg_net's stand-in dispatcher (supabase/local/03_pg_net.sql): idle until a wake target is set.
        supervisor.start("netd", ["netd"], env)
        service = public_url()
        _wait_http(f"{service}/health", "the HTTP service")
        token = issue_local_token(DEMO_USER_ID, DEMO_EMAIL, ttl_seconds=30 * 24 * 3600)
        headers = {"Authorization": f"Bearer {token}"}
        print("\nTrove is running.")
        print(f"  web app:       {service}/app/  (sign in as {DEMO_EMAIL}, password {password})")
        print(f"  HTTP service:  {service}  (health: {service}/health)")
        print(f"  database:      psql {conninfo}")
        print(f"  logs:          {supervisor.log_dir}/")
        hints: list[str] = []
        for each in demos:
            name = each.platform.name
            # The simulated consent: this client plays the browser (start sets the cookie the callback must
            # carry back). Real credentials: a handoff link binds the flow to the browser you open it in.
            hint = each.demo.login_hint(env, each.simulator_url)
            start = browser.post(
                f"{service}/functions/v1/oauth-{name}/start",
                headers=headers,
                json={"handoff": not each.simulated, "login_hint": hint},
            )
            if start.status_code != 200:
                raise RuntimeError(f"starting the {name} connect failed ({start.status_code}): {start.text}")
            if not each.simulated:
                print(f"\nConnect your {name} account: open this link in a browser and approve:")
                print(f"  {start.json()['handoff_url']}")
                continue
            print(f"  {name}:  simulated at {each.simulator_url} (configure its credentials to use the real one)")
            consent = browser.get(start.json()["url"])  # the simulator approves at once
            callback = browser.get(consent.headers["location"])
            if callback.status_code not in (200, 201):
                raise RuntimeError(f"connecting the demo {name} account failed: {callback.text}")
            account = callback.json()
            each.demo.after_connect({**env, "TROVE_PUBLIC_URL": service})
            print(f"\nArchiving the demo {name} account's {posts} posts for {DEMO_EMAIL} ...", flush=True)
            _report_archive(conninfo, supervisor, name, account)
            hints += each.demo.hints(each.simulator_url)
        for each in demos:
            if each.simulated:
                _import_demo_export(conninfo, env, each)
        if any(each.simulated for each in demos):
            print("\nLook at it:")
            print(f"  in a browser: {service}/app/archive  (sign in as {DEMO_EMAIL}, password {password})")
            print(
                f'  psql {conninfo} -c "select created_at_platform, text_content from posts'
                ' order by created_at_platform desc limit 10"'
            )
            for hint in hints:
                print(f"  {hint}")
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


def _import_demo_export(conninfo: str, env: dict[str, str], each: Demoed) -> None:
    """The demo account's own export file, as its platform gives it, imported with `trove import`: it merges
    into what the sync archived (and adds what the API never lists)."""
    from trove.imports.command import import_file

    url = each.demo.export_url(each.simulator_url)
    if url is None:
        return
    response = httpx.get(url, timeout=120.0)
    response.raise_for_status()
    name = response.headers.get("content-disposition", "").partition('filename="')[2].rstrip('"') or "export"
    folder = state_dir() / "demo-exports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(name).name
    path.write_bytes(response.content)
    print(f"\nImporting the demo {each.platform.name} account's own export ({path}) ...", flush=True)
    os.environ.update(env)  # the import reads the platforms' settings (the simulators) from here
    if asyncio.run(import_file(conninfo, path, DEMO_EMAIL)) != 0:
        raise RuntimeError(f"importing the demo {each.platform.name} export failed")


def _report_archive(conninfo: str, supervisor: Supervisor, platform: str, account: dict[str, str]) -> None:
    """Wait for the demo account's backfill and its media copies, then say what was archived."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while True:
            supervisor.check()
            status = conn.execute(SYNC_LOG_STATE, (account["sync_log_id"],)).fetchone()[0]
            if status not in ("queued", "running"):
                break
            time.sleep(0.5)
        posts, details, media = conn.execute(
            ARCHIVED, {"account": account["account_id"], "platform": platform}
        ).fetchone()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            waiting = conn.execute(MEDIA_WAITING).fetchone()[0]
            if waiting == 0:
                break
            time.sleep(0.5)
        copied = conn.execute(MEDIA_COPIED, (platform,)).fetchone()[0]
    print(
        f"  backfill {status}: {posts} posts archived, {details} with full detail;"
        f" {copied} of {media} media files copied to {state_dir() / 'media'}"
    )
