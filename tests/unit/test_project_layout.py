"""The project files newcomers and the Supabase CLI rely on."""

from __future__ import annotations

import tomllib

from trove.config import PROJECT_ROOT, SUPABASE_DB_PORT, SUPABASE_DIR


def test_supabase_config_matches_the_local_stack() -> None:
    config = tomllib.loads((SUPABASE_DIR / "config.toml").read_text())
    assert config["db"]["port"] == SUPABASE_DB_PORT == 54322
    assert config["db"]["major_version"] == 15
    assert config["db"]["seed"]["sql_paths"] == ["./seed.sql"]
    assert (SUPABASE_DIR / "seed.sql").exists()


def test_readme_starts_with_the_two_commands() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    first_commands = [line.strip() for line in readme.splitlines() if line.strip().startswith("make ")][:2]
    assert first_commands == ["make run", "make test"]


def test_ci_calls_the_readme_test_command() -> None:
    assert "make test" in (PROJECT_ROOT / ".ci" / "run").read_text()
