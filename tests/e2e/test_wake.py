"""pg_net drives the queue (issue 18, part): with no worker running, new work makes the database call
net.http_post (the local stand-in of pg_net's SQL surface), `trove netd` performs the request against the
service's wake endpoint, and the service drains the work. A wake-up without the secret drains nothing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.file_server import FileServer
from tests.worker_harness import RING, connect_account, query, scalar, wait_for

from trove.config import PROJECT_ROOT
from trove.db.cluster import free_port
from trove.http.app import create_app
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
    for headers in ({}, {"X-Trove-Wake-Secret": "wrong"}, {"X-Trove-Wake-Secret": SECRET[:-1]}):
        refused = httpx.post(f"{service}/functions/v1/wake", headers=headers)
        assert refused.status_code == 403
    assert scalar(db_url, "select status::text from public.media_downloads where id = %s", (media,)) == "pending"
    assert scalar(db_url, "select count(*) from net.http_request_queue") == 0, "no target, no wake-up sent"
