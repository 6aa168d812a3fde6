"""Followers that keep going: `provenance index --follow` retries through a database
restart and a chain restart, saying so once per outage (never a traceback); one follower
writes an index at a time (an advisory lock on PostgreSQL, a file lock on SQLite) and
another takes over when it is killed; writers that skip the lock still never collide.
Every scenario ends with the index equal to a rebuild, /healthz sampled on the way."""

from __future__ import annotations

import contextlib
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres import PrivateCluster
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from test_index import dump
from test_index_truth import FreshLedger, assert_healthy, health, lots, wait_until

from ledger.indexer.store import IndexStore, database_url

ROOT = Path(__file__).resolve().parents[2]


class RunProcess:
    """A child process and what it printed, read by a thread so a silent child never blocks
    the test past its timeout. (tests/ledger/conftest.py has one for `provenance run`; a
    test module cannot import it by name, since `make test` collects tests/api's conftest too.)"""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _next(self, timeout: float) -> str | None:
        line = self._queue.get(timeout=timeout)
        if line is not None:
            self.lines.append(line)
        return line

    def wait_for(self, pattern: str, timeout: float = 60.0) -> None:
        """Read output until a line matches `pattern`; fail with everything read otherwise."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._next(left)
            except queue.Empty:
                break
            if line is None:
                break
            if re.search(pattern, line):
                return
        raise AssertionError(f"no line matched {pattern!r}; output:\n" + "\n".join(self.lines))

    def stop(self, sig: int | None = signal.SIGINT, timeout: float = 60.0) -> int:
        """Send `sig` (None: none) and wait for the exit code, keeping the remaining output."""
        if sig is not None and self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        try:
            while self._next(5) is not None:
                pass
        except queue.Empty:
            pass
        return code


def start_follower(fresh: FreshLedger, database: str, *args: str) -> RunProcess:
    """`provenance index --follow` as its own process, output read by a thread."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ledger.cli", "index", "--follow", *args],
        cwd=ROOT,
        env=fresh.env(database),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return RunProcess(process)


def caught_up(fresh: FreshLedger, store: IndexStore) -> bool:
    """Whether the index's cursor is the chain's head (and the database answers)."""
    try:
        cursor = store.cursor(fresh.address, 31337)
    except Exception:  # noqa: BLE001 - the database may be restarting
        return False
    return cursor is not None and cursor.block_number == fresh.head()


def no_tracebacks(run: RunProcess) -> None:
    output = "\n".join(run.lines)
    assert "Traceback" not in output and "IntegrityError" not in output, output


def count(run: RunProcess, words: str) -> int:
    return sum(words in line for line in run.lines)


# ---------------------------------------------------------------------- a database restart


