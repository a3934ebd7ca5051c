"""`trove` command line: database lifecycle today; worker and HTTP service join as they land."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

from trove.config import (
    HTTP_HOST,
    HTTP_PORT,
    LOCAL_JWT_SECRET,
    LOCAL_STACK_ENV,
    MIGRATIONS_DIR,
    ConfigError,
    database_url,
    is_loopback_host,
    jwt_secret,
    public_url,
    require_token_verification,
)
from trove.crypto import KeyRing, TokenCryptoError, generate_key
from trove.db.cluster import ClusterError
from trove.db.local import apply_seed, local_cluster
from trove.db.migrate import MigrationError, migrate
from trove.keys import rotate_tokens
from trove.platforms import load_platforms
from trove.platforms.base import SubscriptionError
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


def _db_schema(_: argparse.Namespace) -> None:
    from trove.db.schema import refresh

    print("wrote supabase/schema.sql" if refresh() else "supabase/schema.sql is up to date")


def _db_dump(_: argparse.Namespace) -> None:
    from trove.db.schema import restorable_dump

    sys.stdout.write(restorable_dump(database_url()))


def _keys_generate(_: argparse.Namespace) -> None:
    print(generate_key())


def _keys_rotate(_: argparse.Namespace) -> None:
    ring = KeyRing.from_environment()
    count = rotate_tokens(database_url(), ring)
    print(f"re-encrypted {count} tokens with key {ring.current!r}")


def _worker(args: argparse.Namespace) -> None:
    require_token_verification()
    configure_logging()
    platforms = load_platforms()
    connectors = {name: platform.connector for name, platform in platforms.items()}
    streams = {name: platform.stream for name, platform in platforms.items() if platform.stream is not None}
    worker = Worker(
        database_url(),
        connectors,
        KeyRing.from_environment(),
        worker_id=args.worker_id,
        concurrency=args.concurrency,
        per_platform=args.per_platform,
        per_host=args.per_host,
        lease=timedelta(seconds=args.lease_seconds),
        poll_interval=args.poll_interval,
        shutdown_grace=args.shutdown_grace,
        streams=streams,
    )
    asyncio.run(worker.run())


def _serve(args: argparse.Namespace) -> None:
    from trove.http.app import create_app
    from trove.http.log_redaction import serve_processes, serve_redacted

    require_token_verification()
    if jwt_secret() == LOCAL_JWT_SECRET and not is_loopback_host(args.host):
        raise ConfigError(
            f"refusing to listen on {args.host} with the local stack's published JWT secret (anyone could sign"
            " tokens): listen on 127.0.0.1, or set SUPABASE_JWT_SECRET or SUPABASE_JWKS_URL"
        )
    processes = args.processes if args.processes is not None else os.environ.get("TROVE_HTTP_PROCESSES") or "1"
    if not str(processes).isdigit() or int(processes) < 1:
        raise ConfigError(f"--processes / TROVE_HTTP_PROCESSES must be a whole number of at least 1, not {processes!r}")
    if int(processes) > 1:
        serve_processes("trove.http.app:served_app", int(processes), args.port, args.host)
    else:
        serve_redacted(create_app(), args.port, args.host)


def _simulate(args: argparse.Namespace) -> None:
    args.platform.simulator.serve(args)


def _subscribe(args: argparse.Namespace) -> None:
    callback = args.callback_url or f"{public_url()}/functions/v1/webhook-{args.platform.name}"
    subscription = args.platform.subscriptions.subscribe(database_url(), callback, rotate=args.rotate)
    print(f"subscribed: {args.platform.name} push subscription {subscription} -> {callback}/<secret>")


def _unsubscribe(args: argparse.Namespace) -> None:
    removed = args.platform.subscriptions.unsubscribe(database_url())
    print(f"unsubscribed from {removed}" if removed else "no subscription to remove")


def _subscription_status(args: argparse.Namespace) -> None:
    import json

    print(json.dumps(args.platform.subscriptions.status(database_url()), indent=2))


def _demo_post(args: argparse.Namespace) -> None:
    import httpx

    demo = args.platforms[args.platform].demo
    url = args.simulator_url or f"http://127.0.0.1:{demo.simulator_port}"
    try:
        print(demo.new_post(url, args.text, ephemeral=args.story))
    except ValueError as error:
        raise ConfigError(str(error)) from error
    except httpx.HTTPError as error:
        raise ConfigError(
            f"the {args.platform} simulator at {url} did not answer ({error}): is `make run` running?"
        ) from error


def _netd(_: argparse.Namespace) -> None:
    from trove.netd import run as run_netd

    configure_logging()

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await run_netd(database_url(), stopping)

    asyncio.run(main())


def _import(args: argparse.Namespace) -> None:
    from trove.imports.command import import_file

    configure_logging()
    if not Path(args.file).is_file():
        raise ConfigError(f"{args.file}: no such file")
    raise SystemExit(asyncio.run(import_file(database_url(), Path(args.file), args.user)))


def _run(args: argparse.Namespace) -> None:
    from trove.demo import run

    # `trove run` is the local stack: its children may use the Supabase CLI's local JWT secret, as long as
    # the database is on this machine (trove.config.local_stack); elsewhere set SUPABASE_JWT_SECRET.
    os.environ.setdefault(LOCAL_STACK_ENV, "1")
    require_token_verification()
    run(database_url(), once=args.once, posts=args.posts)


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
    db_commands.add_parser(
        "schema", help="regenerate supabase/schema.sql from the migrations (on a throwaway cluster)"
    ).set_defaults(func=_db_schema)
    db_commands.add_parser(
        "dump",
        help="print the schema-only dump of $DATABASE_URL to restore into a Supabase database: without "
        "auth/extensions, every privilege explicit (Supabase's default privileges widen nothing)",
    ).set_defaults(func=_db_dump)
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
    work.add_argument("--per-host", type=int, default=4, help="media downloads at once from one host (a CDN)")
    work.add_argument("--lease-seconds", type=float, default=120.0, help="how long a claim lasts unless extended")
    work.add_argument("--poll-interval", type=float, default=5.0, help="seconds between polls when idle")
    work.add_argument("--shutdown-grace", type=float, default=30.0, help="seconds to finish work on SIGTERM")
    work.set_defaults(func=_worker)

    run_cmd = commands.add_parser("run", help="HTTP service + worker (+ simulators and the demo archive)")
    run_cmd.add_argument("--once", action="store_true", help="exit once the demo archive is done")
    run_cmd.add_argument(
        "--posts", "--activities", dest="posts", type=int, default=300, help="posts of each simulated demo account"
    )
    run_cmd.set_defaults(func=_run)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default=HTTP_HOST)
    serve.add_argument("--port", type=int, default=HTTP_PORT)
    serve.add_argument(
        "--processes",
        default=None,
        help="service processes on the port (default $TROVE_HTTP_PROCESSES or 1; one per core is a good start)",
    )
    serve.set_defaults(func=_serve)

    platforms = load_platforms()
    simulate = commands.add_parser("simulate", help="run a platform simulator")
    sim_commands = simulate.add_subparsers(dest="simulate_command", required=True)
    for platform in platforms.values():
        if platform.simulator is not None:
            sim = sim_commands.add_parser(platform.name, help=f"the {platform.name} API simulator")
            platform.simulator.add_arguments(sim)
            sim.set_defaults(func=_simulate, platform=platform)

    demo = commands.add_parser("demo", help="play with the running demo (`make run`)")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True)
    post = demo_commands.add_parser("post", help="create a new item on a platform's simulator and watch it arrive")
    post.add_argument("platform", choices=sorted(name for name, p in platforms.items() if p.demo is not None))
    post.add_argument("text", help="the text of the new post (or activity name)")
    post.add_argument("--simulator-url", default=None, help="default: the simulator `make run` starts")
    post.add_argument("--story", action="store_true", help="a story (it vanishes on the platform after 24 hours)")
    post.set_defaults(func=_demo_post, platforms=platforms)

    # `trove <platform> subscribe|unsubscribe|status` for each platform with push subscriptions.
    for platform in platforms.values():
        if platform.subscriptions is None:
            continue
        group = commands.add_parser(platform.name, help=f"{platform.name} push subscription")
        group_commands = group.add_subparsers(dest="subscription_command", required=True)
        subscribe_cmd = group_commands.add_parser("subscribe", help="create the push subscription")
        subscribe_cmd.add_argument(
            "--callback-url",
            default=None,
            help=f"default: $TROVE_PUBLIC_URL/functions/v1/webhook-{platform.name} (plus any secret it needs)",
        )
        subscribe_cmd.add_argument(
            "--rotate",
            action="store_true",
            help="replace the live subscription with a new one (and a new secret callback URL)",
        )
        subscribe_cmd.set_defaults(func=_subscribe, platform=platform)
        group_commands.add_parser("unsubscribe", help="delete it").set_defaults(func=_unsubscribe, platform=platform)
        group_commands.add_parser("status", help="what the platform and Trove know of it").set_defaults(
            func=_subscription_status, platform=platform
        )

    commands.add_parser(
        "netd", help="perform the requests the database queued with net.http_post (the local pg_net stand-in)"
    ).set_defaults(func=_netd)

    imp = commands.add_parser("import", help="import an export file a platform gave you (its data download)")
    imp.add_argument("file", help="the export file as the platform gave it (a .zip, or a repository .car)")
    imp.add_argument("--user", metavar="EMAIL", help="whose archive (needed when there are several users)")
    imp.set_defaults(func=_import)

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
    except (ClusterError, ConfigError, MigrationError, TokenCryptoError, SubscriptionError) as error:
        print(f"trove: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
