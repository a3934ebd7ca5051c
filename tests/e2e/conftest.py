"""Fixtures shared by the end-to-end tests (real processes on real ports)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.strava_harness import service_stack


@pytest.fixture
def stack(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The Strava simulator and the HTTP service, both on real ports; the service configured for the simulator."""
    with service_stack(db_url, monkeypatch) as running:
        yield running


SCREENSHOTS = Path(__file__).resolve().parents[2] / ".local" / "test-screenshots"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """A failing browser test leaves a screenshot of every page it had open (tests set `browser_contexts`)."""
    report = yield
    if report.when == "call" and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for n, context in enumerate(getattr(item, "browser_contexts", [])):
            try:
                pages = list(context.pages)
            except Exception:
                continue
            for m, page in enumerate(pages):
                path = SCREENSHOTS / f"{item.name}-{n}-{m}.png"
                try:
                    page.screenshot(path=str(path), full_page=True)
                except Exception as error:
                    report.sections.append(("screenshot", f"none for {page.url}: {error}"))
                else:
                    report.sections.append(("screenshot", f"{path} ({page.url})"))
    return report