class RestartableCluster(PrivateCluster):
    """A private PostgreSQL that a test stops and starts again (same data, same port)."""

    def pause(self) -> None:
        """Stop the server (`pg_ctl stop -m fast`: its postmaster, by the PID file)."""
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start it again with the options `start` used."""
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-o", options, "-l", str(self.directory / "log"), "-w", "start")


@pytest.fixture
def private_postgres() -> Iterator[RestartableCluster]:
    """A PostgreSQL cluster of this test's own, in a temporary directory (as the
    `postgres` account when we are root: PostgreSQL refuses to run as root)."""
    if not sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.fail("the database-restart test needs PostgreSQL's server binaries: `apt-get install postgresql`")
    # Not under pytest's tmp dir: its parents are private to our user.
    directory = Path(tempfile.mkdtemp(prefix="provenance-restart-pg-"))
    cluster = RestartableCluster(directory)
    try:
        cluster.start()
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        pytest.fail(f"could not start a private PostgreSQL: {exc} {exc.stderr.decode(errors='replace')}")
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_a_follower_carries_on_through_a_database_restart(fresh, private_postgres, tmp_path):
    url = private_postgres.url
    fresh.register("DB-1", "DB-2")
    follower = start_follower(fresh, url)
    store = IndexStore.open(url, tmp_path)
    try:
        follower.wait_for("Following the chain")
        wait_until(lambda: caught_up(fresh, store))
        with health(fresh, url) as client:
            assert_healthy(client)
            private_postgres.pause()
            fresh.register("DB-3", "DB-4", "DB-5")
            follower.wait_for(r"index database .* unreachable .*; retrying")
            down = client.get("/healthz")
            assert down.status_code == 503 and "the index database does not answer" in " ".join(down.json()["problems"])
            assert down.json()["index"]["database_reachable"] is False
            time.sleep(3)  # several attempts while it is away: still one message
            fresh.register("DB-6")
            private_postgres.resume()
            follower.wait_for("index database back; the index follows the chain again")
            wait_until(lambda: caught_up(fresh, store), timeout=60)
            assert_healthy(client)
    finally:
        code = follower.stop()
    assert code == 0, "\n".join(follower.lines)
    no_tracebacks(follower)
    assert count(follower, "unreachable") == 1 and count(follower, "back;") == 1, follower.lines
    assert lots(store) == {f"DB-{i}" for i in range(1, 7)}
    assert dump(store) == dump(fresh.rebuilt(tmp_path / "rebuilt"))
    store.dispose()


# ---------------------------------------------------------------------- a chain restart


def test_a_follower_carries_on_through_a_chain_restart(fresh, tmp_path):
    url = f"sqlite:///{tmp_path / 'follow.sqlite'}"
    fresh.register("CH-1", "CH-2")
    follower = start_follower(fresh, url)
    store = IndexStore.open(url, tmp_path)
    try:
        follower.wait_for("Following the chain")
        wait_until(lambda: caught_up(fresh, store))
        with health(fresh, url) as client:
            assert_healthy(client)
            fresh.chain.stop()  # the node goes away (its state saved)
            follower.wait_for(rf"chain unreachable at {re.escape(fresh.rpc_url)}; retrying")
            down = client.get("/healthz")
            assert down.status_code == 503 and "does not answer" in down.json()["problems"][0]
            time.sleep(3)
            fresh.chain.start()
            fresh.register("CH-3", "CH-4", "CH-5")
            follower.wait_for(rf"chain back at {re.escape(fresh.rpc_url)}; the index follows it again")
            wait_until(lambda: caught_up(fresh, store), timeout=60)
            assert_healthy(client)
    finally:
        code = follower.stop()
    assert code == 0, "\n".join(follower.lines)
    no_tracebacks(follower)
    assert count(follower, "unreachable") == 1 and count(follower, "back at") == 1, follower.lines
    assert lots(store) == {f"CH-{i}" for i in range(1, 6)}
    assert dump(store) == dump(fresh.rebuilt(tmp_path / "rebuilt"))
    store.dispose()


# ---------------------------------------------------------------------- two followers, one writer


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An index database for several processes: a SQLite file, or a uniquely named
    database on the test PostgreSQL server (dropped at the end)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.sqlite'}"
        return
    server = make_url(database_url(request.getfixturevalue("postgres_url"), tmp_path))
    name = f"provenance_followers_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_one_follower_writes_another_waits_and_takes_over_when_it_is_killed(fresh, shared_index, tmp_path):
    fresh.register("TWO-1", "TWO-2")
    leader = start_follower(fresh, shared_index)
    leader.wait_for("Following the chain")
    store = IndexStore.open(shared_index, tmp_path)
    standby = None
    try:
        wait_until(lambda: caught_up(fresh, store))
        standby = start_follower(fresh, shared_index)
        standby.wait_for("another follower writes this index; waiting to take over")
        # A catch-up finds the leader at work and leaves the index to it; a rebuild is refused.
        once = subprocess.run(
            [sys.executable, "-m", "ledger.cli", "index"],
            cwd=ROOT,
            env=fresh.env(shared_index),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert once.returncode == 0 and "writes this index and keeps it up to date" in once.stdout, once
        rebuild = subprocess.run(
            [sys.executable, "-m", "ledger.cli", "index", "--rebuild"],
            cwd=ROOT,
            env=fresh.env(shared_index),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rebuild.returncode == 1 and "stop it before --rebuild" in rebuild.stderr and "Traceback" not in rebuild.stderr
        fresh.register(*(f"TWO-{i}" for i in range(3, 13)))
        wait_until(lambda: caught_up(fresh, store))
        leader.process.send_signal(signal.SIGKILL)  # an OOM kill, a power cut
        leader.stop(None)
        fresh.register(*(f"TWO-{i}" for i in range(13, 18)))
        standby.wait_for("took over writing the index")
        wait_until(lambda: caught_up(fresh, store), timeout=60)
        with health(fresh, shared_index) as client:
            assert_healthy(client)
    finally:
        if leader.process.poll() is None:
            leader.stop(signal.SIGKILL)
        code = standby.stop() if standby is not None else None
    assert code == 0, "\n".join(standby.lines)
    for run in (leader, standby):
        no_tracebacks(run)
    assert count(standby, "waiting to take over") == 1 and count(leader, "waiting") == 0
    assert lots(store) == {f"TWO-{i}" for i in range(1, 18)}
    assert dump(store) == dump(fresh.rebuilt(tmp_path / "rebuilt"))
    store.dispose()


def test_writers_that_skip_the_lock_never_collide(fresh, shared_index, tmp_path):
    """Two scanners on one database at once, no follower lock: each range is applied by
    one of them (the store's write guard), never an IntegrityError, and the index equals
    a rebuild, across a rollback too."""
    fresh.register(*(f"RACE-{i}" for i in range(20)))
    stores = [IndexStore.open(shared_index, tmp_path / str(i)) for i in range(2)]
    scanners = [fresh.scanner(store, max_range=1) for store in stores]

    def race() -> None:
        failures: list[BaseException] = []

        def sync(index: int) -> None:
            try:
                scanners[index].sync()
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                failures.append(exc)

        threads = [threading.Thread(target=sync, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert failures == []
        assert dump(stores[0]) == dump(fresh.rebuilt(tmp_path / f"rebuilt-{secrets.token_hex(3)}"))

    race()
    fresh.rpc("anvil_rollback", 5)
    fresh.register(*(f"RACE-B{i}" for i in range(8)))
    race()
    assert "RACE-B7" in lots(stores[1]) and "RACE-19" not in lots(stores[1])
    for store in stores:
        store.dispose()
