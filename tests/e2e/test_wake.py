"""pg_net drives the queue (issue 18, part): with no worker running, new work makes the database call
net.http_post (the local stand-in of pg_net's SQL surface), `trove netd` performs the request against the
service's wake endpoint, and the service drains the work. A wake-up without the secret drains nothing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from tests.support.file_server import FileServer
from tests.worker_harness import RING, connect_account, query, scalar, wait_for

from trove.config import PROJECT_ROOT
from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.http.wake import signature
from trove.simulators.serve import BackgroundServer

SECRET = "wake-" + "s" * 40


@pytest.fixture
def service(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TROVE_WAKE_SECRET", SECRET)
    monkeypatch.setenv("TROVE_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("TROVE_MEDIA_SIGNING_KEY", "k")
    monkeypatch.setenv("TROVE_MEDIA_ALLOW_LOOPBACK", "1")
    monkeypatch.delenv("TROVE_PLATFORMS", raising=False)
    with BackgroundServer(create_app(db_url, RING), free_port()) as server:
        yield server.url


@pytest.fixture
def netd(db_url: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {"DATABASE_URL": db_url, "PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"}
    with (tmp_path / "netd.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "trove.cli", "netd"], env=env, stdout=log, stderr=log)
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def queue_media(db_url: str, account: str, url: str) -> str:
    return str(
        scalar(
            db_url,
            "with raw as (insert into public.ingested_posts (platform, account_id, platform_post_id, post_data, status)"
            " values ('bluesky', %s, 'post-1', '{}', 'completed') returning id)"
            " insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url)"
            " select raw.id, ca.user_id, 'bluesky', 'photo-1', %s from raw, public.connected_accounts ca"
            " where ca.id = %s returning id::text",
            (account, url, account),
        )
    )


def test_new_work_wakes_the_service_through_pg_net_and_is_drained_there(
    db_url: str, service: str, netd: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    account = connect_account(db_url, "access", "refresh")
    scalar(db_url, "select trove_private.set_wake_target(%s, %s)", (f"{service}/functions/v1/wake", SECRET))
    with FileServer() as files:
        media = queue_media(db_url, account, f"{files.url}/photo/1.jpg")
        # No worker runs: the database's wake-up, performed by netd, makes the service copy the file.
        wait_for(
            lambda: (
                scalar(db_url, "select status::text from public.media_downloads where id = %s", (media,))
                == "downloaded"
            ),
            what="the copy, done by the woken service",
        )
    path = scalar(db_url, "select storage_path from public.media_downloads where id = %s", (media,))
    assert (tmp_path / "media" / path).is_file()
    answered = query(db_url, "select status_code, content from net._http_response order by id")
    assert answered and answered[0][0] == 200 and '"claimed"' in answered[0][1]
    assert scalar(db_url, "select count(*) from net.http_request_queue") == 0, "each request sent once"


def test_a_wake_up_without_the_secret_drains_nothing(db_url: str, service: str) -> None:
    account = connect_account(db_url, "access", "refresh")
    media = queue_media(db_url, account, "http://127.0.0.1:1/never.jpg")  # no target set: nobody woken
    now = str(int(time.time()))
    stale = str(int(time.time()) - 3600)
    for headers in (
        {},
        {"X-Trove-Wake-Secret": SECRET},  # the secret itself is not how a wake-up authenticates
        {"X-Trove-Wake-Timestamp": now, "X-Trove-Wake-Signature": signature("wrong" * 8, now, b"")},
        {"X-Trove-Wake-Timestamp": stale, "X-Trove-Wake-Signature": signature(SECRET, stale, b"")},  # a replay
        {"X-Trove-Wake-Timestamp": f"{now}.5", "X-Trove-Wake-Signature": signature(SECRET, f"{now}.5", b"")},
    ):
        refused = httpx.post(f"{service}/functions/v1/wake", headers=headers)
        assert refused.status_code == 403, headers
    assert scalar(db_url, "select status::text from public.media_downloads where id = %s", (media,)) == "pending"
    assert scalar(db_url, "select count(*) from net.http_request_queue") == 0, "no target, no wake-up sent"


class Stalling(BaseHTTPRequestHandler):
    """A file server that starts a video and then stalls (a long download)."""

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(10_000_000))
        self.end_headers()
        self.wfile.write(b"\x00\x00\x00\x18ftypmp42" + bytes(1000))
        time.sleep(15)


def test_work_a_drain_runs_out_of_time_for_goes_back_without_using_an_attempt(
    db_url: str, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TROVE_WAKE_BUDGET_SECONDS", "1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        account = connect_account(db_url, "access", "refresh")
        media = queue_media(db_url, account, f"http://127.0.0.1:{server.server_address[1]}/long.mp4")
        began = time.monotonic()
        now = str(int(time.time()))
        signed = {"X-Trove-Wake-Timestamp": now, "X-Trove-Wake-Signature": signature(SECRET, now, b"")}
        answer = httpx.post(f"{service}/functions/v1/wake", headers=signed, timeout=60)
        assert answer.status_code == 200 and answer.json()["claimed"] == 1
        assert time.monotonic() - began < 15, "the budget, and a short grace, then the answer"
        row = query(
            db_url, "select status::text, attempts, locked_by from public.media_downloads where id = %s", (media,)
        )
        assert row == [("pending", 0, None)], "given back, its attempt not counted"
    finally:
        server.shutdown()


def test_a_request_netd_cannot_make_is_answered_with_its_error_and_the_others_are_sent(
    db_url: str, service: str, netd: subprocess.Popen[bytes]
) -> None:
    bad = scalar(db_url, "select net.http_post('http://[::1/broken')")
    good = scalar(db_url, "select net.http_get(%s)", (f"{service}/health",))
    wait_for(
        lambda: scalar(db_url, "select count(*) from net._http_response where id in (%s, %s)", (bad, good)) == 2,
        what="both answered",
    )
    answers = dict((r[0], r[1:]) for r in query(db_url, "select id, status_code, error_msg from net._http_response"))
    assert answers[bad][0] is None and answers[bad][1]
    assert answers[good][0] == 200
    assert netd.poll() is None, "the dispatcher is still running"
