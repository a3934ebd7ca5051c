"""The local development database: a project-local cluster on 127.0.0.1:54322 (Supabase's DB port)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from trove.config import DB_PASSWORD, SUPABASE_DIR, db_port, state_dir
from trove.db.cluster import Cluster


def local_cluster() -> Cluster:
    return Cluster(root=state_dir() / "db", port=db_port(), password=DB_PASSWORD)


def apply_seed(conninfo: str, seed: Path = SUPABASE_DIR / "seed.sql") -> None:
    """Load the local demo data (idempotent: the seed uses ON CONFLICT)."""
    if seed.exists():
        with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
            conn.execute(seed.read_text().encode())
