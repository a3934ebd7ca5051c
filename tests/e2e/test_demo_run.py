"""`make run`'s main job, through the real `trove run`: with no platform credentials it starts the simulators,
the HTTP service and the worker, connects the demo user's accounts through OAuth (Bluesky by handle, with
PAR, PKCE and DPoP) and archives the demo athlete and the demo Bluesky account."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.worker_harness import TEST_KEY, scalar

from trove.config import PROJECT_ROOT, SUPABASE_DIR
from trove.db.cluster import free_port
from trove.db.local import apply_seed


def port_is_free(port: int) -> bool:
    with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
        try:
            tcp.bind(("127.0.0.1", port))
            udp.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_run_once_archives_the_demo_athlete(db_url: str) -> None:
    apply_seed(db_url)
    state = Path(tempfile.mkdtemp(prefix="trove-test-run-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRAVA_", "TROVE_"))}
    http_port = free_port()
    # Each simulator takes the next ports: Strava's, Bluesky's HTTP port and its nameserver's, Instagram's.
    sim_port = free_port()
    while http_port in range(sim_port, sim_port + 4) or not all(
        port_is_free(port) for port in range(sim_port + 1, sim_port + 4)
    ):
        sim_port = free_port()
    env |= {
        "DATABASE_URL": db_url,
        "TROVE_HTTP_PORT": str(http_port),
        "TROVE_SIMULATOR_PORT": str(sim_port),
        "TROVE_STATE_DIR": str(state),
        "TROVE_TOKEN_KEYS": f"test:{TEST_KEY}",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "trove.cli", "run", "--once", "--activities", "40"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("backfill success: 40 posts archived") == 2  # the demo athlete and Bluesky account
    # Instagram's demo account: 40 media and its 3 live stories, through the real Instagram Login flow.
    assert "backfill success: 43 posts archived" in proc.stdout, proc.stdout
    # Then each demo account's own export is imported: merged into the synced posts, and Instagram's adds the
    # five posts from before the account was professional (the API never lists them).
    for platform in ("strava", "instagram", "bluesky"):
        assert f"import success: {platform} export" in proc.stdout, proc.stdout
    assert scalar(db_url, "select count(*) from public.posts where platform = 'instagram'") == 43 + 5
    assert scalar(db_url, "select count(*) from public.connected_accounts") == 3, (
        "the exports' accounts are the synced ones"
    )
    assert (
        scalar(db_url, "select count(*) from public.sync_logs where sync_type = 'import' and status = 'success'") == 3
    )
    # Every file copied, except videos Instagram withholds (a reel with copyrighted audio), kept with why.
    assert (
        scalar(
            db_url,
            "select count(*) from public.media_downloads where status <> 'downloaded'"
            " and not (status = 'unavailable' and original_url = '' and error like '%%copyrighted audio%%')",
        )
        == 0
    )
    assert f"http://127.0.0.1:{http_port}" in proc.stdout
    assert scalar(db_url, "select count(*) from public.posts where platform = 'strava'") == 40
    assert scalar(db_url, "select count(*) from public.posts where platform = 'bluesky'") == 40
    assert 'trove demo post bluesky "' in proc.stdout
    assert scalar(db_url, "select username from public.connected_accounts where platform = 'strava'") == "demo_runner"
    assert (
        scalar(db_url, "select username from public.connected_accounts where platform = 'bluesky'") == "demo.trove.test"
    )
    assert scalar(db_url, "select count(*) from public.webhook_subscriptions where subscription_id is not null") == 2
    assert (SUPABASE_DIR / "seed.sql").exists()
