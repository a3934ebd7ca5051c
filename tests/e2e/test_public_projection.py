"""Public mode never shows where anyone was (issue 10, item 2). Every Strava payload shape we know (the real
and documented ones in ../shared/fixtures/strava, and what the built-in simulator serves: list, detail, photos
with their GPS) is stored through the real database and read back the way a stranger with the owner's API
key or the public_posts view would: no key at any depth may name a coordinate, polyline, map, location,
address or place, and no coordinate value may come through under another name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb
from tests.strava_harness import connect_strava, strava_env, strava_simulator
from tests.worker_harness import RING, TEST_KEY, enqueue, running_worker, scalar, wait_for, wait_for_log

from trove.config import PROJECT_ROOT
from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.http.auth import issue_local_token
from trove.platforms.strava.normalize import public_projection, visibility
from trove.simulators.serve import BackgroundServer
from trove.simulators.strava import StravaSimulator

STRAVA_FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures" / "strava"
FIXTURE_FILES = sorted(p.name for p in STRAVA_FIXTURES.glob("*.json")) if STRAVA_FIXTURES.is_dir() else []

# A key names a position, a route or a place when one of its words is one of these...
LOCATION_WORDS = {
    "lat",
    "lng",
    "lon",
    "latlng",
    "latitude",
    "longitude",
    "polyline",
    "map",
    "location",
    "address",
    "city",
    "state",
    "country",
}
# ...or when it contains one of these anywhere (start_latlng, summary_polyline, home_address, geolocation).
LOCATION_FRAGMENTS = ("latlng", "latitude", "longitude", "polyline", "location", "address")


def looks_like_location(key: str) -> bool:
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower())
    return any(w in LOCATION_WORDS for w in words) or any(f in key.lower() for f in LOCATION_FRAGMENTS)


def walk(value: Any, path: str = "$") -> Iterator[tuple[str, str, Any]]:
    """Every (path, key, value) of every object at any depth, through lists too."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path, key, item
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from walk(item, f"{path}[{n}]")


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def location_keys(value: Any) -> list[str]:
    return [f"{path}.{key}" for path, key, _ in walk(value) if looks_like_location(key)]


def secret_values(raw: Any) -> set[Any]:
    """What sits under a location key in the raw payload and could not appear by chance elsewhere: coordinates
    (numbers with a fraction) and long strings (polylines, place names)."""
    found: set[Any] = set()
    for _, key, item in walk(raw):
        if looks_like_location(key):
            for leaf in leaves(item):
                if isinstance(leaf, float) and not leaf.is_integer():
                    found.add(leaf)
                elif isinstance(leaf, str) and len(leaf) >= 10:
                    found.add(leaf)
    return found


def assert_no_location(public: Any, raw: Any, where: str) -> None:
    assert location_keys(public) == [], f"{where}: location fields in public mode"
    leaked = secret_values(raw) & {v for v in leaves(public) if isinstance(v, float | str)}
    assert not leaked, f"{where}: location values in public mode under other names: {sorted(map(str, leaked))}"


def test_the_detector_finds_what_public_mode_must_not_show() -> None:
    """The walker itself: it must flag the attack's target before it can vouch for its absence."""
    raw = {"_photos": [{"unique_id": "u", "location": [45.5, -122.6]}], "map": {"summary_polyline": "abc"}}
    assert location_keys(raw) == ["$._photos[0].location", "$.map", "$.map.summary_polyline"]
    assert all(
        looks_like_location(k)
        for k in ("start_latlng", "end_latitude", "start_longitude", "location_city", "homeAddress", "lat", "lon")
    )
    assert not any(
        looks_like_location(k) for k in ("name", "platform", "latest", "total_elevation_gain", "long_name", "timezone")
    )
    assert secret_values(raw) == {45.5, -122.6}


# --- the database, driven directly ---------------------------------------------------------------------------


def as_user(conn: psycopg.Connection[Any], user_id: str) -> None:
    conn.execute("set local role authenticated")
    conn.execute(
        "select set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": user_id, "role": "authenticated"}),)
    )


