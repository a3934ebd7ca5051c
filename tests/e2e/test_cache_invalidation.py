"""A post that turns private leaves the cached public page at once (issue 10, item 3), whichever path brings the
change: a poll, a webhook, a backfill or a reprocess. Each test warms the public page (a hit, and a 304 for its
ETag), makes an activity private on the Strava simulator with its title unchanged (or changes what a reader
sees through a new normalizer, for a reprocess), runs the real path through a real worker process, and then
asserts that the owner's archive version went up, that the old ETag gets a full 200 and that the public page
no longer shows the activity."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.strava_harness import CLIENT_ID, CLIENT_SECRET, connect_strava, strava_env, strava_simulator
from tests.worker_harness import (
    RING,
    TEST_KEY,
    enqueue,
    query,
    running_worker,
    scalar,
    until_fresh,
    wait_for,
    wait_for_log,
)

from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.http.auth import issue_local_token
from trove.platforms.base import NormalizedPost
from trove.platforms.strava.sync import StravaConnector
from trove.simulators.serve import BackgroundServer
from trove.simulators.strava import Activity, Athlete, StravaSimulator

PRIVATE = {"private": True, "visibility": "only_me"}
HERE = "tests.e2e.test_cache_invalidation"  # how the worker process imports the connectors below


class WithoutMediaConnector(StravaConnector):
    """An older normalizer (for the reprocess test): it did not list an activity's photos as media."""

    def normalize(self, post_data: dict[str, Any]) -> NormalizedPost:
        return dataclasses.replace(super().normalize(post_data), media=())


class CommutesUnpublishedConnector(StravaConnector):
    """A newer normalizer (for the reprocess test): photos as media, and commutes are no longer published."""

    def normalize(self, post_data: dict[str, Any]) -> NormalizedPost:
        post = super().normalize(post_data)
        return dataclasses.replace(post, published=post.published and not post_data.get("commute"))


