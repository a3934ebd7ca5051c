"""The Strava simulator against Strava's own description of its API, so that normalizers meet the real shapes.

Schemas: the models of Strava's API v3 swagger (DetailedActivity, SummaryActivity, SummaryGear, Split, Lap,
DetailedSegmentEffort, SummaryAthlete, DetailedAthlete, ...; the swagger's paths point at them, and stravalib
generates its models from the same definitions), transcribed below as the JSON Schema (draft 4) that swagger 2.0
definitions are. Two liberties, both Strava's practice: any property may be null, and a payload may carry
properties the swagger does not list (visibility, suffer_score, ...). The transcription is itself checked
against the recorded payloads in ../shared/fixtures/strava, whose key sets the simulator is compared with too.

Also Strava's rate-limit rules: a refused (429) request still counts toward the windows, and every API answer
carries the X-RateLimit-* and X-ReadRateLimit-* headers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator

from trove.config import PROJECT_ROOT
from trove.db.cluster import free_port
from trove.platforms.strava.normalize import normalize, public_projection
from trove.simulators.serve import BackgroundServer
from trove.simulators.strava import Activity, StravaSimulator

FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures" / "strava"
# Keys in the 2013 recorded payload that today's API no longer sends (not in the swagger's models either).
LEGACY_KEYS = {"guid", "start_latitude", "start_longitude"}

# --- Strava's swagger models, as JSON Schema ---------------------------------------------------------------------
INT, NUM, STR, BOOL = "integer", "number", "string", "boolean"
DATE = {"type": STR, "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"}  # Strava writes UTC seconds with a Z
ACTIVITY_TYPES = [
    "AlpineSki", "BackcountrySki", "Canoeing", "Crossfit", "EBikeRide", "Elliptical", "Golf", "Handcycle", "Hike",
    "IceSkate", "InlineSkate", "Kayaking", "Kitesurf", "NordicSki", "Ride", "RockClimbing", "RollerSki", "Rowing",
    "Run", "Sail", "Skateboard", "Snowboard", "Snowshoe", "Soccer", "StairStepper", "StandUpPaddling", "Surfing",
    "Swim", "Velomobile", "VirtualRide", "VirtualRun", "Walk", "WeightTraining", "Wheelchair", "Windsurf",
    "Workout", "Yoga",
]  # fmt: skip
SPORT_TYPES = [
    *ACTIVITY_TYPES, "Badminton", "Basketball", "Cricket", "Dance", "EMountainBikeRide", "GravelRide",
    "HighIntensityIntervalTraining", "MountainBikeRide", "Padel", "PhysicalTherapy", "Pickleball", "Pilates",
    "Racquetball", "Squash", "TableTennis", "Tennis", "TrailRun", "VirtualRow", "Volleyball",
]  # fmt: skip


def nullable(schema: Any) -> dict[str, Any]:
    if isinstance(schema, str):
        return {"type": [schema, "null"]}
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kind = schema["type"]
    return {**schema, "type": [*(kind if isinstance(kind, list) else [kind]), "null"]}


def model(properties: dict[str, Any], *parents: str) -> dict[str, Any]:
    own = {"type": "object", "properties": {name: nullable(value) for name, value in properties.items()}}
    return {"allOf": [*({"$ref": f"#/definitions/{parent}"} for parent in parents), own]} if parents else own


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/definitions/{name}"}


def array(items: Any) -> dict[str, Any]:
    return {"type": "array", "items": items if isinstance(items, dict) else {"type": items}}


DEFINITIONS: dict[str, Any] = {
    "LatLng": {"type": "array", "items": {"type": NUM}, "maxItems": 2},
    "MetaAthlete": model({"id": INT}),
    "MetaActivity": model({"id": INT}),
    "PolylineMap": model({"id": STR, "polyline": STR, "summary_polyline": STR}),
    "PhotosSummary": model(
        {
            "count": INT,
            "primary": model(
                {
                    "id": INT,
                    "source": INT,
                    "unique_id": STR,
                    "urls": {"type": "object", "additionalProperties": {"type": STR}},
                }
            ),
        }
    ),
    "SummaryGear": model({"id": STR, "resource_state": INT, "primary": BOOL, "name": STR, "distance": NUM}),
    "Split": model(
        {
            "average_speed": NUM,
            "distance": NUM,
            "elapsed_time": INT,
            "elevation_difference": NUM,
            "pace_zone": INT,
            "moving_time": INT,
            "split": INT,
        }
    ),
    "Lap": model(
        {
            "id": INT,
            "activity": ref("MetaActivity"),
            "athlete": ref("MetaAthlete"),
            "average_cadence": NUM,
            "average_speed": NUM,
            "distance": NUM,
            "elapsed_time": INT,
            "start_index": INT,
            "end_index": INT,
            "lap_index": INT,
            "max_speed": NUM,
            "moving_time": INT,
            "name": STR,
            "pace_zone": INT,
            "split": INT,
            "start_date": DATE,
            "start_date_local": DATE,
            "total_elevation_gain": NUM,
        }
    ),
    "SummarySegment": model(
        {
            "id": INT,
            "name": STR,
            "activity_type": {"type": STR, "enum": ["Ride", "Run"]},
            "distance": NUM,
            "average_grade": NUM,
            "maximum_grade": NUM,
            "elevation_high": NUM,
            "elevation_low": NUM,
            "start_latlng": ref("LatLng"),
            "end_latlng": ref("LatLng"),
            "climb_category": INT,
            "city": STR,
            "state": STR,
            "country": STR,
            "private": BOOL,
        }
    ),
    "SummarySegmentEffort": model(
        {
            "id": INT,
            "activity_id": INT,
            "elapsed_time": INT,
            "start_date": DATE,
            "start_date_local": DATE,
            "distance": NUM,
            "is_kom": BOOL,
        }
    ),
    "DetailedSegmentEffort": model(
        {
            "name": STR,
            "activity": ref("MetaActivity"),
            "athlete": ref("MetaAthlete"),
            "moving_time": INT,
            "start_index": INT,
            "end_index": INT,
            "average_cadence": NUM,
            "average_watts": NUM,
            "device_watts": BOOL,
            "average_heartrate": NUM,
            "max_heartrate": NUM,
            "segment": ref("SummarySegment"),
            "kom_rank": INT,
            "pr_rank": INT,
            "hidden": BOOL,
        },
        "SummarySegmentEffort",
    ),
    "SummaryActivity": model(
        {
            "id": INT,
            "external_id": STR,
            "upload_id": INT,
            "upload_id_str": STR,
            "athlete": ref("MetaAthlete"),
            "name": STR,
            "distance": NUM,
            "moving_time": INT,
            "elapsed_time": INT,
            "total_elevation_gain": NUM,
            "elev_high": NUM,
            "elev_low": NUM,
            "type": {"type": STR, "enum": ACTIVITY_TYPES},
            "sport_type": {"type": STR, "enum": SPORT_TYPES},
            "start_date": DATE,
            "start_date_local": DATE,
            "timezone": STR,
            "start_latlng": ref("LatLng"),
            "end_latlng": ref("LatLng"),
            "achievement_count": INT,
            "kudos_count": INT,
            "comment_count": INT,
            "athlete_count": INT,
            "photo_count": INT,
            "total_photo_count": INT,
            "map": ref("PolylineMap"),
            "device_name": STR,
            "trainer": BOOL,
            "commute": BOOL,
            "manual": BOOL,
            "private": BOOL,
            "flagged": BOOL,
            "workout_type": INT,
            "average_speed": NUM,
            "max_speed": NUM,
            "has_kudoed": BOOL,
            "hide_from_home": BOOL,
            "gear_id": STR,
            "kilojoules": NUM,
            "average_watts": NUM,
            "device_watts": BOOL,
            "max_watts": INT,
            "weighted_average_watts": INT,
        }
    ),
    "DetailedActivity": model(
        {
            "description": STR,
            "photos": ref("PhotosSummary"),
            "gear": ref("SummaryGear"),
            "calories": NUM,
            "segment_efforts": array(ref("DetailedSegmentEffort")),
            "device_name": STR,
            "embed_token": STR,
            "splits_metric": array(ref("Split")),
            "splits_standard": array(ref("Split")),
            "laps": array(ref("Lap")),
            "best_efforts": array(ref("DetailedSegmentEffort")),
        },
        "SummaryActivity",
    ),
    "SummaryClub": model({"id": INT, "resource_state": INT, "name": STR}),
    "SummaryAthlete": model(
        {
            "id": INT,
            "resource_state": INT,
            "firstname": STR,
            "lastname": STR,
            "profile_medium": STR,
            "profile": STR,
            "city": STR,
            "state": STR,
            "country": STR,
            "sex": {"type": STR, "enum": ["M", "F"]},
            "premium": BOOL,
            "summit": BOOL,
            "created_at": DATE,
            "updated_at": DATE,
        }
    ),
    "DetailedAthlete": model(
        {
            "follower_count": INT,
            "friend_count": INT,
            "measurement_preference": {"type": STR, "enum": ["feet", "meters"]},
            "ftp": INT,
            "weight": NUM,
            "clubs": array(ref("SummaryClub")),
            "bikes": array(ref("SummaryGear")),
            "shoes": array(ref("SummaryGear")),
        },
        "SummaryAthlete",
    ),
}


def problems(payload: Any, name: str) -> list[str]:
    """Where `payload` breaks the swagger model `name` (empty when it fits)."""
    validator = Draft4Validator({"definitions": DEFINITIONS, "$ref": f"#/definitions/{name}"})
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(payload)]


def fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"{path} is not here (../shared/fixtures is absent)")
    return json.loads(path.read_text())


# --- the simulator's payloads ------------------------------------------------------------------------------------
def activities_of(kind: str, sport: str | None = None, count: int = 24) -> tuple[StravaSimulator, list[Activity]]:
    sim = StravaSimulator(seed=7)
    athlete = sim.add_athlete()
    first = datetime(2026, 10, 1, 7, 0, tzinfo=UTC)
    made = [
        sim.add_activity(athlete, first + timedelta(hours=n), type=kind, sport_type=sport or kind) for n in range(count)
    ]
    return sim, made


def ride(power_meter: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ride's list summary and detail, with or without a power meter (the simulator fits most rides with one)."""
    sim, rides = activities_of("Ride")
    chosen = next(ride for ride in rides if ride.data["device_watts"] is power_meter)
    return dict(chosen.data), sim._detail(chosen)


