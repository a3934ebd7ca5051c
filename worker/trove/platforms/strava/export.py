"""Strava's bulk export (Settings > My Account > "Download or Delete Your Account" > "Request your archive") as
`trove import` reads it.

The ZIP has, at its root (or under one folder, when the download was unpacked and zipped again):
- `profile.csv`: whose export it is ("Athlete ID", "First Name", "Last Name", ...)
- `activities.csv`: one row per activity. Some names appear twice: "Elapsed Time", "Distance", "Max Heart Rate",
  "Relative Effort", "Commute". The first "Distance" is in the athlete's display units (km or mi, metres for
  swims), the second in metres, like every column of that later block (seconds, m/s, metres). "Activity Date"
  is the start in UTC, written in the export's language ("Feb 4, 2020, 5:43:16 PM" in US English). "Filename"
  names the original upload (activities/<n>.gpx, .tcx or .fit, often gzipped), "Media" the photos (media/...,
  separated by '|').

Each row becomes one record: the row itself (every cell a string; a repeated column's later cells under
"<name>#2", ...) and a summary of its track, and a post built the way the API's DetailedActivity is (the same
id, so an activity already synced is enriched, not duplicated) and normalized by the same code, so that it can be
reprocessed like a synced one. What only the export knows is kept under the post's `trove_export` key.

A track that cannot be read (damaged, too large, not a format we know) costs the activity its map, nothing else:
the record says why. XML is read only without a DOCTYPE (no entity can be declared, so none can blow up or reach
a file), and every entry through the archive's caps.
"""

from __future__ import annotations

import csv
import io
import math
import re
import xml.etree.ElementTree as ET
import xml.parsers.expat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

import fitdecode
import gpxpy
import httpx

from trove.platforms.base import (
    ExportArchiveView,
    ExportFile,
    ExportOwner,
    ExportRecord,
    ExportUnreadable,
    NormalizedPost,
)
from trove.platforms.strava.normalize import normalize

ACTIVITIES_CSV = "activities.csv"
PROFILE_CSV = "profile.csv"
EVENT_TYPE = "export.activity"
REQUIRED_COLUMNS = ("Activity ID", "Activity Date", "Activity Type")
# Points kept for the map: the summary polyline of a list item, and the detail's fuller one (Strava simplifies
# both too). While reading, a track is thinned evenly beyond TRACK_POINTS, so a huge file costs bounded memory.
SUMMARY_POINTS = 250
DETAIL_POINTS = 2000
TRACK_POINTS = 50_000
SEMICIRCLE_DEGREES = 180 / 2**31  # FIT positions are in semicircles
EARTH_RADIUS = 6_371_008.8  # metres (mean radius), for the length of a track that records no distance
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# The API's SportType values; activities.csv writes the display name ("Trail Run", "E-Bike Ride").
SPORT_TYPES = frozenset(
    {
        "AlpineSki", "BackcountrySki", "Badminton", "Canoeing", "Crossfit", "EBikeRide", "Elliptical",
        "EMountainBikeRide", "Golf", "GravelRide", "Handcycle", "HighIntensityIntervalTraining", "Hike", "IceSkate",
        "InlineSkate", "Kayaking", "Kitesurf", "MountainBikeRide", "NordicSki", "Pickleball", "Pilates",
        "Racquetball", "Ride", "RockClimbing", "RollerSki", "Rowing", "Run", "Sail", "Skateboard", "Snowboard",
        "Snowshoe", "Soccer", "Squash", "StairStepper", "StandUpPaddling", "Surfing", "Swim", "TableTennis",
        "Tennis", "TrailRun", "Velomobile", "VirtualRide", "VirtualRow", "VirtualRun", "Walk", "WeightTraining",
        "Wheelchair", "Windsurf", "Workout", "Yoga",
    }
)  # fmt: skip
# Display names that are not the sport type without its spaces.
SPORT_ALIASES = {
    "hiit": "HighIntensityIntervalTraining",
    "rockclimb": "RockClimbing",
    "canoe": "Canoeing",
    "kayak": "Kayaking",
    "row": "Rowing",
    "surf": "Surfing",
    "standuppaddle": "StandUpPaddling",
}
# The older ActivityType (`type`) of sport types that have a family, or none of their own (then "Workout").
ACTIVITY_TYPES = {
    "TrailRun": "Run",
    "MountainBikeRide": "Ride",
    "GravelRide": "Ride",
    "EMountainBikeRide": "EBikeRide",
    **{
        sport: "Workout"
        for sport in ("Badminton", "HighIntensityIntervalTraining", "Pickleball", "Pilates", "Racquetball", "Squash",
                      "TableTennis", "Tennis", "VirtualRow")
    },
}  # fmt: skip

