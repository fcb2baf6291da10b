"""A throwaway PostgreSQL server for a test: ``initdb`` into a temporary folder, ``postgres``
on a free loopback port with trust authentication, stopped and removed afterwards.

Debian's ``postgresql`` package provides the binaries (``scripts/setup`` installs it);
as root, the server runs as the package's ``postgres`` user, since it refuses root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ocean_provider.devnet.ports import free_port

USER = "postgres"


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    bin_dir: Path
    run_as: tuple[str, ...]

    def environ(self, database: str) -> dict[str, str]:
        """The variables operator-engine gives its pods to reach the database."""
        return {
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": USER,
            "POSTGRES_PASSWORD": "",
            "POSTGRES_DB": database,
        }

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql; its unaligned, tuples-only output."""
        command = [str(self.bin_dir / "psql"), "-h", self.host, "-p", str(self.port), "-U", USER]
        done = subprocess.run(
            [*command, "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", statement],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr}")
        return done.stdout.strip()


def bin_dir() -> Path | None:
    """Debian's PostgreSQL binaries (the newest version installed), else those on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    binaries = bin_dir()
    if binaries is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    run_as: tuple[str, ...] = ()
    # under /tmp itself: the postgres user cannot enter root's pytest folders
    root = Path(tempfile.mkdtemp(prefix="pod-configuration-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(USER)
        os.chown(root, owner.pw_uid, owner.pw_gid)
        run_as = ("runuser", "-u", USER, "--")
    data, port = root / "data", free_port()
    try:
        subprocess.run(
            [*run_as, str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", USER, "-N"],
            capture_output=True,
            check=True,
            timeout=120,
        )
        server = subprocess.Popen(
            [*run_as, str(binaries / "postgres"), "-D", str(data), "-p", str(port)]
            + ["-k", str(root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_ready(binaries, port, server)
            yield Postgres("127.0.0.1", port, binaries, run_as)
        finally:
            server.terminate()
            server.wait(30)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(binaries: Path, port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"postgres exited with {server.returncode}")
        ready = subprocess.run(
            [str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
            capture_output=True,
            check=False,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("postgres did not accept connections within 30 s")
