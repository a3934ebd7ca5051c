"""Strava end to end through real processes: the simulator over HTTP, a worker process, real Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tests.strava_harness import clear_of_a_window_edge, connect_strava, strava_env, strava_simulator
from tests.worker_harness import enqueue, query, running_worker, scalar, wait_for, wait_for_log

from trove.simulators.strava import StravaSimulator


@pytest.fixture
def sim() -> Iterator[tuple[StravaSimulator, str]]:
    with strava_simulator() as pair:
        yield pair


def test_backfill_archives_every_activity_from_list_pages_then_details_within_the_budget(
    db_url: str, sim: tuple[StravaSimulator, str], tmp_path: Path
) -> None:
    simulator, url = sim
    clear_of_a_window_edge()
    athlete = simulator.add_athlete(activities=1050)
    account = connect_strava(db_url, url, athlete.id)
    log_id = enqueue(db_url, account, "backfill")
    with running_worker(strava_env(db_url, url), tmp_path / "worker.log"):
        assert wait_for_log(db_url, log_id, timeout=120) == "success"
    # Every activity is archived from 6 list pages (200 per call)...
    assert scalar(db_url, "select count(*) from public.posts where content_type = 'activity'") == 1050
    assert scalar(db_url, "select count(*) from public.ingested_items where event_type = 'athlete.activities'") == 6
    assert simulator.requests["athlete.activities"] == 6
    # ...then details, newest first, until the bulk share of the 15-minute read window (80 of 100) is spent.
    details = simulator.requests.get("activity", 0)
    photo_calls = simulator.requests.get("activity.photos", 0)
    assert details > 0
    assert simulator.read.used_15 <= 80, "bulk work must leave a fifth of the window to polling"
    assert 6 + details + photo_calls == simulator.read.used_15
    assert scalar(db_url, "select count(*) from public.ingested_posts where not detail_pending") == details
    newest_detailed = query(
        db_url,
        "select p.text_content, ip.post_data ->> 'description' from public.posts as p join public.ingested_posts as ip"
        " using (platform, platform_post_id) where not ip.detail_pending order by p.created_at_platform desc limit 1",
    )[0]
    assert newest_detailed[1] and newest_detailed[1] in newest_detailed[0]
    # Photos of the detailed activities: largest size, keyed by the photo's unique id.
    photos = query(db_url, "select media_key, original_url from public.media_downloads")
    assert len(photos) > 0 and all("size=2048" in u for _, u in photos)
    assert all(k.count("-") == 4 for k, _ in photos)
    state = scalar(db_url, "select sync_state from public.connected_accounts where id = %s", (account,))
    assert state["backfill_done"] is True
    budget = dict(query(db_url, "select window_name, used from public.rate_limit_budgets where platform = 'strava'"))
    assert budget["read_15min"] == simulator.read.used_15


def test_activities_starting_in_the_same_second_are_all_archived_once_across_page_boundaries(
    db_url: str, sim: tuple[StravaSimulator, str], tmp_path: Path
) -> None:
    simulator, url = sim
    athlete = simulator.add_athlete()
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    # Newest first: 198 seconds apart, 5 in one second across the first page's end (200), 230 in one second
    # (more than a page), 40 older ones.
    starts = [base - timedelta(seconds=n) for n in range(198)]
    starts += [base - timedelta(seconds=500)] * 5 + [base - timedelta(seconds=1000)] * 230
    starts += [base - timedelta(seconds=2000 + n) for n in range(40)]
    for start in starts:
        simulator.add_activity(athlete, start)
    account = connect_strava(db_url, url, athlete.id)
    with running_worker(strava_env(db_url, url), tmp_path / "worker.log"):
        backfill = enqueue(db_url, account, "backfill")
        assert wait_for_log(db_url, backfill, timeout=120) == "success"
        counts = "select posts_fetched, posts_created from public.sync_logs where id = %s"
        assert query(db_url, counts, (backfill,))[0] == (473, 473)  # each once: none skipped, none twice
        assert scalar(db_url, "select count(*) from public.posts") == 473
        # Polling reads oldest first (after=): 210 new ones in one second, then 5 more.
        newer = base + timedelta(hours=1)
        for start in [newer] * 210 + [newer + timedelta(seconds=n + 1) for n in range(5)]:
            simulator.add_activity(athlete, start)
        poll = enqueue(db_url, account, "scheduled")
        assert wait_for_log(db_url, poll, timeout=120) == "success"
        assert query(db_url, counts, (poll,))[0] == (473 + 215, 215)  # the 7-day re-read, then the new ones
    assert scalar(db_url, "select count(*) from public.posts") == 473 + 215


def test_poll_finds_new_activities_and_a_repeat_changes_nothing(
    db_url: str, sim: tuple[StravaSimulator, str], tmp_path: Path
) -> None:
    simulator, url = sim
    athlete = simulator.add_athlete(activities=30)
    account = connect_strava(db_url, url, athlete.id)
    with running_worker(strava_env(db_url, url), tmp_path / "worker.log"):
        assert wait_for_log(db_url, enqueue(db_url, account, "backfill"), timeout=60) == "success"
        again = enqueue(db_url, account, "backfill")
        assert wait_for_log(db_url, again) == "success"
        assert query(db_url, "select posts_created, posts_updated from public.sync_logs where id = %s", (again,))[
            0
        ] == (0, 0)
        httpx.post(f"{url}/_sim/activities", json={"athlete_id": athlete.id, "fields": {"name": "Sunrise Tempo"}})
        poll = enqueue(db_url, account, "scheduled")
        assert wait_for_log(db_url, poll) == "success"
        assert scalar(db_url, "select posts_created from public.sync_logs where id = %s", (poll,)) == 1
    assert scalar(db_url, "select count(*) from public.posts where text_content like 'Sunrise Tempo%%'") == 1
    assert scalar(db_url, "select count(*) from public.posts") == 31


def test_token_expiry_mid_backfill_is_refreshed_and_the_backfill_goes_on(
    db_url: str, sim: tuple[StravaSimulator, str], tmp_path: Path
) -> None:
    simulator, url = sim
    athlete = simulator.add_athlete(activities=450)
    account = connect_strava(db_url, url, athlete.id)
    httpx.post(f"{url}/_sim/config", json={"expire_tokens_in": 1})  # the token dies after the first page
    log_id = enqueue(db_url, account, "backfill")
    with running_worker(strava_env(db_url, url), tmp_path / "worker.log"):
        assert wait_for_log(db_url, log_id, timeout=60) == "success"
    assert simulator.requests["oauth.token"] == 2  # the connect, then one refresh
    assert scalar(db_url, "select count(*) from public.posts") == 450
    assert scalar(db_url, "select status::text from public.connected_accounts where id = %s", (account,)) == "active"


def test_429_mid_backfill_waits_for_the_reset_and_resumes_without_loss_or_duplicates(
    db_url: str, sim: tuple[StravaSimulator, str], tmp_path: Path
) -> None:
    simulator, url = sim
    athlete = simulator.add_athlete(activities=650)
    account = connect_strava(db_url, url, athlete.id)
    httpx.post(f"{url}/_sim/config", json={"fail_later_in": 2, "fail_later_status": 429})  # page 3 is refused
    first = enqueue(db_url, account, "backfill")
    with running_worker(strava_env(db_url, url), tmp_path / "worker.log"):
        assert wait_for_log(db_url, first, timeout=60) == "failed"
        # Two pages of 200; the second re-read the first's boundary second (its one activity skipped as seen).
        assert scalar(db_url, "select count(*) from public.posts") == 399
        row = query(
            db_url,
            "select error_count, next_sync_at > now(), next_sync_at <= now() + interval '15 minutes', sync_state"
            " from public.connected_accounts where id = %s",
            (account,),
        )[0]
        assert row[:3] == (1, True, True)  # seed 8.1: wait for the window's reset
        assert "before" in row[3]["backfill_cursor"]
        # After the reset (moved forward here), the next sync continues the backfill from its cursor.
        second = enqueue(db_url, account, "scheduled")
        assert wait_for_log(db_url, second, timeout=60) == "success"
    assert scalar(db_url, "select count(*) from public.posts") == 650
    assert scalar(db_url, "select count(distinct platform_post_id) from public.ingested_posts") == 650
    assert scalar(db_url, "select error_count from public.connected_accounts where id = %s", (account,)) == 0
    wait_for(lambda: True, 1)