def detail_of(kind: str, sport: str | None = None) -> dict[str, Any]:
    sim, made = activities_of(kind, sport, count=1)
    return sim._detail(made[0])


# --- the transcription is faithful: Strava's recorded payloads fit it ---------------------------------------------
@pytest.mark.parametrize(
    ("name", "model_name"),
    [
        ("activity_detail_swagger_example.json", "DetailedActivity"),
        ("activity_detail_real_stravalib.json", "DetailedActivity"),
        ("athlete_activities_list_swagger_example.json", "SummaryActivity"),
        ("athlete_activities_list_private_strava_offline.json", "SummaryActivity"),
    ],
)
def test_strava_recorded_payloads_fit_the_transcribed_models(name: str, model_name: str) -> None:
    body = fixture(name)
    for item in body if isinstance(body, list) else [body]:
        assert problems(item, model_name) == []


def test_the_transcribed_models_do_catch_a_wrong_shape() -> None:
    assert problems({"gear": {"id": 5}}, "DetailedActivity"), "a gear id is a string"
    assert problems({"splits_standard": [{"split": "1"}]}, "DetailedActivity")
    assert problems({"start_date": "2026-11-01 07:00"}, "SummaryActivity")
    assert problems({"measurement_preference": "miles"}, "DetailedAthlete")
    assert problems({"type": "Jogging"}, "SummaryActivity")