def store(db_url: str, payloads: list[dict[str, Any]]) -> str:
    """alice with one Strava account and one stored post per payload (made visible to everyone, so that public
    mode shows each one), its visibility and public fields as the Strava normalizer decides them (what the sync
    stores). Returns her user id."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        user_id = str(conn.execute("select tests.create_user('alice')").fetchone()[0])
        account = conn.execute(
            "insert into public.connected_accounts (user_id, platform, platform_user_id, username)"
            " values (%s, 'strava', 'athlete-1', 'alice') returning id",
            (user_id,),
        ).fetchone()[0]
        for n, payload in enumerate(payloads):
            visible = {**payload, "visibility": "everyone", "private": False}
            conn.execute(
                "insert into public.ingested_posts (platform, account_id, platform_post_id, post_data)"
                " values ('strava', %s, %s, %s)",
                (account, f"shape-{n}", Jsonb(visible)),
            )
            conn.execute(
                "insert into public.posts (account_id, platform, platform_post_id, content_type, text_content,"
                " created_at_platform, visibility, public_data)"
                " values (%s, 'strava', %s, 'activity', %s, now() - %s * interval '1 minute', %s, %s)",
                (account, f"shape-{n}", f"shape {n}", n, visibility(visible), Jsonb(public_projection(visible))),
            )
    return user_id


def public_payloads(db_url: str, user_id: str, raws: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The three public readings of the stored posts: the Strava normalizer's projection itself, the feed's
    public mode and the public_posts view."""
    direct = [public_projection(raw) for raw in raws]
    with psycopg.connect(db_url, autocommit=True) as conn:
        with conn.transaction():
            as_user(conn, user_id)
            owner = [r[0] for r in conn.execute("select post_data from public.feed(p_limit => 100)").fetchall()]
            feed = [
                r[0]
                for r in conn.execute(
                    "select post_data from public.feed(p_limit => 100, p_public_only => true)"
                ).fetchall()
            ]
        conn.execute("select trove_private.refresh_public_posts()")
        view = [
            r[0]
            for r in conn.execute("select post_data from public.public_posts where user_id = %s", (user_id,)).fetchall()
        ]
    return {"owner": owner, "projection": direct, "feed": feed, "public_posts": view}


def simulator_shapes() -> list[dict[str, Any]]:
    """What the simulator serves for an activity with photos, as the worker stores it: the list summary, the
    detail, and the detail with its photo list (`_photos`, each photo with its GPS)."""
    sim = StravaSimulator()
    activity = next(iter(sim.add_athlete(activities=1).activities.values()))
    activity.data["total_photo_count"] = 1
    activity.photos = [photo_at(activity.data, "0A1B2C3D-0000-4867-9E8D-000000000001", "at the top")]
    detail = sim._detail(activity)
    photos = [
        {**photo, "urls": sim._photo_urls(photo["unique_id"], [2048]), "sizes": {"2048": [2048, 1536]}}
        for photo in activity.photos
    ]
    return [dict(activity.data), detail, {**detail, "_photos": photos}]


def photo_at(activity: dict[str, Any], unique_id: str, caption: str) -> dict[str, Any]:
    """A photo as the simulator (and Strava) describes it: taken where the activity started."""
    return {
        "unique_id": unique_id,
        "activity_id": activity["id"],
        "activity_name": activity["name"],
        "resource_state": 2,
        "caption": caption,
        "source": 1,
        "uploaded_at": activity["start_date"],
        "created_at": activity["start_date"],
        "location": activity["start_latlng"],
        "default_photo": True,
    }


def fixture_shapes(name: str) -> list[dict[str, Any]]:
    body = json.loads((STRAVA_FIXTURES / name).read_text())
    return [item for item in (body if isinstance(body, list) else [body]) if isinstance(item, dict)]


@pytest.mark.parametrize("name", FIXTURE_FILES or [None])
def test_fixture_shapes_show_no_location_in_public_mode(db_url: str, name: str | None) -> None:
    if name is None:
        pytest.skip(f"no Strava fixtures at {STRAVA_FIXTURES} (../shared/fixtures is absent)")
    raws = fixture_shapes(name)
    assert raws, f"{name} holds no payload"
    user_id = store(db_url, raws)
    readings = public_payloads(db_url, user_id, raws)
    for what in ("feed", "public_posts"):
        assert len(readings[what]) == len(raws), f"{what} must show every stored (public) post of {name}"
    for what, payloads in readings.items():
        if what == "owner":
            continue
        for n, public in enumerate(payloads):
            assert_no_location(public, raws, f"{name} {what} #{n}")
    # Not vacuous: public mode still shows the activity itself.
    named = [r for r in raws if r.get("name")]
    assert all(any(p.get("name") == r["name"] for p in readings["feed"]) for r in named)


