"""`trove serve --processes N` (issue 16): the access log off with TROVE_ACCESS_LOG=0 in every process (and on,
redacted, without it), a clear refusal of a bad process count, and a port already taken said in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from trove.config import PROJECT_ROOT
from trove.db.cluster import free_port


def serve(db_url: str, tmp_path: Path, port: int, *args: str, **env: str) -> subprocess.Popen[bytes]:
    log = (tmp_path / "serve.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "trove.cli", "serve", "--port", str(port), *args],
        env={**os.environ, "DATABASE_URL": db_url, "PYTHONPATH": str(PROJECT_ROOT), "TROVE_PLATFORMS": "",
             "TROVE_STATE_DIR": str(tmp_path), **env},
        stdout=log, stderr=log,
    )  # fmt: skip


def wait_up(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            httpx.get(url, timeout=5)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)


@pytest.mark.parametrize("processes", ["1", "2"])
@pytest.mark.parametrize("access_log", ["0", "1"])
def test_the_access_log_switch_holds_in_every_process(
    db_url: str, tmp_path: Path, processes: str, access_log: str
) -> None:
    port = free_port()
    proc = serve(db_url, tmp_path, port, "--processes", processes, TROVE_ACCESS_LOG=access_log)
    try:
        wait_up(proc, f"http://127.0.0.1:{port}/health", tmp_path / "serve.log")
        for _ in range(4):
            assert httpx.get(f"http://127.0.0.1:{port}/health", params={"code": "SECRET-CODE-1"}).status_code == 200
        time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = (tmp_path / "serve.log").read_text()
    assert "SECRET-CODE-1" not in text
    assert ("GET /health?code=[redacted]" in text) == (access_log == "1"), text


def test_a_bad_process_count_is_refused_clearly(db_url: str, tmp_path: Path) -> None:
    for bad in ("abc", "0"):
        proc = serve(db_url, tmp_path, free_port(), TROVE_HTTP_PROCESSES=bad)
        assert proc.wait(timeout=30) != 0
        assert "must be a whole number of at least 1" in (tmp_path / "serve.log").read_text()
    worker_help = subprocess.run(
        [sys.executable, "-m", "trove.cli", "worker", "--help"],
        env={**os.environ, "TROVE_HTTP_PROCESSES": "abc"}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert worker_help.returncode == 0  # other commands never read it


def test_a_port_already_taken_is_said_in_one_line(db_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = serve(db_url, tmp_path, taken.getsockname()[1], "--processes", "2")
        assert proc.wait(timeout=30) == 3
    text = (tmp_path / "serve.log").read_text()
    assert "cannot listen on 127.0.0.1" in text and "Traceback" not in text, text