# --- the simulator's payloads fit Strava's models -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "sport"),
    [("Run", "Run"), ("Run", "TrailRun"), ("Ride", "Ride"), ("Ride", "MountainBikeRide"), ("Swim", "Swim"),
     ("Hike", "Hike"), ("Walk", "Walk")],
)  # fmt: skip
def test_every_sport_fits_summary_and_detailed_activity(kind: str, sport: str) -> None:
    sim, made = activities_of(kind, sport, count=3)
    for activity in made:
        assert problems(activity.data, "SummaryActivity") == []
        detail = sim._detail(activity)
        assert problems(detail, "DetailedActivity") == []
        assert detail["resource_state"] == 3 and detail["device_name"]
        assert detail["splits_metric"] and detail["splits_standard"] and detail["laps"]
        assert abs(sum(split["distance"] for split in detail["splits_standard"]) - detail["distance"]) < 1
        assert len(detail["splits_standard"]) < len(detail["splits_metric"]), "a mile is longer than a kilometre"
        assert ("best_efforts" in detail) is (kind == "Run"), "best efforts are a run's"
        if kind == "Swim":
            assert detail["gear_id"] is None and "gear" not in detail
        else:
            assert detail["gear"]["id"] == detail["gear_id"]
            assert detail["gear_id"][0] == ("b" if kind == "Ride" else "g"), "bikes on rides, shoes on foot"