def test_simulator_shapes_show_no_location_in_public_mode(db_url: str) -> None:
    raws = simulator_shapes()
    user_id = store(db_url, raws)
    readings = public_payloads(db_url, user_id, raws)
    # The attack's target is there for the owner: the photo's GPS, the route, the coordinates.
    assert any(location_keys(o) for o in readings["owner"])
    assert any("location" in photo for o in readings["owner"] for photo in o.get("_photos", []))
    for what, payloads in readings.items():
        if what == "owner":
            continue
        assert len(payloads) == len(raws)
        for n, public in enumerate(payloads):
            assert_no_location(public, raws, f"simulator {what} #{n}")
    photos = [p["_photos"] for p in readings["feed"] if "_photos" in p]
    kept = {"unique_id": "0A1B2C3D-0000-4867-9E8D-000000000001", "caption": "at the top", "default_photo": True}
    assert photos == [[kept]]  # the photo is still listed, without its GPS


# --- end to end: the worker archives from the simulator, a stranger reads with the owner's API key ------------


@pytest.fixture
def service(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    monkeypatch.setenv("TROVE_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("TROVE_PUBLIC_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TROVE_MEDIA_SIGNING_KEY", "k")
    monkeypatch.setenv("TROVE_TOKEN_KEYS", f"test:{TEST_KEY}")
    with BackgroundServer(create_app(db_url, RING), port) as server:
        yield server.url


def test_archived_activities_with_photo_gps_show_none_through_the_api_key(
    db_url: str, service: str, tmp_path: Path
) -> None:
    with strava_simulator() as (sim, sim_url):
        athlete = sim.add_athlete(activities=3)
        for n, activity in enumerate(athlete.activities.values()):
            activity.data.update({"visibility": "everyone", "private": False, "total_photo_count": 1})
            activity.photos = [photo_at(activity.data, f"0A1B2C3D-0000-4867-9E8D-00000000000{n}", "")]
        account = connect_strava(db_url, sim_url, athlete.id)
        log_id = enqueue(db_url, account, "backfill")
        with running_worker(strava_env(db_url, sim_url), tmp_path / "worker.log"):
            assert wait_for_log(db_url, log_id, timeout=60) == "success"
            wait_for(
                lambda: scalar(db_url, "select count(*) from public.ingested_posts where not detail_pending") == 3,
                30,
                "the details and photo lists",
            )
    user_id = str(scalar(db_url, "select tests.id('user', 'alice')"))
    owner = {"Authorization": f"Bearer {issue_local_token(user_id)}"}
    mine = httpx.get(f"{service}/api/posts", params={"limit": 100}, headers=owner).json()["posts"]
    assert len(mine) == 3 and all(p["data"]["_photos"][0]["location"] for p in mine)  # the owner sees the GPS
    key = httpx.post(f"{service}/api/keys", json={"name": "my website"}, headers=owner).json()["key"]
    public = httpx.get(f"{service}/api/posts", params={"limit": 100}, headers={"Authorization": f"Bearer {key}"})
    assert public.status_code == 200 and public.json()["public"] is True
    posts = public.json()["posts"]
    assert len(posts) == 3
    raws = [p["data"] for p in mine]
    assert_no_location(public.json(), raws, "GET /api/posts with an API key")
    for post in posts:
        (photo,) = post["data"]["_photos"]
        assert photo == {"unique_id": photo["unique_id"], "caption": "", "default_photo": True}
    # Every raw payload archived on the way (list pages, details, photo lists), read through the projection.
    with psycopg.connect(db_url, autocommit=True) as conn:
        items = [r[0] for r in conn.execute("select payload from public.ingested_items").fetchall()]
        shapes = [s for item in items for s in (item if isinstance(item, list) else [item]) if isinstance(s, dict)]
        photo_lists = [item for item in items if isinstance(item, list) and item and "unique_id" in item[0]]
        shapes += [{"_photos": photo_list} for photo_list in photo_lists]
        assert len(shapes) >= 3 + 3 + 3
        for shape in shapes:
            projected = public_projection(shape)
            assert_no_location(projected, shape, f"archived payload {sorted(shape)[:5]}")
        conn.execute("select trove_private.refresh_public_posts()")
        view = [r[0] for r in conn.execute("select post_data from public.public_posts").fetchall()]
    assert len(view) == 3
    assert_no_location(view, raws, "public_posts")
