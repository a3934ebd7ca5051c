"""The sync engine end to end: real worker processes, real Postgres, the fake platform over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.fake_platform import FakePlatform
from tests.worker_harness import (
    RING,
    connect_account,
    enqueue,
    query,
    running_worker,
    scalar,
    wait_for_log,
    worker_env,
)

from trove.crypto import decrypt


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with FakePlatform() as fake:
        yield fake


@pytest.fixture
def env(db_url: str, platform: FakePlatform) -> dict[str, str]:
    return worker_env(db_url, platform.url, FAKE_PAGE_SIZE="50")


def account_for(db_url: str, platform: FakePlatform, **kwargs: str) -> str:
    return connect_account(db_url, platform.state.access_token, platform.state.refresh_token, **kwargs)


def test_backfill_archives_every_page_then_polling_changes_nothing(
    db_url: str, platform: FakePlatform, env: dict[str, str], tmp_path: Path
) -> None:
    platform.control(item_count=230)
    account = account_for(db_url, platform)
    log_id = enqueue(db_url, account, "backfill")
    with running_worker(env, tmp_path / "worker.log"):
        assert wait_for_log(db_url, log_id) == "success"
        fetched, created, metadata = query(
            db_url, "select posts_fetched, posts_created, metadata from public.sync_logs where id = %s", (log_id,)
        )[0]
        assert (fetched, created) == (230, 230)
        assert metadata["page_count"] == 5 and metadata["mode"] == "backfill" and metadata["cursor"] is None
        assert metadata["rate_limit_remaining"] == 1000 - 5
        assert scalar(db_url, "select count(*) from public.posts where account_id = %s", (account,)) == 230
        assert scalar(db_url, "select count(*) from public.ingested_items where event_type = 'items'") == 5
        assert scalar(db_url, "select count(*) from public.media_downloads") == 230
        assert scalar(db_url, "select count(*) from public.engagement_history") == 230
        state = scalar(db_url, "select sync_state from public.connected_accounts where id = %s", (account,))
        assert state["backfill_done"] is True and state["newest_id"] == 230
        assert scalar(db_url, "select last_sync_status from public.connected_accounts where id = %s", (account,)) == (
            "success"
        )
        # Polling now asks only for what is new, and the same data again changes nothing.
        poll_log = enqueue(db_url, account, "manual")
        assert wait_for_log(db_url, poll_log) == "success"
        assert query(
            db_url,
            "select posts_fetched, posts_created, posts_updated from public.sync_logs where id = %s",
            (poll_log,),
        )[0] == (0, 0, 0)
        platform.control(item_count=240)
        poll_log = enqueue(db_url, account, "manual")
        assert wait_for_log(db_url, poll_log) == "success"
        assert query(db_url, "select posts_fetched, posts_created from public.sync_logs where id = %s", (poll_log,))[
            0
        ] == (10, 10)
    assert scalar(db_url, "select count(*) from public.posts") == 240


def test_expiring_token_is_refreshed_before_the_sync(
    db_url: str, platform: FakePlatform, env: dict[str, str], tmp_path: Path
) -> None:
    platform.control(item_count=10)
    old_refresh = platform.state.refresh_token
    account = account_for(db_url, platform, expires_in="2 minutes")
    log_id = enqueue(db_url, account)
    with running_worker(env, tmp_path / "worker.log"):
        assert wait_for_log(db_url, log_id) == "success"
    assert platform.state.refresh_calls == 1
    access, refresh, expires_later = query(
        db_url,
        "select access_token, refresh_token, token_expires_at > now() + interval '50 minutes'"
        " from public.connected_accounts where id = %s",
        (account,),
    )[0]
    assert decrypt(RING, access, account_id=account, column="access_token") == platform.state.access_token
    assert decrypt(RING, refresh, account_id=account, column="refresh_token") == platform.state.refresh_token
    assert platform.state.refresh_token != old_refresh and expires_later


def test_rejected_token_mid_sync_is_refreshed_once_and_the_sync_goes_on(
    db_url: str, platform: FakePlatform, env: dict[str, str], tmp_path: Path
) -> None:
    platform.control(item_count=120)
    account = account_for(db_url, platform)
    platform.control(access_token="rotated-by-the-platform")  # our stored token no longer works
    log_id = enqueue(db_url, account)
    with running_worker(env, tmp_path / "worker.log"):
        assert wait_for_log(db_url, log_id) == "success"
    assert platform.state.refresh_calls == 1
    assert scalar(db_url, "select count(*) from public.posts") == 120


def test_refused_refresh_disconnects_and_notifies(
    db_url: str, platform: FakePlatform, env: dict[str, str], tmp_path: Path
) -> None:
    account = account_for(db_url, platform, expires_in="1 minute")
    platform.control(refresh_token="revoked-elsewhere")
    log_id = enqueue(db_url, account)
    with running_worker(env, tmp_path / "worker.log"):
        assert wait_for_log(db_url, log_id) == "failed"
    status, message = query(
        db_url, "select status::text, error_message from public.connected_accounts where id = %s", (account,)
    )[0]
    assert (status, message) == ("disconnected", "Token refresh failed. Reauthorization required.")
    assert scalar(db_url, "select kind from public.notifications") == "reauthorization_required"


@pytest.mark.parametrize(
    ("status", "account_status", "log_kind"),
    [(500, "active", "transient"), (404, "disconnected", "not_found"), (429, "active", "rate_limit")],
)
def test_platform_errors_follow_seed_8_1(
    db_url: str,
    platform: FakePlatform,
    env: dict[str, str],
    tmp_path: Path,
    status: int,
    account_status: str,
    log_kind: str,
) -> None:
    platform.control(item_count=10, fail_next=[status])
    account = account_for(db_url, platform)
    log_id = enqueue(db_url, account)
    with running_worker(env, tmp_path / "worker.log"):
        assert wait_for_log(db_url, log_id) == "failed"
    row = query(
        db_url,
        "select status::text, error_count, round(extract(epoch from next_sync_at - now()) / 60)"
        " from public.connected_accounts where id = %s",
        (account,),
    )[0]
    assert row[0] == account_status and row[1] == 1
    if log_kind == "transient":
        assert row[2] == 2  # 2^1 minutes
    if log_kind == "rate_limit":
        assert 14 <= row[2] <= 15  # the reset the platform announced
    assert scalar(db_url, "select error_details ->> 'kind' from public.sync_logs where id = %s", (log_id,)) == log_kind


def test_a_failed_backfill_resumes_from_its_cursor_without_duplicates(
    db_url: str, platform: FakePlatform, env: dict[str, str], tmp_path: Path
) -> None:
    platform.control(item_count=200, fail_on={"3": 503})  # pages 1 and 2 arrive, page 3 fails
    account = account_for(db_url, platform)
    first = enqueue(db_url, account, "backfill")
    with running_worker(env, tmp_path / "worker.log"):
        assert wait_for_log(db_url, first) == "failed"
        assert scalar(db_url, "select count(*) from public.posts") == 100  # committed page by page
        state = scalar(db_url, "select sync_state from public.connected_accounts where id = %s", (account,))
        assert state["backfill_cursor"] == {"before": 101} and not state.get("backfill_done")
        assert scalar(db_url, "select metadata ->> 'page_count' from public.sync_logs where id = %s", (first,)) == "2"
        second = enqueue(db_url, account, "manual")  # any sync continues an unfinished backfill
        assert wait_for_log(db_url, second) == "success"
    assert scalar(db_url, "select count(*) from public.posts") == 200
    assert scalar(db_url, "select count(distinct platform_post_id) from public.posts") == 200
    assert scalar(db_url, "select count(*) from public.ingested_items where event_type = 'items'") == 4
    assert scalar(db_url, "select posts_created from public.sync_logs where id = %s", (second,)) == 100
