"""Following the chain for as long as the process runs: the loop behind `provenance index
--follow` and the follower thread inside `provenance run`.

- **One writer.** A follower writes the index only while it holds the writer lock: a
  session advisory lock on PostgreSQL (held by a connection of its own, released by the
  server when the process dies and its connection closes), an OS file lock beside the
  database on SQLite. Others say once that they wait, poll, and one takes over when the
  writer goes. Readers (`serve`, the pages) never take it.
- **Keeps going.** When the chain or the database goes away, the follower retries with
  exponential backoff (0.5 s doubling to MAX_BACKOFF_SECONDS), says so once per outage and
  once when it is over: never a traceback per attempt.
- **The chain is the truth.** A sync that rewound the index (the chain got shorter, or
  changed) is reported in one sentence (`ScanReport.rewind_notice`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from requests.exceptions import RequestException
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from web3.exceptions import Web3Exception

from ledger.errors import LedgerError
from ledger.indexer.scanner import Scanner, ScanReport
from ledger.indexer.store import LEADER_LOCK_KEY, IndexStore

#: Longest wait between two attempts while the chain or the database is away.
MAX_BACKOFF_SECONDS = 10.0
FIRST_BACKOFF_SECONDS = 0.5
#: How often a waiting follower asks for the writer lock.
LOCK_POLL_SECONDS = 1.0
WAITING = "another follower writes this index; waiting to take over"
TOOK_OVER = "took over writing the index (the other follower is gone)"


class WriterLock(Protocol):
    """The right to write one index, held by one follower at a time."""

    def try_acquire(self) -> bool:
        """True when this process holds the lock (already, or from now on)."""
        ...

    def release(self) -> None:
        """Give the lock up (a dead process gives it up by itself)."""
        ...


class PostgresWriterLock:
    """`pg_try_advisory_lock` on a connection of its own (autocommit, outside the pool):
    the server releases it when that connection closes, so a killed leader frees it."""

    def __init__(self, store: IndexStore) -> None:
        self.engine = create_engine(store.engine.url, poolclass=NullPool, connect_args={"connect_timeout": 5})
        self.connection: Connection | None = None

    def try_acquire(self) -> bool:
        """True when held. Checks a held lock's connection is alive (a database restart
        ends the session and its lock); raises the driver's error when the database is away."""
        if self.connection is not None:
            try:
                self.connection.execute(text("SELECT 1"))
                return True
            except SQLAlchemyError:
                self._drop()  # the session, and the lock with it, is gone: take it again below
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK_KEY}).scalar())
        except BaseException:
            connection.close()
            raise
        if held:
            self.connection = connection
        else:
            connection.close()
        return held

    def _drop(self) -> None:
        try:
            assert self.connection is not None
            self.connection.invalidate()
        except Exception:  # noqa: BLE001 - it is dead already
            pass
        self.connection = None

    def release(self) -> None:
        """Close the lock's connection (the server then releases the lock)."""
        if self.connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                self.connection.close()
            self.connection = None
        self.engine.dispose()


class FileWriterLock:
    """`flock` on a file beside the SQLite database: the OS releases it when the process
    ends, however it ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        """True when held."""
        if self.fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        """Unlock and close the file."""
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor releases the flock
            self.fd = None


class NoWriterLock:
    """For databases without a lock we know how to take: writers rely on the store's
    per-transaction guard alone."""

    def try_acquire(self) -> bool:
        """Always held."""
        return True

    def release(self) -> None:
        """Nothing to release."""


def writer_lock(store: IndexStore) -> WriterLock:
    """The writer lock of `store`'s database."""
    url = store.engine.url
    if url.get_backend_name() == "postgresql":
        return PostgresWriterLock(store)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return FileWriterLock(Path(url.database).with_name(Path(url.database).name + ".writer.lock"))
    return NoWriterLock()


def acquire_within(lock: WriterLock, seconds: float, stop: threading.Event | None = None) -> bool:
    """Try for the lock for up to `seconds` (a follower that is stopping lets it go soon)."""
    deadline = time.monotonic() + seconds
    while True:
        if lock.try_acquire():
            return True
        if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            return False
        time.sleep(0.2)


