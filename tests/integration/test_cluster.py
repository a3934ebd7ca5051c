"""The project-local PostgreSQL cluster: created once, started idempotently, pg_cron preloaded, data kept
across restarts, a clear error when the port is taken."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from trove.db.cluster import Cluster, ClusterError, free_port
from trove.db.migrate import migrate


@pytest.fixture
def scratch_cluster() -> Iterator[Cluster]:
    cluster = Cluster(root=Path(tempfile.mkdtemp(prefix="trove-test-cluster-")), port=free_port(), durable=False)
    try:
        yield cluster
    finally:
        cluster.destroy()


def test_start_is_idempotent_and_data_survives_a_restart(scratch_cluster: Cluster) -> None:
    scratch_cluster.start()
    scratch_cluster.start()  # second start: no-op
    assert scratch_cluster.running()
    with psycopg.connect(scratch_cluster.url(), autocommit=True) as conn:
        conn.execute("create table kept (id int)")
        conn.execute("insert into kept values (42)")
    scratch_cluster.stop()
    assert not scratch_cluster.running()
    scratch_cluster.start()
    with psycopg.connect(scratch_cluster.url()) as conn:
        assert conn.execute("select id from kept").fetchone() == (42,)


def test_pg_cron_is_preloaded(scratch_cluster: Cluster) -> None:
    scratch_cluster.start()
    with psycopg.connect(scratch_cluster.url(), autocommit=True) as conn:
        conn.execute("create extension pg_cron")
        job = conn.execute("select cron.schedule('trove-test', '* * * * *', 'select 1')").fetchone()[0]
        assert conn.execute("select count(*) from cron.job where jobid = %s", (job,)).fetchone() == (1,)


def test_password_is_required_over_tcp(scratch_cluster: Cluster) -> None:
    scratch_cluster.start()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(scratch_cluster.url().replace(":postgres@", ":wrong@")).close()


def test_port_taken_by_another_server_is_a_clear_error(scratch_cluster: Cluster, pg_cluster: Cluster) -> None:
    clash = Cluster(root=scratch_cluster.root, port=pg_cluster.port, durable=False)
    with pytest.raises(ClusterError, match=f"port {pg_cluster.port} on 127.0.0.1 is already taken"):
        clash.start()


def test_migrations_register_the_pg_cron_jobs_in_the_scheduler_database(scratch_cluster: Cluster) -> None:
    scratch_cluster.start()
    migrate(scratch_cluster.url(), local_stack=True, log=lambda _: None)
    migrate(scratch_cluster.url(), local_stack=True, log=lambda _: None)  # idempotent
    with psycopg.connect(scratch_cluster.url()) as conn:
        jobs = dict(conn.execute("select jobname, command from cron.job order by jobname").fetchall())
    assert jobs == {
        "trove-enqueue-due-syncs": "select trove_private.enqueue_due_syncs()",
        "trove-health-check": "select trove_private.run_health_check()",
        "trove-purge-old-records": "select trove_private.purge_old_records()",
        "trove-refresh-public-posts": "select trove_private.refresh_public_posts()",
        "trove-retry-failed-media": "select trove_private.retry_failed_media()",
    }
    # Every job's command runs as written.
    with psycopg.connect(scratch_cluster.url(), autocommit=True) as conn:
        for command in jobs.values():
            conn.execute(command)
