"""The lifecycle `make run` / `make db-reset` / `make db-stop` drive, through the real `trove` CLI on a
cluster of its own (separate state dir and port, so it never touches the developer's database)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from trove.db.cluster import free_port


@pytest.fixture
def local_env() -> Iterator[dict[str, str]]:
    state = Path(tempfile.mkdtemp(prefix="trove-test-state-"))
    state.chmod(0o755)  # the postgres OS user must reach state/db
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"TROVE_STATE_DIR": str(state), "TROVE_DB_PORT": str(free_port())}
    try:
        yield env
    finally:
        subprocess.run([sys.executable, "-m", "trove.cli", "db", "stop"], env=env, check=False)
        shutil.rmtree(state, ignore_errors=True)


def trove(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "trove.cli", *args], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_run_twice_then_reset_rebuilds_from_nothing(local_env: dict[str, str]) -> None:
    url = f"postgresql://postgres:postgres@127.0.0.1:{local_env['TROVE_DB_PORT']}/postgres"
    # make run, first time: create, start, migrate, seed
    assert trove(local_env, "db", "start").stdout.strip() == f"PostgreSQL is up: {url}"
    first = trove(local_env, "db", "migrate", "--local-stack", "--seed").stdout
    assert "applied 20261123100000_enums.sql" in first
    assert trove(local_env, "db", "url").stdout.strip() == url
    # make run, second time: nothing to do, nothing duplicated
    trove(local_env, "db", "start")
    again = trove(local_env, "db", "migrate", "--local-stack", "--seed").stdout
    assert "migrations: 0 applied" in again
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("select email from public.users").fetchall() == [("demo@trove.local",)]
        conn.execute("create table public.scribble (id int)")
    # make db-reset: the scribble is gone, the schema and seed are back
    trove(local_env, "db", "reset")
    with psycopg.connect(url) as conn:
        assert conn.execute("select to_regclass('public.scribble')").fetchone() == (None,)
        assert conn.execute("select count(*) from public.users").fetchone() == (1,)
    # make db-stop
    trove(local_env, "db", "stop")
    status = subprocess.run(
        [sys.executable, "-m", "trove.cli", "db", "status"], env=local_env, capture_output=True, text=True
    )
    assert (status.returncode, status.stdout.strip()) == (3, "stopped")