def test_a_run_has_best_efforts_as_strava_names_them() -> None:
    detail = detail_of("Run")
    efforts = detail["best_efforts"]
    assert [effort["name"] for effort in efforts[:3]] == ["400m", "1/2 mile", "1K"]
    assert all(effort["distance"] <= detail["distance"] for effort in efforts)
    assert all(effort["activity"]["id"] == detail["id"] for effort in efforts)
    assert all(effort["start_index"] < effort["end_index"] for effort in efforts)


def test_rides_carry_power_measured_or_estimated() -> None:
    summary, detail = ride(power_meter=True)
    for payload in (summary, detail):
        assert payload["device_watts"] is True
        assert {"average_watts", "weighted_average_watts", "max_watts", "kilojoules"} <= payload.keys()
        assert isinstance(payload["max_watts"], int) and isinstance(payload["weighted_average_watts"], int)
    assert detail["laps"][0]["device_watts"] is True and "average_watts" in detail["laps"][0]
    summary, detail = ride(power_meter=False)
    assert detail["device_watts"] is False and {"average_watts", "kilojoules"} <= detail.keys()
    assert "weighted_average_watts" not in detail and "max_watts" not in detail, "Strava estimates the average only"


def test_the_detail_is_the_same_on_every_request() -> None:
    sim, made = activities_of("Run", count=1)
    first, again = sim._detail(made[0]), sim._detail(made[0])
    first.pop("embed_token"), again.pop("embed_token")
    assert first == again


# --- the same keys as Strava's recorded payloads ------------------------------------------------------------------
def test_a_ride_with_a_power_meter_has_every_key_of_strava_s_detail_example() -> None:
    example = fixture("activity_detail_swagger_example.json")
    _, detail = ride(power_meter=True)
    assert set(example) - set(detail) == set()
    assert set(detail["gear"]) == set(example["gear"])
    assert set(example["laps"][0]) - set(detail["laps"][0]) == set()
    assert set(example["splits_metric"][0]) - set(detail["splits_metric"][0]) == set()
    assert set(example["photos"]) - set(detail["photos"]) == set()
    assert set(example["highlighted_kudosers"][0]) - set(detail["highlighted_kudosers"][0]) == set()


def test_a_run_has_every_key_of_strava_s_recorded_run() -> None:
    recorded = fixture("activity_detail_real_stravalib.json")
    detail = detail_of("Run")
    assert set(recorded) - LEGACY_KEYS - set(detail) == set()
    assert set(recorded["best_efforts"][0]) - set(detail["best_efforts"][0]) == set()
    assert set(recorded["splits_standard"][0]) - set(detail["splits_standard"][0]) == set()
    assert set(recorded["splits_metric"][0]) - set(detail["splits_metric"][0]) == set()


def test_list_summaries_have_every_key_of_strava_s_lists() -> None:
    with_meter, _ = ride(power_meter=True)
    without_meter, _ = ride(power_meter=False)
    for name, summary in (
        ("athlete_activities_list_swagger_example.json", with_meter),
        ("athlete_activities_list_private_strava_offline.json", without_meter),
    ):
        for item in fixture(name):
            assert set(item) - LEGACY_KEYS - set(summary) == set(), name
            assert set(item["athlete"]) <= set(summary["athlete"])


def test_the_normalizer_takes_the_richer_shapes_and_shows_readers_none_of_them() -> None:
    _, ride_detail = ride(power_meter=True)
    for detail in (detail_of("Run"), ride_detail, detail_of("Swim")):
        post = normalize(detail)
        assert post.complete and post.platform_post_id == str(detail["id"])
        public = public_projection(detail)
        hidden = {"gear", "gear_id", "best_efforts", "splits_metric", "splits_standard", "laps", "device_name"}
        assert hidden.isdisjoint(public), "gear, device, splits and efforts stay private"
        assert "highlighted_kudosers" not in public


# --- over HTTP: /athlete, rate limits and headers -----------------------------------------------------------------
@pytest.fixture
def served() -> Iterator[tuple[StravaSimulator, str, dict[str, str], int]]:
    sim = StravaSimulator(seed=3)
    athlete = sim.add_athlete(activities=4)
    token = sim.issue_tokens(athlete.id, "read,activity:read_all").access_token
    with BackgroundServer(sim.app, free_port()) as server:
        sim.base_url = server.url
        yield sim, server.url, {"Authorization": f"Bearer {token}"}, athlete.id


RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Usage", "X-ReadRateLimit-Limit", "X-ReadRateLimit-Usage")


