"""Strava in `trove run`: with no STRAVA_CLIENT_ID/SECRET, the simulator with a demo athlete, and a push
subscription so that a new activity arrives by webhook; the simulator itself as `trove simulate strava`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Mapping

import httpx

from trove.config import SIMULATOR_PORT

DEMO_CLIENT_ID, DEMO_CLIENT_SECRET = "trove-demo", "trove-demo-secret"


class StravaSimulatorCommand:
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=SIMULATOR_PORT)
        parser.add_argument("--activities", type=int, default=0, help="create an athlete with this many")
        parser.add_argument("--client-id", default=DEMO_CLIENT_ID)
        parser.add_argument("--client-secret", default=DEMO_CLIENT_SECRET)
        parser.add_argument("--generous", action="store_true", help="rate limits far above Strava's (demo)")

    def serve(self, args: argparse.Namespace) -> None:
        from trove.http.log_redaction import serve_redacted
        from trove.simulators.strava import StravaSimulator

        limits = {"overall_limits": (100_000, 1_000_000), "read_limits": (100_000, 1_000_000)} if args.generous else {}
        simulator = StravaSimulator(client_id=args.client_id, client_secret=args.client_secret, **limits)
        if args.activities:
            athlete = simulator.add_athlete(args.activities)
            print(f"simulated athlete {athlete.id} with {args.activities} activities", flush=True)
        serve_redacted(simulator.app, args.port)


class StravaDemo:
    simulator_port = SIMULATOR_PORT

    def credentials_configured(self, env: Mapping[str, str]) -> bool:
        return bool(env.get("STRAVA_CLIENT_ID") and env.get("STRAVA_CLIENT_SECRET"))

    def simulated_env(self, simulator_url: str) -> dict[str, str]:
        return {
            "STRAVA_CLIENT_ID": DEMO_CLIENT_ID,
            "STRAVA_CLIENT_SECRET": DEMO_CLIENT_SECRET,
            "STRAVA_BASE_URL": simulator_url,
        }

    def simulator_args(self, port: int, posts: int) -> list[str]:
        return ["simulate", "strava", "--port", str(port), "--activities", str(posts), "--generous"]

    def after_connect(self, env: Mapping[str, str]) -> None:
        # A fresh simulator knows no subscription: drop the one a previous run recorded, then subscribe.
        for command in ("unsubscribe", "subscribe"):
            subprocess.run(
                [sys.executable, "-m", "trove.cli", "strava", command],
                env=dict(env),
                check=True,
                stdout=subprocess.DEVNULL,
            )

    def login_hint(self, env: Mapping[str, str], simulator_url: str) -> str | None:
        return None  # Strava's consent page asks who is signing in

    def export_url(self, simulator_url: str) -> str | None:
        return f"{simulator_url}/_sim/export"

    def hints(self, simulator_url: str) -> list[str]:
        return ['trove demo post strava "Evening run"   # a new activity arrives by webhook']

    def new_post(self, simulator_url: str, text: str, *, ephemeral: bool = False) -> str:
        if ephemeral:
            raise ValueError("Strava has no stories: nothing there vanishes by itself")
        athletes = httpx.get(f"{simulator_url}/_sim/stats", timeout=5.0).json().get("athletes", {})
        if not athletes:
            raise RuntimeError(f"the Strava simulator at {simulator_url} has no athlete")
        athlete = int(next(iter(athletes)))
        created = httpx.post(
            f"{simulator_url}/_sim/activities",
            json={"athlete_id": athlete, "fields": {"name": text}},
            timeout=10.0,
        )
        created.raise_for_status()
        return f"created Strava activity {created.json().get('id')} for athlete {athlete}: it arrives by webhook"
