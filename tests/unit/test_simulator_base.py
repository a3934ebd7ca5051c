"""The simulator base's pure parts: fixed windows roll on their boundaries, a request counts in all of its limits
or none, tokens expire and refresh tokens rotate, and the scripted faults count down one request at a time."""

from __future__ import annotations

from trove.simulators.base import FixedWindow, PlatformSimulator, RateLimit, charge

QUARTER, DAY = 900, 86400


def simulator(**kwargs) -> PlatformSimulator[int]:
    return PlatformSimulator[int](client_id="id", client_secret="secret", **kwargs)


def test_a_window_restarts_on_its_boundary_not_a_rolling_period() -> None:
    window = FixedWindow(limit=2, seconds=QUARTER)
    start = 1_800_000_000 - 1_800_000_000 % QUARTER  # a :00/:15/:30/:45 boundary
    window.roll(start + 10)
    window.used = 2
    assert window.exhausted()
    window.roll(start + QUARTER - 1)
    assert window.used == 2, "same quarter"
    window.roll(start + QUARTER)
    assert window.used == 0 and not window.exhausted()
    assert window.resets_at() == start + 2 * QUARTER


def test_a_full_window_refuses_and_the_request_counts_nowhere() -> None:
    now = 1_800_000_000.0
    overall = RateLimit(FixedWindow(3, QUARTER), FixedWindow(100, DAY))
    read = RateLimit(FixedWindow(1, QUARTER), FixedWindow(100, DAY))
    for limit in (overall, read):
        limit.roll(now)
    assert charge([overall, read])
    assert overall.usage() == [1, 1] and read.usage() == [1, 1]
    assert not charge([overall, read]), "the read quarter is full"
    assert overall.usage() == [1, 1], "a refused request is not counted"
    assert charge([overall]), "a call outside the read limit still goes through"
    assert overall.usage() == [2, 2]
    read.set_usage([0, 99], now)
    read.set_limits([5, 99])
    assert read.exhausted(), "the day is full though the quarter is not"


def test_a_refused_request_counts_everywhere_when_the_platform_says_so() -> None:
    """Strava's rule (refused requests still use up the windows): usage passes the limit, and a request that a
    full read window refuses counts toward the overall windows too."""
    now = 1_800_000_000.0
    overall = RateLimit(FixedWindow(3, QUARTER), FixedWindow(100, DAY))
    read = RateLimit(FixedWindow(1, QUARTER), FixedWindow(100, DAY))
    for limit in (overall, read):
        limit.roll(now)
    assert charge([overall, read], count_refused=True)
    assert not charge([overall, read], count_refused=True), "the read quarter is full"
    assert overall.usage() == [2, 2] and read.usage() == [2, 2], "the 429 counted in every window"
    assert charge([overall], count_refused=True) and overall.usage() == [3, 3]
    assert not charge([overall], count_refused=True) and overall.usage() == [4, 4], "usage reads past the limit"


def test_only_simulators_that_ask_count_refused_requests() -> None:
    assert PlatformSimulator.refused_requests_count is False, "the default stays: a refused request counts nowhere"


def test_tokens_expire_and_refresh_tokens_are_spent_once() -> None:
    sim = simulator(token_ttl=60)
    now = 1_800_000_000.0
    issued = sim.issue_tokens(7, "read", now=now)
    assert issued.expires_at == int(now) + 60 and issued.expires_in == 60
    assert sim.valid_token(issued.access_token, now=now + 59) is not None
    assert sim.valid_token(issued.access_token, now=now + 60) is None
    assert sim.rotate_refresh(issued.refresh_token) == (7, "read")
    assert sim.rotate_refresh(issued.refresh_token) is None
    code = sim.new_code(7, "read,activity:read")
    assert sim.redeem_code(code) == (7, "read,activity:read")
    assert sim.redeem_code(code) is None


def test_revoke_forgets_only_that_owners_tokens() -> None:
    sim = simulator()
    mine, theirs = sim.issue_tokens(1, "read"), sim.issue_tokens(2, "read")
    sim.revoke(1)
    assert mine.access_token not in sim.access_tokens and mine.refresh_token not in sim.refresh_tokens
    assert theirs.access_token in sim.access_tokens and theirs.refresh_token in sim.refresh_tokens


def test_scripted_faults_count_down_per_request() -> None:
    sim = simulator()
    now = 1_800_000_000.0
    token = sim.issue_tokens(1, "read", now=now)
    sim.configure({"fail_later_in": 1, "fail_later_status": 429, "expire_tokens_in": 0, "fail_next": [502]})
    assert sim.scripted_fault(now) == 502
    assert sim.valid_token(token.access_token, now=now) is None, "expired after the first request"
    assert sim.scripted_fault(now) == 429, "the second request is the one failed later"
    assert sim.scripted_fault(now) is None
    assert sim.fail_later_in is None and sim.expire_tokens_in is None
