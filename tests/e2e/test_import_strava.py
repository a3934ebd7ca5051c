"""Importing Strava's bulk export end to end: `trove import` as a real process (alone, after an API sync,
twice, killed and resumed), POST /api/import drained by a real worker, and the hostile files of issue 14."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.import_harness import import_env, kill_halfway_and_resume, trove_import
from tests.strava_harness import connect_strava, service_stack, strava_env, strava_simulator, user
from tests.worker_harness import enqueue, query, running_worker, scalar, wait_for, wait_for_log

from trove.simulators.strava import StravaSimulator
from trove.simulators.strava_export import build_strava_export


@pytest.fixture
def sim() -> Iterator[tuple[StravaSimulator, str]]:
    with strava_simulator() as pair:
        yield pair


def env(db_url: str, sim_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return import_env(strava_env(db_url, sim_url), tmp_path, **extra)


def snapshot(db_url: str) -> dict[str, object]:
    return {
        "posts": query(db_url, "select platform_post_id, text_content, updated_at from public.posts order by 1"),
        "raw": query(db_url, "select platform_post_id, post_data from public.ingested_posts order by 1"),
        "items": scalar(db_url, "select count(*) from public.ingested_items"),
        "media": query(db_url, "select media_key, status::text, storage_path from public.media_downloads order by 1"),
    }


def test_an_export_alone_is_archived_through_the_cli(
    db_url: str, sim: tuple[StravaSimulator, str], tmp_path: Path
) -> None:
    simulator, url = sim
    athlete = simulator.add_athlete(activities=12)
    alice, _ = user(db_url, "alice")
    export = build_strava_export(tmp_path / "export_134815.zip", athlete)
    done = trove_import(env(db_url, url, tmp_path), export, "--user", "alice@test.trove.local")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "import success: strava export" in done.stdout and "12 records" in done.stdout
    assert scalar(db_url, "select count(*) from public.posts where content_type = 'activity'") == 12
    account = query(db_url, "select platform_user_id, status::text, sync_enabled from public.connected_accounts")
    # Known from its export only: not connected, and not claiming Strava's athlete id (an export proves nothing).
    assert account == [(f"export:{alice}:{athlete.id}", "disconnected", False)]
    assert scalar(db_url, "select count(*) from public.ingested_items where source = 'import'") == 12
    # Every activity's original file and its photos are in storage, not downloaded.
    files = query(db_url, "select content_type, storage_path, original_url from public.media_downloads")
    photos = sum(len(a.photos) for a in athlete.activities.values())
    assert len(files) == 12 + photos and all(url == "" for _, _, url in files)
    kinds = {kind for kind, _, _ in files}
    assert {"application/gpx+xml", "application/gzip", "image/jpeg"} <= kinds
    assert all((tmp_path / "media" / path).is_file() for _, path, _ in files)
    # Tracks fill what the CSV lacks.
    start, polyline = query(
        db_url,
        "select post_data->'start_latlng', post_data->'map'->>'summary_polyline' from public.ingested_posts limit 1",
    )[0]
    assert len(start) == 2 and polyline
    log = query(db_url, "select sync_type::text, status::text, posts_created, media_downloaded from public.sync_logs")
    assert log == [("import", "success", 12, 12 + photos)]
    assert scalar(db_url, "select status::text from public.imports") == "completed"
    assert not [f for f in (tmp_path / "state" / "imports").rglob("*") if f.is_file()], "the upload is removed"


def test_an_export_after_an_api_sync_enriches_the_synced_activities_and_twice_changes_nothing(
    db_url: str, sim: tuple[StravaSimulator, str], tmp_path: Path
) -> None:
    simulator, url = sim
    athlete = simulator.add_athlete(activities=8)
    account = connect_strava(db_url, url, athlete.id)
    environment = env(db_url, url, tmp_path)
    with running_worker(environment, tmp_path / "worker.log"):
        assert wait_for_log(db_url, enqueue(db_url, account, "backfill"), timeout=120) == "success"
        wait_for(
            lambda: scalar(db_url, "select count(*) from public.media_downloads where status <> 'downloaded'") == 0,
            what="the API's photos copied",
        )
    synced_titles = dict(query(db_url, "select platform_post_id, text_content from public.posts"))
    media_before = scalar(db_url, "select count(*) from public.media_downloads")
    for activity in athlete.activities.values():  # the export says other things than the API: the API wins
        activity.data["name"] = "renamed after the sync"
    export = build_strava_export(tmp_path / "export.zip", athlete)
    done = trove_import(environment, export)  # the only user: no --user needed
    assert done.returncode == 0, done.stdout + done.stderr
    assert scalar(db_url, "select count(*) from public.posts") == 8, "merged by activity id, no duplicates"
    assert scalar(db_url, "select count(*) from public.connected_accounts") == 1
    assert dict(query(db_url, "select platform_post_id, text_content from public.posts")) == synced_titles
    assert scalar(db_url, "select count(*) from public.ingested_posts where post_data ? 'trove_export'") == 8
    # The API's photos are the export's photos (same keys): only the activity files are new.
    assert scalar(db_url, "select count(*) from public.media_downloads") == media_before + 8
    before = snapshot(db_url)
    again = trove_import(environment, export)
    assert again.returncode == 0 and "8 already imported" in again.stdout, again.stdout
    assert snapshot(db_url) == before


def test_an_import_killed_halfway_resumes_where_it_stopped(
    db_url: str, sim: tuple[StravaSimulator, str], tmp_path: Path
) -> None:
    simulator, url = sim
    athlete = simulator.add_athlete(activities=240)
    user(db_url, "alice")
    export = build_strava_export(tmp_path / "export.zip", athlete, formats=("fit.gz",), points=400)
    kill_halfway_and_resume(db_url, env(db_url, url, tmp_path), export, 240)
    assert scalar(db_url, "select count(*) from public.posts") == 240
    assert scalar(db_url, "select count(*) from public.ingested_items where source = 'import'") == 240
    assert scalar(db_url, "select count(distinct platform_post_id) from public.ingested_posts") == 240
    assert scalar(db_url, "select count(*) from public.media_downloads") == 240 + sum(
        len(a.photos) for a in athlete.activities.values()
    )
    assert query(db_url, "select status::text from public.sync_logs") == [("success",)], "one log, the whole import"


def test_a_corrupt_activity_file_is_recorded_and_the_others_are_archived(
    db_url: str, sim: tuple[StravaSimulator, str], tmp_path: Path
) -> None:
    simulator, url = sim
    athlete = simulator.add_athlete(activities=5)
    user(db_url, "alice")
    broken = sorted(athlete.activities)[2]
    export = build_strava_export(tmp_path / "export.zip", athlete, formats=("fit.gz",), corrupt_fit_for={broken})
    done = trove_import(env(db_url, url, tmp_path), export)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "import partial" in done.stdout and f"{broken}.fit" in done.stdout
    assert scalar(db_url, "select count(*) from public.posts") == 5, "the activity itself is kept from its CSV row"
    details = scalar(db_url, "select error_details->'problems' from public.sync_logs")
    assert len(details) == 1 and f"{broken}.fit" in details[0]


def test_a_csv_without_the_needed_columns_is_refused_naming_it(
    db_url: str, sim: tuple[StravaSimulator, str], tmp_path: Path
) -> None:
    simulator, url = sim
    athlete = simulator.add_athlete(activities=3)
    user(db_url, "alice")
    export = build_strava_export(tmp_path / "export.zip", athlete, omit_columns=("Activity Date",))
    done = trove_import(env(db_url, url, tmp_path), export)
    assert done.returncode == 1
    assert "activities.csv" in done.stdout and "Activity Date" in done.stdout
    assert scalar(db_url, "select count(*) from public.posts") == 0
    assert query(db_url, "select status::text from public.sync_logs") == [("failed",)]


@pytest.mark.parametrize("damage", ["truncated", "not_an_export"])
def test_damaged_or_foreign_files_are_refused_with_a_clear_error(
    db_url: str, sim: tuple[StravaSimulator, str], tmp_path: Path, damage: str
) -> None:
    simulator, url = sim
    athlete = simulator.add_athlete(activities=3)
    user(db_url, "alice")
    export = build_strava_export(tmp_path / "export.zip", athlete)
    if damage == "truncated":
        export.write_bytes(export.read_bytes()[:-200])
        expected = "not a readable ZIP"
    else:
        with zipfile.ZipFile(export, "w") as archive:
            archive.writestr("holiday/photo.txt", "not an export")
        expected = "not an export Trove can read"
    done = trove_import(env(db_url, url, tmp_path), export)
    assert done.returncode == 1 and expected in done.stdout, done.stdout + done.stderr
    assert scalar(db_url, "select count(*) from public.connected_accounts") == 0


def test_an_upload_is_imported_by_the_worker_and_its_progress_readable(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TROVE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TROVE_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("TROVE_MEDIA_SIGNING_KEY", "k")
    with service_stack(db_url, monkeypatch) as stack:
        athlete = stack["sim"].add_athlete(activities=6)
        _, alice = user(db_url, "alice")
        _, bob = user(db_url, "bob")
        export = build_strava_export(tmp_path / "export.zip", athlete)
        answer = httpx.post(
            f"{stack['url']}/api/import", content=export.read_bytes(), headers={**alice, "X-File-Name": "my.zip"}
        )
        assert answer.status_code == 202, answer.text
        status_url = f"{stack['url']}{answer.json()['status_url']}"
        assert httpx.get(status_url, headers=alice).json()["status"] == "queued"
        assert httpx.get(status_url, headers=bob).status_code == 404, "another user's import does not exist"
        with running_worker(env(db_url, stack["sim_url"], tmp_path), tmp_path / "worker.log"):
            status = wait_for(
                lambda: (s := httpx.get(status_url, headers=alice).json())["status"] == "completed" and s,
                what="the import done",
            )
        assert status["platform"] == "strava" and status["file_name"] == "my.zip"
        assert status["progress"]["records"] == 6 and status["progress"]["posts_created"] == 6
        log = httpx.get(f"{stack['url']}{status['sync_status_url']}", headers=alice).json()
        assert log["sync_type"] == "import" and log["status"] == "success" and log["posts_created"] == 6
        assert scalar(db_url, "select count(*) from public.posts") == 6
        # The original activity file is served as what it is, for download only (GPX is XML: never rendered).
        media = [
            m
            for (post_id,) in query(db_url, "select id::text from public.posts")
            for m in httpx.get(f"{stack['url']}/api/posts/{post_id}/media", headers=alice).json()["media"]
        ]
        track = next(m for m in media if m["content_type"] == "application/gpx+xml")
        served = httpx.get(track["url"])
        assert served.status_code == 200 and served.headers["content-type"].startswith("application/gpx+xml")
        assert served.headers["content-disposition"] == "attachment"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert httpx.post(f"{stack['url']}/api/import", content=b"", headers=alice).status_code == 400
        # Past the service's 1 MiB cap for other bodies: an export is taken whole (refused later if no export).
        big = httpx.post(f"{stack['url']}/api/import", content=b"x" * (3 * 1024 * 1024), headers=alice)
        assert big.status_code == 202 and big.json()["byte_size"] == 3 * 1024 * 1024, big.text
        form = httpx.post(f"{stack['url']}/api/import", files={"file": ("e.zip", b"PK")}, headers=alice)
        assert form.status_code == 415, "a form would be spooled whole before any check"
        assert httpx.post(f"{stack['url']}/api/import", content=b"x").status_code == 401
