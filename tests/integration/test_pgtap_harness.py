"""The pgTAP harness must fail loudly: a failing assertion, a plan mismatch and a SQL error are reported."""

from __future__ import annotations

from pathlib import Path

from test_pgtap import parse_tap, run_pgtap_file


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "case.test.sql"
    path.write_text(body)
    return path


def test_failing_assertion_is_reported_with_diagnostics(db_url: str, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "begin;\nselect plan(2);\nselect ok(true, 'fine');\nselect is(1, 2, 'one is two');\n"
        "select finish();\nrollback;\n",
    )
    proc = run_pgtap_file(db_url, path)
    run = parse_tap(proc.stdout)
    assert run.planned == 2
    assert [(a.number, a.passed, a.description) for a in run.assertions] == [
        (1, True, "fine"),
        (2, False, "one is two"),
    ]
    diagnostics = "\n".join(run.assertions[1].diagnostics)
    assert "have: 1" in diagnostics and "want: 2" in diagnostics


def test_plan_mismatch_is_visible(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "begin;\nselect plan(3);\nselect ok(true, 'only one');\nselect finish();\nrollback;\n")
    run = parse_tap(run_pgtap_file(db_url, path).stdout)
    assert run.planned == 3
    assert len(run.assertions) == 1
    assert any("planned 3 tests but ran 1" in line for line in run.assertions[0].diagnostics)


def test_sql_error_stops_the_file_with_a_nonzero_exit(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "begin;\nselect plan(1);\nselect * from no_such_table;\nrollback;\n")
    proc = run_pgtap_file(db_url, path)
    assert proc.returncode != 0
    assert 'relation "no_such_table" does not exist' in proc.stderr


def test_helpers_emulate_postgrest_roles(db_url: str, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "begin;\nselect plan(3);\nselect tests.create_user('carol');\n"
        "select tests.authenticate_as('carol');\n"
        "select is(current_user::text, 'authenticated', 'role switched');\n"
        "select is(auth.uid(), tests.id('user', 'carol'), 'claims carry the user id');\n"
        "select tests.clear_authentication();\n"
        "select is(current_user::text, 'postgres', 'back to the session role');\n"
        "select finish();\nrollback;\n",
    )
    run = parse_tap(run_pgtap_file(db_url, path).stdout)
    assert [a.passed for a in run.assertions] == [True, True, True]
