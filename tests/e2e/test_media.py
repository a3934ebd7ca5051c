"""The media pipeline through the real worker process and a local file server: downloads, retries with
backoff, gone files, refreshed expired URLs, rejected files, dead and slow servers, SSRF guards, a worker
killed mid-download, dedup, and signed URLs served by the HTTP service."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from tests.support.file_server import FileServer, jpeg, self_signed
from tests.worker_harness import (
    RING,
    TEST_KEY,
    connect_account,
    query,
    running_worker,
    scalar,
    start_worker,
    wait_for,
    worker_env,
)

from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.http.auth import issue_local_token
from trove.media.download import DownloadFailure, download
from trove.media.storage import LocalStorage, SupabaseStorage, storage_path
from trove.platforms.base import MediaRef, NormalizedPost
from trove.simulators.serve import BackgroundServer
from trove.store import store_post
from trove.tokens import load_account


@pytest.fixture
def files() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def env(db_url: str, files: FileServer, media_dir: Path) -> dict[str, str]:
    return worker_env(
        db_url, files.url, TROVE_MEDIA_DIR=str(media_dir), TROVE_MEDIA_ALLOW_LOOPBACK="1", TROVE_MEDIA_READ_TIMEOUT="1"
    )


def add_media(db_url: str, account: str, urls: dict[str, str], post: str = "post-1") -> dict[str, str]:
    """A raw post with media keyed by name; returns name -> media_downloads id."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        raw = conn.execute(
            "insert into public.ingested_posts (platform, account_id, platform_post_id, post_data, status)"
            " values ('bluesky', %s, %s, '{\"id\": 1}', 'completed') on conflict (platform, platform_post_id)"
            " do update set status = 'completed' returning id",
            (account, post),
        ).fetchone()[0]
        ids = {}
        for key, url in urls.items():
            ids[key] = str(
                conn.execute(
                    "insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url)"
                    " select %s, user_id, 'bluesky', %s, %s from public.connected_accounts where id = %s"
                    " on conflict (user_id, platform, media_key) do update set original_url = excluded.original_url"
                    " returning id",
                    (raw, key, url, account),
                ).fetchone()[0]
            )
    return ids


def row(db_url: str, media_id: str) -> dict[str, Any]:
    with psycopg.connect(db_url) as conn:
        cur = conn.execute("select * from public.media_downloads where id = %s", (media_id,))
        values = cur.fetchone()
        return dict(zip([c.name for c in cur.description], values, strict=True))


def settled(db_url: str) -> bool:
    return scalar(db_url, "select count(*) from public.media_downloads where status in ('pending', 'downloading')") == 0


def stored_files(media_dir: Path) -> list[Path]:
    return [p for p in media_dir.rglob("*") if p.is_file() and ".partial" not in p.parts and "spool" not in p.parts]


def test_files_are_streamed_into_storage_with_type_size_and_hash(
    db_url: str, env: dict[str, str], files: FileServer, media_dir: Path, tmp_path: Path
) -> None:
    account = connect_account(db_url, "a", "r")
    ids = add_media(
        db_url,
        account,
        {"photo": f"{files.url}/photo/a.jpg", "video": f"{files.url}/video.mp4", "moved": f"{files.url}/redirect.jpg"},
    )
    with running_worker(env, tmp_path / "worker.log"):
        wait_for(lambda: settled(db_url), 60, "the downloads")
    photo = row(db_url, ids["photo"])
    expected = jpeg(200_000, sum(b"/photo/a.jpg"))
    assert (photo["status"], photo["content_type"], photo["byte_size"]) == ("downloaded", "image/jpeg", len(expected))
    assert photo["content_sha256"] == hashlib.sha256(expected).hexdigest()
    user_id = scalar(db_url, "select user_id::text from public.connected_accounts")
    assert photo["storage_path"] == f"{user_id}/bluesky/{hashlib.sha256(b'photo').hexdigest()}.jpg"
    assert (media_dir / photo["storage_path"]).read_bytes() == expected
    video = row(db_url, ids["video"])
    assert (video["content_type"], video["storage_path"].endswith(".mp4")) == ("video/mp4", True)
    assert row(db_url, ids["moved"])["status"] == "downloaded"  # a redirect to a public file is followed
    assert len(stored_files(media_dir)) == 3


