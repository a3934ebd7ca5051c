"""Fixtures shared by the end-to-end tests (real processes on real ports)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.strava_harness import service_stack


@pytest.fixture
def stack(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The Strava simulator and the HTTP service, both on real ports; the service configured for the simulator."""
    with service_stack(db_url, monkeypatch) as running:
        yield running
