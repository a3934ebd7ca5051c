"""Applies `supabase/local/*.sql` (vanilla Postgres only) and `supabase/migrations/*.sql` in order.

Each migration runs in its own transaction, statement by statement, and is recorded in
`supabase_migrations.schema_migrations` the way the Supabase CLI records it (version, name, statements),
so `supabase db push` later sees it as applied. A failing migration stops the run with the file name,
line and Postgres error; the migrations before it stay applied and nothing of the failing one remains.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from trove.config import LOCAL_STACK_DIR, MIGRATIONS_DIR, PROJECT_ROOT
from trove.db.sqlsplit import Statement, split_statements
from trove.queries.migrations import APPLIED_NAMES, APPLIED_STATEMENTS, HISTORY_DDL, LOCK, RECORD_MIGRATION, UNLOCK

MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")
LOCK_KEY = 7_146_921_001  # pg_advisory_lock key: one migration run at a time per database


class MigrationError(RuntimeError):
    """A migration could not be applied; the message names the file, the line and the Postgres error."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; a misnamed .sql file is an error, not silently skipped."""
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named YYYYMMDDHHMMSS_lowercase_words.sql")
        migrations.append(Migration(match["version"], match["name"], path))
    versions = [m.version for m in migrations]
    duplicates = sorted({v for v in versions if versions.count(v) > 1})
    if duplicates:
        raise MigrationError(f"two migration files share the version {', '.join(duplicates)}")
    return migrations


def _describe(source: str, statement: Statement, error: psycopg.Error) -> str:
    """`file:line: message` plus Postgres' detail/hint, so the author can go straight to the line."""
    diag = error.diag
    line = statement.line
    if diag.statement_position:
        # Count lines from the statement's first significant character to the error position.
        lead = len(statement.sql) - len(statement.sql.lstrip())
        while statement.sql.startswith("--", lead) or statement.sql.startswith("/*", lead):
            lead = statement.sql.find("\n", lead) + 1 or len(statement.sql)
            lead += len(statement.sql[lead:]) - len(statement.sql[lead:].lstrip())
        line += statement.sql.count("\n", lead, int(diag.statement_position) - 1)
    parts = [f"{source}:{line}: {diag.message_primary or str(error).strip()}"]
    if diag.sqlstate:
        parts[0] += f" (SQLSTATE {diag.sqlstate})"
    for label, value in (
        ("detail", diag.message_detail),
        ("hint", diag.message_hint),
        ("context", diag.context),
    ):
        if value:
            parts.append(f"  {label}: {value.strip()}")
    return "\n".join(parts)


def _run_script(conn: psycopg.Connection, source: str, sql: str) -> list[str]:
    """Run a script statement by statement in the caller's transaction; returns the statements run."""
    statements = split_statements(sql)
    for statement in statements:
        try:
            conn.execute(statement.sql.encode())
        except psycopg.Error as error:
            raise MigrationError(_describe(source, statement, error)) from error
    return [statement.sql.strip() for statement in statements]


def _normalized(statements: list[str]) -> str:
    """Statements compared without layout, so a history the Supabase CLI wrote compares too."""
    return re.sub(r"[\s;]+", "", "".join(statements))


def apply_local_stack(conn: psycopg.Connection, directory: Path = LOCAL_STACK_DIR) -> None:
    """Recreate what Supabase provides (roles, auth schema); idempotent, vanilla Postgres only."""
    for path in sorted(directory.glob("*.sql")):
        with conn.transaction():
            _run_script(conn, f"supabase/local/{path.name}", path.read_text())


def applied_statements(conn: psycopg.Connection) -> dict[str, list[str] | None]:
    rows = conn.execute(APPLIED_STATEMENTS).fetchall()
    return {version: statements for version, statements in rows}


def _applied_names(conn: psycopg.Connection) -> dict[str, str | None]:
    rows = conn.execute(APPLIED_NAMES).fetchall()
    return {version: name for version, name in rows}


def _shown(directory: Path) -> str:
    try:
        return f"{directory.resolve().relative_to(PROJECT_ROOT)}/"
    except ValueError:
        return f"{directory}/"


def check_history(
    migrations: list[Migration],
    applied: dict[str, list[str] | None],
    names: dict[str, str | None],
    directory: Path,
    shown: int = 6,
) -> None:
    """Refuse a database whose recorded history disagrees with the directory: an applied migration that was
    edited since, or that is no longer there. Either way the database was built from other migration files
    than these, and applying the pending ones on top would fail half-way or silently diverge."""
    files = {m.version: m for m in migrations}
    problems = []
    for version in sorted(applied):
        if version not in files:
            label = f"{version}_{names[version]}" if names.get(version) else version
            problems.append(f"{label} was applied to this database but is not in {_shown(directory)}")
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded and _normalized(recorded) != _normalized([s.sql for s in split_statements(migration.sql)]):
            problems.append(f"{migration.path.name} was changed after it was applied")
    if not problems:
        return
    listed = problems[:shown]
    if len(problems) > shown:
        listed.append(f"... and {len(problems) - shown} more")
    raise MigrationError(
        f"this database's migration history does not match {_shown(directory)}\n"
        + "".join(f"  {line}\n" for line in listed)
        + "Migrations are forward-only: change the schema with a new migration, never by editing or removing "
        "an applied one. This database was built from other migration files and cannot be brought forward: if "
        "it is the local one (`make run`), rebuild it from the current files with `make db-reset` (this deletes "
        "its data)."
    )


def migrate(
    conninfo: str,
    *,
    local_stack: bool = False,
    directory: Path = MIGRATIONS_DIR,
    log: Callable[[str], None] = print,
) -> list[Migration]:
    """Apply the pending migrations; returns the ones applied by this run."""
    migrations = discover(directory)
    applied_now: list[Migration] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(LOCK, (LOCK_KEY,))
        try:
            if local_stack:
                apply_local_stack(conn)
            with conn.transaction():
                _run_script(conn, "schema_migrations history", HISTORY_DDL)
            done = applied_statements(conn)
            # Checked before anything is applied: a file edited after it was applied would silently diverge
            # from every database that already has it.
            check_history(migrations, done, _applied_names(conn), directory)
            for migration in migrations:
                sql = migration.sql
                if migration.version in done:
                    continue
                with conn.transaction():
                    statements = _run_script(conn, migration.path.name, sql)
                    conn.execute(RECORD_MIGRATION, (migration.version, statements, migration.name))
                applied_now.append(migration)
                log(f"applied {migration.path.name}")
        finally:
            conn.execute(UNLOCK, (LOCK_KEY,))
    return applied_now
