"""Importing Instagram's "Download your information" export end to end with `trove import` as a real
process: a personal account's export alone, the export of an account synced through the API (matched by
time: no duplicates), twice, killed and resumed, and broken files."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.import_harness import import_env, kill_halfway_and_resume, trove_import
from tests.instagram_harness import instagram_stack, user
from tests.worker_harness import query, running_worker, scalar, wait_for_log

from trove.simulators.instagram_export import ExportItem, build_instagram_export, items_from_simulator

BASE = 1_700_000_000


def personal_items(count: int) -> list[ExportItem]:
    kinds = ("post", "reel", "story", "archived_post")
    items = []
    for n in range(count):
        kind = kinds[n % 4]
        media = (
            ("IMAGE", "VIDEO", "IMAGE")
            if n % 5 == 0 and kind == "post"
            else ("VIDEO",)
            if kind == "reel"
            else ("IMAGE",)
        )
        items.append(ExportItem(kind, BASE + 3600 * n, f"Café n°{n} 🎉 東京" if kind != "story" else None, media))  # type: ignore[arg-type]
    return items


def snapshot(db_url: str) -> dict[str, object]:
    return {
        "posts": query(db_url, "select platform_post_id, text_content, updated_at from public.posts order by 1"),
        "raw": query(db_url, "select platform_post_id, post_data from public.ingested_posts order by 1"),
        "items": scalar(db_url, "select count(*) from public.ingested_items"),
        "media": query(db_url, "select media_key, status::text, storage_path from public.media_downloads order by 1"),
    }


def test_a_personal_accounts_export_alone_is_archived_with_its_files(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with instagram_stack(db_url, monkeypatch, posts=0, stories=0) as stack:
        alice, _ = user(db_url, "alice")
        export = build_instagram_export(tmp_path / "instagram-alice.zip", "alice.personal", "Alice", personal_items(20))
        done = trove_import(import_env(stack["env"], tmp_path), export)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "import success: instagram export" in done.stdout and "20 records" in done.stdout
        kinds = dict(query(db_url, "select content_type::text, count(*) from public.posts group by 1"))
        assert kinds == {"post": 10, "reel": 5, "story": 5}
        account = query(db_url, "select platform_user_id, username, status::text from public.connected_accounts")
        assert account == [(f"export:{alice}:alice.personal", "alice.personal", "disconnected")]
        # Meta's Latin-1 escapes are repaired: the text is what was typed.
        assert (
            scalar(db_url, "select count(*) from public.posts where text_content like %s", ("Café n°%🎉 東京",)) == 15
        )
        # Archived posts are kept, not shown as published.
        assert scalar(db_url, "select count(*) from public.posts where not published") == 5
        # Every file came from the ZIP into storage; a carousel keeps its order.
        files = query(
            db_url, "select status::text, original_url, storage_path, content_type from public.media_downloads"
        )
        assert len(files) == 22 and all(s == "downloaded" and u == "" for s, u, _, _ in files)
        assert {t for *_, t in files} == {"image/jpeg", "video/mp4"}
        assert all((tmp_path / "media" / p).is_file() for _, _, p, _ in files)
        positions = query(
            db_url,
            "select pm.position from public.post_media pm join public.ingested_posts ip on ip.id = pm.ingested_post_id"
            " where ip.post_data->>'media_type' = 'CAROUSEL_ALBUM' order by ip.platform_post_id, pm.position",
        )
        assert [p for (p,) in positions][:3] == [0, 1, 2]


def test_the_export_of_a_synced_account_matches_its_posts_and_twice_changes_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.e2e.test_instagram import connected, wait_media_settled

    with instagram_stack(db_url, monkeypatch, posts=40, stories=2) as stack:
        account, log_id = connected(stack)
        environment = import_env(stack["env"], tmp_path)
        with running_worker(environment, tmp_path / "worker.log"):
            assert wait_for_log(db_url, log_id, timeout=240) == "success"
            wait_media_settled(db_url)
        synced = snapshot(db_url)["posts"]
        media_before = scalar(db_url, "select count(*) from public.media_downloads")
        items = items_from_simulator(stack["account"])
        items.append(ExportItem("post", BASE, "only in the export"))  # before the account's API history
        export = build_instagram_export(tmp_path / "export.zip", "trove.demo", "Trove Demo", items)
        done = trove_import(environment, export)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{len(items) - 1} matched to synced posts" in done.stdout, done.stdout
        assert scalar(db_url, "select count(*) from public.posts") == len(synced) + 1, "no duplicates"
        assert scalar(db_url, "select count(distinct account_id) from public.posts") == 1, "the synced account"
        kept = {(pid, text) for pid, text, _ in synced}
        assert kept <= {(pid, text) for pid, text, _ in snapshot(db_url)["posts"]}, "what the API said stays"
        assert scalar(db_url, "select count(*) from public.ingested_posts where post_data ? 'trove_export'") == len(
            items
        )
        assert scalar(db_url, "select count(*) from public.media_downloads") == media_before + 1, "API copies kept"
        before = snapshot(db_url)
        again = trove_import(environment, export)
        assert again.returncode == 0 and f"{len(items)} already imported" in again.stdout, again.stdout
        assert snapshot(db_url) == before
        assert account


def test_an_import_killed_halfway_resumes_where_it_stopped(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with instagram_stack(db_url, monkeypatch, posts=0, stories=0) as stack:
        user(db_url, "alice")
        export = build_instagram_export(tmp_path / "export.zip", "alice.personal", "Alice", personal_items(200))
        kill_halfway_and_resume(db_url, import_env(stack["env"], tmp_path), export, 200)
        assert scalar(db_url, "select count(*) from public.posts") == 200
        assert scalar(db_url, "select count(*) from public.ingested_items where source = 'import'") == 200
        assert scalar(db_url, "select count(*) from public.media_downloads where status = 'downloaded'") == 220


def test_broken_files_are_refused_or_recorded_naming_the_entry(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with instagram_stack(db_url, monkeypatch, posts=0, stories=0) as stack:
        user(db_url, "alice")
        environment = import_env(stack["env"], tmp_path)
        items = personal_items(4)
        # A media file the JSON names is missing: that post is kept without it, the problem recorded.
        missing = [ExportItem("post", BASE, "one file lost", ("IMAGE", "IMAGE"), frozenset({1})), *items[1:]]
        done = trove_import(environment, build_instagram_export(tmp_path / "missing.zip", "alice.p", "A", missing))
        assert done.returncode == 0 and "import partial" in done.stdout, done.stdout + done.stderr
        assert scalar(db_url, "select count(*) from public.posts") == 4
        problems = scalar(db_url, "select error_details->'problems' from public.sync_logs")
        assert len(problems) == 1 and "media/posts/" in problems[0]
        # A content file that is not JSON: refused, naming it.
        broken = build_instagram_export(
            tmp_path / "broken.zip",
            "alice.p",
            "A",
            items,
            replace={"your_instagram_activity/content/posts_1.json": "{"},
        )
        refused = trove_import(environment, broken)
        assert refused.returncode == 1 and "posts_1.json" in refused.stdout, refused.stdout + refused.stderr
        assert scalar(db_url, "select count(*) from public.posts") == 4, "nothing stored was lost"
        # A caption Postgres cannot store (a NUL): that item is refused, named; the others are archived.
        nul = [ExportItem("post", BASE + 7 * 86400, "bad \x00 caption"), ExportItem("post", BASE + 8 * 86400, "fine")]
        partial = trove_import(environment, build_instagram_export(tmp_path / "nul.zip", "alice.p", "A", nul))
        assert partial.returncode == 0 and "import partial" in partial.stdout, partial.stdout + partial.stderr
        assert "NUL" in partial.stdout
        assert scalar(db_url, "select count(*) from public.posts where text_content = 'fine'") == 1
