"""The import engine (trove.imports) on the real database with a test-only export format: an import alone,
twice, after an API sync (merged), resumed after a crash, matched by time, records that cannot be read
whole, and exports that must be refused (another user's account, not an export, hostile archives)."""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from tests.support.fake_connector import FakeConnector
from tests.support.fake_export import JPEG, FakeExportPlatform, FakeExportReader, build_fake_export, item
from tests.support.fake_platform import FakePlatform
from tests.worker_harness import RING, connect_account, enqueue, query, scalar

from trove.imports.intake import receive
from trove.imports.runner import ImportResult, ImportRunner
from trove.media.storage import LocalStorage
from trove.queries.queue import CLAIM_SYNC_REQUESTS
from trove.sync import SyncRequest, SyncRunner


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with FakePlatform() as fake:
        yield fake


def user(db_url: str, name: str = "alice") -> str:
    return str(scalar(db_url, "select tests.create_user(%s)::text", (name,)))


def run_import(
    db_url: str, state: Path, user_id: str, file: Path, reader: FakeExportReader | None = None
) -> ImportResult:
    """Hand the file in and run its import in this process, as `trove import` does."""

    data = file.read_bytes()

    async def go() -> ImportResult:
        async def chunks() -> Any:
            yield data

        async with (
            AsyncConnectionPool(db_url, kwargs={"autocommit": True}, open=False) as pool,
            httpx.AsyncClient() as http,
        ):
            async with pool.connection() as conn:
                received = await receive(conn, state, user_id, file.name, chunks())
            storage = LocalStorage(state / "media", b"test-key", "http://127.0.0.1:1")
            platform = FakeExportPlatform(export=reader or FakeExportReader())
            runner = ImportRunner(pool, {"bluesky": platform}, storage, http, state, batch_records=5)  # type: ignore[dict-item]
            return await runner.run(received.import_id)

    return asyncio.run(go())


def sync_once(db_url: str) -> None:
    """Claim the queued sync and run it in this process with the fake platform's connector."""
    lease = timedelta(minutes=5)

    async def sync() -> None:
        async with (
            AsyncConnectionPool(db_url, kwargs={"autocommit": True}, open=False) as pool,
            httpx.AsyncClient() as http,
        ):
            runner = SyncRunner(pool, {"bluesky": FakeConnector()}, RING, http, "test:1", lease, asyncio.Event())
            async with pool.connection() as conn:
                rows = await (await conn.execute(CLAIM_SYNC_REQUESTS, ("test:1", 1, lease))).fetchall()
            assert await runner.run(SyncRequest(*rows[0])) == "success"

    asyncio.run(sync())


def counts(db_url: str) -> dict[str, Any]:
    return {
        "posts": scalar(db_url, "select count(*) from public.posts"),
        "items": scalar(db_url, "select count(*) from public.ingested_items where source = 'import'"),
        "media": scalar(db_url, "select count(*) from public.media_downloads"),
        "links": scalar(db_url, "select count(*) from public.post_media"),
        "versions": scalar(db_url, "select coalesce(sum(version), 0) from public.archive_versions"),
    }


def test_an_export_alone_is_archived_with_its_files_copied(db_url: str, tmp_path: Path) -> None:
    alice = user(db_url)
    export = build_fake_export(tmp_path / "export.zip", [item(n) for n in range(1, 13)])
    result = run_import(db_url, tmp_path, alice, export)
    assert result.status == "success", result
    assert result.progress.records == 12 and result.progress.posts_created == 12 and result.progress.files == 12
    assert scalar(db_url, "select count(*) from public.posts") == 12
    account = query(db_url, "select status::text, sync_enabled, user_id::text from public.connected_accounts")
    assert account == [("disconnected", False, alice)], "an account known only from its export, not synced"
    rows = query(db_url, "select status::text, original_url, storage_path, content_type from public.media_downloads")
    assert len(rows) == 12 and all(r[0] == "downloaded" and r[1] == "" and r[3] == "image/jpeg" for r in rows)
    for _, _, path, _ in rows:
        assert (tmp_path / "media" / path).read_bytes().startswith(JPEG)
    assert scalar(db_url, "select count(*) from public.post_media") == 12
    log = query(
        db_url,
        "select sync_type::text, status::text, posts_fetched, posts_created, media_downloaded from public.sync_logs",
    )
    assert log == [("import", "success", 12, 12, 12)]
    assert query(db_url, "select status::text, progress->>'records' from public.imports") == [("pending", "12")], (
        "the queue's state is the caller's to finish; the progress is the runner's"
    )


