"""Importing a Bluesky repository CAR end to end with `trove import` as a real process: alone (blobs then
fetched from the PDS by CID), after an API sync (one post per record), twice, killed and resumed, and CARs
that must be refused (a block that does not match its CID, a commit signed by another key, a cut file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.bluesky_harness import bluesky_stack, user
from tests.import_harness import import_env, kill_halfway_and_resume, trove_import
from tests.worker_harness import query, running_worker, scalar, wait_for, wait_for_log

from trove.simulators.bluesky import POST, REPOST, BlueskySimulator
from trove.simulators.bluesky_export import build_repo_car


def repo_uris(sim: BlueskySimulator) -> set[str]:
    account = sim.accounts[sim.demo_did]
    return {record.uri for name in (POST, REPOST) for record in account.collection(name).values()}


def snapshot(db_url: str) -> dict[str, object]:
    return {
        "posts": query(db_url, "select platform_post_id, text_content, updated_at from public.posts order by 1"),
        "raw": query(db_url, "select platform_post_id, post_data from public.ingested_posts order by 1"),
        "items": scalar(db_url, "select count(*) from public.ingested_items"),
        "media": query(db_url, "select media_key, status::text, storage_path from public.media_downloads order by 1"),
    }


def test_a_repository_car_alone_is_archived_and_its_blobs_fetched_from_the_pds(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with bluesky_stack(db_url, monkeypatch, posts=60) as stack:
        sim: BlueskySimulator = stack["sim"]
        alice, _ = user(db_url, "alice")
        car = tmp_path / "repo.car"
        car.write_bytes(build_repo_car(sim))
        environment = import_env(stack["env"], tmp_path)
        done = trove_import(environment, car)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "import success: bluesky export" in done.stdout
        archived = {r[0] for r in query(db_url, "select platform_post_id from public.posts")}
        assert archived == repo_uris(sim), "every post and repost record, as the sync archives them"
        account = query(db_url, "select platform_user_id, status::text from public.connected_accounts")
        assert account == [(f"export:{alice}:{sim.demo_did}", "disconnected")]
        assert scalar(db_url, "select count(*) from public.ingested_items where source = 'import'") >= len(archived)
        blobs = query(db_url, "select original_url from public.media_downloads")
        assert blobs and all("com.atproto.sync.getBlob?did=" in url for (url,) in blobs), "by CID from the PDS"
        with running_worker(environment, tmp_path / "worker.log"):
            wait_for(
                lambda: scalar(db_url, "select count(*) from public.media_downloads where status <> 'downloaded'") == 0,
                120,
                "the blobs copied",
            )


def test_a_car_after_an_api_sync_is_the_same_posts_and_twice_changes_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.e2e.test_bluesky import connected

    with bluesky_stack(db_url, monkeypatch, posts=40) as stack:
        sim: BlueskySimulator = stack["sim"]
        _, answer = connected(stack)
        environment = import_env(stack["env"], tmp_path)
        with running_worker(environment, tmp_path / "worker.log"):
            assert wait_for_log(db_url, answer["sync_log_id"], timeout=240) == "success"
        synced = {(pid, text) for pid, text, _ in snapshot(db_url)["posts"]}
        car = tmp_path / "repo.car"
        car.write_bytes(build_repo_car(sim))
        done = trove_import(environment, car)
        assert done.returncode == 0, done.stdout + done.stderr
        assert {(pid, text) for pid, text, _ in snapshot(db_url)["posts"]} == synced, "merged, nothing changed"
        assert scalar(db_url, "select count(*) from public.connected_accounts") == 1
        before = snapshot(db_url)
        again = trove_import(environment, car)
        assert again.returncode == 0 and "already imported" in again.stdout, again.stdout
        assert snapshot(db_url) == before


def test_an_import_killed_halfway_resumes_where_it_stopped(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with bluesky_stack(db_url, monkeypatch, posts=400) as stack:
        sim: BlueskySimulator = stack["sim"]
        user(db_url, "alice")
        car = tmp_path / "repo.car"
        car.write_bytes(build_repo_car(sim))
        records = sum(len(c) for c in sim.accounts[sim.demo_did].records.values())
        kill_halfway_and_resume(db_url, import_env(stack["env"], tmp_path), car, records)
        assert {r[0] for r in query(db_url, "select platform_post_id from public.posts")} == repo_uris(sim)
        assert scalar(db_url, "select count(*) from public.ingested_items where source = 'import'") == records


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("corrupt", "does not match its CID"),
        ("wrong_key", "commit signature does not verify"),
        ("truncate", "repo.car"),
    ],
)
def test_cars_that_cannot_be_trusted_are_refused(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, damage: str, message: str
) -> None:
    with bluesky_stack(db_url, monkeypatch, posts=10) as stack:
        sim: BlueskySimulator = stack["sim"]
        user(db_url, "alice")
        first_post = f"{POST}/{next(iter(sim.accounts[sim.demo_did].collection(POST)))}"
        options = {"corrupt": {"corrupt": first_post}, "wrong_key": {"wrong_key": True}}.get(damage, {})
        data = build_repo_car(sim, **options)  # type: ignore[arg-type]
        if damage == "truncate":
            data = data[: len(data) // 2]
        car = tmp_path / "repo.car"
        car.write_bytes(data)
        done = trove_import(import_env(stack["env"], tmp_path), car)
        assert done.returncode == 1 and message in done.stdout, done.stdout + done.stderr
        assert scalar(db_url, "select count(*) from public.posts") == 0