MONTHS = {
    name: number
    for number, names in enumerate(
        (("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
         ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"),
         ("nov", "november"), ("dec", "december")),
        start=1,
    )
    for name in names
}  # fmt: skip
CLOCK = r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?(?:\s?(?P<half>[ap])\.?\s?m\.?)?"
DATE_FORMATS = (
    # "feb 4, 2020, 5:43:16 pm" (US English), "february 4, 2020 at 17:43"
    re.compile(rf"(?P<month>[a-z]+)\.? (?P<day>\d{{1,2}}),? (?P<year>\d{{4}}),?(?: at)? {CLOCK}"),
    # "4 feb 2020, 17:43:16" (British English), "4. feb. 2020 17:43:16"
    re.compile(rf"(?P<day>\d{{1,2}})\.? (?P<month>[a-z]+)\.?,? (?P<year>\d{{4}}),?(?: at)? {CLOCK}"),
    # "04.02.2020, 17:43:16" (day first), "2/4/2020, 5:43:16 pm" (US), "2020/02/04 17:43:16"
    re.compile(rf"(?P<first>\d{{1,2}})(?P<sep>[./-])(?P<then>\d{{1,2}})(?P=sep)(?P<year>\d{{4}}),? {CLOCK}"),
    re.compile(rf"(?P<year>\d{{4}})[./](?P<month_number>\d{{1,2}})[./](?P<day>\d{{1,2}}),? {CLOCK}"),
)
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class StravaExportReader:
    """The ExportReader of Strava's bulk export."""

    def recognizes(self, archive: ExportArchiveView) -> bool:
        # activities.csv beside profile.csv or the activities/ folder: other exports with an activities.csv
        # (and single files, such as a repository CAR) do not have both.
        names = archive.names()
        listed = set(names)
        for root in _roots(names):
            if root + PROFILE_CSV in listed or any(name.startswith(root + "activities/") for name in names):
                return True
        return False

    def owner(self, archive: ExportArchiveView) -> ExportOwner:
        root = _root(archive)
        entry = root + PROFILE_CSV
        if entry not in set(archive.names()):
            raise ExportUnreadable(f"{entry}: not in the archive (it says whose export this is)")
        _, rows = read_table(archive.read(entry), entry)
        athlete_id = (rows[0].get("Athlete ID") or "").strip() if rows else ""
        if not is_id(athlete_id):
            raise ExportUnreadable(f"{entry}: no Athlete ID (a number)")
        names = [(rows[0].get(column) or "").strip() for column in ("First Name", "Last Name")]
        # The profile has no username; the connected account's falls back to the id the same way.
        username = (rows[0].get("Username") or "").strip() or athlete_id
        return ExportOwner(
            platform_user_id=athlete_id, username=username, display_name=" ".join(filter(None, names)) or None
        )

    async def prepare(self, http: httpx.AsyncClient, owner: ExportOwner) -> dict[str, Any]:
        return {}  # everything is in the file

    def records(
        self, archive: ExportArchiveView, owner: ExportOwner, context: dict[str, Any]
    ) -> Iterator[ExportRecord]:
        root = _root(archive)
        entry = root + ACTIVITIES_CSV
        header, rows = read_table(archive.read(entry), entry)
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise ExportUnreadable(f"{entry}: no column {', '.join(repr(c) for c in missing)} (it cannot be read)")
        names = set(archive.names())
        for number, row in enumerate(rows, start=1):
            yield activity_record(archive, names, root, owner, row, f"{entry} row {number}")


# --- layout --------------------------------------------------------------------------------------------------
def _roots(names: Sequence[str]) -> list[str]:
    """Where activities.csv is: "" at the root, "folder/" one folder down (sorted: the same answer each time)."""
    return sorted(
        {name[: -len(ACTIVITIES_CSV)] for name in names if name == ACTIVITIES_CSV or _one_down(name, ACTIVITIES_CSV)}
    )


def _one_down(name: str, file: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and parts[1] == file and bool(parts[0])


def _root(archive: ExportArchiveView) -> str:
    roots = _roots(archive.names())
    if not roots:
        raise ExportUnreadable(f"{ACTIVITIES_CSV}: not in the archive (at its root or in one folder)")
    if "" in roots:
        return ""
    if len(roots) > 1:
        raise ExportUnreadable(f"{roots[0]}{ACTIVITIES_CSV}: one of several exports in the archive; import each alone")
    return roots[0]


# --- CSV -----------------------------------------------------------------------------------------------------
def read_table(data: bytes, entry: str) -> tuple[list[str], list[dict[str, str]]]:
    """A CSV's header (a repeated name's later appearances as "<name>#2", "#3", ...) and its rows, in order,
    as column -> text (a short row's missing cells are "")."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ExportUnreadable(f"{entry}: not UTF-8 text ({error.reason} at byte {error.start})") from error
    first_line = text.split("\n", 1)[0]
    # Always commas as Strava writes it; a semicolon-separated file is one re-saved by a spreadsheet.
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    try:
        table = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as error:
        raise ExportUnreadable(f"{entry}: not a readable CSV file ({error})") from error
    if not table:
        raise ExportUnreadable(f"{entry}: empty")
    header = unique_headers([cell.strip() for cell in table[0]])
    rows = []
    for cells in table[1:]:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line (a trailing one, often)
        rows.append({column: cells[n] if n < len(cells) else "" for n, column in enumerate(header)})
    return header, rows


def unique_headers(header: Sequence[str]) -> list[str]:
    """Keep every column of a header that repeats names: the first as it is, the next ones "<name>#2", ... (in
    activities.csv the later one is the metric one, so both are kept and neither is guessed away)."""
    counts: dict[str, int] = {}
    keys: list[str] = []
    for name in header:
        counts[name] = counts.get(name, 0) + 1
        key = name if counts[name] == 1 else f"{name}#{counts[name]}"
        while key in keys:  # a real column already named like that: count on
            counts[name] += 1
            key = f"{name}#{counts[name]}"
        keys.append(key)
    return keys


# --- cells ---------------------------------------------------------------------------------------------------
def parse_number(text: str | None) -> float | None:
    """A number written with a decimal point or a decimal comma ("18.96", "18,96", "1,234.5", "1.234,5",
    "1 234,5"); None for an empty cell or text that is no finite number (JSON cannot hold NaN)."""
    if text is None:
        return None
    value = re.sub(r"[\s\u00a0\u202f']", "", text)
    if "," in value and "." in value:
        # Both: the later one is the decimal mark, the other groups thousands.
        value = (
            value.replace(".", "").replace(",", ".") if value.rfind(",") > value.rfind(".") else value.replace(",", "")
        )
    elif value.count(",") == 1:
        value = value.replace(",", ".")
    elif value.count(",") > 1:
        value = value.replace(",", "")
    if not NUMBER.fullmatch(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_bool(text: str | None) -> bool | None:
    value = (text or "").strip().lower()
    if value in {"true", "yes", "1", "1.0", "1,0"}:
        return True
    if value in {"false", "no", "0", "0.0", "0,0"}:
        return False
    return None


def parse_date(text: str) -> datetime | None:
    """`read_date`, within the years an activity can have (None outside them: a damaged or hostile row)."""
    try:
        moment = read_date(text)
    except (OverflowError, ValueError):
        return None
    return moment if moment is not None and EARLIEST <= moment < LATEST else None


def read_date(text: str) -> datetime | None:
    """ "Activity Date" (UTC) in the formats the export's languages write, or ISO 8601; None when it is in none
    of them, or when day and month cannot be told apart ("02/04/2020, 17:43" without AM/PM)."""
    value = re.sub(r"[\s\u00a0\u202f]+", " ", text).strip().lower()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    for pattern in DATE_FORMATS:
        match = pattern.fullmatch(value)
        if match is None:
            continue
        parts = match.groupdict()
        half = parts["half"]
        if parts.get("month"):
            month, day = MONTHS.get(parts["month"]), int(parts["day"])
        elif parts.get("month_number"):
            month, day = int(parts["month_number"]), int(parts["day"])
        else:
            first, then = int(parts["first"]), int(parts["then"])
            if parts["sep"] == "." or first > 12:
                day, month = first, then
            elif then > 12 or half or first == then:
                month, day = first, then  # US order (a 12-hour clock is the US export)
            else:
                return None
        hour = int(parts["hour"])
        if half:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if half == "p" else 0)
        if month is None:
            return None
        try:
            return datetime(
                int(parts["year"]), month, day, hour, int(parts["minute"]), int(parts["second"] or 0), tzinfo=UTC
            )
        except ValueError:
            return None
    return None


def sport_types(label: str) -> tuple[str, str]:
    """(sport_type, type) of activities.csv's "Activity Type" ("Trail Run" -> ("TrailRun", "Run")). A name we do
    not know (another language, a new sport) is kept as written for both."""
    compact = re.sub(r"[\s\-_]", "", label)
    sport = SPORT_ALIASES.get(compact.lower()) or next((s for s in SPORT_TYPES if s.lower() == compact.lower()), None)
    if sport is None:
        return label.strip(), label.strip()
    return sport, ACTIVITY_TYPES.get(sport, sport)


# --- tracks --------------------------------------------------------------------------------------------------
class TrackUnreadable(Exception):
    """The track file cannot be read; the message says why (the entry is named by the caller)."""


@dataclass
class Track:
    """What a track file tells: its positions (thinned evenly past TRACK_POINTS), times, length, time zone."""

    format: str
    points: int = 0
    path: list[tuple[float, float]] = field(default_factory=list)
    first: tuple[float, float] | None = None
    last: tuple[float, float] | None = None
    start: datetime | None = None
    end: datetime | None = None
    recorded_distance: float | None = None  # what the file says (FIT, TCX), else None
    measured_distance: float = 0.0  # along its positions
    utc_offset: int | None = None  # seconds: FIT's local time of day minus UTC
    _stride: int = 1
    _positions: int = 0

    def add(self, lat: float | None, lng: float | None, time: datetime | None, distance: float | None) -> None:
        self.points += 1
        if time is not None:
            self.start = time if self.start is None else min(self.start, time)
            self.end = time if self.end is None else max(self.end, time)
        if distance is not None and math.isfinite(distance):
            self.recorded_distance = max(self.recorded_distance or 0.0, distance)
        if lat is None or lng is None or not (-90 <= lat <= 90 and -180 <= lng <= 180) or (lat, lng) == (0.0, 0.0):
            return  # no fix (indoors, or a device's 0,0 before it has one)
        point = (lat, lng)
        if self.last is not None:
            self.measured_distance += haversine(self.last, point)
        self.first = self.first or point
        self.last = point
        if self._positions % self._stride == 0:
            self.path.append(point)
            if len(self.path) > TRACK_POINTS:
                self.path = self.path[::2]
                self._stride *= 2
        self._positions += 1

    def line(self) -> list[tuple[float, float]]:
        """The kept positions, ending at the last one."""
        if self.last is not None and (not self.path or self.path[-1] != self.last):
            return [*self.path, self.last]
        return list(self.path)

    @property
    def distance(self) -> float | None:
        if self.recorded_distance:
            return self.recorded_distance
        return self.measured_distance if self.first is not None else None

    def summary(self, entry: str) -> dict[str, Any]:
        """The track as the record's payload keeps it (JSON: plain values)."""
        return {
            "entry": entry,
            "format": self.format,
            "points": self.points,
            "start_latlng": _latlng(self.first),
            "end_latlng": _latlng(self.last),
            "start_time": _iso(self.start) if self.start else None,
            "end_time": _iso(self.end) if self.end else None,
            "distance": round(self.distance, 1) if self.distance is not None else None,
            "utc_offset": self.utc_offset,
        }


def haversine(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lng1, lat2, lng2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS * math.asin(min(1.0, math.sqrt(h)))


def _latlng(point: tuple[float, float] | None) -> list[float]:
    return [round(point[0], 6), round(point[1], 6)] if point else []  # the API's [] for "no position"


ID = re.compile(r"[0-9]{1,19}")  # Strava's ids: plain ASCII digits that fit a bigint
# Activity dates Trove takes: a date outside these years is a damaged or hostile row, not an activity.
EARLIEST, LATEST = datetime(1970, 1, 2, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)
# A track file is parsed whole in memory (a GPX of 35 MB takes ~700 MB): a longer one is kept, not read.
MAX_TRACK_BYTES = 64 * 1024 * 1024


def is_id(text: str) -> bool:
    return ID.fullmatch(text) is not None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # as the API writes dates


def track_format(entry: str) -> str | None:
    name = entry.lower().removesuffix(".gz")
    return next((kind for kind in ("gpx", "tcx", "fit") if name.endswith("." + kind)), None)


def read_track(data: bytes, kind: str) -> Track:
    """The track of a GPX, TCX or FIT file's bytes (already unpacked); TrackUnreadable saying why not."""
    try:
        if kind == "fit":
            return read_fit(data)
        if kind == "gpx":
            return read_gpx(data)
        return read_tcx(data)
    except TrackUnreadable:
        raise
    except Exception as error:
        # A damaged or hostile file may make a parser fail in any way: only this activity's map is lost.
        raise TrackUnreadable(f"not a readable {kind.upper()} file ({type(error).__name__}: {error})") from error


class _Root(Exception):
    """Raised by the DOCTYPE check at the root element: everything that could declare entities is behind us."""


def refuse_doctype(data: bytes) -> None:
    """Refuse XML with a DOCTYPE (entity declarations: billion laughs, external files), read with expat up to the
    root element only. An encoding expat does not know, or malformed XML before the root, is refused too."""

    def doctype(*_: object) -> None:
        raise TrackUnreadable("XML with a DOCTYPE (refused: it could declare entities)")

    def root(*_: object) -> None:
        raise _Root

    parser = xml.parsers.expat.ParserCreate()
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    parser.StartElementHandler = root
    try:
        parser.Parse(data, True)
    except _Root:
        return
    except xml.parsers.expat.ExpatError as error:
        raise TrackUnreadable(f"not well-formed XML ({error})") from error
    raise TrackUnreadable("XML without any element")


def _xml(data: bytes) -> bytes:
    # Strava's TCX files often start with blanks before the XML declaration, which parsers refuse.
    data = data.lstrip(b" \t\r\n")
    refuse_doctype(data)
    return data


def read_gpx(data: bytes) -> Track:
    document = gpxpy.parse(_xml(data))
    track = Track("gpx")
    for trk in document.tracks:
        for segment in trk.segments:
            for point in segment.points:
                track.add(point.latitude, point.longitude, _aware(point.time), None)
    return track


def _local(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, *path: str) -> ET.Element | None:
    """The first descendant along `path` by local names (TCX comes with or without its namespace)."""
    for name in path:
        found = next((child for child in element if _local(child) == name), None)
        if found is None:
            return None
        element = found
    return element


def _text_number(element: ET.Element, *path: str) -> float | None:
    found = _child(element, *path)
    return parse_number(found.text) if found is not None and found.text else None


def read_tcx(data: bytes) -> Track:
    root = ET.fromstring(_xml(data))
    track = Track("tcx")
    for point in root.iter():
        if _local(point) != "Trackpoint":
            continue
        time = _child(point, "Time")
        moment = None
        if time is not None and time.text:
            try:
                moment = _aware(datetime.fromisoformat(time.text.strip().replace("Z", "+00:00")))
            except ValueError:
                moment = None
        track.add(
            _text_number(point, "Position", "LatitudeDegrees"),
            _text_number(point, "Position", "LongitudeDegrees"),
            moment,
            _text_number(point, "DistanceMeters"),
        )
    return track


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def read_fit(data: bytes) -> Track:
    track = Track("fit")
    reader = fitdecode.FitReader(
        io.BytesIO(data), check_crc=fitdecode.CrcCheck.RAISE, error_handling=fitdecode.ErrorHandling.RAISE
    )
    with reader as fit:
        for frame in fit:
            if not isinstance(frame, fitdecode.FitDataMessage):
                continue
            if frame.name == "record":
                lat, lng = (
                    frame.get_value("position_lat", fallback=None),
                    frame.get_value("position_long", fallback=None),
                )
                distance = frame.get_value("distance", fallback=None)
                track.add(
                    lat * SEMICIRCLE_DEGREES if isinstance(lat, int) else None,
                    lng * SEMICIRCLE_DEGREES if isinstance(lng, int) else None,
                    _aware(frame.get_value("timestamp", fallback=None)),
                    float(distance) if isinstance(distance, int | float) else None,
                )
            elif frame.name == "activity":
                # local_timestamp is the same moment on the local clock (fitdecode labels it UTC as well).
                utc, local = (
                    frame.get_value("timestamp", fallback=None),
                    frame.get_value("local_timestamp", fallback=None),
                )
                if isinstance(utc, datetime) and isinstance(local, datetime):
                    offset = (local.replace(tzinfo=None) - utc.astimezone(UTC).replace(tzinfo=None)).total_seconds()
                    if abs(offset) <= 14 * 3600:
                        track.utc_offset = int(round(offset / 900) * 900)  # zones are quarter hours
    return track


# --- polylines -----------------------------------------------------------------------------------------------
def encode_polyline(points: Sequence[tuple[float, float]]) -> str:
    """Google's encoded polyline (precision 1e-5), the format of the API's map.polyline/summary_polyline: each
    coordinate as its difference from the previous one, in 5-bit chunks offset into printable ASCII."""
    out: list[str] = []
    previous = (0, 0)
    for lat, lng in points:
        current = (round(lat * 1e5), round(lng * 1e5))
        for delta in (current[0] - previous[0], current[1] - previous[1]):
            value = ~(delta << 1) if delta < 0 else delta << 1
            while value >= 0x20:
                out.append(chr((0x20 | (value & 0x1F)) + 63))
                value >>= 5
            out.append(chr(value + 63))
        previous = current
    return "".join(out)


def thin(points: Sequence[tuple[float, float]], limit: int) -> list[tuple[float, float]]:
    """At most `limit` points, evenly spaced along the sequence, its first and last kept."""
    if len(points) <= limit:
        return list(points)
    step = (len(points) - 1) / (limit - 1)
    return [points[round(n * step)] for n in range(limit)]


# --- one activity --------------------------------------------------------------------------------------------
def photo_key(listed: str) -> str:
    """The media key of a photo in media/. The export names a photo by a UUID, which we take to be the photo's
    unique id, the key of the API's photos (normalize's MediaRef): one photo, one media row, whichever way it
    came. Any other name gets a key of the export's own."""
    stem = PurePosixPath(listed).stem
    return stem if UUID.fullmatch(stem) else f"export-photo:{listed}"


def activity_record(
    archive: ExportArchiveView, names: set[str], root: str, owner: ExportOwner, row: dict[str, str], where: str
) -> ExportRecord:
    """One activities.csv row as a record (`where` names the row in problems): kept raw whatever happens; no
    post without an id and a date to place it by; without its track, a post all the same."""
    raw_id = (row.get("Activity ID") or "").strip()
    payload: dict[str, Any] = {"row": row, "track": None}
    identity = f"activity:{raw_id}"
    if not is_id(raw_id):
        return ExportRecord(
            identity, EVENT_TYPE, payload, problem=f"{where}: the Activity ID {raw_id!r} is not a number"
        )
    activity_id = int(raw_id)
    started = parse_date(row.get("Activity Date") or "")
    if started is None:
        date = row.get("Activity Date")
        problem = f"{where} (activity {activity_id}): the Activity Date {date!r} is in no format Trove reads"
        return ExportRecord(identity, EVENT_TYPE, payload, problem=problem)

    problems: list[str] = []
    files: list[ExportFile] = []
    track: Track | None = None
    listed_file = (row.get("Filename") or "").strip()
    file_entry = root + listed_file if listed_file else None
    if file_entry is not None:
        if file_entry not in names:
            problems.append(f"{file_entry}: named in {ACTIVITIES_CSV} but not in the archive")
        else:
            files.append(ExportFile(media_key=f"activity-file:{activity_id}", entry=file_entry))
            kind = track_format(file_entry)
            if kind is None:
                problems.append(f"{file_entry}: not a track format Trove reads (GPX, TCX, FIT); kept as it is")
            else:
                try:
                    data = archive.read_unpacked(file_entry)
                    if len(data) > MAX_TRACK_BYTES:
                        raise TrackUnreadable(f"{len(data)} bytes, over the {MAX_TRACK_BYTES} a track is read to")
                    track = read_track(data, kind)
                except (ExportUnreadable, TrackUnreadable) as error:
                    text = str(error)
                    problems.append(text if text.startswith(file_entry) else f"{file_entry}: {text}")

    media: list[dict[str, str]] = []
    for listed in [part.strip() for part in (row.get("Media") or "").split("|") if part.strip()]:
        entry = root + listed
        if entry not in names:
            problems.append(f"{entry}: named in {ACTIVITIES_CSV} but not in the archive")
            continue
        key = photo_key(listed)
        files.append(ExportFile(media_key=key, entry=entry))
        media.append({"entry": entry, "media_key": key})

    payload["track"] = track.summary(file_entry or "") if track is not None else None
    post_data = activity_post_data(activity_id, started, row, owner, track, listed_file, media)
    post: NormalizedPost = normalize(post_data)
    return ExportRecord(
        identity,
        EVENT_TYPE,
        payload,
        post=post,
        files=tuple(files),
        problem="; ".join(problems) or None,
    )


def _cell(row: dict[str, str], *columns: str) -> str | None:
    """The first of `columns` the row has a non-empty cell for (the metric one first, where names repeat)."""
    for column in columns:
        value = (row.get(column) or "").strip()
        if value:
            return value
    return None


def activity_post_data(
    activity_id: int,
    started: datetime,
    row: dict[str, str],
    owner: ExportOwner,
    track: Track | None,
    listed_file: str,
    media: list[dict[str, str]],
) -> dict[str, Any]:
    """The activity in the API's DetailedActivity shape, from what the export says (keys it cannot know are
    left out, not invented), plus `trove_export`."""
    label = (row.get("Activity Type") or "").strip()
    sport, kind = sport_types(label)
    data: dict[str, Any] = {
        "resource_state": 3,  # a detail: the export is the athlete's whole record of it (description, note, gear)
        "id": activity_id,
        "name": row.get("Activity Name") or "",
        "description": row.get("Activity Description") or "",
        "type": kind,
        "sport_type": sport,
        "start_date": _iso(started),
    }
    if owner.platform_user_id and is_id(owner.platform_user_id):
        data["athlete"] = {"id": int(owner.platform_user_id), "resource_state": 1}
    if track is not None and track.utc_offset is not None:
        # The API's start_date_local: the local clock written with a Z (its way).
        data["start_date_local"] = _iso(started + timedelta(seconds=track.utc_offset))
        data["utc_offset"] = float(track.utc_offset)

    def number(key: str, *columns: str, integer: bool = False) -> None:
        value = parse_number(_cell(row, *columns))
        if value is not None:
            data[key] = round(value) if integer else value

    # Both "Elapsed Time" columns are seconds; the later, metric block has the rest in SI units.
    number("elapsed_time", "Elapsed Time#2", "Elapsed Time", integer=True)
    number("moving_time", "Moving Time", integer=True)
    number("total_elevation_gain", "Elevation Gain")
    number("elev_high", "Elevation High")
    number("elev_low", "Elevation Low")
    number("average_speed", "Average Speed")  # m/s
    number("max_speed", "Max Speed")  # m/s
    number("average_heartrate", "Average Heart Rate")
    number("max_heartrate", "Max Heart Rate#2", "Max Heart Rate")
    number("average_cadence", "Average Cadence")
    number("average_watts", "Average Watts")
    number("max_watts", "Max Watts")
    number("weighted_average_watts", "Weighted Average Power")
    number("calories", "Calories")
    number("average_temp", "Average Temperature")
    number("suffer_score", "Relative Effort#2", "Relative Effort")
    if "average_heartrate" in data:
        data["has_heartrate"] = True

    # Distance in metres: the metric "Distance" (the second); without it, the first is in the athlete's display
    # units (km or mi, metres for swims), which the export does not name, so the track's length is used instead.
    distance_source = None
    metric = parse_number(_cell(row, "Distance#2"))
    if metric is not None:
        data["distance"], distance_source = metric, "activities.csv (metres)"
    elif track is not None and track.distance is not None:
        data["distance"], distance_source = round(track.distance, 1), "track"

    commute = parse_bool(_cell(row, "Commute", "Commute#2"))
    if commute is not None:
        data["commute"] = commute
    flagged = parse_bool(_cell(row, "Flagged"))
    if flagged is not None:
        data["flagged"] = flagged
    data["manual"] = not listed_file  # an activity entered by hand has no file
    gear = _cell(row, "Activity Gear")
    if gear:
        data["gear"] = {"id": None, "name": gear, "resource_state": 2}  # the export names gear, no id
    note = _cell(row, "Activity Private Note")
    if note:
        data["private_note"] = note  # never public: not on normalize's allow-list
    # The export does not say who could see the activity: unknown is private ("only me") until a sync tells.
    data["private"] = True
    data["visibility"] = "only_me"

    line = track.line() if track is not None else []
    data["start_latlng"] = _latlng(track.first) if track is not None else []
    data["end_latlng"] = _latlng(track.last) if track is not None else []
    data["map"] = {
        "id": f"a{activity_id}",
        "summary_polyline": encode_polyline(thin(line, SUMMARY_POINTS)),
        "polyline": encode_polyline(thin(line, DETAIL_POINTS)),
        "resource_state": 3,
    }
    data["total_photo_count"] = len(media)
    data["photos"] = {"primary": None, "use_primary_photo": False, "count": len(media)}
    data["trove_export"] = {
        "file": listed_file or None,
        "row": row,
        "sport_label": label,
        "distance_source": distance_source,
        "display_distance": _cell(row, "Distance"),  # in the athlete's units, as the export shows it
        "track": track.summary(listed_file) if track is not None else None,
        "media": media,
    }
    return data