@pytest.fixture
def world(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The Strava simulator and the HTTP service on real ports, alice connected, and her website's API key."""
    with strava_simulator() as (sim, sim_url):
        port = free_port()
        monkeypatch.setenv("STRAVA_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("STRAVA_CLIENT_SECRET", CLIENT_SECRET)
        monkeypatch.setenv("STRAVA_BASE_URL", sim_url)
        monkeypatch.setenv("TROVE_PUBLIC_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("TROVE_TOKEN_KEYS", f"test:{TEST_KEY}")
        monkeypatch.setenv("TROVE_MEDIA_DIR", str(tmp_path / "media"))
        monkeypatch.setenv("TROVE_MEDIA_SIGNING_KEY", "k")
        monkeypatch.delenv("TROVE_PLATFORMS", raising=False)
        athlete = sim.add_athlete()
        with BackgroundServer(create_app(db_url, RING), port) as service:
            account = connect_strava(db_url, sim_url, athlete.id)
            user_id = str(scalar(db_url, "select tests.id('user', 'alice')"))
            owner = {"Authorization": f"Bearer {issue_local_token(user_id)}"}
            created = httpx.post(f"{service.url}/api/keys", json={"name": "my website"}, headers=owner)
            assert created.status_code == 201, created.text
            yield {
                "sim": sim,
                "sim_url": sim_url,
                "athlete": athlete,
                "url": service.url,
                "db": db_url,
                "account": account,
                "user_id": user_id,
                "key": {"Authorization": f"Bearer {created.json()['key']}"},
                "log": tmp_path / "worker.log",
            }


def activity(world: dict[str, Any], hours_ago: int, *, photos: int = 0, **fields: Any) -> str:
    """A public activity of alice's on the simulator (recent: polls re-read it), with `photos` photos."""
    sim: StravaSimulator = world["sim"]
    athlete: Athlete = world["athlete"]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=hours_ago)
    made: Activity = sim.add_activity(
        athlete, start, **{"visibility": "everyone", "private": False, "commute": False, **fields}
    )
    made.photos = [
        {
            "unique_id": f"{made.data['id']:08X}-0000-4867-9E8D-00000000000{n}",
            "activity_id": made.data["id"],
            "activity_name": made.data["name"],
            "resource_state": 2,
            "caption": "",
            "source": 1,
            "uploaded_at": made.data["start_date"],
            "created_at": made.data["start_date"],
            "location": made.data["start_latlng"],
            "default_photo": n == 0,
        }
        for n in range(photos)
    ]
    made.data["total_photo_count"] = photos
    # No description: the text is the title alone, the same in the list summary and in the detail, so that
    # privacy is all that changes (a webhook otherwise stores the summary for a moment, text without it).
    made.description = ""
    return str(made.data["id"])


def worker_env(world: dict[str, Any], connector: str = "") -> dict[str, str]:
    # No loopback media downloads: a copy landing would bump the version by itself and hide what is tested.
    return {
        **strava_env(world["db"], world["sim_url"]),
        "TROVE_PLATFORMS": connector,
        "TROVE_MEDIA_ALLOW_LOOPBACK": "0",
    }


def sync(world: dict[str, Any], sync_type: str) -> str:
    log_id = enqueue(world["db"], world["account"], sync_type)
    assert wait_for_log(world["db"], log_id, timeout=60) == "success"
    wait_for(
        lambda: not scalar(world["db"], "select count(*) from public.ingested_posts where detail_pending"),
        30,
        "every detail",
    )
    return log_id


def version(world: dict[str, Any]) -> int:
    found = scalar(world["db"], "select version from public.archive_versions where user_id = %s", (world["user_id"],))
    return int(found or 0)


def public_page(world: dict[str, Any], etag: str | None = None) -> httpx.Response:
    headers = {**world["key"], **({"If-None-Match": etag} if etag else {})}
    return httpx.get(f"{world['url']}/api/posts", params={"platforms": "strava", "limit": 100}, headers=headers)


def shown(page: httpx.Response) -> dict[str, dict[str, Any]]:
    return {str(p["data"]["id"]): p for p in page.json()["posts"]}


def warm(world: dict[str, Any], activity_id: str) -> tuple[int, str]:
    """The public page shows the activity, is served from the cache and answers 304 for its ETag."""
    first = public_page(world)
    assert first.status_code == 200 and activity_id in shown(first)
    again = public_page(world)
    assert again.headers["x-cache"] == "hit"
    etag = again.headers["etag"]
    assert public_page(world, etag).status_code == 304
    return version(world), etag


def assert_invalidated(world: dict[str, Any], before: tuple[int, str]) -> httpx.Response:
    old_version, old_etag = before
    assert version(world) > old_version, "the archive version must move"
    fresh = until_fresh(lambda: public_page(world, old_etag), lambda r: r.status_code != 304)
    assert fresh.status_code == 200, "the old ETag must not get 304"
    assert fresh.headers["etag"] != old_etag and fresh.headers["x-cache"] == "miss"
    return fresh


def assert_turned_private(world: dict[str, Any], activity_id: str, before: tuple[int, str], title: str) -> None:
    raw, text = query(
        world["db"],
        "select ip.post_data, p.text_content from public.ingested_posts as ip join public.posts as p"
        " using (platform, platform_post_id) where ip.platform_post_id = %s",
        (activity_id,),
    )[0]
    assert raw["private"] is True and raw["visibility"] == "only_me"  # the change did arrive...
    assert text == title  # ...with the title (the text) unchanged
    fresh = assert_invalidated(world, before)
    assert activity_id not in shown(fresh)
    with_feed = scalar(
        world["db"],
        "select count(*) from public.posts where platform_post_id = %s and public.post_is_public(posts)",
        (activity_id,),
    )
    assert with_feed == 0


def test_a_poll_that_finds_an_activity_made_private_invalidates_the_public_cache(world: dict[str, Any]) -> None:
    target = activity(world, 5)
    activity(world, 6)
    with running_worker(worker_env(world), world["log"]):
        sync(world, "backfill")
        before = warm(world, target)
        title = world["sim"].athletes[world["athlete"].id].activities[int(target)].data["name"]
        world["sim"].athletes[world["athlete"].id].activities[int(target)].data.update(PRIVATE)  # no webhook
        sync(world, "scheduled")
    assert_turned_private(world, target, before, title)


def test_a_webhook_update_that_makes_an_activity_private_invalidates_the_public_cache(world: dict[str, Any]) -> None:
    target = activity(world, 5)
    env = {**strava_env(world["db"], world["sim_url"]), "TROVE_PUBLIC_URL": world["url"]}
    subscribed = subprocess.run(
        [sys.executable, "-m", "trove.cli", "strava", "subscribe"], env=env, capture_output=True, text=True, check=False
    )
    assert subscribed.returncode == 0, subscribed.stderr
    with running_worker(worker_env(world), world["log"]):
        sync(world, "backfill")
        before = warm(world, target)
        title = world["sim"].athletes[world["athlete"].id].activities[int(target)].data["name"]
        changed = httpx.put(
            f"{world['sim_url']}/_sim/activities",
            json={"athlete_id": world["athlete"].id, "activity_id": int(target), "fields": PRIVATE},
            timeout=60,
        )
        assert changed.status_code == 200 and world["sim"].deliveries[-1]["status"] == 200
        wait_for(
            lambda: scalar(
                world["db"],
                "select (post_data ->> 'private')::boolean and not detail_pending from public.ingested_posts"
                " where platform_post_id = %s",
                (target,),
            ),
            60,
            "the webhook's sync to fetch the activity",
        )
    assert scalar(world["db"], "select count(*) from public.sync_logs where sync_type = 'webhook'") >= 1
    assert_turned_private(world, target, before, title)


def test_a_backfill_that_finds_an_activity_made_private_invalidates_the_public_cache(world: dict[str, Any]) -> None:
    target = activity(world, 5)
    with running_worker(worker_env(world), world["log"]):
        sync(world, "backfill")
        before = warm(world, target)
        title = world["sim"].athletes[world["athlete"].id].activities[int(target)].data["name"]
        world["sim"].athletes[world["athlete"].id].activities[int(target)].data.update(PRIVATE)  # no webhook
        # Archive the account again from the start (as a fresh backfill does).
        query(
            world["db"],
            "update public.connected_accounts set sync_state = sync_state - 'backfill_done' - 'backfill_cursor'"
            " where id = %s returning id",
            (world["account"],),
        )
        log_id = sync(world, "backfill")
    assert (
        scalar(world["db"], "select metadata ->> 'mode' from public.sync_logs where id = %s", (log_id,)) == "backfill"
    )
    assert_turned_private(world, target, before, title)


def reprocess(world: dict[str, Any], activity_id: str) -> None:
    """What an operator does after a normalizer change: the raw post goes back to pending."""
    query(
        world["db"],
        "update public.ingested_posts set status = 'pending' where platform_post_id = %s returning id",
        (activity_id,),
    )
    wait_for(
        lambda: (
            scalar(
                world["db"],
                "select status::text from public.ingested_posts where platform_post_id = %s",
                (activity_id,),
            )
            == "completed"
        ),
        30,
        "the reprocess",
    )


def test_a_reprocess_that_changes_what_readers_see_invalidates_the_public_cache(world: dict[str, Any]) -> None:
    with_photo = activity(world, 5, photos=1)
    commute = activity(world, 6, commute=True)
    with running_worker(worker_env(world, f"{HERE}:WithoutMediaConnector"), world["log"]):
        sync(world, "backfill")
    assert scalar(world["db"], "select count(*) from public.media_downloads") == 0
    before = warm(world, with_photo)
    assert shown(public_page(world))[with_photo]["media"] == []
    with running_worker(worker_env(world, f"{HERE}:CommutesUnpublishedConnector"), world["log"]):
        # The raw post is unchanged; the new normalizer lists its photo: a new media file on the post.
        reprocess(world, with_photo)
        fresh = assert_invalidated(world, before)
        assert len(shown(fresh)[with_photo]["media"]) == 1
        assert commute in shown(fresh)
        # Commutes are no longer published: the activity leaves the public page.
        before = warm(world, commute)
        reprocess(world, commute)
        fresh = assert_invalidated(world, before)
        assert commute not in shown(fresh) and with_photo in shown(fresh)
    assert scalar(world["db"], "select published from public.posts where platform_post_id = %s", (commute,)) is False