def test_gone_files_are_unavailable_and_rejected_ones_fail_with_the_reason(
    db_url: str, env: dict[str, str], files: FileServer, media_dir: Path, tmp_path: Path
) -> None:
    account = connect_account(db_url, "a", "r")
    ids = add_media(
        db_url,
        account,
        {
            "gone": f"{files.url}/gone",
            "gone410": f"{files.url}/gone410",
            "html": f"{files.url}/html.jpg",
            "huge": f"{files.url}/huge",
            "declared": f"{files.url}/huge-declared",
            "private": "http://10.1.2.3/internal.jpg",
            "to-private": f"{files.url}/redirect-private.jpg",
            "loop": f"{files.url}/redirect-loop.jpg",
        },
    )
    with running_worker(env, tmp_path / "worker.log"):
        wait_for(lambda: settled(db_url), 60, "the downloads")
    assert row(db_url, ids["gone"])["status"] == row(db_url, ids["gone410"])["status"] == "unavailable"
    assert row(db_url, ids["gone"])["attempts"] == 1
    reasons = {name: (row(db_url, i)["status"], row(db_url, i)["error"]) for name, i in ids.items()}
    assert reasons["html"][0] == "failed" and "not an image, video or audio file" in reasons["html"][1]
    assert reasons["huge"][0] == "failed" and "over the 52428800 byte limit" in reasons["huge"][1]
    assert reasons["declared"][0] == "failed" and "over the 52428800 byte limit" in reasons["declared"][1]
    assert reasons["private"][0] == "failed" and "not a public address" in reasons["private"][1]
    assert reasons["to-private"][0] == "failed" and "10.1.2.3" in reasons["to-private"][1]
    assert reasons["loop"][0] == "failed" and "more than 5 redirects" in reasons["loop"][1]
    assert "/internal.jpg" not in files.state.hits  # the private address was never contacted
    assert stored_files(media_dir) == []
    assert list((media_dir / ".partial").iterdir()) == []  # aborted uploads leave nothing behind


def test_transient_failures_back_off_then_succeed_and_dead_or_slow_servers_are_handled(
    db_url: str, env: dict[str, str], files: FileServer, media_dir: Path, tmp_path: Path
) -> None:
    account = connect_account(db_url, "a", "r")
    files.state.flaky_left = 1
    ids = add_media(
        db_url,
        account,
        {
            "flaky": f"{files.url}/flaky.jpg",
            "dead": f"http://127.0.0.1:{free_port()}/nobody-home.jpg",
            "slow": f"{files.url}/slow.jpg",
        },
    )
    with running_worker(env, tmp_path / "worker.log"):
        wait_for(lambda: settled(db_url), 60, "the first attempts")
        flaky = row(db_url, ids["flaky"])
        assert (flaky["status"], flaky["attempts"], flaky["error"]) == ("failed", 1, "HTTP 503")
        assert scalar(
            db_url,
            "select run_after > now() + interval '50 seconds' from public.media_downloads where id = %s",
            (ids["flaky"],),
        )  # backoff: a minute before the retry
        assert "ConnectError" in row(db_url, ids["dead"])["error"]
        assert "timed out" in row(db_url, ids["slow"])["error"]
        with psycopg.connect(db_url, autocommit=True) as conn:  # the backoff passes
            conn.execute("update public.media_downloads set run_after = now() where id = %s", (ids["flaky"],))
        wait_for(lambda: row(db_url, ids["flaky"])["status"] == "downloaded", 60, "the retry")
    assert row(db_url, ids["flaky"])["attempts"] == 2


