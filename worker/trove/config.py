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
SUPABASE_DB_PORT = 54322  # Supabase's local database port
DB_PASSWORD = "postgres"


def db_port() -> int:
    """The local cluster's port: 54322 unless $TROVE_DB_PORT says otherwise."""
    return int(os.environ.get("TROVE_DB_PORT") or SUPABASE_DB_PORT)


def state_dir() -> Path:
    """Where local state (the cluster's data) lives: .local/ in the checkout unless $TROVE_STATE_DIR."""
    return Path(os.environ.get("TROVE_STATE_DIR") or STATE_DIR)


def database_url() -> str:
    """The database Trove talks to: $DATABASE_URL, else the local cluster."""
    return os.environ.get("DATABASE_URL") or f"postgresql://postgres:{DB_PASSWORD}@{DB_HOST}:{db_port()}/postgres"


HTTP_HOST = "127.0.0.1"
HTTP_PORT = int(os.environ.get("TROVE_HTTP_PORT") or 54321)  # Supabase's local API port
SIMULATOR_PORT = int(os.environ.get("TROVE_SIMULATOR_PORT") or 54330)
# The Supabase CLI's local JWT secret: only the local stack uses it; set SUPABASE_JWT_SECRET elsewhere.
LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


def public_url() -> str:
    """Where platforms and browsers reach the HTTP service (OAuth redirects, webhook callbacks)."""
    return (os.environ.get("TROVE_PUBLIC_URL") or f"http://{HTTP_HOST}:{HTTP_PORT}").rstrip("/")


def jwt_secret() -> str | None:
    return os.environ.get("SUPABASE_JWT_SECRET") or (None if os.environ.get("SUPABASE_JWKS_URL") else LOCAL_JWT_SECRET)
