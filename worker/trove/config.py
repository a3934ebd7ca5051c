"""Settings read from the environment, with defaults that match Supabase's local stack."""

from __future__ import annotations

import os
from pathlib import Path

# The checkout: worker/trove/config.py -> ../../
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SUPABASE_DIR = PROJECT_ROOT / "supabase"
MIGRATIONS_DIR = SUPABASE_DIR / "migrations"
LOCAL_STACK_DIR = SUPABASE_DIR / "local"
STATE_DIR = PROJECT_ROOT / ".local"

DB_HOST = "127.0.0.1"
DB_PORT = 54322
DB_PASSWORD = "postgres"
DEFAULT_DATABASE_URL = f"postgresql://postgres:{DB_PASSWORD}@{DB_HOST}:{DB_PORT}/postgres"


def database_url() -> str:
    """The database Trove talks to: $DATABASE_URL, else the local cluster."""
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
