"""`make run`'s main job, through the real `trove run`: with no Strava credentials it starts the simulator,
the HTTP service and the worker, connects the demo user through OAuth and archives the demo athlete."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.worker_harness import TEST_KEY, scalar

from trove.config import PROJECT_ROOT, SUPABASE_DIR
from trove.db.cluster import free_port
from trove.db.local import apply_seed


def test_run_once_archives_the_demo_athlete(db_url: str) -> None:
    apply_seed(db_url)
    state = Path(tempfile.mkdtemp(prefix="trove-test-run-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRAVA_", "TROVE_"))}
    http_port, sim_port = free_port(), free_port()
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
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "backfill success: 40 posts archived" in proc.stdout
    assert scalar(db_url, "select count(*) from public.media_downloads where status <> 'downloaded'") == 0
    assert f"http://127.0.0.1:{http_port}" in proc.stdout
    assert scalar(db_url, "select count(*) from public.posts where platform = 'strava'") == 40
    assert scalar(db_url, "select username from public.connected_accounts") == "demo_runner"
    assert scalar(db_url, "select count(*) from public.webhook_subscriptions where subscription_id is not null") == 1
    assert (SUPABASE_DIR / "seed.sql").exists()
