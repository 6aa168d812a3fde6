"""A PostgreSQL server for the tests: the one named by $PROVENANCE_TEST_DATABASE_URL, the
machine's on 127.0.0.1:5432, or else a private cluster started here from Debian's
binaries on a free loopback port and stopped by `pg_ctl` at the end."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text

from ledger.chain import free_loopback_port

MACHINE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def answers(url: str) -> bool:
    """Whether a PostgreSQL server accepts a connection at `url`."""
    engine = create_engine("postgresql+psycopg://" + url.removeprefix("postgresql://"), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means no server for us
        return False
    finally:
        engine.dispose()


class PrivateCluster:
    """A throwaway cluster in `directory` (trust auth, loopback only)."""

    def __init__(self, directory: Path) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            raise RuntimeError(
                "no PostgreSQL server answers and none is installed: `apt-get install postgresql` "
                "(.ci/run does), or set PROVENANCE_TEST_DATABASE_URL"
            )
        self.bin = Path(binaries[-1]).parent
        self.directory = directory
        self.port = free_loopback_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: use its own account
            shutil.chown(self.directory, "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> PrivateCluster:
        data = self.directory / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.directory / "log"), "-w", "start")
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")
