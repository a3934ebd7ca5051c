"""supabase/schema.sql is the schema the migrations build, dumped and normalized: it must be up to date."""

from __future__ import annotations

import difflib

from trove.config import PROJECT_ROOT
from trove.db.migrate import migrate
from trove.db.schema import REFRESH_COMMAND, SCHEMA_FILE, normalize, schema_of

SHOWN_DIFF_LINES = 40


def test_schema_sql_is_up_to_date(empty_db_url: str) -> None:
    migrate(empty_db_url, local_stack=True, log=lambda _: None)
    current = schema_of(empty_db_url)
    name = SCHEMA_FILE.relative_to(PROJECT_ROOT)
    assert SCHEMA_FILE.exists(), f"{name} is missing: run `{REFRESH_COMMAND}` and commit it"
    committed = SCHEMA_FILE.read_text()
    if committed != current:
        diff = list(
            difflib.unified_diff(
                committed.splitlines(),
                current.splitlines(),
                fromfile=f"{name} (committed)",
                tofile="what the migrations build",
                lineterm="",
            )
        )
        shown = "\n".join(diff[:SHOWN_DIFF_LINES])
        more = f"\n... ({len(diff) - SHOWN_DIFF_LINES} more diff lines)" if len(diff) > SHOWN_DIFF_LINES else ""
        raise AssertionError(
            f"{name} is out of date with supabase/migrations/: run `{REFRESH_COMMAND}` (or `trove db schema`) "
            f"and commit it. First differences:\n{shown}{more}"
        )


def test_normalize_drops_what_differs_between_runs_and_machines() -> None:
    dump = "\n".join(
        [
            "--",
            "-- PostgreSQL database dump",
            "--",
            "",
            "\\restrict Zr1xXq9",
            "",
            "-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)",
            "-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)",
            "",
            "SET statement_timeout = 0;",
            "SELECT pg_catalog.set_config('search_path', '', false);",
            "SET row_security = off;",
            "",
            "--",
            "-- Name: things; Type: TABLE; Schema: public; Owner: -",
            "--",
            "",
            "CREATE TABLE public.things (",
            "    id integer",
            ");",
            "",
            "",
            "--",
            "-- PostgreSQL database dump complete",
            "--",
            "",
            "\\unrestrict Zr1xXq9",
            "",
        ]
    )
    normalized = normalize(dump)
    body = normalized.split("\n\n", 1)[1]
    assert body == (
        "--\n-- Name: things; Type: TABLE; Schema: public; Owner: -\n--\n\nCREATE TABLE public.things (\n"
        "    id integer\n);\n"
    )
    assert normalize(dump.replace("Zr1xXq9", "other-key").replace("15.18", "15.99")) == normalized
