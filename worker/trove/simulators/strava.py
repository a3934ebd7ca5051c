"""A Strava API v3 simulator: OAuth (authorize, token, refresh with rotating refresh tokens, deauthorize),
athlete, activity list/detail/photos, photo files with expiring signed URLs, push subscriptions with the
hub.challenge handshake, webhook deliveries, app-wide rate limits (15-minute and daily windows, overall and
read) with 429s that still count, as Strava's do, and their headers on every API answer, and scripted 5xx blips.
Detailed activities carry gear, splits (metric and standard), laps, best efforts for runs and power for rides;
/athlete is the detailed athlete (resource_state 3, measurement preference, shoes and bikes). Field names, types
and shapes follow Strava's documentation (see shared/fixtures/strava), so the connector works the same against
the real Strava.

Simulator-only controls live under /_sim (create athletes and activities, edit and delete them, deauthorize,
configure limits and failures); each change delivers the webhook event Strava would send.

Rate accounting, scripted faults, token issuance, delivery retries and /_sim/config and /_sim/stats come from
`simulators.base.PlatformSimulator`; this module holds Strava's routes, payloads, error bodies and headers.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trove.simulators.base import JPEG, FixedWindow, PlatformSimulator, RateLimit

SPORTS = [
    ("Run", "Run", "Morning Run"),
    ("Run", "TrailRun", "Trail Run"),
    ("Ride", "Ride", "Afternoon Ride"),
    ("Ride", "MountainBikeRide", "Mountain Bike Ride"),
    ("Swim", "Swim", "Lunch Swim"),
    ("Hike", "Hike", "Evening Hike"),
    ("Walk", "Walk", "Morning Walk"),
]
# Families by `type` (Strava's ActivityType: a TrailRun is a Run, a MountainBikeRide a Ride).
RUNS = {"Run", "VirtualRun"}
RIDES = {"Ride", "EBikeRide", "VirtualRide"}
ON_FOOT = RUNS | {"Hike", "Walk"}
# Strava's best-effort distances for runs: the name it gives each and its length in metres.
BEST_EFFORTS = [
    ("400m", 400), ("1/2 mile", 805), ("1K", 1000), ("1 mile", 1609), ("2 mile", 3219), ("5K", 5000),
    ("10K", 10000), ("15K", 15000), ("10 mile", 16090), ("20K", 20000), ("Half-Marathon", 21097),
    ("30K", 30000), ("Marathon", 42195), ("50K", 50000),
]  # fmt: skip
MILE = 1609.34
POLYLINE = (
    "ki{eFvqfiVqAWQIGEEKAYJgBVqDJ{BHa@jAkNJw@Pw@V{APs@^aABQAOEQGKoJ_FuJkFqAo@{A}@sH{DiAs@Q]?WVy@`@oBt@_CB"
    "]KYMMkB{AQEI@WT{BlE{@zAQPI@ICsCqA_BcAeCmAaFmCqIoEcLeG}KcG}A}@cDaBiDsByAkAuBqBi@y@_@o@o@kB}BgIoA_EUkA"
    "McACa@BeBBq@LaAJe@b@uA`@_AdBcD`@iAPq@RgALqAB{@EqAyAoOCy@AuA"
)


@dataclass
class Activity:
    data: dict[str, Any]
    description: str
    photos: list[dict[str, Any]]
    deleted: bool = False


@dataclass
class Athlete:
    id: int
    username: str
    firstname: str
    lastname: str
    activities: dict[int, Activity] = field(default_factory=dict)
    authorized: bool = True
    # Gear as Strava's SummaryGear (shoes have "g" ids, bikes "b" ids; distance in metres), the first primary.
    shoes: list[dict[str, Any]] = field(default_factory=list)
    bikes: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        def gear(prefix: str, n: int, name: str, distance: float) -> dict[str, Any]:
            return {"id": f"{prefix}{self.id}0{n}", "primary": n == 1, "name": name, "resource_state": 2,
                    "distance": distance}  # fmt: skip

        self.shoes = self.shoes or [gear("g", 1, "Pegasus 40", 412345.0), gear("g", 2, "Speedgoat 5", 98765.0)]
        self.bikes = self.bikes or [gear("b", 1, "Tarmac", 3254761.0), gear("b", 2, "Stumpjumper", 456789.0)]

    def gear(self, gear_id: str | None) -> dict[str, Any] | None:
        return next((dict(gear) for gear in (*self.shoes, *self.bikes) if gear["id"] == gear_id), None)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "resource_state": 1}

    def detailed(self) -> dict[str, Any]:
        """GET /athlete: Strava's DetailedAthlete (resource_state 3), the profile plus preferences and gear."""
        return {
            **self.profile(),
            "resource_state": 3,
            "follower_count": 5,
            "friend_count": 5,
            "mutual_friend_count": 0,
            "athlete_type": 1,
            "date_preference": "%m/%d/%Y",
            "measurement_preference": "meters",
            "clubs": [],
            "ftp": None,
            "weight": 61.2,
            "bikes": [dict(bike) for bike in self.bikes],
            "shoes": [dict(shoe) for shoe in self.shoes],
        }

    def profile(self) -> dict[str, Any]:
        """The athlete as the token exchange carries it: Strava's SummaryAthlete (resource_state 2)."""
        return {
            "id": self.id,
            "username": self.username,
            "resource_state": 2,
            "firstname": self.firstname,
            "lastname": self.lastname,
            "city": "Portland",
            "state": "Oregon",
            "country": "United States",
            "sex": "F",
            "premium": False,
            "summit": False,
            "created_at": "2019-03-01T10:00:00Z",
            "updated_at": "2026-11-01T10:00:00Z",
            "badge_type_id": 0,
            "profile_medium": f"https://dgalywyr863hv.cloudfront.net/pictures/athletes/{self.id}/medium.jpg",
            "profile": f"https://dgalywyr863hv.cloudfront.net/pictures/athletes/{self.id}/large.jpg",
            "follower": None,
            "friend": None,
        }


