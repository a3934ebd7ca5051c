"""`trove` command line: database lifecycle today; worker and HTTP service join as they land."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta
from pathlib import Path

from trove.config import MIGRATIONS_DIR, database_url
from trove.connectors import load_connectors
from trove.crypto import KeyRing, TokenCryptoError, generate_key
from trove.db.cluster import ClusterError
from trove.db.local import apply_seed, local_cluster
from trove.db.migrate import MigrationError, migrate
from trove.keys import rotate_tokens
from trove.redact import configure_logging
from trove.worker import Worker


def _db_start(_: argparse.Namespace) -> None:
    cluster = local_cluster()
    cluster.start()
    print(f"PostgreSQL is up: {cluster.url()}")


def _db_stop(_: argparse.Namespace) -> None:
    local_cluster().stop()
    print("PostgreSQL stopped")


def _db_status(_: argparse.Namespace) -> None:
    cluster = local_cluster()
    if cluster.running():
        print(f"running: {cluster.url()}")
    else:
        print("stopped")
        sys.exit(3)


def _db_migrate(args: argparse.Namespace) -> None:
    applied = migrate(database_url(), local_stack=args.local_stack, directory=args.migrations_dir)
    print(f"migrations: {len(applied)} applied, database up to date")
    if args.seed:
        apply_seed(database_url())
        print("seed data loaded")


def _db_reset(_: argparse.Namespace) -> None:
    """Delete the local cluster and rebuild it from the migrations (local stack only)."""
    cluster = local_cluster()
    cluster.destroy()
    cluster.start()
    migrate(cluster.url(), local_stack=True)
    apply_seed(cluster.url())
    print(f"rebuilt from migrations: {cluster.url()}")


def _db_url(_: argparse.Namespace) -> None:
    print(database_url())


def _keys_generate(_: argparse.Namespace) -> None:
    print(generate_key())


def _keys_rotate(_: argparse.Namespace) -> None:
    ring = KeyRing.from_environment()
    count = rotate_tokens(database_url(), ring)
    print(f"re-encrypted {count} tokens with key {ring.current!r}")


def _worker(args: argparse.Namespace) -> None:
    configure_logging()
    connectors = load_connectors()
    worker = Worker(
        database_url(),
        connectors,
        KeyRing.from_environment(),
        worker_id=args.worker_id,
        concurrency=args.concurrency,
        per_platform=args.per_platform,
        lease=timedelta(seconds=args.lease_seconds),
        poll_interval=args.poll_interval,
        shutdown_grace=args.shutdown_grace,
    )
    asyncio.run(worker.run())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trove", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="the database: local cluster and migrations")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("start", help="start the local cluster (creates it on first use)").set_defaults(
        func=_db_start
    )
    db_commands.add_parser("stop", help="stop the local cluster").set_defaults(func=_db_stop)
    db_commands.add_parser("status", help="is the local cluster running").set_defaults(func=_db_status)
    db_commands.add_parser("url", help="print the database URL in use").set_defaults(func=_db_url)
    db_commands.add_parser("reset", help="rebuild the local cluster from the migrations").set_defaults(func=_db_reset)
    mig = db_commands.add_parser("migrate", help="apply pending migrations to $DATABASE_URL")
    mig.add_argument(
        "--local-stack",
        action="store_true",
        help="first apply supabase/local/*.sql (roles, auth schema): vanilla Postgres only, never Supabase",
    )
    mig.add_argument("--seed", action="store_true", help="then load supabase/seed.sql")
    mig.add_argument("--migrations-dir", type=Path, default=MIGRATIONS_DIR, help=argparse.SUPPRESS)
    mig.set_defaults(func=_db_migrate)

    work = commands.add_parser("worker", help="run the sync worker (drains the queues in SQL)")
    work.add_argument("--worker-id", default=None, help="name in leases and logs (default host:pid)")
    work.add_argument("--concurrency", type=int, default=8, help="jobs at once in this process")
    work.add_argument("--per-platform", type=int, default=4, help="jobs at once per platform")
    work.add_argument("--lease-seconds", type=float, default=120.0, help="how long a claim lasts unless extended")
    work.add_argument("--poll-interval", type=float, default=5.0, help="seconds between polls when idle")
    work.add_argument("--shutdown-grace", type=float, default=30.0, help="seconds to finish work on SIGTERM")
    work.set_defaults(func=_worker)

    keys = commands.add_parser("keys", help="token encryption keys ($TROVE_TOKEN_KEYS)")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    key_commands.add_parser("generate", help="print a new random key").set_defaults(func=_keys_generate)
    key_commands.add_parser(
        "rotate", help="re-encrypt every stored token with the current key ($TROVE_TOKEN_KEY_ID)"
    ).set_defaults(func=_keys_rotate)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ClusterError, MigrationError, TokenCryptoError) as error:
        print(f"trove: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
