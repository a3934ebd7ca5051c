"""Shared fixtures: one throwaway PostgreSQL cluster per test session (never the `make run` database),
a template database migrated once, and a fresh clone of it for every test that asks for `db_url`."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from trove.config import LOCAL_STACK_ENV, PROJECT_ROOT
from trove.db.cluster import Cluster, free_port
from trove.db.migrate import migrate

# The tests are the local stack (their databases are throwaway clusters on 127.0.0.1): the services and
# workers they start, and the tokens they sign, may use the Supabase CLI's local JWT secret (trove.config).
os.environ[LOCAL_STACK_ENV] = "1"

TEMPLATE_DB = "trove_template"
TEST_HELPERS = PROJECT_ROOT / "supabase" / "tests" / "helpers.sql"
FIXTURES_DIR = PROJECT_ROOT.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    # mkdtemp, not pytest's tmp_path: the postgres OS user must be able to reach the directory.
    root = Path(tempfile.mkdtemp(prefix="trove-test-pg-"))
    cluster = Cluster(root=root, port=free_port(), durable=False)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


def create_database(cluster: Cluster, name: str, template: str = "template0") -> str:
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f'create database "{name}" template "{template}"')
    return cluster.url(name)


def drop_database(cluster: Cluster, name: str) -> None:
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def template_db(pg_cluster: Cluster) -> str:
    """A database with the local stack, every migration, pgTAP and the test helpers: cloned per test."""
    url = create_database(pg_cluster, TEMPLATE_DB)
    migrate(url, local_stack=True, log=lambda _: None)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension if not exists pgtap with schema extensions")
        conn.execute(TEST_HELPERS.read_text().encode())
    return TEMPLATE_DB


@pytest.fixture
def db_url(pg_cluster: Cluster, template_db: str) -> Iterator[str]:
    """A fresh, fully migrated database for one test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = create_database(pg_cluster, name, template=template_db)
    try:
        yield url
    finally:
        drop_database(pg_cluster, name)


@pytest.fixture
def empty_db_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh database with nothing in it (for migration-runner tests)."""
    name = f"empty_{uuid.uuid4().hex[:16]}"
    url = create_database(pg_cluster, name)
    try:
        yield url
    finally:
        drop_database(pg_cluster, name)