class Window(RateLimit):
    """Strava's counter pair: 15-minute windows (:00/:15/:30/:45) and the UTC day."""

    def __init__(self, limit_15: int, limit_day: int) -> None:
        self.quarter, self.daily = FixedWindow(limit_15, 900), FixedWindow(limit_day, 86400)
        super().__init__(self.quarter, self.daily)

    @property
    def used_15(self) -> int:
        return self.quarter.used

    @property
    def used_day(self) -> int:
        return self.daily.used

    def header_pair(self) -> tuple[str, str]:
        """X-RateLimit-Limit and X-RateLimit-Usage: "15-minute,daily"."""
        return f"{self.quarter.limit},{self.daily.limit}", f"{self.quarter.used},{self.daily.used}"


class StravaSimulator(PlatformSimulator[int]):
    # Strava: "requests violating the short term limit will still count toward the long term limit": a 429 uses
    # up the windows like any request, so usage can read past the limit.
    refused_requests_count = True

    def __init__(
        self,
        *,
        client_id: str = "trove-demo",
        client_secret: str = "trove-demo-secret",
        overall_limits: tuple[int, int] = (200, 2000),
        read_limits: tuple[int, int] = (100, 1000),
        token_ttl: int = 6 * 3600,
        seed: int = 1,
    ) -> None:
        super().__init__(client_id=client_id, client_secret=client_secret, token_ttl=token_ttl, seed=seed)
        self.overall = Window(*overall_limits)
        self.read = Window(*read_limits)
        self.athletes: dict[int, Athlete] = {}
        self.subscription: dict[str, Any] | None = None
        self.next_subscription_id = 120475
        self.next_activity_id = 10_000_000_000
        self.photo_url_ttl = 3600
        self.photo_secret = secrets.token_bytes(16)
        self.default_athlete: int | None = None
        self.seed = seed

    # --- data ----------------------------------------------------------------------------------------
    def add_athlete(self, activities: int = 0, athlete_id: int | None = None, username: str = "demo_runner") -> Athlete:
        athlete_id = athlete_id or 134815 + len(self.athletes)
        athlete = Athlete(athlete_id, username, "Demo", "Runner")
        self.athletes[athlete_id] = athlete
        if self.default_athlete is None:
            self.default_athlete = athlete_id
        newest = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        for n in range(activities):
            self._new_activity(athlete, newest - timedelta(hours=26 * (activities - 1 - n)))
        return athlete

    def add_activity(self, athlete: Athlete, start: datetime, **overrides: Any) -> Activity:
        """One more activity that started at `start` (several may share a second, as on Strava)."""
        return self._new_activity(athlete, start, **overrides)

    def _new_activity(self, athlete: Athlete, start: datetime, **overrides: Any) -> Activity:
        rng = self.random
        kind, sport, name = rng.choice(SPORTS)
        activity_id = self.next_activity_id
        self.next_activity_id += 1
        moving = rng.randint(900, 10800)
        distance = round(moving * rng.uniform(1.5, 7.5), 1)
        visibility = rng.choices(["everyone", "followers_only", "only_me"], weights=[85, 10, 5])[0]
        photo_count = rng.choices([0, 1, 2, 3], weights=[70, 15, 10, 5])[0]
        lat, lng = round(45.52 + rng.uniform(-0.1, 0.1), 6), round(-122.68 + rng.uniform(-0.1, 0.1), 6)
        data: dict[str, Any] = {
            "resource_state": 2,
            "athlete": athlete.summary(),
            "name": name,
            "distance": distance,
            "moving_time": moving,
            "elapsed_time": moving + rng.randint(0, 900),
            "total_elevation_gain": round(rng.uniform(0, 900), 1),
            "type": kind,
            "sport_type": sport,
            "workout_type": None,
            "id": activity_id,
            "external_id": f"garmin_push_{activity_id}",
            "upload_id": activity_id * 7,
            "upload_id_str": str(activity_id * 7),
            "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "start_date_local": (start - timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timezone": "(GMT-08:00) America/Los_Angeles",
            "utc_offset": -28800.0,
            "start_latlng": [lat, lng],
            "end_latlng": [round(lat + 0.002, 6), round(lng - 0.003, 6)],
            "location_city": None,
            "location_state": None,
            "location_country": "United States",
            "achievement_count": rng.randint(0, 5),
            "kudos_count": rng.randint(0, 40),
            "comment_count": rng.randint(0, 6),
            "athlete_count": 1,
            "photo_count": 0,
            "map": {"id": f"a{activity_id}", "summary_polyline": POLYLINE, "resource_state": 2},
            "trainer": False,
            "commute": rng.random() < 0.1,
            "manual": False,
            "private": visibility == "only_me",
            "visibility": visibility,
            "flagged": False,
            "gear_id": None,  # set by _equipment below
            "from_accepted_tag": False,
            "average_speed": round(distance / moving, 3),
            "max_speed": round(distance / moving * 1.8, 1),
            "has_heartrate": True,
            "average_heartrate": round(rng.uniform(120, 165), 1),
            "max_heartrate": float(rng.randint(165, 190)),
            "heartrate_opt_out": False,
            "display_hide_heartrate_option": True,
            "elev_high": round(rng.uniform(50, 900), 1),
            "elev_low": round(rng.uniform(0, 50), 1),
            "pr_count": rng.randint(0, 3),
            "total_photo_count": photo_count,
            "has_kudoed": False,
            "suffer_score": float(rng.randint(5, 200)),
        }
        # Gear, device and power follow the type the activity ends up with (a test may ask for a Ride).
        data.update(self._equipment(athlete, activity_id, overrides.get("type", kind), distance, moving))
        data.update(overrides)
        photos = [
            {
                # Deterministic per activity, like Strava's: the same photo keeps its id across restarts.
                "unique_id": "{}-{}-4867-9E8D-{}".format(
                    *(lambda h: (h[:8], h[8:12], h[12:24]))(
                        hashlib.sha1(f"{activity_id}-{i}".encode()).hexdigest().upper()
                    )
                ),
                "activity_id": activity_id,
                "activity_name": data["name"],
                "resource_state": 2,
                "caption": "",
                "source": 1,
                "uploaded_at": data["start_date"],
                "created_at": data["start_date"],
                "location": data["start_latlng"],
                "default_photo": i == 0,
            }
            for i in range(photo_count)
        ]
        activity = Activity(data, f"{name} with {rng.choice(['friends', 'the dog', 'a headwind', 'sunshine'])}", photos)
        athlete.activities[activity_id] = activity
        return activity

    def _rng(self, activity_id: int) -> random.Random:
        """A generator of this activity's own: its gear, power and detail figures come out the same on every
        request, and drawing them leaves the simulator's sequence (names, counts, photos) as it was."""
        return random.Random(f"{self.seed}:{activity_id}")

    def _equipment(self, athlete: Athlete, activity_id: int, kind: str, distance: float, moving: int) -> dict[str, Any]:
        """The summary fields that depend on the sport: the recording device, gear (shoes on foot, a bike on rides,
        none in the pool), cadence, and power (a power meter on most rides: measured watts, device_watts true;
        otherwise Strava's estimate, device_watts false)."""
        rng = self._rng(activity_id)
        fields: dict[str, Any] = {
            "device_name": "Garmin Edge 840" if kind in RIDES else "Garmin Forerunner 965",
            "gear_id": None,
        }
        if kind in ON_FOOT:
            fields["gear_id"] = rng.choice(athlete.shoes)["id"]
        elif kind in RIDES:
            fields["gear_id"] = rng.choice(athlete.bikes)["id"]
        if kind in RUNS:
            fields["average_cadence"] = round(rng.uniform(78, 92), 1)
        if kind in RIDES:
            watts = round(rng.uniform(120, 260), 1)
            fields["average_cadence"] = round(rng.uniform(70, 95), 1)
            fields["average_watts"] = watts
            fields["kilojoules"] = round(watts * moving / 1000, 1)
            fields["device_watts"] = rng.random() < 0.7
            if fields["device_watts"]:
                fields["weighted_average_watts"] = int(watts * rng.uniform(1.02, 1.12))
                fields["max_watts"] = int(watts * rng.uniform(2.5, 4.0))
        return fields

    # --- helpers -------------------------------------------------------------------------------------
    def _photo_url(self, unique_id: str, size: int) -> str:
        expires = int(time.time()) + self.photo_url_ttl
        sig = hmac.new(self.photo_secret, f"{unique_id}:{size}:{expires}".encode(), "sha256").hexdigest()[:32]
        return f"{self.base_url}/photos/{unique_id}-{size}x{size * 3 // 4}.jpg?" + urlencode(
            {"Expires": expires, "Signature": sig, "size": size}
        )

    def _photo_urls(self, unique_id: str, sizes: list[int]) -> dict[str, str]:
        return {str(size): self._photo_url(unique_id, size) for size in sizes}

    def _detail(self, activity: Activity) -> dict[str, Any]:
        data = dict(activity.data)
        data["resource_state"] = 3
        data["description"] = activity.description
        data["calories"] = round(data["moving_time"] * 0.19, 1)
        kind = data.get("type")
        rng = self._rng(data["id"])
        data.setdefault("device_name", "Garmin Forerunner 965")
        data["embed_token"] = secrets.token_hex(20)
        data["map"] = {**data["map"], "resource_state": 3, "polyline": POLYLINE}
        data["segment_efforts"] = []
        data["splits_metric"] = self._splits(data, 1000.0, rng)
        data["splits_standard"] = self._splits(data, MILE, rng)
        data["laps"] = [self._lap(data)]
        if kind in RUNS:
            data["best_efforts"] = self._best_efforts(data, rng)
        owner = self.athletes.get(data["athlete"]["id"])
        gear = owner.gear(data.get("gear_id")) if owner is not None else None
        if gear is not None:
            data["gear"] = gear
        data["average_temp"] = rng.randint(4, 28)  # the device's thermometer
        data["partner_brand_tag"] = None
        data["leaderboard_opt_out"] = False
        data["segment_leaderboard_opt_out"] = False
        data["highlighted_kudosers"] = [  # other people: never shown to readers (see the normalizer)
            {
                "destination_url": f"strava://athletes/{900000 + n}",
                "display_name": name,
                "avatar_url": f"https://dgalywyr863hv.cloudfront.net/pictures/athletes/{900000 + n}/medium.jpg",
                "show_name": True,
            }
            for n, name in enumerate(["Marianne T.", "Jon K.", "Aiko S."][: min(int(data.get("kudos_count") or 0), 3)])
        ]
        data["photos"] = {
            "primary": (
                {
                    "id": None,
                    "unique_id": activity.photos[0]["unique_id"],
                    "urls": self._photo_urls(activity.photos[0]["unique_id"], [100, 600]),
                    "source": 1,
                }
                if activity.photos
                else None
            ),
            "use_primary_photo": bool(activity.photos),
            "count": len(activity.photos),
        }
        data["photo_count"] = 0
        data["hide_from_home"] = False
        return data

    def _splits(self, data: dict[str, Any], length: float, rng: random.Random) -> list[dict[str, Any]]:
        """Strava's Split list: one per kilometre (splits_metric) or mile (splits_standard), the rest last."""
        distance, moving, elapsed = float(data["distance"]), int(data["moving_time"]), int(data["elapsed_time"])
        if distance <= 0:
            return []
        run = data.get("type") in RUNS
        splits = []
        done = 0.0
        while done < distance - 0.05:
            part = round(min(length, distance - done), 1)  # rounded as sent, so that the splits add up
            share = part / distance
            split_moving = max(round(moving * share * rng.uniform(0.95, 1.05)), 1)
            splits.append(
                {
                    "distance": part,
                    "elapsed_time": split_moving + round((elapsed - moving) * share),
                    "elevation_difference": round(rng.uniform(-15, 15), 1),
                    "moving_time": split_moving,
                    "split": len(splits) + 1,
                    "average_speed": round(part / split_moving, 2),
                    "average_grade_adjusted_speed": round(part / split_moving * rng.uniform(0.98, 1.04), 2)
                    if run
                    else None,
                    "average_heartrate": round(rng.uniform(120, 170), 1),
                    "pace_zone": rng.randint(1, 5) if run else 0,
                }
            )
            done += part
        return splits

    def _lap(self, data: dict[str, Any]) -> dict[str, Any]:
        """Strava's Lap: an activity recorded without pressing lap has one, the whole of it."""
        lap = {
            "id": data["id"] * 3 + 1,
            "resource_state": 2,
            "name": "Lap 1",
            "activity": {"id": data["id"], "resource_state": 1},
            "athlete": dict(data["athlete"]),
            "elapsed_time": data["elapsed_time"],
            "moving_time": data["moving_time"],
            "start_date": data["start_date"],
            "start_date_local": data["start_date_local"],
            "distance": data["distance"],
            "start_index": 0,
            "end_index": data["elapsed_time"] - 1,
            "total_elevation_gain": data["total_elevation_gain"],
            "average_speed": data["average_speed"],
            "max_speed": data["max_speed"],
            "lap_index": 1,
            "split": 1,
        }
        for key in ("average_cadence", "device_watts", "average_watts", "average_heartrate", "max_heartrate"):
            if key in data:
                lap[key] = data[key]
        if data.get("type") in RUNS:
            lap["pace_zone"] = 2
        return lap

    def _best_efforts(self, data: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
        """A run's best efforts (Strava's DetailedSegmentEffort without a segment): every standard distance the
        run covered, each at a little faster than the run's average pace."""
        efforts = []
        speed = float(data["average_speed"]) or 1.0
        start = datetime.fromisoformat(data["start_date"].replace("Z", "+00:00"))
        local = datetime.fromisoformat(data["start_date_local"].replace("Z", "+00:00"))
        for n, (name, length) in enumerate(BEST_EFFORTS):
            if length > data["distance"]:
                break
            elapsed = max(int(length / (speed * rng.uniform(1.0, 1.15))), 1)
            offset = rng.randint(0, max(int(data["moving_time"]) - elapsed, 0))
            efforts.append(
                {
                    "id": data["id"] * 100 + n,
                    "resource_state": 2,
                    "name": name,
                    "activity": {"id": data["id"], "resource_state": 1},
                    "athlete": dict(data["athlete"]),
                    "elapsed_time": elapsed,
                    "moving_time": elapsed,
                    "start_date": (start + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "start_date_local": (local + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "distance": float(length),
                    "start_index": offset,
                    "end_index": offset + elapsed,
                    "kom_rank": None,
                    "pr_rank": rng.choice([None, None, None, 1, 2, 3]),
                    "achievements": [],
                    "segment": None,  # a best effort belongs to no segment
                }
            )
        return efforts

    def _error(self, status: int, message: str, errors: list[dict[str, str]] | None = None) -> JSONResponse:
        return JSONResponse({"message": message, "errors": errors or []}, status_code=status)

    def authenticate(self, request: Request) -> tuple[Athlete | None, JSONResponse | None]:
        token = self.bearer(request)
        athlete = self.athletes.get(token.owner) if token is not None else None
        if athlete is None or not athlete.authorized:
            return None, self._error(
                401, "Authorization Error", [{"resource": "Athlete", "field": "access_token", "code": "invalid"}]
            )
        return athlete, None

    def rate_limits(self) -> dict[str, RateLimit]:
        return {"overall": self.overall, "read": self.read}

    def rate_headers(self) -> dict[str, str]:
        limit, usage = self.overall.header_pair()
        read_limit, read_usage = self.read.header_pair()
        return {
            "X-RateLimit-Limit": limit,
            "X-RateLimit-Usage": usage,
            "X-ReadRateLimit-Limit": read_limit,
            "X-ReadRateLimit-Usage": read_usage,
        }

    def rate_limited(self, headers: dict[str, str]) -> Response:
        return JSONResponse(
            {
                "message": "Rate Limit Exceeded",
                "errors": [{"resource": "Application", "field": "rate limit", "code": "exceeded"}],
            },
            status_code=429,
            headers=headers,
        )

    def server_error(self, status: int, headers: dict[str, str]) -> Response:
        return JSONResponse({"message": "Server error"}, status_code=status, headers=headers)

    def _current_rate_headers(self) -> dict[str, str]:
        """The rate-limit headers as they stand, for API answers that are not charged (push subscriptions)."""
        now = time.time()
        for limit in self.rate_limits().values():
            limit.roll(now)
        return self.rate_headers()

    @staticmethod
    def _headed(response: Response, headers: dict[str, str]) -> Response:
        """Every /api/v3 answer carries the rate-limit headers, errors included, as on Strava."""
        response.headers.update(headers)
        return response

    async def _api(
        self, request: Request, name: str, is_read: bool = True
    ) -> tuple[Athlete | None, Response | None, dict[str, str]]:
        """Rate limits, scripted failures and auth for an /api/v3 call: every call counts against the overall
        limit, reads against the read limit too."""
        return await self.gate(request, name, [self.overall, self.read] if is_read else [self.overall])

    # --- OAuth ---------------------------------------------------------------------------------------
    def authorize_refused(self, request: Request) -> Response:
        return self._error(400, "Bad Request", [{"resource": "Application", "field": "client_id", "code": "invalid"}])

    def authorizing_owner(self, params: QueryParams) -> int:
        return int(params.get("sim_athlete") or self.default_athlete or self.add_athlete().id)

    def _issue(self, athlete_id: int, scope: str) -> dict[str, Any]:
        issued = self.issue_tokens(athlete_id, scope)
        return {
            "token_type": "Bearer",
            "expires_at": issued.expires_at,
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token,
            "access_token": issued.access_token,
        }

    async def token(self, request: Request) -> Response:
        self._count("oauth.token")
        form = dict(await request.form()) or dict(request.query_params)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return self._error(
                401, "Authorization Error", [{"resource": "Application", "field": "client_id", "code": "invalid"}]
            )
        grant = form.get("grant_type")
        if grant == "authorization_code":
            entry = self.redeem_code(str(form.get("code", "")))
            if entry is None:
                return self._error(
                    400, "Bad Request", [{"resource": "AuthorizationCode", "field": "code", "code": "invalid"}]
                )
            athlete_id, scope = entry
            self.athletes[athlete_id].authorized = True
            return JSONResponse({**self._issue(athlete_id, scope), "athlete": self.athletes[athlete_id].profile()})
        if grant == "refresh_token":
            entry = self.rotate_refresh(str(form.get("refresh_token", "")))
            if entry is None or not self.athletes[entry[0]].authorized:
                return self._error(
                    400, "Bad Request", [{"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}]
                )
            return JSONResponse(self._issue(*entry))
        return self._error(400, "Bad Request", [{"resource": "Application", "field": "grant_type", "code": "invalid"}])

    async def deauthorize(self, request: Request) -> Response:
        form = dict(await request.form()) or dict(request.query_params)
        token = self.access_tokens.get(str(form.get("access_token", "")))
        if token is None:
            return self._error(401, "Authorization Error")
        await self._deauthorize(token.owner)
        return JSONResponse({"access_token": form.get("access_token")})

    async def _deauthorize(self, athlete_id: int) -> None:
        self.athletes[athlete_id].authorized = False
        self.revoke(athlete_id)
        await self._deliver("athlete", athlete_id, "update", athlete_id, {"authorized": "false"})

    # --- API -----------------------------------------------------------------------------------------
    async def athlete(self, request: Request) -> Response:
        athlete, error, headers = await self._api(request, "athlete")
        if error is not None:
            return error
        assert athlete is not None
        return JSONResponse(athlete.detailed(), headers=headers)

    async def activities(self, request: Request) -> Response:
        athlete, error, headers = await self._api(request, "athlete.activities")
        if error is not None:
            return error
        assert athlete is not None
        params = request.query_params
        try:
            per_page = min(int(params.get("per_page", 30)), 200)
            page = max(int(params.get("page", 1)), 1)
            before = int(params["before"]) if "before" in params else None
            after = int(params["after"]) if "after" in params else None
        except ValueError:
            return self._headed(
                self._error(400, "Bad Request", [{"resource": "Activity", "field": "per_page", "code": "invalid"}]),
                headers,
            )
        items = []
        for activity in athlete.activities.values():
            if activity.deleted:
                continue
            started = int(datetime.fromisoformat(activity.data["start_date"].replace("Z", "+00:00")).timestamp())
            if before is not None and started >= before:
                continue
            if after is not None and started <= after:
                continue
            items.append((started, activity.data))
        ascending = after is not None and before is None
        items.sort(key=lambda pair: (pair[0], pair[1]["id"]), reverse=not ascending)
        chunk = [data for _, data in items[(page - 1) * per_page : page * per_page]]
        return JSONResponse(chunk, headers=headers)

    def _activity_of(self, athlete: Athlete, request: Request) -> Activity | None:
        try:
            activity = athlete.activities.get(int(request.path_params["activity_id"]))
        except ValueError:
            return None
        return None if activity is None or activity.deleted else activity

    async def activity(self, request: Request) -> Response:
        athlete, error, headers = await self._api(request, "activity")
        if error is not None:
            return error
        assert athlete is not None
        activity = self._activity_of(athlete, request)
        if activity is None:  # counted like any call: Strava's 404s carry the rate-limit headers too
            return self._headed(
                self._error(404, "Record Not Found", [{"resource": "Activity", "field": "id", "code": "invalid"}]),
                headers,
            )
        return JSONResponse(self._detail(activity), headers=headers)

    async def photos(self, request: Request) -> Response:
        athlete, error, headers = await self._api(request, "activity.photos")
        if error is not None:
            return error
        assert athlete is not None
        activity = self._activity_of(athlete, request)
        if activity is None:  # counted like any call: Strava's 404s carry the rate-limit headers too
            return self._headed(
                self._error(404, "Record Not Found", [{"resource": "Activity", "field": "id", "code": "invalid"}]),
                headers,
            )
        size = int(request.query_params.get("size", 600))
        body = [
            {**photo, "urls": self._photo_urls(photo["unique_id"], [size]), "sizes": {str(size): [size, size * 3 // 4]}}
            for photo in activity.photos
        ]
        return JSONResponse(body, headers=headers)

    async def photo_file(self, request: Request) -> Response:
        self._count("photo.file")
        params = request.query_params
        name = request.path_params["name"]
        unique_id = name.rsplit("-", 1)[0]
        try:
            expires, size = int(params.get("Expires", "0")), int(params.get("size", "0"))
        except ValueError:
            return Response("bad request", status_code=400)
        expected = hmac.new(self.photo_secret, f"{unique_id}:{size}:{expires}".encode(), "sha256").hexdigest()[:32]
        if not hmac.compare_digest(expected, params.get("Signature", "")) or expires < time.time():
            return Response(
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                status_code=403,
                media_type="application/xml",
            )
        exists = any(
            photo["unique_id"] == unique_id
            for athlete in self.athletes.values()
            for activity in athlete.activities.values()
            if not activity.deleted
            for photo in activity.photos
        )
        if not exists:
            return Response("<Error><Code>NoSuchKey</Code></Error>", status_code=404, media_type="application/xml")
        return Response(JPEG, media_type="image/jpeg")

    # --- push subscriptions --------------------------------------------------------------------------
    async def push_subscriptions(self, request: Request) -> Response:
        """Authenticated by the app's client secret, not charged here, but answered with the rate-limit headers
        like every other /api/v3 call."""
        return self._headed(await self._push_subscriptions(request), self._current_rate_headers())

    async def _push_subscriptions(self, request: Request) -> Response:
        self._count("push_subscriptions")
        if request.method == "GET":
            params = request.query_params
        else:
            params = await request.form()  # type: ignore[assignment]
        if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
            return self._error(
                401, "Authorization Error", [{"resource": "Application", "field": "client_id", "code": "invalid"}]
            )
        if request.method == "GET":
            return JSONResponse([self.subscription] if self.subscription else [])
        if self.subscription is not None:
            return self._error(
                400,
                "Bad Request",
                [{"resource": "PushSubscription", "field": "callback_url", "code": "already exists"}],
            )
        callback = str(params.get("callback_url", ""))
        verify = str(params.get("verify_token", ""))
        challenge = secrets.token_hex(8)
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                answer = await client.get(
                    callback, params={"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify}
                )
            ok = answer.status_code == 200 and answer.json().get("hub.challenge") == challenge
        except (httpx.HTTPError, ValueError):
            ok = False
        if not ok:
            return self._error(
                400,
                "Bad Request",
                [{"resource": "PushSubscription", "field": "callback url", "code": "not verifiable"}],
            )
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.subscription = {
            "id": self.next_subscription_id,
            "resource_state": 2,
            "application_id": 1,
            "callback_url": callback,
            "created_at": now,
            "updated_at": now,
        }
        self.next_subscription_id += 1
        return JSONResponse({"id": self.subscription["id"]}, status_code=201)

    async def delete_subscription(self, request: Request) -> Response:
        return self._headed(await self._delete_subscription(request), self._current_rate_headers())

    async def _delete_subscription(self, request: Request) -> Response:
        params = request.query_params
        if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
            return self._error(401, "Authorization Error")
        if self.subscription is None or str(self.subscription["id"]) != request.path_params["subscription_id"]:
            return self._error(404, "Record Not Found")
        self.subscription = None
        return Response(status_code=204)

    async def _deliver(
        self, object_type: str, object_id: int, aspect: str, owner_id: int, updates: dict[str, str] | None = None
    ) -> None:
        """POST the event to the subscription's callback, retrying up to 3 times like Strava."""
        if self.subscription is None:
            return
        event = {
            "aspect_type": aspect,
            "event_time": int(time.time()),
            "object_id": object_id,
            "object_type": object_type,
            "owner_id": owner_id,
            "subscription_id": self.subscription["id"],
            "updates": updates or {},
        }
        # Strava allows the receiver 2 s; the simulator is lenient (delivery_timeout) so a loaded test machine does
        # not turn into lost events (our endpoint answers in milliseconds; see the webhook tests).
        await self.deliver(self.subscription["callback_url"], event)

    # --- simulator controls --------------------------------------------------------------------------
    async def sim_athletes(self, request: Request) -> Response:
        body = await request.json()
        athlete = self.add_athlete(int(body.get("activities", 0)), body.get("id"), body.get("username", "demo_runner"))
        return JSONResponse({"id": athlete.id, "activities": len(athlete.activities)})

    async def sim_export(self, request: Request) -> Response:
        """The athlete's bulk export (?athlete=<id>, default the demo athlete), as Strava's settings page
        gives it: `trove run` imports it after the sync."""
        import tempfile
        from pathlib import Path

        from trove.simulators.strava_export import build_strava_export  # it builds on this module

        athlete = self.athletes.get(int(request.query_params.get("athlete") or self.default_athlete or 0))
        if athlete is None:
            return JSONResponse({"message": "Record Not Found"}, status_code=404)
        with tempfile.TemporaryDirectory() as folder:
            data = build_strava_export(Path(folder) / "export.zip", athlete).read_bytes()
        disposition = f'attachment; filename="export_{athlete.id}.zip"'
        return Response(data, media_type="application/zip", headers={"Content-Disposition": disposition})

    async def sim_activity(self, request: Request) -> Response:
        body = await request.json()
        athlete = self.athletes[int(body["athlete_id"])]
        if request.method == "POST":
            activity = self._new_activity(athlete, datetime.now(UTC).replace(microsecond=0), **body.get("fields", {}))
            await self._deliver("activity", activity.data["id"], "create", athlete.id)
            return JSONResponse(activity.data, status_code=201)
        activity = athlete.activities[int(body["activity_id"])]
        if request.method == "DELETE":
            activity.deleted = True
            await self._deliver("activity", activity.data["id"], "delete", athlete.id)
            return Response(status_code=204)
        fields = body.get("fields", {})
        activity.data.update(fields)
        if "description" in body:
            activity.description = body["description"]
        updates = {("title" if key == "name" else key): str(value) for key, value in fields.items()}
        await self._deliver("activity", activity.data["id"], "update", athlete.id, updates)
        return JSONResponse(activity.data)

    async def sim_deauthorize(self, request: Request) -> Response:
        body = await request.json()
        await self._deauthorize(int(body["athlete_id"]))
        return JSONResponse({"ok": True})

    def configure(self, body: dict[str, Any]) -> None:
        super().configure(body)
        if "photo_url_ttl" in body:
            self.photo_url_ttl = int(body["photo_url_ttl"])

    def stats(self) -> dict[str, Any]:
        common = super().stats()
        return {
            "requests": common["requests"],
            "overall_usage": common["overall_usage"],
            "read_usage": common["read_usage"],
            "subscription": self.subscription,
            "deliveries": common["deliveries"],
            "athletes": {
                a.id: len([x for x in a.activities.values() if not x.deleted]) for a in self.athletes.values()
            },
        }

    def platform_routes(self) -> list[Route]:
        return [
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/oauth/deauthorize", self.deauthorize, methods=["POST"]),
            Route("/api/v3/athlete", self.athlete, methods=["GET"]),
            Route("/api/v3/athlete/activities", self.activities, methods=["GET"]),
            Route("/api/v3/activities/{activity_id}", self.activity, methods=["GET"]),
            Route("/api/v3/activities/{activity_id}/photos", self.photos, methods=["GET"]),
            Route("/api/v3/push_subscriptions", self.push_subscriptions, methods=["GET", "POST"]),
            Route("/api/v3/push_subscriptions/{subscription_id}", self.delete_subscription, methods=["DELETE"]),
            Route("/photos/{name}", self.photo_file, methods=["GET"]),
            Route("/_sim/athletes", self.sim_athletes, methods=["POST"]),
            Route("/_sim/export", self.sim_export, methods=["GET"]),
            Route("/_sim/activities", self.sim_activity, methods=["POST", "PUT", "DELETE"]),
            Route("/_sim/deauthorize", self.sim_deauthorize, methods=["POST"]),
        ]
