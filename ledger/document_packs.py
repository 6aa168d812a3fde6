"""Documents written in bulk: many small documents in one pack file, found through an index.

A bulk import stores one metadata document per lot. As a file each, that is a file
creation per lot, which costs 20 us on a plain ext4 disk and 600 to 900 us on a watched
or networked one (measured on this project's CI machine): more than everything else the
bulk path does per lot. So the bulk path writes a window's documents into one pack file,
`documents/packs/<random>.pack`, and records where each one lies in
`documents/packs/index.sqlite` (sha256 -> pack, offset, length).

Order of writing: the pack file first (complete, renamed into place), then the index in
one transaction. A crash in between leaves an unindexed pack, which nothing reads (and
the re-run writes the documents again); a reader never sees an index entry whose bytes
are not all there. Every read is checked against the hash by DocumentStore, as for files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ledger.localnode.journal import fsync_directory  # standard library only, as this module

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS packed (digest BLOB PRIMARY KEY, pack TEXT NOT NULL, "
    "offset INTEGER NOT NULL, length INTEGER NOT NULL) WITHOUT ROWID"
)
_ANCHORED = "CREATE TABLE IF NOT EXISTS anchored (digest BLOB PRIMARY KEY) WITHOUT ROWID"
#: The index connection's page cache (KiB): 64 MiB holds the index of a few million lots.
_CACHE_KIB = 65536
#: SQLite's default limit on bound parameters is 32,766 (999 before 3.32): stay well below.
_QUERY_IDS = 500


class PackIndex:
    """The packs of one document store (`<store root>/packs`)."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "packs"
        self.index_path = self.folder / "index.sqlite"
        self._lock = threading.Lock()
        self._ready = False
        # One connection, kept between calls: a new one starts with a cold page cache and
        # reads the index's pages again (random digests touch most of them), which made
        # each window of a large import slower than the one before.
        self._connection: sqlite3.Connection | None = None
        self._identity: tuple[int, int, int] | None = None  # (process, device, inode) it was opened on
        self._schema = False

    @contextlib.contextmanager
    def _connect(self, write: bool) -> Iterator[sqlite3.Connection | None]:
        """The index's connection, one caller at a time; None when reading and no index
        exists yet (or only its file, a writer's moment before it creates the tables)."""
        with self._lock:
            yield self._open(write)

    def _open(self, write: bool) -> sqlite3.Connection | None:
        try:
            found = os.stat(self.index_path)
            identity: tuple[int, int, int] | None = (os.getpid(), found.st_dev, found.st_ino)
        except FileNotFoundError:
            identity = None
        if identity != self._identity:
            # Removed, replaced, or opened before a fork: never go on with the old file.
            self._drop()
        if identity is None and not write:
            return None
        try:
            if self._connection is None:
                if write:
                    self.folder.mkdir(parents=True, exist_ok=True)
                self._connection = sqlite3.connect(self.index_path, timeout=30, check_same_thread=False)
                stat = os.stat(self.index_path)
                self._identity = (os.getpid(), stat.st_dev, stat.st_ino)
                self._connection.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
            if write and not self._schema:
                self._connection.execute("PRAGMA journal_mode=WAL")
                self._connection.execute(_SCHEMA)
                self._connection.execute(_ANCHORED)
                self._schema = self._ready = True
        except sqlite3.DatabaseError:
            self._drop()
            if write:
                raise
            return None  # an unreadable index: the store holds what its files hold
        if not self._ready and not self._has_tables(self._connection):
            return None
        return self._connection

    def _drop(self) -> None:
        """Forget the connection (closed, unless another process opened it)."""
        if self._connection is not None and self._identity is not None and self._identity[0] == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
        self._connection, self._identity, self._schema, self._ready = None, None, False, False

    def _has_tables(self, connection: sqlite3.Connection) -> bool:
        """Whether the index has its tables (once it has, it keeps them)."""
        try:
            found = connection.execute("SELECT count(*) FROM sqlite_master WHERE name = 'packed'").fetchone()
        except sqlite3.DatabaseError:
            return False
        self._ready = bool(found and found[0])
        return self._ready

    def add(self, documents: Sequence[tuple[bytes, bytes]]) -> None:
        """Write `documents` ((sha256, content) pairs) as one pack and index them."""
        if not documents:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = secrets.token_hex(8) + ".pack"
        temporary = self.folder / f".{name}.partial"
        entries = []
        offset = 0
        try:
            with open(temporary, "wb") as handle:
                for digest, content in documents:
                    handle.write(content)
                    entries.append((digest, name, offset, len(content)))
                    offset += len(content)
                handle.flush()
                # On disk before the index names it (the index commits with an fsync): a power
                # loss never leaves an index entry over an empty pack.
                os.fsync(handle.fileno())
            os.replace(temporary, self.folder / name)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        fsync_directory(self.folder)
        with self._connect(write=True) as connection:
            assert connection is not None
            with connection:  # one transaction; a document packed again (its old copy damaged) moves
                # In key order: each leaf page is visited once (measured at 120,000 entries:
                # a window's 2,000 inserts and commit 47 ms in input order, 30 ms sorted).
                connection.executemany("INSERT OR REPLACE INTO packed VALUES (?, ?, ?, ?)", sorted(entries))
            _checkpoint(connection)

    def location(self, digest: bytes) -> tuple[Path, int, int] | None:
        """Where a packed document lies (pack file, offset, length), or None (also when the
        index is unreadable: the store then holds what its files hold)."""
        with self._connect(write=False) as connection:
            if connection is None:
                return None
            try:
                row = connection.execute("SELECT pack, offset, length FROM packed WHERE digest = ?", (digest,)).fetchone()
            except sqlite3.DatabaseError:
                return None
        if row is None or not _sane(row):
            return None
        return (self.folder / str(row[0]), int(row[1]), int(row[2]))

    def holds(self, digest: bytes) -> bool:
        """Whether a pack is indexed for the document and is long enough to hold it."""
        found = self.location(digest)
        if found is None:
            return False
        path, offset, length = found
        try:
            return path.stat().st_size >= offset + length
        except OSError:
            return False

    def read(self, digest: bytes) -> bytes:
        """The packed document's bytes, unchecked (FileNotFoundError when not packed)."""
        found = self.location(digest)
        if found is None:
            raise FileNotFoundError(f"no document {digest.hex()} in the packs")
        path, offset, length = found
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read(length)
        except OSError as exc:  # a pack lost, or not a file: the document is not held
            raise FileNotFoundError(f"pack {path.name} of document {digest.hex()} cannot be read ({exc})") from exc
        if len(data) != length:
            raise FileNotFoundError(f"pack {path.name} ends before document {digest.hex()}")
        return data

    def size(self, digest: bytes) -> int | None:
        """A packed document's size in bytes, or None."""
        found = self.location(digest)
        return None if found is None else found[2]

    def intact(self, digests: Sequence[bytes]) -> set[bytes]:
        """Those of `digests` the packs hold with the right bytes (each pack read once)."""
        rows: list[tuple[bytes, str, int, int]] = []
        with self._connect(write=False) as connection:
            if connection is None:
                return set()
            try:
                for start in range(0, len(digests), _QUERY_IDS):
                    part = list(digests[start : start + _QUERY_IDS])
                    marks = ",".join("?" * len(part))
                    query = f"SELECT digest, pack, offset, length FROM packed WHERE digest IN ({marks})"
                    rows.extend((bytes(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in connection.execute(query, part))
            except sqlite3.DatabaseError:
                return set()
        held: set[bytes] = set()
        by_pack: dict[str, list[tuple[bytes, int, int]]] = {}
        for digest, pack, offset, length in rows:
            if _sane((pack, offset, length)):
                by_pack.setdefault(pack, []).append((digest, offset, length))
        for pack, entries in by_pack.items():
            try:
                with open(self.folder / pack, "rb") as handle:
                    for digest, offset, length in sorted(entries, key=lambda e: e[1]):
                        handle.seek(offset)
                        if hashlib.sha256(handle.read(length)).digest() == digest:
                            held.add(digest)
            except OSError:
                continue
        return held

    def mark_anchored(self, digests: Iterable[bytes]) -> None:
        """Remember many anchored public documents at once (see DocumentStore.mark_anchored)."""
        rows = [(digest,) for digest in digests]
        if not rows:
            return
        with self._connect(write=True) as connection:
            assert connection is not None
            with connection:
                connection.executemany("INSERT OR IGNORE INTO anchored VALUES (?)", rows)
            _checkpoint(connection)

    def anchored(self) -> list[bytes]:
        """The documents remembered by mark_anchored."""
        with self._connect(write=False) as connection:
            if connection is None:
                return []
            try:
                return [bytes(r[0]) for r in connection.execute("SELECT digest FROM anchored")]
            except sqlite3.DatabaseError:
                return []


def _checkpoint(connection: sqlite3.Connection) -> None:
    """Move what a write put in the write-ahead log into index.sqlite and empty the log. The
    connection stays open between calls, and with it the log: without this, a copy of
    index.sqlite alone (a backup) held none of it, and a restored index.sqlite was overlaid
    with the old log by the process that had it open. A reader in the middle of a read
    makes the checkpoint partial; the next write's finishes it."""
    with contextlib.suppress(sqlite3.OperationalError):  # busy: another process reads or writes
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _sane(row: tuple[object, ...]) -> bool:
    """An index row that names a pack of this folder and a place inside a file."""
    pack, offset, length = row
    return (
        isinstance(pack, str)
        and pack.endswith(".pack")
        and "/" not in pack
        and not pack.startswith(".")
        and isinstance(offset, int)
        and isinstance(length, int)
        and offset >= 0
        and length >= 0
    )
