"""Strava's bulk export reader on exports built by the simulator's export writer (no database, no processes):
the layout, whose export it is, one record per activities.csv row with its track (GPX, TCX, FIT, gzipped or not)
and photos, the quirks of the real file (repeated column names, display units, dates and decimal marks of other
locales, blanks before a TCX's declaration), damaged or hostile entries, and posts that normalize like synced ones."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fitdecode
import pytest

from trove.config import PROJECT_ROOT
from trove.imports.archive import ExportArchive, Limits
from trove.platforms.base import ExportOwner, ExportRecord, ExportUnreadable
from trove.platforms.strava.client import StravaConfig
from trove.platforms.strava.export import (
    StravaExportReader,
    encode_polyline,
    parse_date,
    parse_number,
    read_track,
    sport_types,
    unique_headers,
)
from trove.platforms.strava.sync import StravaConnector
from trove.simulators.strava import Activity, Athlete, StravaSimulator
from trove.simulators.strava_export import (
    ACTIVITY_COLUMNS,
    build_strava_export,
    fit_activity,
    fit_crc,
    sport_label,
    track_points,
)

FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures" / "strava"
ALL_FORMATS = ("gpx", "tcx.gz", "fit.gz", "fit", "tcx", "gpx.gz")
READER = StravaExportReader()


@pytest.fixture
def athlete() -> Athlete:
    sim = StravaSimulator(seed=7)
    athlete = sim.add_athlete(activities=6, athlete_id=4242, username="dana")
    first = min(athlete.activities.values(), key=lambda a: a.data["start_date"])
    # At least one activity with photos whatever the seed draws (ids as the simulator makes them: UUIDs).
    first.photos[:] = [
        {"unique_id": "2E0C5C41-7A3B-4867-9E8D-1F0A6B2C3D4E", "activity_id": first.data["id"], "default_photo": True},
        {"unique_id": "9B1D2E3F-4A5B-4867-9E8D-6C7D8E9F0A1B", "activity_id": first.data["id"], "default_photo": False},
    ]
    return athlete


def oldest_first(athlete: Athlete) -> list[Activity]:
    return sorted(athlete.activities.values(), key=lambda a: (a.data["start_date"], a.data["id"]))


def read_all(path: Path, limits: Limits | None = None) -> tuple[ExportOwner, list[ExportRecord]]:
    with ExportArchive(path, limits=limits) as archive:
        assert READER.recognizes(archive)
        owner = READER.owner(archive)
        return owner, list(READER.records(archive, owner, {}))


def decode_polyline(text: str) -> list[tuple[float, float]]:
    """The inverse of the encoding, written here to check it (5-bit chunks, zigzag sign, running sums)."""
    values: list[int] = []
    shift = result = 0
    for char in text:
        chunk = ord(char) - 63
        result |= (chunk & 0x1F) << shift
        shift += 5
        if chunk < 0x20:
            values.append(~(result >> 1) if result & 1 else result >> 1)
            shift = result = 0
    points, lat, lng = [], 0, 0
    for dlat, dlng in zip(values[::2], values[1::2], strict=True):
        lat, lng = lat + dlat, lng + dlng
        points.append((lat / 1e5, lng / 1e5))
    return points


def rewrite(path: Path, entries: dict[str, bytes | None]) -> Path:
    """The same ZIP with some entries replaced (None: removed)."""
    with zipfile.ZipFile(path) as source:
        kept = {name: source.read(name) for name in source.namelist()}
    for name, data in entries.items():
        if data is None:
            kept.pop(name, None)
        else:
            kept[name] = data
    out = path.with_name(f"changed-{path.name}")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in kept.items():
            target.writestr(name, data)
    return out


# --- layout and owner ----------------------------------------------------------------------------------------
def test_it_recognizes_the_export_at_the_root_or_in_one_folder(tmp_path: Path, athlete: Athlete) -> None:
    for top in (None, "export_4242"):
        path = build_strava_export(tmp_path / f"{top}.zip", athlete, top_folder=top)
        owner, records = read_all(path)
        assert owner == ExportOwner(platform_user_id="4242", username="4242", display_name="Demo Runner")
        assert len(records) == 6 and all(r.problem is None for r in records)
        if top:
            assert all(f.entry.startswith("export_4242/") for r in records for f in r.files)


def test_it_does_not_take_other_files_for_the_export(tmp_path: Path) -> None:
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("activities.csv", "id,date\n1,2020-01-01\n")  # another app's export: nothing beside it
        archive.writestr("your_activity/posts.json", "[]")
    deep = tmp_path / "deep.zip"
    with zipfile.ZipFile(deep, "w") as archive:
        archive.writestr("a/b/activities.csv", "Activity ID\n")
        archive.writestr("a/b/profile.csv", "Athlete ID\n1\n")
    car = tmp_path / "repo.car"
    car.write_bytes(b"\x3a\xa2eroots")
    for path in (other, deep, car):
        with ExportArchive(path) as archive:
            assert not READER.recognizes(archive)


def test_a_missing_profile_is_unreadable_and_named(tmp_path: Path, athlete: Athlete) -> None:
    path = rewrite(build_strava_export(tmp_path / "e.zip", athlete), {"profile.csv": None})
    with ExportArchive(path) as archive:
        assert READER.recognizes(archive)  # still its layout (activities/ beside activities.csv)
        with pytest.raises(ExportUnreadable, match=r"^profile\.csv: not in the archive"):
            READER.owner(archive)
    path = rewrite(build_strava_export(tmp_path / "f.zip", athlete), {"profile.csv": b"Athlete ID,First Name\n,A\n"})
    with ExportArchive(path) as archive, pytest.raises(ExportUnreadable, match=r"^profile\.csv: no Athlete ID"):
        READER.owner(archive)


# --- records -------------------------------------------------------------------------------------------------
def test_one_record_per_row_in_file_order_with_the_api_id_and_the_files(tmp_path: Path, athlete: Athlete) -> None:
    path = build_strava_export(tmp_path / "e.zip", athlete, formats=ALL_FORMATS)
    _, records = read_all(path)
    activities = oldest_first(athlete)
    assert [r.identity for r in records] == [f"activity:{a.data['id']}" for a in activities]
    for record, activity, kind in zip(records, activities, ALL_FORMATS, strict=True):
        activity_id = activity.data["id"]
        assert record.event_type == "export.activity" and record.match is None
        assert record.post is not None and record.post.platform_post_id == str(activity_id)  # same as the API's
        assert record.post.content_type == "activity"
        assert record.post.created_at == datetime.fromisoformat(activity.data["start_date"].replace("Z", "+00:00"))
        assert record.payload["row"]["Activity ID"] == str(activity_id)
        entry = f"activities/{activity_id}.{kind}"
        photos = [p["unique_id"] for p in activity.photos]
        assert [(f.media_key, f.entry) for f in record.files] == [
            (f"activity-file:{activity_id}", entry),
            *((key, f"media/{key}.jpg") for key in photos),  # the photo's API key: one file, one media row
        ]
        data = record.post.post_data
        assert data["total_photo_count"] == len(photos)
        assert data["trove_export"]["file"] == entry and data["trove_export"]["row"] == record.payload["row"]


def test_the_post_carries_the_activity_as_the_api_describes_it(tmp_path: Path, athlete: Athlete) -> None:
    path = build_strava_export(tmp_path / "e.zip", athlete, formats=ALL_FORMATS, private_notes={})
    _, records = read_all(path)
    for record, activity in zip(records, oldest_first(athlete), strict=True):
        assert record.post is not None
        data, api = record.post.post_data, activity.data
        for key in ("id", "name", "sport_type", "type", "start_date", "elapsed_time", "moving_time", "commute"):
            assert data[key] == api[key], key
        for key in ("distance", "average_speed", "max_speed", "total_elevation_gain", "average_heartrate"):
            assert data[key] == pytest.approx(api[key]), key
        assert data["description"] == activity.description
        assert data["athlete"] == {"id": 4242, "resource_state": 1}
        gear = athlete.gear(api["gear_id"])
        assert data.get("gear") == ({"id": None, "name": gear["name"], "resource_state": 2} if gear else None)
        assert record.post.text == f"{api['name']}\n\n{activity.description}"
        assert record.post.search_keywords == api["sport_type"]
        # Who could see it is not in the export: private until a sync says otherwise.
        assert record.post.visibility == "private"


def test_tracks_of_every_format_give_the_start_end_and_map(tmp_path: Path, athlete: Athlete) -> None:
    path = build_strava_export(tmp_path / "e.zip", athlete, formats=ALL_FORMATS, points=60)
    _, records = read_all(path)
    for record, activity, kind in zip(records, oldest_first(athlete), ALL_FORMATS, strict=True):
        expected = track_points(activity, 60)
        track = record.payload["track"]
        assert track["format"] == kind.removesuffix(".gz") and track["points"] == 60
        assert track["entry"] == f"activities/{activity.data['id']}.{kind}"
        assert track["start_latlng"] == pytest.approx([expected[0].lat, expected[0].lng], abs=1e-6)
        assert track["end_latlng"] == pytest.approx([expected[-1].lat, expected[-1].lng], abs=1e-6)
        assert track["start_time"] == activity.data["start_date"]
        assert record.post is not None
        data = record.post.post_data
        assert data["start_latlng"] == track["start_latlng"] and data["end_latlng"] == track["end_latlng"]
        for key in ("summary_polyline", "polyline"):
            line = decode_polyline(data["map"][key])
            assert len(line) == 60
            assert line[0] == pytest.approx((expected[0].lat, expected[0].lng), abs=1e-5)
            assert line[-1] == pytest.approx((expected[-1].lat, expected[-1].lng), abs=1e-5)
        if kind.startswith("fit"):
            # Only FIT carries the local time: the API's start_date_local and utc_offset follow from it.
            assert data["start_date_local"] == activity.data["start_date_local"]
            assert data["utc_offset"] == activity.data["utc_offset"]
            assert track["distance"] == pytest.approx(expected[-1].distance)
        else:
            assert "start_date_local" not in data


def test_a_long_track_is_thinned_for_the_map(tmp_path: Path, athlete: Athlete) -> None:
    path = build_strava_export(tmp_path / "e.zip", athlete, activities=oldest_first(athlete)[:1], points=3000)
    _, (record,) = read_all(path)
    assert record.post is not None
    summary = decode_polyline(record.post.post_data["map"]["summary_polyline"])
    full = decode_polyline(record.post.post_data["map"]["polyline"])
    assert len(summary) == 250 and len(full) == 2000
    assert summary[-1] == full[-1] == pytest.approx(tuple(record.payload["track"]["end_latlng"]), abs=1e-5)


def test_repeated_column_names_are_all_kept_and_the_metric_one_is_used(tmp_path: Path, athlete: Athlete) -> None:
    # A real column named like a generated key is renamed in turn: nothing is lost, and always the same way.
    header = ["Distance", "Elapsed Time", "Distance", "Distance#2", "Distance"]
    assert unique_headers(header) == ["Distance", "Elapsed Time", "Distance#2", "Distance#2#2", "Distance#3"]
    _, records = read_all(build_strava_export(tmp_path / "e.zip", athlete))
    header = set(records[0].payload["row"])
    repeated = {name for name in ACTIVITY_COLUMNS if ACTIVITY_COLUMNS.count(name) > 1}
    assert repeated == {"Elapsed Time", "Distance", "Max Heart Rate", "Relative Effort", "Commute"}
    assert {f"{name}#2" for name in repeated} <= header and repeated <= header
    for record, activity in zip(records, oldest_first(athlete), strict=True):
        row = record.payload["row"]
        assert row["Distance"] == f"{activity.data['distance'] / 1000:.2f}"  # display units: kilometres
        assert record.post is not None
        assert record.post.post_data["distance"] == pytest.approx(activity.data["distance"])  # metres
        assert record.post.post_data["trove_export"]["distance_source"] == "activities.csv (metres)"


def test_an_export_in_display_units_only_takes_the_distance_from_the_track(tmp_path: Path, athlete: Athlete) -> None:
    path = build_strava_export(tmp_path / "e.zip", athlete, si_columns=False, formats=("gpx", "tcx", "fit"))
    _, records = read_all(path)
    for record, activity in zip(records, oldest_first(athlete), strict=True):
        assert record.post is not None and record.problem is None
        data = record.post.post_data
        assert data["distance"] == pytest.approx(record.payload["track"]["distance"], abs=0.1)
        assert data["trove_export"]["distance_source"] == "track"
        assert data["trove_export"]["display_distance"] == f"{activity.data['distance'] / 1000:.2f}"
        assert data["elapsed_time"] == activity.data["elapsed_time"]  # seconds in either block
        assert "moving_time" not in data and "average_speed" not in data  # not guessed from display units


def test_decimal_commas_and_other_date_styles(tmp_path: Path, athlete: Athlete) -> None:
    for style in ("en-US", "en-GB", "iso"):
        path = build_strava_export(tmp_path / f"{style}.zip", athlete, decimal_comma=True, date_style=style)
        _, records = read_all(path)
        for record, activity in zip(records, oldest_first(athlete), strict=True):
            assert record.post is not None and record.problem is None
            data = record.post.post_data
            assert "," in record.payload["row"]["Distance#2"]
            assert data["distance"] == pytest.approx(activity.data["distance"])
            assert data["max_speed"] == pytest.approx(activity.data["max_speed"])
            assert data["start_date"] == activity.data["start_date"]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("18.96", 18.96), ("18,96", 18.96), ("1,234.5", 1234.5), ("1.234,5", 1234.5), ("1 234,5", 1234.5),
        ("1\u202f234,5", 1234.5), ("-3", -3.0), ("2.5e-05", 2.5e-05), ("", None), ("  ", None), ("nan", None),
        ("inf", None), ("1_000", None), ("abc", None), (None, None),
    ],
)  # fmt: skip
def test_numbers_with_either_decimal_mark(text: str | None, number: float | None) -> None:
    assert parse_number(text) == number


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("Feb 4, 2020, 5:43:16 PM", datetime(2020, 2, 4, 17, 43, 16, tzinfo=UTC)),
        ("Feb 4, 2020, 5:43:16\u202fPM", datetime(2020, 2, 4, 17, 43, 16, tzinfo=UTC)),  # newer CLDR's narrow space
        ("Dec 31, 2019, 12:05:00 AM", datetime(2019, 12, 31, 0, 5, tzinfo=UTC)),
        ("February 4, 2020 at 5:43 PM", datetime(2020, 2, 4, 17, 43, tzinfo=UTC)),
        ("4 Feb 2020, 17:43:16", datetime(2020, 2, 4, 17, 43, 16, tzinfo=UTC)),
        ("4 Sept 2020, 07:43:16", datetime(2020, 9, 4, 7, 43, 16, tzinfo=UTC)),
        ("04.02.2020, 17:43:16", datetime(2020, 2, 4, 17, 43, 16, tzinfo=UTC)),
        ("2/4/2020, 5:43:16 PM", datetime(2020, 2, 4, 17, 43, 16, tzinfo=UTC)),
        ("25/12/2020 08:00:00", datetime(2020, 12, 25, 8, 0, tzinfo=UTC)),
        ("2020/02/04 17:43:16", datetime(2020, 2, 4, 17, 43, 16, tzinfo=UTC)),
        ("2020-02-04 17:43:16", datetime(2020, 2, 4, 17, 43, 16, tzinfo=UTC)),
        ("2020-02-04T17:43:16Z", datetime(2020, 2, 4, 17, 43, 16, tzinfo=UTC)),
        ("2020-02-04T18:43:16+01:00", datetime(2020, 2, 4, 17, 43, 16, tzinfo=UTC)),
        ("02/04/2020 17:43:16", None),  # day and month cannot be told apart
        ("4 févr. 2020, 17:43:16", None),  # a language whose month names we do not know: refused, not guessed
        ("Feb 30, 2020, 5:43:16 PM", None),
        ("Feb 4, 2020, 13:43:16 PM", None),
        ("last Tuesday", None),
        ("", None),
    ],
)
def test_activity_dates_in_several_formats(text: str, moment: datetime | None) -> None:
    assert parse_date(text) == moment


def test_an_unknown_date_format_is_that_records_problem(tmp_path: Path, athlete: Athlete) -> None:
    odd = oldest_first(athlete)[2].data["id"]
    path = build_strava_export(tmp_path / "e.zip", athlete, dates={odd: "4 févr. 2020, 17:43:16"})
    _, records = read_all(path)
    (bad,) = [r for r in records if r.problem]
    assert bad.identity == f"activity:{odd}" and bad.post is None and bad.files == ()
    assert bad.problem is not None and bad.problem.startswith("activities.csv row 3")
    assert "4 févr. 2020, 17:43:16" in bad.problem
    assert bad.payload["row"]["Activity Date"] == "4 févr. 2020, 17:43:16"  # kept raw all the same
    assert sum(r.post is not None for r in records) == 5


def test_a_corrupt_fit_file_costs_only_that_activity_its_track(tmp_path: Path, athlete: Athlete) -> None:
    broken = oldest_first(athlete)[1].data["id"]
    path = build_strava_export(tmp_path / "e.zip", athlete, corrupt_fit_for={broken})
    _, records = read_all(path)
    problems = {r.identity: r.problem for r in records if r.problem}
    assert list(problems) == [f"activity:{broken}"]
    assert problems[f"activity:{broken}"].startswith(f"activities/{broken}.fit.gz: not a readable FIT file")
    record = next(r for r in records if r.identity == f"activity:{broken}")
    assert record.post is not None  # archived from its row
    assert record.post.post_data["map"]["summary_polyline"] == "" and record.post.post_data["start_latlng"] == []
    assert record.payload["track"] is None
    assert record.files[0].entry == f"activities/{broken}.fit.gz"  # the original file is kept as it is


def test_missing_damaged_and_hostile_entries_are_named(tmp_path: Path, athlete: Athlete) -> None:
    first, second, third = (a.data["id"] for a in oldest_first(athlete)[:3])
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><name>&b;</name></trk></gpx>'
    )
    path = build_strava_export(tmp_path / "e.zip", athlete, formats=("gpx", "tcx.gz", "fit"))
    path = rewrite(
        path,
        {
            f"activities/{first}.gpx": bomb,
            f"activities/{second}.tcx.gz": b"\x1f\x8b not gzip at all",
            f"activities/{third}.fit": None,
            "media/2E0C5C41-7A3B-4867-9E8D-1F0A6B2C3D4E.jpg": None,
        },
    )
    _, records = read_all(path)
    problems = {r.identity: r.problem or "" for r in records}
    assert problems[f"activity:{first}"].startswith(f"activities/{first}.gpx: XML with a DOCTYPE (refused")
    gone = "media/2E0C5C41-7A3B-4867-9E8D-1F0A6B2C3D4E.jpg"
    assert f"{gone}: named in activities.csv but not in the archive" in problems[f"activity:{first}"]
    assert problems[f"activity:{second}"].startswith(f"activities/{second}.tcx.gz: not a readable gzip file")
    assert problems[f"activity:{third}"] == f"activities/{third}.fit: named in activities.csv but not in the archive"
    assert all(r.post is not None for r in records)
    assert [f.media_key for f in records[0].files] == [f"activity-file:{first}", "9B1D2E3F-4A5B-4867-9E8D-6C7D8E9F0A1B"]


def test_a_track_beyond_the_archive_caps_is_not_loaded(tmp_path: Path, athlete: Athlete) -> None:
    path = build_strava_export(
        tmp_path / "e.zip", athlete, activities=oldest_first(athlete)[:1], formats=("gpx.gz",), points=3000
    )
    _, (record,) = read_all(path, Limits(entry_bytes=200_000))
    entry = f"activities/{oldest_first(athlete)[0].data['id']}.gpx.gz"
    assert record.problem is not None and record.problem.startswith(f"{entry}: unpacks to more than 200000 bytes")
    assert record.post is not None and record.payload["track"] is None


def test_a_csv_without_the_needed_columns_is_unreadable_and_named(tmp_path: Path, athlete: Athlete) -> None:
    path = build_strava_export(tmp_path / "e.zip", athlete, omit_columns={"Activity Type", "Activity Date"})
    with ExportArchive(path) as archive:
        owner = READER.owner(archive)
        with pytest.raises(ExportUnreadable, match=r"^activities\.csv: no column 'Activity Date', 'Activity Type'"):
            list(READER.records(archive, owner, {}))
    path = build_strava_export(tmp_path / "f.zip", athlete, top_folder="export_1", omit_columns={"Activity ID"})
    with ExportArchive(path) as archive, pytest.raises(ExportUnreadable, match=r"^export_1/activities\.csv: no co"):
        list(READER.records(archive, READER.owner(archive), {}))


def test_the_private_note_stays_private(tmp_path: Path, athlete: Athlete) -> None:
    target = oldest_first(athlete)[0].data["id"]
    path = build_strava_export(tmp_path / "e.zip", athlete, private_notes={target: "knee hurt after 5k"})
    _, records = read_all(path)
    assert records[0].post is not None
    assert records[0].post.post_data["private_note"] == "knee hurt after 5k"
    assert "knee hurt" not in json.dumps(records[0].post.public_data)
    assert "knee hurt" not in (records[0].post.text or "")
    assert all("private_note" not in r.post.post_data for r in records[1:] if r.post)


# --- reprocessing and stability ------------------------------------------------------------------------------
def test_a_post_normalizes_again_into_the_same_post(tmp_path: Path, athlete: Athlete) -> None:
    connector = StravaConnector(StravaConfig("id", "secret", "http://strava.test"))
    _, records = read_all(build_strava_export(tmp_path / "e.zip", athlete, formats=ALL_FORMATS))
    for record in records:
        assert record.post is not None
        # Through JSON as ingested_posts keeps it, then the connector's own normalize.
        again = connector.normalize(json.loads(json.dumps(record.post.post_data)))
        assert again == record.post


def test_a_second_read_gives_the_same_records_in_the_same_order(tmp_path: Path, athlete: Athlete) -> None:
    path = build_strava_export(tmp_path / "e.zip", athlete, formats=ALL_FORMATS)
    _, first = read_all(path)
    _, second = read_all(path)
    assert [(r.identity, json.dumps(r.payload, sort_keys=True), r.files, r.problem) for r in first] == [
        (r.identity, json.dumps(r.payload, sort_keys=True), r.files, r.problem) for r in second
    ]
    assert [r.post for r in first] == [r.post for r in second]
    # The writer is reproducible too: the same athlete makes the same bytes.
    assert build_strava_export(tmp_path / "again.zip", athlete, formats=ALL_FORMATS).read_bytes() == path.read_bytes()


def test_the_post_has_the_fields_a_real_detailed_activity_has(tmp_path: Path, athlete: Athlete) -> None:
    files = [FIXTURES / "activity_detail_swagger_example.json", FIXTURES / "activity_detail_real_stravalib.json"]
    if not all(path.is_file() for path in files):
        pytest.skip("../shared/fixtures/strava is absent")
    payloads = [json.loads(path.read_text()) for path in files]
    real: dict[str, set[type]] = {}  # each key's types in the real payloads (null aside)
    for payload in payloads:
        for key, value in payload.items():
            real.setdefault(key, set()).update({type(value)} if value is not None else set())
    _, records = read_all(build_strava_export(tmp_path / "e.zip", athlete))
    assert records[0].post is not None
    data = records[0].post.post_data
    # What the normalizer reads (and public mode shows) and the export knows, named and typed as the API does.
    known = {
        "id", "resource_state", "name", "description", "type", "sport_type", "start_date", "elapsed_time",
        "moving_time", "distance", "total_elevation_gain", "average_speed", "max_speed", "elev_high", "elev_low",
        "commute", "manual", "flagged", "private", "gear", "start_latlng", "end_latlng", "map", "athlete",
        "total_photo_count", "photos",
    }  # fmt: skip
    assert known <= set(real) and known <= set(data)
    for key in known:
        kinds = real[key] | {int, float} if real[key] & {int, float} else real[key]  # JSON has one number type
        assert type(data[key]) in kinds, key
    assert all(set(data["map"]) == set(payload["map"]) for payload in payloads)  # id, polyline, summary_polyline...
    assert {"id", "name", "resource_state"} <= set(data["gear"])


# --- pieces --------------------------------------------------------------------------------------------------
def test_the_polyline_encoding_matches_the_documented_example() -> None:
    points = [(38.5, -120.2), (40.7, -120.95), (43.252, -126.453)]
    assert encode_polyline(points) == "_p~iF~ps|U_ulLnnqC_mqNvxq`@"
    assert decode_polyline(encode_polyline(points)) == points
    assert encode_polyline([]) == ""


def test_sport_labels_map_to_the_api_sport_types() -> None:
    assert sport_types("Trail Run") == ("TrailRun", "Run")
    assert sport_types("E-Bike Ride") == ("EBikeRide", "EBikeRide")
    assert sport_types("Mountain Bike Ride") == ("MountainBikeRide", "Ride")
    assert sport_types("Weight Training") == ("WeightTraining", "WeightTraining")
    assert sport_types("HIIT") == ("HighIntensityIntervalTraining", "Workout")
    assert sport_types("Course à pied") == ("Course à pied", "Course à pied")  # unknown: kept as written
    for sport in ("TrailRun", "EBikeRide", "MountainBikeRide", "Swim"):
        assert sport_types(sport_label(sport))[0] == sport


def test_the_fit_writer_is_read_back_by_fitdecode(athlete: Athlete) -> None:
    activity = oldest_first(athlete)[0]
    points = track_points(activity, 10)
    data = fit_activity("TrailRun", points, utc_offset=3600)
    assert data[8:12] == b".FIT" and fit_crc(data) == 0  # a file with its trailing CRC checks to zero
    names = []
    with fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.RAISE) as fit:
        for frame in fit:
            if isinstance(frame, fitdecode.FitDataMessage):
                names.append(frame.name)
                if frame.name == "session":
                    assert frame.get_value("sport") == "running" and frame.get_value("sub_sport") == "trail"
                    assert frame.get_value("total_distance") == pytest.approx(points[-1].distance)
    assert names == ["file_id", *["record"] * 10, "lap", "session", "activity"]
    track = read_track(data, "fit")
    assert track.points == 10 and track.utc_offset == 3600
    assert track.start == points[0].time and track.end == points[-1].time
    assert track.first == pytest.approx((points[0].lat, points[0].lng), abs=1e-6)
    assert track.end - track.start == timedelta(seconds=activity.data["elapsed_time"])