def test_the_same_export_twice_changes_nothing(db_url: str, tmp_path: Path) -> None:
    alice = user(db_url)
    export = build_fake_export(tmp_path / "export.zip", [item(n) for n in range(1, 8)])
    run_import(db_url, tmp_path, alice, export)
    before = counts(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update public.imports set status = 'completed'")
    again = run_import(db_url, tmp_path, alice, export)
    assert again.status == "success" and again.progress.unchanged == 7 and again.progress.posts == 0
    assert counts(db_url) == before


def test_a_newer_export_adds_only_what_is_new(db_url: str, tmp_path: Path) -> None:
    alice = user(db_url)
    run_import(db_url, tmp_path, alice, build_fake_export(tmp_path / "old.zip", [item(n) for n in range(1, 6)]))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update public.imports set status = 'completed'")
    newer = run_import(db_url, tmp_path, alice, build_fake_export(tmp_path / "new.zip", [item(n) for n in range(1, 9)]))
    assert newer.progress.unchanged == 5 and newer.progress.posts_created == 3 and newer.progress.files == 3
    assert scalar(db_url, "select count(*) from public.posts") == 8


def test_an_import_after_an_api_sync_merges_into_the_synced_posts(
    db_url: str, tmp_path: Path, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform.control(item_count=6)
    account = connect_account(db_url, platform.state.access_token, platform.state.refresh_token)
    log_id = enqueue(db_url, account, "manual")
    monkeypatch.setenv("FAKE_PLATFORM_URL", platform.url)
    sync_once(db_url)
    assert scalar(db_url, "select status::text from public.sync_logs where id = %s", (log_id,)) == "success"
    alice = str(scalar(db_url, "select user_id::text from public.connected_accounts"))
    items = [item(n, text=f"exported {n}", export_only=f"extra {n}") for n in range(1, 9)]
    result = run_import(db_url, tmp_path, alice, build_fake_export(tmp_path / "export.zip", items))
    assert result.status == "success", result
    assert scalar(db_url, "select count(*) from public.posts") == 8, "6 synced (merged, not duplicated) + 2 new"
    assert scalar(db_url, "select count(distinct account_id) from public.posts") == 1, "one account: the synced one"
    # What the API said stays; the export adds only what the API lacked.
    assert scalar(db_url, "select text_content from public.posts where platform_post_id = 'fake:1'") == "post number 1"
    assert (
        scalar(db_url, "select post_data->>'export_only' from public.ingested_posts where platform_post_id = 'fake:1'")
        == "extra 1"
    )
    assert scalar(db_url, "select count(*) from public.ingested_posts where post_data ? 'trove_export'") == 8
    # The export's copy of a photo the API also listed is the same row (same media key), now copied.
    assert scalar(db_url, "select count(*) from public.media_downloads where media_key = 'photo-1'") == 1


def test_an_import_killed_halfway_resumes_where_it_stopped(db_url: str, tmp_path: Path) -> None:
    alice = user(db_url)
    export = build_fake_export(tmp_path / "export.zip", [item(n) for n in range(1, 24)])
    reader = FakeExportReader(fail_at=13)
    with pytest.raises(RuntimeError, match="killed mid-import"):
        run_import(db_url, tmp_path, alice, export, reader)
    assert scalar(db_url, "select (progress->>'records')::int from public.imports") == 10, "two batches committed"
    assert scalar(db_url, "select count(*) from public.posts") == 10
    result = run_import(db_url, tmp_path, alice, export, reader)
    assert result.status == "success" and result.progress.records == 23
    assert scalar(db_url, "select count(*) from public.imports") == 1, "the same file joined its unfinished import"
    assert counts(db_url)["posts"] == 23 and counts(db_url)["items"] == 23 and counts(db_url)["media"] == 23
    assert scalar(db_url, "select count(*) from public.sync_logs") == 1, "one log for the whole import"


def test_a_record_without_its_file_or_unreadable_is_recorded_and_the_others_go_on(db_url: str, tmp_path: Path) -> None:
    alice = user(db_url)
    items = [item(1), item(2, broken=True), item(3), item(4)]
    export = build_fake_export(tmp_path / "export.zip", items, missing_photos=(3,))
    result = run_import(db_url, tmp_path, alice, export)
    assert result.status == "partial"
    assert any("item 2: broken" in p for p in result.problems)
    assert any("fake-export/media/3.jpg" in p and "not in the archive" in p for p in result.problems)
    assert scalar(db_url, "select count(*) from public.posts") == 3
    log = query(db_url, "select status::text, error_message, error_details->'problems' from public.sync_logs")[0]
    assert log[0] == "partial" and "2 record(s)" in log[1] and len(log[2]) == 2
    assert scalar(db_url, "select count(*) from public.ingested_items where source = 'import'") == 4, "all kept raw"


def test_an_export_of_another_users_account_is_refused(db_url: str, tmp_path: Path) -> None:
    connect_account(db_url, "a", "r", name="bob")  # bob's account is 'bob-owner'
    alice = user(db_url)
    export = build_fake_export(tmp_path / "export.zip", [item(1)], owner="bob-owner", username="bob")
    result = run_import(db_url, tmp_path, alice, export)
    assert result.status == "failed" and "another Trove user" in (result.error or "")
    assert scalar(db_url, "select count(*) from public.posts") == 0


def test_a_forged_export_claims_neither_the_account_nor_the_posts_of_their_real_owner(
    db_url: str, tmp_path: Path, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Alice imports an export naming bob's platform account and posts before bob has connected it.
    alice = user(db_url)
    forged = build_fake_export(tmp_path / "forged.zip", [item(n, "forged") for n in range(1, 4)], owner="bob-owner")
    assert run_import(db_url, tmp_path, alice, forged).status == "success"
    assert scalar(db_url, "select platform_user_id from public.connected_accounts") == f"export:{alice}:bob-owner"
    # Bob connects the real account (its platform id is free) and syncs: his posts are his, not alice's.
    platform.control(item_count=3)
    bob_account = connect_account(db_url, platform.state.access_token, platform.state.refresh_token, name="bob")
    enqueue(db_url, bob_account, "manual")
    monkeypatch.setenv("FAKE_PLATFORM_URL", platform.url)
    sync_once(db_url)
    owners = query(
        db_url,
        "select p.platform_post_id, p.text_content, a.platform_user_id from public.posts p"
        " join public.connected_accounts a on a.id = p.account_id order by 1",
    )
    assert owners == [(f"fake:{n}", f"post number {n}", "bob-owner") for n in range(1, 4)]
    assert scalar(db_url, "select count(*) from public.ingested_posts where post_data ? 'trove_export'") == 0
    assert (
        scalar(
            db_url,
            "select count(*) from public.ingested_posts ip join public.connected_accounts a on a.id = ip.account_id"
            " where a.user_id = %s",
            (alice,),
        )
        == 0
    )


def test_a_post_in_another_users_archive_is_not_touched(db_url: str, tmp_path: Path) -> None:
    bob = user(db_url, "bob")
    run_import(db_url, tmp_path, bob, build_fake_export(tmp_path / "bob.zip", [item(1)], owner=None, username="bob"))
    alice = user(db_url)
    result = run_import(
        db_url, tmp_path, alice, build_fake_export(tmp_path / "alice.zip", [item(1, "mine now"), item(2)], owner=None)
    )
    assert result.status == "partial" and any("another Trove user" in p for p in result.problems)
    assert scalar(db_url, "select text_content from public.posts where platform_post_id = 'fake:1'") == "post number 1"
    assert scalar(
        db_url,
        "select u.email from public.posts p join public.connected_accounts a on a.id = p.account_id"
        " join public.users u on u.id = a.user_id where p.platform_post_id = 'fake:1'",
    ).startswith("bob")


def test_an_export_without_the_platforms_id_matches_synced_posts_by_time(db_url: str, tmp_path: Path) -> None:
    alice = user(db_url)
    run_import(db_url, tmp_path, alice, build_fake_export(tmp_path / "api.zip", [item(1), item(2)], owner=None))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update public.imports set status = 'completed'")
    # The same two posts again, now without their ids (matched by time), and one that matches nothing.
    items = [item(1, match=True), item(2, match=True), item(99, match=True)]
    result = run_import(db_url, tmp_path, alice, build_fake_export(tmp_path / "export.zip", items, owner=None))
    assert result.progress.matched == 2 and result.progress.posts_created == 1
    ids = [r[0] for r in query(db_url, "select platform_post_id from public.posts order by 1")]
    assert ids == ["export:99", "fake:1", "fake:2"]
    assert scalar(
        db_url, "select post_data ? 'trove_export' from public.ingested_posts where platform_post_id = 'fake:1'"
    )


def hostile(path: Path, kind: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fake-export/owner.json", '{"id": "x", "username": "alice"}')
        archive.writestr("fake-export/items.json", "[]")
        if kind == "traversal":
            archive.writestr("../../etc/cron.d/evil", "* * * * * root true")
        elif kind == "absolute":
            archive.writestr("/etc/passwd", "root")
        elif kind == "symlink":
            info = zipfile.ZipInfo("fake-export/link")
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
        elif kind == "bomb":
            archive.writestr("fake-export/zeros.bin", b"\0" * (64 * 1024 * 1024), compress_type=zipfile.ZIP_DEFLATED)
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("traversal", "../../etc/cron.d/evil: a path that climbs out"),
        ("absolute", "/etc/passwd: an absolute"),
        ("symlink", "fake-export/link: a symbolic link"),
        ("bomb", "fake-export/zeros.bin: compressed"),
        ("truncated", "not a readable ZIP"),
    ],
)
def test_hostile_archives_are_refused_naming_the_entry(db_url: str, tmp_path: Path, kind: str, message: str) -> None:
    alice = user(db_url)
    result = run_import(db_url, tmp_path, alice, hostile(tmp_path / f"{kind}.zip", kind))
    assert result.status == "failed" and message in (result.error or ""), result.error
    assert scalar(db_url, "select count(*) from public.connected_accounts") == 0
    assert not (tmp_path.parent / "etc").exists()


def test_a_file_that_is_no_known_export_is_refused(db_url: str, tmp_path: Path) -> None:
    alice = user(db_url)
    other = tmp_path / "notes.txt"
    other.write_text("just some text")
    result = run_import(db_url, tmp_path, alice, other)
    assert result.status == "failed" and "notes.txt: not an export Trove can read" in (result.error or "")


def test_a_record_postgres_refuses_is_recorded_and_the_batch_goes_on(db_url: str, tmp_path: Path) -> None:
    alice = user(db_url)
    items = [item(1), item(2, " ".join(f"w{n}" for n in range(300_000))), item(3, "nul \x00 inside"), item(4)]
    result = run_import(db_url, tmp_path, alice, build_fake_export(tmp_path / "export.zip", items))
    assert result.status == "partial", result
    assert any(p.startswith("item:2: its post was not stored") and "tsvector" in p for p in result.problems)
    assert any(p.startswith("item:3: not stored") and "NUL" in p for p in result.problems)
    assert sorted(r[0] for r in query(db_url, "select platform_post_id from public.posts")) == ["fake:1", "fake:4"]
    # The refused post's raw record is kept (it can be reprocessed); the unstorable one could not be.
    assert scalar(db_url, "select count(*) from public.ingested_items where source = 'import'") == 3
    assert scalar(db_url, "select count(*) from public.media_downloads") == 2, "no file of a post not stored"
    assert query(db_url, "select status::text from public.sync_logs") == [("partial",)]


def test_what_a_deleted_account_left_is_nobody_elses_to_take(db_url: str, tmp_path: Path) -> None:
    bob = user(db_url, "bob")
    run_import(db_url, tmp_path, bob, build_fake_export(tmp_path / "bob.zip", [item(1, "bob's private note")]))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update public.imports set status = 'completed'")
        conn.execute("delete from public.connected_accounts")  # bob disconnects; his raw posts stay his
    mallory = user(db_url, "mallory")
    forged = build_fake_export(tmp_path / "forged.zip", [item(1, "forged")], owner="someone")
    result = run_import(db_url, tmp_path, mallory, forged)
    assert result.status == "partial" and any("another Trove user" in p for p in result.problems)
    assert scalar(db_url, "select count(*) from public.posts") == 0
    assert scalar(db_url, "select post_data->>'text' from public.ingested_posts") == "bob's private note"
    # Bob himself importing again gets his archive back.
    again = run_import(db_url, tmp_path, bob, build_fake_export(tmp_path / "bob.zip", [item(1, "bob's private note")]))
    assert again.status == "success" and again.progress.posts == 1, again


def test_two_users_importing_the_same_public_file_each_keep_their_records(db_url: str, tmp_path: Path) -> None:
    export = build_fake_export(tmp_path / "export.zip", [item(1), item(2)], owner=None, username="public")
    alice, bob = user(db_url), user(db_url, "bob")
    assert run_import(db_url, tmp_path, alice, export).progress.posts == 2
    second = run_import(db_url, tmp_path, bob, export)
    assert second.progress.unchanged == 0, "bob's records are his own, not 'already imported' by alice"
    assert second.status == "partial" and second.progress.problems == 2, "the posts are alice's: left alone"
    assert scalar(db_url, "select count(distinct account_id) from public.ingested_items where source = 'import'") == 2