@dataclass(frozen=True)
class Outage:
    """Why the follower cannot sync: what is away, and what to say when it goes and comes back."""

    kind: str  # "chain" | "database" | "index"
    began: str
    ended: str


def diagnose(exc: BaseException, rpc_url: str, database: str) -> Outage:
    """Which outage an exception of a sync attempt means, in words for the operator."""
    first_line = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    if isinstance(exc, SQLAlchemyError):
        return Outage(
            "database",
            f"index database {database} unreachable ({first_line}); retrying",
            "index database back; the index follows the chain again",
        )
    # Transport failures mean the node is away; a node's error answer (ChainError) is said as it is.
    if isinstance(exc, RequestException | Web3Exception | OSError):
        return Outage(
            "chain", f"chain unreachable at {rpc_url}; retrying", f"chain back at {rpc_url}; the index follows it again"
        )
    reason = str(exc) if isinstance(exc, LedgerError) else first_line
    return Outage("index", f"the index cannot follow the chain: {reason}; retrying", "the index follows the chain again")


def database_label(store: IndexStore) -> str:
    """The database, for people: no password, no driver name."""
    return store.engine.url.render_as_string(hide_password=True).split("@")[-1].removeprefix("sqlite:///")


class Follower:
    """Keeps one index following the chain while holding its writer lock.

    `notice` receives one line per thing worth saying (an outage and its end, waiting for
    or taking over the lock, a rewind); `on_report` every sync that changed the index."""

    def __init__(
        self,
        scanner: Scanner,
        lock: WriterLock,
        rpc_url: str,
        notice: Callable[[str], None],
        on_report: Callable[[ScanReport], None] | None = None,
        interval: float = 1.0,
        max_backoff: float = MAX_BACKOFF_SECONDS,
    ) -> None:
        self.scanner = scanner
        self.lock = lock
        self.rpc_url = rpc_url
        self.database = database_label(scanner.store)
        self.notice = notice
        self.on_report = on_report
        self.interval = interval
        self.max_backoff = max_backoff
        self.outage: Outage | None = None
        self.waiting = False
        self.backoff = FIRST_BACKOFF_SECONDS

    def take_lock(self) -> bool:
        """Whether this follower may write now; says once that it waits, and once that it
        took over. Raises the database's error when the database is away."""
        held = self.lock.try_acquire()
        if not held and not self.waiting:
            self.waiting = True
            self.notice(WAITING)
        elif held and self.waiting:
            self.waiting = False
            self.notice(TOOK_OVER)
        return held

    def _failed(self, exc: BaseException) -> None:
        outage = diagnose(exc, self.rpc_url, self.database)
        if self.outage is None or outage.kind != self.outage.kind:
            self.notice(outage.began)
        self.outage = outage

    def _recovered(self) -> None:
        if self.outage is not None:
            self.notice(self.outage.ended)
            self.outage = None
        self.backoff = FIRST_BACKOFF_SECONDS

    def attempt(self) -> tuple[bool, ScanReport | None]:
        """One round: (whether it may write, the sync's report or None). Never raises for
        an outage: it is said once, and the next backoff is set."""
        try:
            if not self.take_lock():
                if self.outage is not None and self.outage.kind == "database":
                    self._recovered()  # it answered the lock request: it is back
                return False, None
            report = self.scanner.sync()
        except Exception as exc:  # noqa: BLE001 - every failure is an outage to wait out, said once
            self._failed(exc)
            return True, None
        self._recovered()
        notice = report.rewind_notice()
        if notice:
            self.notice(notice)
        if self.on_report is not None and (report.events_added or report.reorgs):
            self.on_report(report)
        return True, report

    def run(self, stop: threading.Event) -> None:
        """Follow until `stop` is set, then give the lock up."""
        try:
            while not stop.is_set():
                leader, report = self.attempt()
                if not leader:
                    stop.wait(LOCK_POLL_SECONDS)
                elif report is None:
                    stop.wait(self.backoff)
                    self.backoff = min(self.max_backoff, self.backoff * 2)
                else:
                    stop.wait(self.interval)
        finally:
            self.lock.release()
