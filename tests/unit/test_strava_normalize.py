"""Strava's normalizer alone (no database, no processes): posts from the recorded payloads in
../shared/fixtures/strava, and Strava's rules for readers (visibility, the public allow-list, keywords)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trove.config import PROJECT_ROOT
from trove.platforms.strava.normalize import normalize, public_projection, visibility

FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures" / "strava"
ACTIVITY_FILES = ["activity_detail_real_stravalib.json", "activity_detail_swagger_example.json"]
LIST_FILES = ["athlete_activities_list_private_strava_offline.json", "athlete_activities_list_swagger_example.json"]

DETAILED: dict[str, Any] = {
    "id": 101, "resource_state": 3, "name": "alice morning run", "description": "hills", "type": "Run",
    "sport_type": "TrailRun", "start_date": "2026-11-01T07:00:00Z", "start_date_local": "2026-11-01T08:00:00Z",
    "timezone": "(GMT+01:00) Europe/Berlin", "utc_offset": 3600, "distance": 10123.4, "moving_time": 3600,
    "elapsed_time": 3700, "total_elevation_gain": 120.5, "average_speed": 2.8, "max_speed": 4.1,
    "kudos_count": 3, "comment_count": 1, "achievement_count": 2, "photo_count": 0, "total_photo_count": 1,
    "visibility": "everyone", "private": False, "athlete": {"id": 7, "resource_state": 1},
    "start_latlng": [52.52, 13.405], "end_latlng": [52.53, 13.41], "start_latitude": 52.52,
    "start_longitude": 13.405, "location_city": "Berlin", "location_state": "Berlin", "location_country": "Germany",
    "map": {"id": "a101", "polyline": "ki{eFvqfiV", "summary_polyline": "ki{eFvqfiV"},
    "segment_efforts": [{"segment": {"city": "Berlin", "start_latlng": [52.52, 13.405]}}],
    "splits_metric": [{"split": 1}], "laps": [{"lap_index": 1}], "best_efforts": [{"name": "1k"}],
    "embed_token": "secret-embed", "gear": {"id": "b1", "name": "shoes"}, "average_heartrate": 150.1,
    "highlighted_kudosers": [{"display_name": "bob", "avatar_url": "https://example.test/bob.jpg"}],
    "photos": {"count": 1, "use_primary_photo": True, "primary": {"unique_id": "U-1", "urls": {"600": "https://x/1"}}},
    "_photos": [{"unique_id": "U-1", "caption": "summit", "default_photo": True, "location": [52.52, 13.405],
                 "urls": {"2048": "https://cdn.test/1-2048.jpg"}, "sizes": {"2048": [2048, 1536]},
                 "uploaded_at": "2026-11-01T09:00:00Z"}],
    "brand_new_field": {"home_address": "Hauptstr. 1"},
}  # fmt: skip


def fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"{path} is not here (../shared/fixtures is absent)")
    return json.loads(path.read_text())


def test_a_detailed_activity_shows_exactly_its_allow_listed_fields() -> None:
    assert public_projection(DETAILED) == {
        "id": 101, "name": "alice morning run", "description": "hills", "type": "Run", "sport_type": "TrailRun",
        "start_date": "2026-11-01T07:00:00Z", "start_date_local": "2026-11-01T08:00:00Z",
        "timezone": "(GMT+01:00) Europe/Berlin", "utc_offset": 3600, "distance": 10123.4, "moving_time": 3600,
        "elapsed_time": 3700, "total_elevation_gain": 120.5, "average_speed": 2.8, "max_speed": 4.1,
        "kudos_count": 3, "comment_count": 1, "achievement_count": 2, "photo_count": 0, "total_photo_count": 1,
        "photos": {"count": 1, "use_primary_photo": True},
        "_photos": [{"unique_id": "U-1", "caption": "summit", "default_photo": True}],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "public"),
    [
        ({"name": {"lat": 1, "lng": 2}, "distance": [52.5, 13.4], "id": 5}, {"id": 5}),
        ({"_photos": [{"location": [1, 2]}, "x", {"caption": {"location": [1, 2]}}]}, {"_photos": [{}, {}]}),
        ({"brand_new_field": 1, "start_latlng": [1, 2]}, {}),
        ({"photos": {"count": 2, "primary": {"urls": {}}}}, {"photos": {"count": 2}}),
        ([1, 2], {}),
    ],
    ids=["allowed-name-holding-an-object", "photo-entries", "unnamed-fields", "photo-summary", "not-an-object"],
)
def test_the_allow_list_leaves_out_anything_not_named_or_not_plain(raw: Any, public: dict[str, Any]) -> None:
    assert public_projection(raw) == public


@pytest.mark.parametrize(
    ("raw", "seen_by"),
    [
        ({"visibility": "everyone"}, "public"),
        ({}, "public"),
        ({"visibility": "followers_only"}, "followers"),
        ({"visibility": "only_me"}, "private"),
        ({"visibility": "everyone", "private": True}, "private"),
        ({"visibility": "a-new-setting"}, "private"),
    ],
)
def test_visibility_follows_strava_and_is_private_when_unknown(raw: dict[str, Any], seen_by: str) -> None:
    assert visibility(raw) == seen_by


@pytest.mark.parametrize("name", ACTIVITY_FILES + LIST_FILES)
def test_recorded_payloads_normalize_with_their_rules(name: str) -> None:
    data = fixture(name)
    for activity in data if isinstance(data, list) else [data]:
        post = normalize(activity)
        assert post.platform_post_id == str(activity["id"]) and post.content_type == "activity"
        assert post.text and activity["name"] in post.text
        assert post.complete == (activity.get("resource_state") == 3)
        assert post.visibility == visibility(activity)
        assert post.search_keywords == (activity.get("sport_type") or activity.get("type"))
        assert set(post.public_data) <= set(activity)
        forbidden = {"start_latlng", "end_latlng", "map", "location_city", "location_state", "location_country"}
        assert not forbidden & set(post.public_data)


def test_a_private_recorded_activity_stays_out_of_public_mode() -> None:
    listed = fixture("athlete_activities_list_private_strava_offline.json")
    private = [a for a in listed if a.get("private") or a.get("visibility") in ("only_me", "followers_only")]
    if not private:
        pytest.skip("the recorded list has no private activity")
    assert {normalize(a).visibility for a in private} <= {"private", "followers"}
