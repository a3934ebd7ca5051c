"""A Strava bulk export ("Download or Delete Your Account" > "Request your archive"), written from the simulator's
athlete and activities, for tests and demos of `trove import`. No real export is ever committed: this builds one.

The ZIP holds what Strava's does, at its root (or under one folder, as a re-zipped download is):
- `profile.csv`: the athlete (Athlete ID, e-mail, names, ...)
- `activities.csv`: one row per activity with Strava's column set, duplicated names included ("Elapsed Time",
  "Distance", "Max Heart Rate", "Relative Effort" and "Commute" each come twice: the first "Distance" in the
  athlete's display units, the second in metres), the date like "Feb 4, 2020, 5:43:16 PM" (UTC), `Filename`
  naming the original upload and `Media` the photos, separated by '|'
- `activities/<id>.gpx|.tcx|.fit`, some gzipped (Strava keeps each upload as it came): the track
- `media/<photo unique id>.jpg`: the photos
- `bikes.csv`, `shoes.csv`: the gear

The FIT encoder here is written from the FIT protocol (file header with its CRC, definition and data messages,
the trailing CRC): file_id, record (timestamp, position in semicircles, distance, altitude, heart rate), lap,
session and activity (with the local time, from which an importer learns the activity's UTC offset).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import struct
import zipfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from trove.simulators.base import JPEG
from trove.simulators.strava import Activity, Athlete

# activities.csv as recent exports have it: the names in this order, duplicates included.
ACTIVITY_COLUMNS: tuple[str, ...] = (
    "Activity ID", "Activity Date", "Activity Name", "Activity Type", "Activity Description", "Elapsed Time",
    "Distance", "Max Heart Rate", "Relative Effort", "Commute", "Activity Private Note", "Activity Gear", "Filename",
    "Athlete Weight", "Bike Weight", "Elapsed Time", "Moving Time", "Distance", "Max Speed", "Average Speed",
    "Elevation Gain", "Elevation Loss", "Elevation Low", "Elevation High", "Max Grade", "Average Grade",
    "Average Positive Grade", "Average Negative Grade", "Max Cadence", "Average Cadence", "Max Heart Rate",
    "Average Heart Rate", "Max Watts", "Average Watts", "Calories", "Max Temperature", "Average Temperature",
    "Relative Effort", "Total Work", "Number of Runs", "Uphill Time", "Downhill Time", "Other Time",
    "Perceived Exertion", "Type", "Start Time", "Weighted Average Power", "Power Count", "Prefer Perceived Exertion",
    "Perceived Relative Effort", "Commute", "Total Weight Lifted", "From Upload", "Grade Adjusted Distance",
    "Weather Observation Time", "Weather Condition", "Weather Temperature", "Apparent Temperature", "Dewpoint",
    "Humidity", "Weather Pressure", "Wind Speed", "Wind Gust", "Wind Bearing", "Precipitation Intensity",
    "Sunrise Time", "Sunset Time", "Moon Phase", "Bike", "Gear", "Precipitation Probability", "Precipitation Type",
    "Cloud Cover", "Weather Visibility", "UV Index", "Weather Ozone", "Jump Count", "Total Grit", "Average Flow",
    "Flagged", "Average Elapsed Speed", "Dirt Distance", "Newly Explored Distance", "Newly Explored Dirt Distance",
    "Activity Count", "Total Steps", "Carbon Saved", "Pool Length", "Training Load", "Intensity",
    "Average Grade Adjusted Pace", "Timer Time", "Total Cycles", "Media",
)  # fmt: skip
# Exports written before Strava added the metric block: display units only, no duplicates.
DISPLAY_ONLY_COLUMNS: tuple[str, ...] = (*ACTIVITY_COLUMNS[:13], "Media")
PROFILE_COLUMNS = ("Athlete ID", "Email Address", "First Name", "Last Name", "Sex", "Description", "Weight", "City",
                   "State", "Country")  # fmt: skip
TrackFormat = Literal["gpx", "gpx.gz", "tcx", "tcx.gz", "fit", "fit.gz"]
DateStyle = Literal["en-US", "en-GB", "iso"]
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --- tracks --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrackPoint:
    time: datetime
    lat: float
    lng: float
    altitude: float
    distance: float  # metres from the start
    heart_rate: int


def track_points(activity: Activity, count: int = 40) -> list[TrackPoint]:
    """A plausible path for the activity: from its start_latlng out on an arc and back to its end_latlng, over
    its elapsed time and distance (the simulator's activities carry no streams, so the track is made up here,
    deterministically from the activity's own figures)."""
    data = activity.data
    start = datetime.fromisoformat(str(data["start_date"]).replace("Z", "+00:00"))
    (lat0, lng0), (lat1, lng1) = data["start_latlng"], data["end_latlng"]
    elapsed, distance = int(data["elapsed_time"]), float(data["distance"])
    count = max(count, 2)
    points = []
    for i in range(count):
        share = i / (count - 1)
        bulge = math.sin(math.pi * share) * 0.01  # the arc: out and back, about a kilometre wide
        points.append(
            TrackPoint(
                time=start + timedelta(seconds=round(elapsed * share)),
                lat=round(lat0 + (lat1 - lat0) * share + bulge, 6),
                lng=round(lng0 + (lng1 - lng0) * share + bulge * 0.7, 6),
                altitude=round(50 + 30 * math.sin(2 * math.pi * share), 1),
                distance=round(distance * share, 1),
                heart_rate=120 + (i * 7) % 45,
            )
        )
    return points


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gpx_document(name: str, sport_type: str, points: Sequence[TrackPoint]) -> bytes:
    """GPX 1.1 as Strava writes an activity's track (heart rate in Garmin's TrackPointExtension)."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<gpx creator="StravaGPX" version="1.1" xmlns="http://www.topografix.com/GPX/1/1"'
        ' xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">',
        f" <metadata><time>{_iso(points[0].time)}</time></metadata>",
        f" <trk><name>{escape(name)}</name><type>{escape(sport_type.lower())}</type><trkseg>",
    ]
    for point in points:
        lines.append(
            f'  <trkpt lat="{point.lat}" lon="{point.lng}"><ele>{point.altitude}</ele><time>{_iso(point.time)}</time>'
            f"<extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>{point.heart_rate}</gpxtpx:hr>"
            "</gpxtpx:TrackPointExtension></extensions></trkpt>"
        )
    lines.append(" </trkseg></trk>")
    lines.append("</gpx>")
    return ("\n".join(lines) + "\n").encode()


def tcx_document(sport_type: str, points: Sequence[TrackPoint], *, leading_whitespace: bool = True) -> bytes:
    """Training Center XML with one lap. Strava's TCX files often start with blanks before the XML declaration
    (which strict parsers refuse): `leading_whitespace` writes them so, for the importer to cope with."""
    sport = "Running" if "Run" in sport_type else "Biking" if "Ride" in sport_type else "Other"
    elapsed = (points[-1].time - points[0].time).total_seconds()
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2">',
        f" <Activities><Activity Sport={quoteattr(sport)}><Id>{_iso(points[0].time)}</Id>",
        f'  <Lap StartTime="{_iso(points[0].time)}"><TotalTimeSeconds>{elapsed:.1f}</TotalTimeSeconds>'
        f"<DistanceMeters>{points[-1].distance}</DistanceMeters><Intensity>Active</Intensity>"
        "<TriggerMethod>Manual</TriggerMethod><Track>",
    ]
    for point in points:
        lines.append(
            f"   <Trackpoint><Time>{_iso(point.time)}</Time><Position><LatitudeDegrees>{point.lat}</LatitudeDegrees>"
            f"<LongitudeDegrees>{point.lng}</LongitudeDegrees></Position>"
            f"<AltitudeMeters>{point.altitude}</AltitudeMeters><DistanceMeters>{point.distance}</DistanceMeters>"
            f"<HeartRateBpm><Value>{point.heart_rate}</Value></HeartRateBpm></Trackpoint>"
        )
    lines.append("  </Track></Lap></Activity></Activities>")
    lines.append("</TrainingCenterDatabase>")
    body = ("\n".join(lines) + "\n").encode()
    return b"        " + body if leading_whitespace else body


# --- FIT -----------------------------------------------------------------------------------------------------
FIT_EPOCH = datetime(1989, 12, 31, tzinfo=UTC)  # FIT counts seconds from here
SEMICIRCLES = 2**31 / 180  # FIT positions: 2^31 semicircles are 180 degrees
# Base types: (code in a field definition, struct format, little-endian).
FIT_TYPES: dict[str, tuple[int, str]] = {
    "enum": (0x00, "B"),
    "uint8": (0x02, "B"),
    "uint16": (0x84, "H"),
    "sint32": (0x85, "i"),
    "uint32": (0x86, "I"),
    "uint32z": (0x8C, "I"),
}
# Global message numbers and the fields written of each: (field number, base type).
FIT_MESSAGES: dict[str, tuple[int, tuple[tuple[int, str], ...]]] = {
    # type, manufacturer, product, serial_number, time_created
    "file_id": (0, ((0, "enum"), (1, "uint16"), (2, "uint16"), (3, "uint32z"), (4, "uint32"))),
    # timestamp, position_lat, position_long, altitude (x5 +500), heart_rate, distance (x100)
    "record": (20, ((253, "uint32"), (0, "sint32"), (1, "sint32"), (2, "uint16"), (3, "uint8"), (5, "uint32"))),
    # timestamp, start_time, start_position_lat/long, total_elapsed_time, total_timer_time (x1000), distance (x100)
    "lap": (19, ((253, "uint32"), (2, "uint32"), (3, "sint32"), (4, "sint32"), (7, "uint32"), (8, "uint32"),
                 (9, "uint32"))),
    # the same as the lap, plus sport and sub_sport
    "session": (18, ((253, "uint32"), (2, "uint32"), (3, "sint32"), (4, "sint32"), (7, "uint32"), (8, "uint32"),
                     (9, "uint32"), (5, "enum"), (6, "enum"))),
    # timestamp, total_timer_time (x1000), num_sessions, type (manual), event (activity), event_type (stop),
    # local_timestamp
    "activity": (34, ((253, "uint32"), (0, "uint32"), (1, "uint16"), (2, "enum"), (3, "enum"), (4, "enum"),
                      (5, "uint32"))),
}  # fmt: skip
# FIT's sport and sub_sport enums for the simulator's sports.
FIT_SPORTS = {"Run": (1, 0), "TrailRun": (1, 3), "Ride": (2, 0), "MountainBikeRide": (2, 8), "Swim": (5, 0),
              "Hike": (17, 0), "Walk": (11, 0)}  # fmt: skip


def fit_crc(data: bytes, crc: int = 0) -> int:
    """FIT's CRC-16 (polynomial 0x8005, reflected as 0xA001, starting at 0), over the header's first 12 bytes
    and over the whole file before the trailing CRC."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def fit_time(moment: datetime) -> int:
    return int((moment - FIT_EPOCH).total_seconds())


class FitWriter:
    """Messages into a FIT activity file: each message kind gets a local type and its definition once."""

    def __init__(self) -> None:
        self.body = bytearray()
        self.local: dict[str, int] = {}

    def write(self, message: str, values: Sequence[int]) -> None:
        number, fields = FIT_MESSAGES[message]
        if message not in self.local:
            local = self.local[message] = len(self.local)
            # Definition: record header (bit 6), reserved, architecture 0 (little endian), global number, fields.
            self.body += struct.pack("<BBBHB", 0x40 | local, 0, 0, number, len(fields))
            for field_number, base in fields:
                code, fmt = FIT_TYPES[base]
                self.body += struct.pack("<BBB", field_number, struct.calcsize(fmt), code)
        self.body.append(self.local[message])  # data record header: the local type
        self.body += struct.pack("<" + "".join(FIT_TYPES[base][1] for _, base in fields), *values)

    def finish(self) -> bytes:
        # 14-byte header: size, protocol 2.0, profile 21.32, data size, ".FIT", CRC of the 12 bytes before.
        header = struct.pack("<BBHI4s", 14, 0x20, 2132, len(self.body), b".FIT")
        header += struct.pack("<H", fit_crc(header))
        data = header + bytes(self.body)
        return data + struct.pack("<H", fit_crc(data))


def fit_activity(sport_type: str, points: Sequence[TrackPoint], *, utc_offset: int = 0) -> bytes:
    """A FIT activity file of `points`: file_id, one record per point, a lap, the session and the activity (whose
    local_timestamp is the end time shifted by `utc_offset` seconds)."""
    writer = FitWriter()
    start, end = points[0], points[-1]
    elapsed_ms = int((end.time - start.time).total_seconds() * 1000)
    lat0, lng0 = round(start.lat * SEMICIRCLES), round(start.lng * SEMICIRCLES)
    writer.write("file_id", (4, 255, 1, 12345, fit_time(start.time)))  # activity file, "development" maker
    for point in points:
        writer.write(
            "record",
            (
                fit_time(point.time),
                round(point.lat * SEMICIRCLES),
                round(point.lng * SEMICIRCLES),
                round((point.altitude + 500) * 5),
                point.heart_rate,
                round(point.distance * 100),
            ),
        )
    total = (fit_time(end.time), fit_time(start.time), lat0, lng0, elapsed_ms, elapsed_ms, round(end.distance * 100))
    writer.write("lap", total)
    writer.write("session", (*total, *FIT_SPORTS.get(sport_type, (0, 0))))
    writer.write("activity", (fit_time(end.time), elapsed_ms, 1, 0, 26, 1, fit_time(end.time) + utc_offset))
    return writer.finish()


def corrupt(data: bytes) -> bytes:
    """The file damaged in its middle (as a failed upload leaves one): its CRC no longer matches."""
    middle = len(data) // 2
    return data[:middle] + b"\xff" * 16 + data[middle + 16 :]


# --- activities.csv ------------------------------------------------------------------------------------------
def sport_label(sport_type: str) -> str:
    """Strava's display name of a sport type, as activities.csv writes it ("TrailRun" -> "Trail Run",
    "EBikeRide" -> "E-Bike Ride")."""
    if sport_type.startswith("E") and sport_type[1:2].isupper():
        return "E-" + sport_label(sport_type[1:])
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", sport_type)


def activity_date(moment: datetime, style: DateStyle) -> str:
    """The date column in the export's language: en-US "Feb 4, 2020, 5:43:16 PM", en-GB "4 Feb 2020, 17:43:16"."""
    moment = moment.astimezone(UTC)
    if style == "iso":
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    month = MONTHS[moment.month - 1]
    clock = moment.strftime("%H:%M:%S")
    if style == "en-GB":
        return f"{moment.day} {month} {moment.year}, {clock}"
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{month} {moment.day}, {moment.year}, {hour}:{moment.strftime('%M:%S')} {half}"


def _number(value: float | int | None, decimal_comma: bool) -> str:
    if value is None:
        return ""
    text = repr(float(value))
    return text.replace(".", ",") if decimal_comma else text


def activity_row(
    athlete: Athlete,
    activity: Activity,
    filename: str,
    media: Sequence[str],
    *,
    date_style: DateStyle,
    decimal_comma: bool,
    private_note: str,
) -> dict[str, str]:
    """One activity's cells, by column; a duplicated name's later cell (the metric one) is keyed "<name>#2"."""
    data = activity.data
    gear = athlete.gear(data.get("gear_id")) or {}
    start = datetime.fromisoformat(str(data["start_date"]).replace("Z", "+00:00"))
    distance = float(data["distance"])
    elapsed, moving = int(data["elapsed_time"]), int(data["moving_time"])
    elevation_gain = data.get("total_elevation_gain")
    commute = bool(data.get("commute"))

    def number(key: str) -> str:
        value = data.get(key)
        return _number(value, decimal_comma) if isinstance(value, int | float) else ""

    display = f"{distance / 1000:.2f}"  # the athlete's measurement preference is metres: kilometres shown
    return {
        "Activity ID": str(data["id"]),
        "Activity Date": activity_date(start, date_style),
        "Activity Name": str(data.get("name") or ""),
        "Activity Type": sport_label(str(data.get("sport_type") or data.get("type") or "Workout")),
        "Activity Description": activity.description,
        "Elapsed Time": str(elapsed),
        "Distance": display.replace(".", ",") if decimal_comma else display,
        "Max Heart Rate": number("max_heartrate"),
        "Relative Effort": number("suffer_score"),
        "Commute": "true" if commute else "false",
        "Activity Private Note": private_note,
        "Activity Gear": str(gear.get("name") or ""),
        "Filename": filename,
        "Elapsed Time#2": _number(elapsed, decimal_comma),
        "Moving Time": _number(moving, decimal_comma),
        "Distance#2": _number(distance, decimal_comma),
        "Max Speed": number("max_speed"),
        "Average Speed": number("average_speed"),
        "Elevation Gain": _number(elevation_gain, decimal_comma) if elevation_gain is not None else "",
        "Elevation Loss": _number(elevation_gain, decimal_comma) if elevation_gain is not None else "",
        "Elevation Low": number("elev_low"),
        "Elevation High": number("elev_high"),
        "Average Cadence": number("average_cadence"),
        "Max Heart Rate#2": number("max_heartrate"),
        "Average Heart Rate": number("average_heartrate"),
        "Max Watts": number("max_watts"),
        "Average Watts": number("average_watts"),
        "Weighted Average Power": number("weighted_average_watts"),
        "Relative Effort#2": number("suffer_score"),
        "Commute#2": _number(1.0 if commute else 0.0, decimal_comma),
        "From Upload": _number(1.0, decimal_comma),
        "Flagged": _number(0.0, decimal_comma),
        "Media": "|".join(media),
    }


def _keyed(columns: Sequence[str]) -> list[str]:
    """Each column's key in activity_row: its name, "<name>#2" for its second appearance."""
    seen: dict[str, int] = {}
    keys = []
    for column in columns:
        seen[column] = seen.get(column, 0) + 1
        keys.append(column if seen[column] == 1 else f"{column}#{seen[column]}")
    return keys


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)  # mtime 0: the same export twice is the same bytes