def test_an_expired_url_is_refreshed_through_the_connector(
    db_url: str, env: dict[str, str], files: FileServer, media_dir: Path, tmp_path: Path
) -> None:
    account = connect_account(db_url, "a", "r")
    files.state.valid_token = "fresh-2"
    ids = add_media(db_url, account, {"exp": f"{files.url}/expiring/fresh-1"})
    with running_worker(env, tmp_path / "worker.log"):
        wait_for(lambda: settled(db_url), 60, "the download")
    item = row(db_url, ids["exp"])
    assert (item["status"], item["attempts"]) == ("downloaded", 1)
    assert item["original_url"].endswith("/expiring/fresh-2")


def test_a_worker_killed_mid_download_leaves_no_visible_half_file(
    db_url: str, env: dict[str, str], files: FileServer, media_dir: Path, tmp_path: Path
) -> None:
    account = connect_account(db_url, "a", "r")
    ids = add_media(db_url, account, {"drip": f"{files.url}/drip.mp4"})
    proc = start_worker(env, tmp_path / "worker.log", "--lease-seconds", "2")
    wait_for(
        lambda: any((media_dir / ".partial").glob("*")) if (media_dir / ".partial").exists() else False,
        30,
        "the download to start",
    )
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert row(db_url, ids["drip"])["status"] == "downloading"
    assert stored_files(media_dir) == []  # only an invisible partial upload remains
    with running_worker(env, tmp_path / "worker2.log", "--lease-seconds", "2"):
        wait_for(lambda: row(db_url, ids["drip"])["status"] == "downloaded", 60, "the download after the lease")
    item = row(db_url, ids["drip"])
    assert item["byte_size"] == 40 * (1 << 18) + 24 and len(stored_files(media_dir)) == 1


