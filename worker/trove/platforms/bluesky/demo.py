"""Bluesky in `trove run`: with no client key configured, the simulator (PDS, AppView, PLC directory,
authorization server, Jetstream and a DNS server for handles, trove.simulators.bluesky) with a demo account,
connected through the real atproto OAuth flow; the simulator itself as `trove simulate bluesky`.

With a client key (TROVE_BLUESKY_CLIENT_KEY) and a public https TROVE_PUBLIC_URL, `trove run` connects your
own account instead: TROVE_BLUESKY_HANDLE says which."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trove.config import SIMULATOR_PORT, state_dir

SIMULATOR_PORT_OFFSET = 1  # simulators take ports from SIMULATOR_PORT up; this one and the next
DNS_PORT_OFFSET = 2


def local_client_key() -> str:
    """The local stack's OAuth client key (ES256), made once and kept in the state directory (mode 600)."""
    path = state_dir() / "bluesky-client-key.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
    return path.read_text()


class BlueskySimulatorCommand:
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from trove.simulators.bluesky import add_arguments

        add_arguments(parser, default_port=SIMULATOR_PORT + SIMULATOR_PORT_OFFSET)

    def serve(self, args: argparse.Namespace) -> None:
        from trove.simulators.bluesky import serve

        serve(args)


class BlueskyDemo:
    simulator_port = SIMULATOR_PORT + SIMULATOR_PORT_OFFSET

    def credentials_configured(self, env: Mapping[str, str]) -> bool:
        return bool(env.get("TROVE_BLUESKY_CLIENT_KEY") and env.get("TROVE_BLUESKY_HANDLE"))

    def simulated_env(self, simulator_url: str) -> dict[str, str]:
        return {
            "TROVE_BLUESKY_CLIENT_KEY": local_client_key(),
            "TROVE_BLUESKY_PLC_URL": simulator_url,
            "TROVE_BLUESKY_APPVIEW_URL": simulator_url,
            "TROVE_BLUESKY_JETSTREAM_URL": simulator_url.replace("http://", "ws://", 1),
            "TROVE_BLUESKY_DNS": f"127.0.0.1:{self.simulator_port + DNS_PORT_OFFSET}",
            "TROVE_BLUESKY_INSECURE_HTTP": "1",
        }

    def simulator_args(self, port: int, posts: int) -> list[str]:
        return [
            "simulate",
            "bluesky",
            "--port",
            str(port),
            "--posts",
            str(posts),
            "--dns-port",
            str(port + DNS_PORT_OFFSET),
        ]

    def login_hint(self, env: Mapping[str, str], simulator_url: str) -> str | None:
        if self.credentials_configured(env):
            return env["TROVE_BLUESKY_HANDLE"]
        return str(httpx.get(f"{simulator_url}/_sim/stats", timeout=5.0).json()["demo"]["handle"])

    def after_connect(self, env: Mapping[str, str]) -> None:
        pass  # Jetstream needs no subscription: the worker follows every connected account

    def export_url(self, simulator_url: str) -> str | None:
        return f"{simulator_url}/_sim/export"

    def hints(self, simulator_url: str) -> list[str]:
        return ['trove demo post bluesky "Hello from the demo"   # arrives through Jetstream within a second']

    def new_post(self, simulator_url: str, text: str, *, ephemeral: bool = False) -> str:
        if ephemeral:
            raise ValueError("Bluesky has no stories: nothing there vanishes by itself")
        created = httpx.post(f"{simulator_url}/_sim/posts", json={"text": text}, timeout=10.0)
        created.raise_for_status()
        return f"created {created.json().get('uri')}: it arrives through Jetstream"
