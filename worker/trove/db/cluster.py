"""A project-local PostgreSQL 15 cluster with pg_cron, run as the `postgres` OS user when we are root.

Used by `trove db start|stop` for the local stack (port 54322, data inside the checkout) and by the test
suite for throwaway clusters (temp dir, free port, durability off for speed).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PG_MAJOR = "15"


class ClusterError(RuntimeError):
    """The cluster could not be created, started or stopped; the message says why."""


def pg_bindir() -> Path:
    """Where the PostgreSQL server binaries live ($PG_BINDIR overrides Debian's layout)."""
    bindir = Path(os.environ.get("PG_BINDIR", f"/usr/lib/postgresql/{PG_MAJOR}/bin"))
    if not (bindir / "pg_ctl").exists():
        raise ClusterError(
            f"PostgreSQL {PG_MAJOR} server binaries not found in {bindir}; "
            "run scripts/install-system-deps.sh (or set PG_BINDIR)"
        )
    return bindir


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _as_postgres() -> list[str]:
    """Postgres refuses to run as root: drop to the `postgres` OS user when we are root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _chown_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


@dataclass
class Cluster:
    """One PostgreSQL data directory and the server that runs on it."""

    root: Path  # holds data/ and postgres.log
    port: int
    password: str = "postgres"
    durable: bool = True  # False for throwaway test clusters: fsync off, faster
    extra_settings: dict[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def url(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, args: list[str], what: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(_as_postgres() + args, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            log_tail = ""
            if self.log_file.exists():
                log_tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
            raise ClusterError(
                f"{what} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
                + (f"\n--- last lines of {self.log_file} ---\n{log_tail}" if log_tail else "")
            )
        return proc

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the data directory (once). Idempotent."""
        if self.initialized():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        _chown_to_postgres(self.root)
        if os.geteuid() == 0:
            probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(self.root)], check=False)
            if probe.returncode != 0:
                raise ClusterError(
                    f"the postgres OS user cannot write to {self.root}: every folder above it must be "
                    "traversable by others (chmod o+x), or set TROVE_STATE_DIR to a folder it can reach"
                )
        # The password file must be readable by the postgres user and never left behind.
        with tempfile.NamedTemporaryFile("w", dir=self.root, delete=False) as pwfile:
            pwfile.write(self.password + "\n")
        pw_path = Path(pwfile.name)
        _chown_to_postgres(pw_path)
        try:
            self._run(
                [
                    str(pg_bindir() / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    f"--pwfile={pw_path}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                ],
                "initdb",
            )
        finally:
            pw_path.unlink(missing_ok=True)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# Trove: settings written at each start\ninclude_if_exists = 'trove.conf'\n")

    def _write_settings(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "shared_preload_libraries": "'pg_cron'",
            "cron.database_name": "'postgres'",
            "max_connections": "200",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        settings |= self.extra_settings
        conf = self.data_dir / "trove.conf"
        conf.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
        _chown_to_postgres(conf)

    def running(self) -> bool:
        if not self.initialized():
            return False
        proc = subprocess.run(
            [*_as_postgres(), str(pg_bindir() / "pg_ctl"), "-D", str(self.data_dir), "status"],
            capture_output=True,
            check=False,
        )
        return proc.returncode == 0

    def start(self) -> None:
        """Initialize if needed and start the server; a no-op when it already runs."""
        self.init()
        if self.running():
            return
        if port_in_use(self.port):
            raise ClusterError(
                f"port {self.port} on 127.0.0.1 is already taken by another process; stop it "
                "(another PostgreSQL or Supabase stack?) and try again"
            )
        self._write_settings()
        if not self.log_file.exists():
            self.log_file.touch()
            _chown_to_postgres(self.log_file)
        self._run(
            [
                str(pg_bindir() / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "start",
            ],
            "starting PostgreSQL",
        )

    def stop(self) -> None:
        if self.running():
            self._run(
                [str(pg_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                "stopping PostgreSQL",
            )

    def destroy(self) -> None:
        """Stop the server and delete its files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