def _csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def build_strava_export(
    path: Path,
    athlete: Athlete,
    activities: Iterable[Activity] | None = None,
    *,
    formats: Sequence[TrackFormat] = ("gpx", "tcx.gz", "fit.gz"),
    corrupt_fit_for: Collection[int] | None = None,
    top_folder: str | None = None,
    date_style: DateStyle = "en-US",
    dates: Mapping[int, str] | None = None,
    decimal_comma: bool = False,
    si_columns: bool = True,
    omit_columns: Collection[str] = (),
    private_notes: Mapping[int, str] | None = None,
    points: int = 40,
) -> Path:
    """Write `athlete`'s export to `path` (a ZIP) and return it.

    `activities`: which of the athlete's (default: every one not deleted), written oldest first, each with a
    track in `formats[i % len(formats)]` and its photos under media/ (named by their unique ids, as the API
    knows them). `corrupt_fit_for`: activity ids whose file is a damaged FIT (.fit.gz) instead. `top_folder`: put
    everything under that folder. `date_style`: the export's language for "Activity Date"; `dates` replaces
    the cell of the activity ids given (e.g. a format no reader knows). `decimal_comma`: numbers written as a
    comma-decimal locale writes them. `si_columns=False`: an older export, display units only. `omit_columns`:
    columns left out. `private_notes`: "Activity Private Note" by activity id. `points`: per track. Only the
    FIT files carry the activity's time zone (its local time), taken from the activity's utc_offset."""
    chosen = sorted(
        (a for a in (athlete.activities.values() if activities is None else activities) if not a.deleted),
        key=lambda a: (str(a.data["start_date"]), int(a.data["id"])),
    )
    corrupt_ids = set(corrupt_fit_for or ())
    prefix = f"{top_folder.strip('/')}/" if top_folder else ""
    columns = ACTIVITY_COLUMNS if si_columns else DISPLAY_ONLY_COLUMNS
    keys = _keyed(columns)
    kept = [n for n, column in enumerate(columns) if column not in omit_columns]
    files: dict[str, bytes] = {}
    rows: list[list[str]] = []
    for n, activity in enumerate(chosen):
        activity_id = int(activity.data["id"])
        sport = str(activity.data.get("sport_type") or activity.data.get("type") or "Workout")
        track = track_points(activity, points)
        kind: str = "fit.gz" if activity_id in corrupt_ids else formats[n % len(formats)]
        if kind.startswith("gpx"):
            body = gpx_document(str(activity.data.get("name") or ""), sport, track)
        elif kind.startswith("tcx"):
            body = tcx_document(sport, track)
        else:
            body = fit_activity(sport, track, utc_offset=int(activity.data.get("utc_offset") or 0))
            if activity_id in corrupt_ids:
                body = corrupt(body)
        filename = f"activities/{activity_id}.{kind}"
        files[filename] = _gz(body) if kind.endswith(".gz") else body
        media = [f"media/{photo['unique_id']}.jpg" for photo in activity.photos]
        for name in media:
            files[name] = JPEG
        cells = activity_row(
            athlete,
            activity,
            filename,
            media,
            date_style=date_style,
            decimal_comma=decimal_comma,
            private_note=(private_notes or {}).get(activity_id, ""),
        )
        if dates and activity_id in dates:
            cells["Activity Date"] = dates[activity_id]
        rows.append([cells.get(keys[i], "") for i in kept])
    profile = [
        str(athlete.id),
        f"{athlete.username}@example.com",
        athlete.firstname,
        athlete.lastname,
        "F",
        "",
        "61.2",
        "Portland",
        "Oregon",
        "United States",
    ]
    gear_header = ("{0} Name", "{0} Brand", "{0} Model", "{0} Default Sport Types")
    entries: dict[str, bytes] = {
        "profile.csv": _csv(PROFILE_COLUMNS, [profile]),
        "activities.csv": _csv([columns[i] for i in kept], rows),
        "bikes.csv": _csv(
            [h.format("Bike") for h in gear_header], [[b["name"], "", "", "Ride"] for b in athlete.bikes]
        ),
        "shoes.csv": _csv([h.format("Shoe") for h in gear_header], [[s["name"], "", "", "Run"] for s in athlete.shoes]),
        **files,
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(prefix + name, date_time=(2026, 1, 1, 0, 0, 0))  # fixed: reproducible bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return path
