"""Settings read from the environment, with defaults that match Supabase's local stack."""

from __future__ import annotations

import functools
import ipaddress
import os
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

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


LOCAL_STACK_ENV = "TROVE_LOCAL_STACK"


class ConfigError(Exception):
    """The environment is not safe or not complete enough to start: the message says what to set."""


def is_loopback_host(host: str | None) -> bool:
    """A host only this machine can reach: a loopback name or address, or a Unix socket (a path or none)."""
    if not host or host.startswith("/"):
        return True
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def local_stack() -> bool:
    """The local stack (`trove run`, the tests) is an explicit opt-in, $TROVE_LOCAL_STACK=1, and only counts
    when the database is on this machine: the Supabase CLI's published JWT secret is accepted nowhere else."""
    if os.environ.get(LOCAL_STACK_ENV) != "1":
        return False
    return _database_on_this_machine(database_url(), os.environ.get("PGHOST") or "")


@functools.lru_cache(maxsize=8)
def _database_on_this_machine(url: str, pghost: str) -> bool:
    """(Asked on every request that checks a token: parsed once per URL.)"""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:  # an unparseable URL is nobody's local cluster
        return False
    host = str(params.get("host") or pghost)  # no host: libpq's $PGHOST or a socket
    hosts = [*host.split(","), *str(params.get("hostaddr") or "").split(",")]
    return all(is_loopback_host(h.strip()) for h in hosts)  # libpq allows host1,host2


def jwt_secret() -> str | None:
    """The HS256 secret user tokens are checked with: $SUPABASE_JWT_SECRET; on the local stack only (and
    without a JWKS URL) the Supabase CLI's local secret; else none, and HS256 tokens are refused. The local
    secret is published, so it is refused off the local stack even when set explicitly."""
    configured = os.environ.get("SUPABASE_JWT_SECRET") or None
    if configured == LOCAL_JWT_SECRET or (configured is None and not os.environ.get("SUPABASE_JWKS_URL")):
        return LOCAL_JWT_SECRET if local_stack() else None
    return configured


def require_token_verification() -> None:
    """`trove serve` and `trove worker` refuse to start unless user tokens can be verified with a secret
    nobody else knows: $SUPABASE_JWT_SECRET or $SUPABASE_JWKS_URL (the local stack may use its own)."""
    configured = os.environ.get("SUPABASE_JWT_SECRET")
    if local_stack() or (configured and configured != LOCAL_JWT_SECRET):
        return
    if configured == LOCAL_JWT_SECRET:
        raise ConfigError(
            "SUPABASE_JWT_SECRET is the Supabase CLI's published local secret: anyone could sign tokens with it."
            " Set your project's own JWT secret (or SUPABASE_JWKS_URL)"
        )
    if os.environ.get("SUPABASE_JWKS_URL"):
        return
    why = (
        f"{LOCAL_STACK_ENV}=1 applies only to a database on this machine, and DATABASE_URL points elsewhere"
        if os.environ.get(LOCAL_STACK_ENV) == "1"
        else f"the local stack's published secret is only for `trove run` and the tests ({LOCAL_STACK_ENV}=1)"
    )
    raise ConfigError(
        "no way to verify user tokens: set SUPABASE_JWT_SECRET (your project's JWT secret) or"
        f" SUPABASE_JWKS_URL (its JWKS endpoint); {why}"
    )
