"""Instagram in `trove run`: with no INSTAGRAM_CLIENT_ID, the simulator (trove.simulators.instagram) with a
demo professional account, connected through the real Instagram Login flow, and its webhooks configured; the
simulator itself as `trove simulate instagram`. Without INSTAGRAM_APP_SECRET the simulator and Trove share a
secret made once and kept in the state directory; with it, the simulator signs with that one."""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping

import httpx

from trove.config import SIMULATOR_PORT, state_dir

SIMULATOR_PORT_OFFSET = 3  # the ports below are the other simulators'
DEMO_CLIENT_ID = "trove-demo-instagram"


def local_app_secret() -> str:
    """INSTAGRAM_APP_SECRET, or the local stack's own, made once (mode 600)."""
    if os.environ.get("INSTAGRAM_APP_SECRET"):
        return os.environ["INSTAGRAM_APP_SECRET"]
    path = state_dir() / "instagram-app-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))
    return path.read_text().strip()


class InstagramSimulatorCommand:
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=SIMULATOR_PORT + SIMULATOR_PORT_OFFSET)
        parser.add_argument("--posts", type=int, default=0, help="create the demo account with this many media")
        parser.add_argument("--stories", type=int, default=3, help="live stories of the demo account")
        parser.add_argument("--client-id", default=DEMO_CLIENT_ID)
        parser.add_argument("--app-secret", default=None, help="default: INSTAGRAM_APP_SECRET or the local one")

    def serve(self, args: argparse.Namespace) -> None:
        from trove.http.log_redaction import serve_redacted
        from trove.simulators.instagram import InstagramSimulator

        simulator = InstagramSimulator(client_id=args.client_id, client_secret=args.app_secret or local_app_secret())
        if args.posts:
            account = simulator.add_account(posts=args.posts, stories=args.stories)
            print(
                f"simulated Instagram account {account.user_id} (@{account.username}) with {args.posts} media",
                flush=True,
            )
        serve_redacted(simulator.app, args.port)


class InstagramDemo:
    simulator_port = SIMULATOR_PORT + SIMULATOR_PORT_OFFSET

    def credentials_configured(self, env: Mapping[str, str]) -> bool:
        return bool(env.get("INSTAGRAM_CLIENT_ID") and env.get("INSTAGRAM_APP_SECRET"))

    def simulated_env(self, simulator_url: str) -> dict[str, str]:
        return {
            "INSTAGRAM_CLIENT_ID": DEMO_CLIENT_ID,
            "INSTAGRAM_APP_SECRET": local_app_secret(),
            "INSTAGRAM_AUTHORIZE_URL": simulator_url,
            "INSTAGRAM_API_URL": simulator_url,
            "INSTAGRAM_GRAPH_URL": simulator_url,
            "INSTAGRAM_WEBHOOK_SETUP_URL": f"{simulator_url}/_sim/webhooks",
        }

    def simulator_args(self, port: int, posts: int) -> list[str]:
        return ["simulate", "instagram", "--port", str(port), "--posts", str(posts), "--app-secret", local_app_secret()]

    def login_hint(self, env: Mapping[str, str], simulator_url: str) -> str | None:
        return None  # Instagram's consent page asks who is signing in

    def after_connect(self, env: Mapping[str, str]) -> None:
        # A fresh simulator knows no webhook configuration: drop the one a previous run recorded, then set it up.
        for command in ("unsubscribe", "subscribe"):
            subprocess.run(
                [sys.executable, "-m", "trove.cli", "instagram", command],
                env=dict(env),
                check=True,
                stdout=subprocess.DEVNULL,
            )

    def export_url(self, simulator_url: str) -> str | None:
        return f"{simulator_url}/_sim/export"

    def hints(self, simulator_url: str) -> list[str]:
        return [
            'trove demo post instagram "Sunset"   # a new post, archived at the next poll (or "sync now")',
            'trove demo post instagram --story "Coffee"   # a story, archived within the hour',
        ]

    def new_post(self, simulator_url: str, text: str, *, ephemeral: bool = False) -> str:
        accounts = httpx.get(f"{simulator_url}/_sim/stats", timeout=5.0).json().get("accounts", {})
        if not accounts:
            raise RuntimeError(f"the Instagram simulator at {simulator_url} has no account")
        user_id = next(iter(accounts))
        product = "STORY" if ephemeral else "FEED"
        created = httpx.post(
            f"{simulator_url}/_sim/media",
            json={"user_id": user_id, "caption": text, "media_type": "IMAGE", "product": product},
            timeout=10.0,
        )
        created.raise_for_status()
        kind = "story" if ephemeral else "post"
        return f"created Instagram {kind} {created.json().get('id')}: it is archived at the next poll or sync now"