def test_the_authenticated_athlete_is_a_detailed_athlete(served) -> None:
    sim, url, auth, athlete_id = served
    answer = httpx.get(f"{url}/api/v3/athlete", headers=auth, timeout=10)
    body = answer.json()
    assert answer.status_code == 200 and problems(body, "DetailedAthlete") == []
    assert body["id"] == athlete_id and body["resource_state"] == 3
    assert body["measurement_preference"] in ("feet", "meters")
    assert body["shoes"] and body["bikes"]
    assert all(shoe["id"].startswith("g") for shoe in body["shoes"])
    assert all(bike["id"].startswith("b") for bike in body["bikes"])
    assert sum(gear["primary"] for gear in body["shoes"]) == 1 and sum(gear["primary"] for gear in body["bikes"]) == 1
    gear_ids = {gear["id"] for gear in (*body["shoes"], *body["bikes"])}
    listed = httpx.get(f"{url}/api/v3/athlete/activities", headers=auth, timeout=10).json()
    assert {item["gear_id"] for item in listed} - {None} <= gear_ids, "activities name the athlete's own gear"
    summary = sim.athletes[athlete_id].profile()
    assert summary["resource_state"] == 2 and problems(summary, "SummaryAthlete") == []
    assert "shoes" not in summary, "the token exchange carries the summary, not the detail"


def test_every_api_answer_carries_the_rate_limit_headers(served) -> None:
    sim, url, auth, athlete_id = served
    first = next(iter(sim.athletes[athlete_id].activities))
    answers = {
        "ok": httpx.get(f"{url}/api/v3/activities/{first}", headers=auth, timeout=10),
        "bad token": httpx.get(f"{url}/api/v3/athlete", headers={"Authorization": "Bearer nope"}, timeout=10),
        "missing": httpx.get(f"{url}/api/v3/activities/1", headers=auth, timeout=10),
        "missing photos": httpx.get(f"{url}/api/v3/activities/1/photos", headers=auth, timeout=10),
        "bad query": httpx.get(f"{url}/api/v3/athlete/activities?per_page=x", headers=auth, timeout=10),
        "subscriptions": httpx.get(
            f"{url}/api/v3/push_subscriptions",
            params={"client_id": sim.client_id, "client_secret": sim.client_secret},
            timeout=10,
        ),
        "subscriptions refused": httpx.get(f"{url}/api/v3/push_subscriptions", timeout=10),
    }
    httpx.post(f"{url}/_sim/config", json={"fail_next": [503]}, timeout=10)
    answers["blip"] = httpx.get(f"{url}/api/v3/athlete", headers=auth, timeout=10)
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "ok": 200, "bad token": 401, "missing": 404, "missing photos": 404, "bad query": 400, "subscriptions": 200,
        "subscriptions refused": 401, "blip": 503,
    }  # fmt: skip
    for name, answer in answers.items():
        assert all(header in answer.headers for header in RATE_HEADERS), name


def test_a_refused_request_still_counts_toward_the_limits(served) -> None:
    """Strava: requests over the limit get 429 and still count, so the usage reads past the limit."""
    _, url, auth, _ = served
    for _attempt in range(3):  # a quarter-hour boundary passing mid-test resets the 15-minute window: try again
        quarter = int(time.time() // 900)
        httpx.post(
            f"{url}/_sim/config",
            json={"read_limits": [2, 1000], "read_usage": [1, 10], "overall_usage": [1, 10]},
            timeout=10,
        )
        allowed = httpx.get(f"{url}/api/v3/athlete", headers=auth, timeout=10)
        refused = httpx.get(f"{url}/api/v3/athlete", headers=auth, timeout=10)
        again = httpx.get(f"{url}/api/v3/athlete/activities", headers=auth, timeout=10)
        stats = httpx.get(f"{url}/_sim/stats", timeout=10).json()
        if int(time.time() // 900) == quarter:
            break
    assert allowed.status_code == 200 and allowed.headers["X-ReadRateLimit-Usage"] == "2,11"
    assert refused.status_code == 429 and refused.json()["message"] == "Rate Limit Exceeded"
    assert refused.headers["X-ReadRateLimit-Limit"] == "2,1000"
    assert refused.headers["X-ReadRateLimit-Usage"] == "3,12", "the 429 counted"
    assert refused.headers["X-RateLimit-Usage"] == "3,12", "in the overall windows too"
    assert again.status_code == 429 and again.headers["X-ReadRateLimit-Usage"] == "4,13"
    assert stats["read_usage"] == [4, 13] and stats["overall_usage"] == [4, 13]
