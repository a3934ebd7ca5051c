"""Applies `supabase/local/*.sql` (vanilla Postgres only) and `supabase/migrations/*.sql` in order.

Each migration runs in its own transaction and is recorded in `supabase_migrations.schema_migrations`
the way the Supabase CLI records it, so `supabase db push` later sees it as applied. A failing migration
stops the run with the file name, line and Postgres error; the ones before it stay applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from trove.config import LOCAL_STACK_DIR, MIGRATIONS_DIR

MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")
LOCK_KEY = 7_146_921_001  # pg_advisory_lock key: one migration run at a time per database

HISTORY_DDL = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
    version text primary key,
    statements text[],
    name text
);
alter table supabase_migrations.schema_migrations add column if not exists created_by text;
alter table supabase_migrations.schema_migrations add column if not exists idempotency_key text;
"""


class MigrationError(RuntimeError):
    """A migration could not be applied; the message names the file and the Postgres error."""


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
            raise MigrationError(
                f"{path.name}: migration files must be named YYYYMMDDHHMMSS_lowercase_words.sql"
            )
        migrations.append(Migration(match["version"], match["name"], path))
    versions = [m.version for m in migrations]
    duplicates = sorted({v for v in versions if versions.count(v) > 1})
    if duplicates:
        raise MigrationError(f"two migration files share the version {', '.join(duplicates)}")
    return migrations


def _describe(path: Path, sql: str, error: psycopg.Error) -> str:
    """`file:line: message` plus Postgres' detail/hint, so the author can go straight to the line."""
    diag = error.diag
    where = path.name
    if diag.statement_position:
        line = sql.count("\n", 0, int(diag.statement_position) - 1) + 1
        where = f"{path.name}:{line}"
    parts = [f"{where}: {diag.message_primary or str(error).strip()}"]
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


def _run_file(conn: psycopg.Connection, path: Path, sql: str) -> None:
    try:
        # No parameters: psycopg sends the text with the simple query protocol, so a file may hold
        # many statements, dollar-quoted bodies included.
        conn.execute(sql.encode())
    except psycopg.Error as error:
        raise MigrationError(_describe(path, sql, error)) from error


def apply_local_stack(conn: psycopg.Connection, directory: Path = LOCAL_STACK_DIR) -> None:
    """Recreate what Supabase provides (roles, auth schema); idempotent, vanilla Postgres only."""
    for path in sorted(directory.glob("*.sql")):
        with conn.transaction():
            _run_file(conn, path, path.read_text())


def applied_versions(conn: psycopg.Connection) -> dict[str, list[str] | None]:
    rows = conn.execute("select version, statements from supabase_migrations.schema_migrations").fetchall()
    return {version: statements for version, statements in rows}


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
        conn.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            if local_stack:
                apply_local_stack(conn)
            with conn.transaction():
                conn.execute(HISTORY_DDL.encode())
            done = applied_versions(conn)
            for migration in migrations:
                sql = migration.sql
                if migration.version in done:
                    recorded = done[migration.version]
                    # We record a file as one statement; a file changed after it was applied would
                    # silently diverge from every database that has it.
                    if recorded and len(recorded) == 1 and recorded[0] != sql:
                        raise MigrationError(
                            f"{migration.path.name} was changed after it was applied; migrations are "
                            "forward-only: add a new migration (or `make db-reset` a local database)"
                        )
                    continue
                with conn.transaction():
                    _run_file(conn, migration.path, sql)
                    conn.execute(
                        "insert into supabase_migrations.schema_migrations (version, statements, name)"
                        " values (%s, %s, %s)",
                        (migration.version, [sql], migration.name),
                    )
                applied_now.append(migration)
                log(f"applied {migration.path.name}")
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied_now
