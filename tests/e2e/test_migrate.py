"""The migration runner: order, history the Supabase CLI understands, idempotence, and clear failures
that leave the database at the last good migration."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from trove.config import MIGRATIONS_DIR
from trove.db.migrate import MigrationError, discover, migrate
from trove.db.sqlsplit import split_statements


def recorded(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select version, name from supabase_migrations.schema_migrations order by version"
        ).fetchall()


def table_exists(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


def test_applies_every_migration_in_order_and_records_it(empty_db_url: str) -> None:
    applied = migrate(empty_db_url, local_stack=True, log=lambda _: None)
    expected = [(m.version, m.name) for m in discover()]
    assert [(m.version, m.name) for m in applied] == expected
    assert recorded(empty_db_url) == expected
    with psycopg.connect(empty_db_url) as conn:
        statements = conn.execute(
            "select statements from supabase_migrations.schema_migrations order by version limit 1"
        ).fetchone()[0]
    first = discover()[0].path.read_text()
    assert statements == [s.sql.strip() for s in split_statements(first)]
    assert len(statements) > 1


def test_second_run_applies_nothing(empty_db_url: str) -> None:
    migrate(empty_db_url, local_stack=True, log=lambda _: None)
    assert migrate(empty_db_url, local_stack=True, log=lambda _: None) == []


def test_local_stack_is_required_on_vanilla_postgres(empty_db_url: str) -> None:
    # Without supabase/local the auth schema is missing: the error names the migration that needs it.
    with pytest.raises(MigrationError, match=r"_users\.sql:\d+: schema \"auth\" does not exist"):
        migrate(empty_db_url, log=lambda _: None)


def test_broken_migration_stops_with_file_line_and_error(empty_db_url: str, migrations_copy: Path) -> None:
    (migrations_copy / "29991231000000_broken.sql").write_text(
        "create table public.half_done (id int);\n\n-- then\nselect *\nfrom public.no_such_table;\n"
    )
    with pytest.raises(MigrationError) as error:
        migrate(empty_db_url, local_stack=True, directory=migrations_copy, log=lambda _: None)
    message = str(error.value)
    assert message.startswith("29991231000000_broken.sql:5: ")
    assert 'relation "public.no_such_table" does not exist' in message
    assert "42P01" in message
    # Nothing of the broken file remains; everything before it is applied and recorded.
    assert not table_exists(empty_db_url, "public.half_done")
    assert [v for v, _ in recorded(empty_db_url)] == [m.version for m in discover()]


def test_fixed_migration_applies_after_a_failure(empty_db_url: str, migrations_copy: Path) -> None:
    broken = migrations_copy / "29991231000000_later.sql"
    broken.write_text("create table public.later (id int;\n")
    with pytest.raises(MigrationError, match="syntax error"):
        migrate(empty_db_url, local_stack=True, directory=migrations_copy, log=lambda _: None)
    broken.write_text("create table public.later (id int);\n")
    applied = migrate(empty_db_url, local_stack=True, directory=migrations_copy, log=lambda _: None)
    assert [m.name for m in applied] == ["later"]
    assert table_exists(empty_db_url, "public.later")


def test_changed_migration_after_apply_is_refused(empty_db_url: str, migrations_copy: Path) -> None:
    migrate(empty_db_url, local_stack=True, directory=migrations_copy, log=lambda _: None)
    first = sorted(migrations_copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\ncreate table public.sneaked_in (id int);\n")
    with pytest.raises(MigrationError, match=f"{first.name} was changed after it was applied"):
        migrate(empty_db_url, local_stack=True, directory=migrations_copy, log=lambda _: None)


def test_database_built_from_other_migration_files_is_refused_before_anything_applies(
    empty_db_url: str, migrations_copy: Path
) -> None:
    # A local database migrated before the migrations were rewritten (folded, renamed, removed): every
    # mismatch is named, nothing pending is applied, and the message says how to rebuild it.
    (migrations_copy / "20261123099000_folded_away.sql").write_text("create table public.folded (id int);\n")
    migrate(empty_db_url, local_stack=True, directory=migrations_copy, log=lambda _: None)
    (migrations_copy / "20261123099000_folded_away.sql").unlink()
    first = sorted(migrations_copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\ncreate table public.folded_in (id int);\n")
    (migrations_copy / "29991231000000_pending.sql").write_text("create table public.pending (id int);\n")
    proc = subprocess.run(
        [sys.executable, "-m", "trove.cli", "db", "migrate", "--local-stack", "--migrations-dir", str(migrations_copy)],
        env={**os.environ, "DATABASE_URL": empty_db_url},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("trove: this database's migration history does not match ")
    assert "20261123099000_folded_away was applied to this database but is not in " in proc.stderr
    assert f"{first.name} was changed after it was applied" in proc.stderr
    assert "`make db-reset`" in proc.stderr
    assert not table_exists(empty_db_url, "public.pending")


def test_a_long_history_mismatch_is_summarized(empty_db_url: str, migrations_copy: Path) -> None:
    migrate(empty_db_url, local_stack=True, directory=migrations_copy, log=lambda _: None)
    files = sorted(migrations_copy.glob("*.sql"))
    for path in files[:10]:
        path.unlink()
    with pytest.raises(MigrationError) as error:
        migrate(empty_db_url, local_stack=True, directory=migrations_copy, log=lambda _: None)
    lines = str(error.value).splitlines()
    assert sum("was applied to this database but is not in" in line for line in lines) == 6
    assert "  ... and 4 more" in lines


def test_misnamed_migration_file_is_an_error(migrations_copy: Path) -> None:
    (migrations_copy / "add_things.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match=r"add_things\.sql: migration files must be named"):
        discover(migrations_copy)


def test_duplicate_versions_are_an_error(migrations_copy: Path) -> None:
    (migrations_copy / "20261123100000_again.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match="share the version 20261123100000"):
        discover(migrations_copy)


def test_cli_reports_a_broken_migration_and_exits_nonzero(empty_db_url: str, migrations_copy: Path) -> None:
    (migrations_copy / "29991231000000_broken.sql").write_text(
        "create table public.fine (id int);\n\nalter table public.nope add column x int;\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trove.cli",
            "db",
            "migrate",
            "--local-stack",
            "--migrations-dir",
            str(migrations_copy),
        ],
        env={**os.environ, "DATABASE_URL": empty_db_url},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "trove: 29991231000000_broken.sql:3: " in proc.stderr
    assert 'relation "public.nope" does not exist' in proc.stderr
    assert "Traceback" not in proc.stderr
