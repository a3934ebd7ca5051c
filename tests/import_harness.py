"""`trove import` as a real process, and an import killed with SIGKILL halfway then run again (it waits for
the killed run's lease and resumes): shared by the per-platform import tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.worker_harness import scalar, wait_for


def import_env(base: dict[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **base,
        "TROVE_STATE_DIR": str(tmp_path / "state"),
        "TROVE_MEDIA_DIR": str(tmp_path / "media"),
        "TROVE_MEDIA_SIGNING_KEY": "k",
        "TROVE_MEDIA_ALLOW_LOOPBACK": "1",
        **extra,
    }


def trove_import(environment: dict[str, str], file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trove.cli", "import", str(file), *args],
        env=environment, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def kill_halfway_and_resume(
    db_url: str, environment: dict[str, str], file: Path, total: int
) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Import `file` (of `total` records) in batches of 10, SIGKILL it once 20 are committed, run it again;
    (the records committed when it was killed, the second run)."""
    environment = {**environment, "TROVE_IMPORT_BATCH_RECORDS": "10", "TROVE_IMPORT_LEASE_SECONDS": "3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "trove.cli", "import", str(file)],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(
            lambda: (scalar(db_url, "select (progress->>'records')::int from public.imports") or 0) >= 20,
            what="some batches committed",
        )
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    committed = int(scalar(db_url, "select (progress->>'records')::int from public.imports"))
    assert 20 <= committed < total, f"killed halfway ({committed} of {total})"
    resumed = trove_import(environment, file)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "running in cli:" in resumed.stdout, "it waited for the killed run's lease"
    assert scalar(db_url, "select count(*) from public.imports") == 1, "the same import, resumed"
    assert scalar(db_url, "select (progress->>'records')::int from public.imports") == total
    return committed, resumed
