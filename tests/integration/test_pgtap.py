"""Runs every supabase/tests/database/*.test.sql pgTAP file in its own fresh database and reports each
assertion as a subtest, so a failing assertion fails the run with its description and diagnostics."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from trove.config import SUPABASE_DIR

PGTAP_FILES = sorted((SUPABASE_DIR / "tests" / "database").glob("*.test.sql"))
RESULT = re.compile(r"^(?P<not>not )?ok (?P<num>\d+)(?: - (?P<desc>.*?))?(?P<directive> # (?:SKIP|TODO).*)?$")
PLAN = re.compile(r"^1\.\.(?P<count>\d+)$")


@dataclass
class Assertion:
    number: int
    passed: bool
    description: str
    directive: str = ""
    diagnostics: list[str] = field(default_factory=list)


@dataclass
class TapRun:
    planned: int | None = None
    assertions: list[Assertion] = field(default_factory=list)
    trailing: list[str] = field(default_factory=list)  # diagnostics before the first assertion


def parse_tap(output: str) -> TapRun:
    run = TapRun()
    for line in output.splitlines():
        if match := PLAN.match(line):
            run.planned = int(match["count"])
        elif match := RESULT.match(line):
            run.assertions.append(
                Assertion(
                    number=int(match["num"]),
                    passed=match["not"] is None or "TODO" in (match["directive"] or ""),
                    description=match["desc"] or "",
                    directive=(match["directive"] or "").strip(),
                )
            )
        elif line.startswith("#"):
            target = run.assertions[-1].diagnostics if run.assertions else run.trailing
            target.append(line)
    return run


def run_pgtap_file(url: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_pgtap_files_exist() -> None:
    assert PGTAP_FILES, "no supabase/tests/database/*.test.sql files found"


@pytest.mark.parametrize("path", PGTAP_FILES, ids=[p.name for p in PGTAP_FILES])
def test_pgtap_file(path: Path, db_url: str, subtests: pytest.Subtests) -> None:
    proc = run_pgtap_file(db_url, path)
    run = parse_tap(proc.stdout)
    for assertion in run.assertions:
        label = f"{assertion.number} - {assertion.description}"
        with subtests.test(msg=label):
            assert assertion.passed, "\n".join([f"not ok {label}", *assertion.diagnostics])
    assert proc.returncode == 0, f"psql failed on {path.name}:\n{proc.stderr}"
    assert run.planned is not None, f"{path.name} printed no plan:\n{proc.stdout}"
    assert len(run.assertions) == run.planned, (
        f"{path.name} planned {run.planned} assertions but ran {len(run.assertions)}:\n"
        + "\n".join(run.trailing + [d for a in run.assertions for d in a.diagnostics])
    )
    failed = [a for a in run.assertions if not a.passed]
    assert not failed, f"{len(failed)} of {len(run.assertions)} assertions failed in {path.name}"