@pytest.fixture
def service(db_url: str, media_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    monkeypatch.setenv("TROVE_MEDIA_DIR", str(media_dir))
    monkeypatch.setenv("TROVE_PUBLIC_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TROVE_MEDIA_SIGNING_KEY", "test-signing-key")
    monkeypatch.setenv("TROVE_TOKEN_KEYS", f"test:{TEST_KEY}")
    with BackgroundServer(create_app(db_url, RING), port) as server:
        yield server.url


def test_readers_get_signed_urls_of_copies_served_with_range_support(
    db_url: str, env: dict[str, str], files: FileServer, media_dir: Path, tmp_path: Path, service: str
) -> None:
    account = connect_account(db_url, "a", "r")
    ids = add_media(db_url, account, {"video": f"{files.url}/video.mp4", "later": f"{files.url}/gone"})
    with psycopg.connect(db_url, autocommit=True) as conn:
        post_id = str(
            conn.execute(
                "insert into public.posts (account_id, platform, platform_post_id, created_at_platform)"
                " values (%s, 'bluesky', 'post-1', now()) returning id",
                (account,),
            ).fetchone()[0]
        )
        conn.execute("update public.media_downloads set status = 'failed', attempts = 3 where id = %s", (ids["later"],))
    with running_worker(env, tmp_path / "worker.log"):
        wait_for(lambda: settled(db_url), 60, "the download")
    owner = scalar(db_url, "select user_id::text from public.connected_accounts")
    listing = httpx.get(
        f"{service}/api/posts/{post_id}/media", headers={"Authorization": f"Bearer {issue_local_token(owner)}"}
    ).json()["media"]
    by_key = {m["media_key"]: m for m in listing}
    assert by_key["later"]["url"] == f"{files.url}/gone" and not by_key["later"]["copy"]  # not copied: original
    signed = by_key["video"]["url"]
    assert signed.startswith(f"{service}/media/") and by_key["video"]["copy"]
    whole = httpx.get(signed)
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.content == (media_dir / row(db_url, ids["video"])["storage_path"]).read_bytes()
    part = httpx.get(signed, headers={"Range": "bytes=4-11"})
    assert part.status_code == 206 and part.content == b"ftypmp42"
    tampered = httpx.get(signed[:-3] + ("AAA" if not signed.endswith("AAA") else "BBB"))
    assert tampered.status_code == 403 and tampered.json()["error"] == "invalid_signature"
    expired = signed.replace("expires=", "expires=1")  # a different (past or unsigned) deadline
    assert httpx.get(expired).status_code == 403
    assert httpx.get(signed.split("?")[0]).status_code == 403
    assert httpx.get(f"{service}/media/..%2F..%2Fetc%2Fpasswd?expires=9999999999&sig=x").status_code in (403, 404)
    with psycopg.connect(db_url, autocommit=True) as conn:
        stranger = str(conn.execute("select tests.create_user('mallory')").fetchone()[0])
    other = httpx.get(
        f"{service}/api/posts/{post_id}/media", headers={"Authorization": f"Bearer {issue_local_token(stranger)}"}
    )
    assert other.status_code == 404


def test_the_supabase_storage_backend_uploads_and_signs(
    db_url: str, env: dict[str, str], files: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.storage_standin import StorageStandIn

    standin = StorageStandIn("service-key-for-tests")
    with BackgroundServer(standin.app, free_port()) as storage_api:
        supa_env = {
            **env,
            "TROVE_STORAGE": "supabase",
            "SUPABASE_URL": storage_api.url,
            "SUPABASE_SERVICE_ROLE_KEY": "service-key-for-tests",
            "TROVE_STATE_DIR": str(tmp_path / "state"),
        }
        account = connect_account(db_url, "a", "r")
        ids = add_media(db_url, account, {"photo": f"{files.url}/photo/s.jpg"})
        standin.fail_uploads = 1  # Storage down for the first try: retried later, nothing half-stored
        with running_worker(supa_env, tmp_path / "worker.log"):
            wait_for(lambda: row(db_url, ids["photo"])["status"] == "failed", 60, "the refused upload")
            assert "Supabase Storage refused the upload" in row(db_url, ids["photo"])["error"]
            assert not standin.objects and not [p for p in (tmp_path / "state" / "spool").rglob("*") if p.is_file()]
            with psycopg.connect(db_url, autocommit=True) as conn:  # the backoff passes
                conn.execute("update public.media_downloads set run_after = now() where id = %s", (ids["photo"],))
            wait_for(lambda: row(db_url, ids["photo"])["status"] == "downloaded", 60, "the upload")
        item = row(db_url, ids["photo"])
        assert item["attempts"] == 2 and item["storage_path"] is not None
        assert len(standin.objects) == 1
        body, content_type = standin.objects[("media", item["storage_path"])]
        assert content_type == "image/jpeg" and body == jpeg(200_000, sum(b"/photo/s.jpg"))
        # Readers get a Supabase signed URL that serves the copy.
        monkeypatch.setenv("TROVE_STORAGE", "supabase")
        monkeypatch.setenv("SUPABASE_URL", storage_api.url)
        monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "service-key-for-tests")
        monkeypatch.setenv("TROVE_TOKEN_KEYS", f"test:{TEST_KEY}")
        port = free_port()
        with BackgroundServer(create_app(db_url, RING), port) as service:
            with psycopg.connect(db_url, autocommit=True) as conn:
                post_id = str(
                    conn.execute(
                        "insert into public.posts (account_id, platform, platform_post_id, created_at_platform)"
                        " values (%s, 'bluesky', 'post-1', now()) returning id",
                        (account,),
                    ).fetchone()[0]
                )
            owner = scalar(db_url, "select user_id::text from public.connected_accounts")
            listing = httpx.get(
                f"{service.url}/api/posts/{post_id}/media",
                headers={"Authorization": f"Bearer {issue_local_token(owner)}"},
            ).json()["media"]
            signed = listing[0]["url"]
            assert signed.startswith(f"{storage_api.url}/storage/v1/object/sign/media/")
            assert httpx.get(signed).content == body

        async def exists(path: str) -> bool:
            async with httpx.AsyncClient() as http:
                return await SupabaseStorage(storage_api.url, "service-key-for-tests", http).exists(path)

        assert asyncio.run(exists(item["storage_path"])) is True
        assert asyncio.run(exists(item["storage_path"].replace(".jpg", ".png"))) is False


def test_the_media_bucket_migration_on_a_database_with_supabase_storage(empty_db_url: str) -> None:
    from trove.db.migrate import migrate

    with psycopg.connect(empty_db_url, autocommit=True) as conn:  # Supabase's storage schema, in miniature
        conn.execute(
            """
            create schema storage;
            create table storage.buckets (id text primary key, name text, public boolean,
                                          file_size_limit bigint, allowed_mime_types text[]);
            create table storage.objects (id uuid primary key default gen_random_uuid(), bucket_id text, name text);
            alter table storage.objects enable row level security;
            create function storage.foldername(name text) returns text[] language sql
                as $$ select (string_to_array(name, '/'))[1:array_length(string_to_array(name, '/'), 1) - 1] $$;
            """
        )
    migrate(empty_db_url, local_stack=True, log=lambda _: None)
    with psycopg.connect(empty_db_url) as conn:
        bucket = conn.execute(
            "select public, file_size_limit, allowed_mime_types from storage.buckets where id = 'media'"
        ).fetchone()
        tracks = ["application/gpx+xml", "application/vnd.garmin.tcx+xml", "application/vnd.ant.fit"]
        tracks.append("application/gzip")
        assert bucket == (False, 52428800, ["image/*", "video/*", "audio/*", *tracks]), "exports carry activity files"
        policy = conn.execute(
            "select roles, qual from pg_policies where schemaname = 'storage'"
            " and policyname = 'trove_users_read_own_media'"
        ).fetchone()
        assert policy[0] == ["authenticated"] and "foldername" in policy[1]


def store_posts_sharing_media(db_url: str, account_id: str, urls: list[str]) -> list[str]:
    """Posts stored the way the sync engine stores them, each showing one photo with the same stable key (a new
    signed URL each time); returns the posts' ids."""

    async def store() -> list[str]:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            account = await load_account(conn, RING, account_id)
            for n, url in enumerate(urls, 1):
                post = NormalizedPost(
                    platform_post_id=f"shared-{n}",
                    created_at=datetime(2026, 11, n, tzinfo=UTC),
                    post_data={"id": n},
                    text=f"post {n}",
                    media=(MediaRef("shared-cid", url), MediaRef(f"own-{n}", url.replace("shared", f"own-{n}"))),
                )
                await store_post(conn, account, post, None)
            await conn.commit()
            cur = await conn.execute("select id::text from public.posts order by platform_post_id")
            return [r[0] for r in await cur.fetchall()]

    return asyncio.run(store())


def test_the_same_media_in_two_posts_is_stored_once_and_shown_on_both(
    db_url: str, env: dict[str, str], files: FileServer, media_dir: Path, tmp_path: Path, service: str
) -> None:
    account = connect_account(db_url, "a", "r")
    posts = store_posts_sharing_media(
        db_url, account, [f"{files.url}/photo/shared.jpg?sig=1", f"{files.url}/photo/shared.jpg?sig=2"]
    )
    shared = query(db_url, "select id::text, original_url from public.media_downloads where media_key = 'shared-cid'")
    assert len(shared) == 1 and shared[0][1].endswith("sig=2")  # one row, with the freshest URL
    with running_worker(env, tmp_path / "worker.log"):
        wait_for(lambda: settled(db_url), 60, "the downloads")
    assert files.state.hits["/photo/shared.jpg"] == 1
    assert len(stored_files(media_dir)) == 3  # the shared photo once, plus each post's own

    token = issue_local_token(scalar(db_url, "select user_id::text from public.connected_accounts"))
    for n, post_id in enumerate(posts, 1):
        listing = httpx.get(f"{service}/api/posts/{post_id}/media", headers={"Authorization": f"Bearer {token}"})
        media = listing.json()["media"]
        assert [m["media_key"] for m in media] == ["shared-cid", f"own-{n}"]  # in the post's order
        assert all(m["copy"] for m in media) and media[0]["id"] == shared[0][0]
    page = httpx.get(f"{service}/api/posts", headers={"Authorization": f"Bearer {token}"}).json()
    shown = {p["id"]: [m["media_key"] for m in p["media"]] for p in page["posts"]}
    assert shown == {posts[0]: ["shared-cid", "own-1"], posts[1]: ["shared-cid", "own-2"]}


def test_the_connection_goes_to_the_address_that_was_checked(files: FileServer, tmp_path: Path) -> None:
    """DNS rebinding: a name checked as public must not be re-resolved to somewhere else for the connection.
    The name here exists only in our resolver, so the download works only if it connects to the checked
    address itself; the server still sees the name in Host."""
    port = int(files.url.rsplit(":", 1)[1])
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])  # a second lookup would be "rebound" to a private address
    lookups: list[str] = []

    async def rebinding_resolver(host: str, _port: int) -> list[str]:
        lookups.append(host)
        return next(answers)

    async def fetch() -> Any:
        async with httpx.AsyncClient() as http:
            return await download(
                http,
                LocalStorage(tmp_path / "media", b"k", "http://127.0.0.1"),
                f"http://photos.rebind.test:{port}/photo/pinned.jpg",
                lambda ext: storage_path(str(uuid.uuid4()), "bluesky", "pinned", ext),
                loopback_ok=True,
                resolve=rebinding_resolver,
            )

    done = asyncio.run(fetch())
    assert done.content_type == "image/jpeg" and lookups == ["photos.rebind.test"]
    assert files.state.host_headers["/photo/pinned.jpg"] == f"photos.rebind.test:{port}"

    async def refused() -> None:
        async with httpx.AsyncClient() as http:
            await download(
                http,
                LocalStorage(tmp_path / "media", b"k", "http://127.0.0.1"),
                f"http://photos.rebind.test:{port}/photo/never.jpg",
                lambda ext: storage_path(str(uuid.uuid4()), "bluesky", "never", ext),
                loopback_ok=True,
                resolve=rebinding_resolver,  # now answers the private address
            )

    with pytest.raises(DownloadFailure) as failure:
        asyncio.run(refused())
    assert failure.value.kind == "rejected" and "10.9.9.9" in str(failure.value)
    assert "/photo/never.jpg" not in files.state.hits


