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


CRON_SCHEMA = "select extnamespace::regnamespace::text from pg_extension where extname = 'pg_cron'"


def test_migrations_register_the_pg_cron_jobs_in_the_scheduler_database(scratch_cluster: Cluster) -> None:
    scratch_cluster.start()
    migrate(scratch_cluster.url(), local_stack=True, log=lambda _: None)
    migrate(scratch_cluster.url(), local_stack=True, log=lambda _: None)  # idempotent
    with psycopg.connect(scratch_cluster.url()) as conn:
        jobs = dict(conn.execute("select jobname, command from cron.job order by jobname").fetchall())
        # Where Supabase installs it (its linter warns about extensions in public).
        assert conn.execute(CRON_SCHEMA).fetchone() == ("pg_catalog",)
    assert jobs == {
        "trove-enqueue-due-syncs": "select trove_private.enqueue_due_syncs()",
        "trove-health-check": "select trove_private.run_health_check()",
        "trove-purge-old-records": "select trove_private.purge_old_records()",
        "trove-refresh-public-posts": "select trove_private.refresh_public_posts()",
        "trove-refresh-tokens": "select trove_private.enqueue_token_refreshes()",
        "trove-retry-failed-media": "select trove_private.retry_failed_media()",
        "trove-wake-heartbeat": "select trove_private.wake_service('heartbeat')",
    }
    # Every job's command runs as written.
    with psycopg.connect(scratch_cluster.url(), autocommit=True) as conn:
        for command in jobs.values():
            conn.execute(command)


def test_a_pg_cron_installed_in_public_moves_to_pg_catalog_with_its_jobs(scratch_cluster: Cluster) -> None:
    """A database migrated before 20261201100500_pg_cron_schema: 20261123150000_schedules created pg_cron
    in public (and someone scheduled a job of their own, unnamed)."""
    scratch_cluster.start()
    with psycopg.connect(scratch_cluster.url(), autocommit=True) as conn:
        conn.execute("create extension pg_cron with schema public")
        conn.execute("select cron.schedule('0 4 * * *', 'select 4')")
        conn.execute("select cron.schedule('theirs', '0 5 * * *', 'select 5')")
        conn.execute("select cron.alter_job((select jobid from cron.job where jobname = 'theirs'), active => false)")
    migrate(scratch_cluster.url(), local_stack=True, log=lambda _: None)
    migrate(scratch_cluster.url(), local_stack=True, log=lambda _: None)  # idempotent
    with psycopg.connect(scratch_cluster.url()) as conn:
        assert conn.execute(CRON_SCHEMA).fetchone() == ("pg_catalog",)
        jobs = conn.execute(
            "select jobname, schedule, command, database, username, active from cron.job order by jobname"
        ).fetchall()
    names = [job[0] for job in jobs]
    assert len(names) == 9 and len(set(names)) == 9  # 7 of ours, 2 of theirs
    assert ("theirs", "0 5 * * *", "select 5", "postgres", "postgres", False) in jobs
    assert [job[1:] for job in jobs if job[0].startswith("job-")] == [
        ("0 4 * * *", "select 4", "postgres", "postgres", True)
    ]
    assert sum(name.startswith("trove-") for name in names) == 7