def test_https_to_the_checked_address_still_verifies_the_certificate_of_the_name(tmp_path: Path) -> None:
    """Connecting to the checked address keeps TLS honest: SNI and certificate verification use the name."""
    server_tls, client_tls = self_signed("cdn.pinned.test", tmp_path)
    with FileServer(tls=server_tls) as server:
        port = int(server.url.rsplit(":", 1)[1])

        async def only_loopback(host: str, _port: int) -> list[str]:
            return ["127.0.0.1"]

        async def fetch(name: str) -> Any:
            async with httpx.AsyncClient(verify=client_tls) as http:
                return await download(
                    http,
                    LocalStorage(tmp_path / "media", b"k", "http://127.0.0.1"),
                    f"https://{name}:{port}/photo/{name}.jpg",
                    lambda ext: storage_path(str(uuid.uuid4()), "bluesky", name, ext),
                    loopback_ok=True,
                    resolve=only_loopback,
                )

        assert asyncio.run(fetch("cdn.pinned.test")).content_type == "image/jpeg"
        assert server.state.host_headers["/photo/cdn.pinned.test.jpg"] == f"cdn.pinned.test:{port}"
        # Another name on the same address: the certificate does not match it, nothing is fetched.
        with pytest.raises(DownloadFailure) as failure:
            asyncio.run(fetch("other.pinned.test"))
        assert failure.value.kind == "transient" and "certificate" in str(failure.value).lower()
        assert "/photo/other.pinned.test.jpg" not in server.state.hits
