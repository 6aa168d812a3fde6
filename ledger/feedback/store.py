"""The feedback store: SQLite in the data directory by default (`feedback.sqlite`, never the
index database, which is rebuilt from the chain), PostgreSQL by `feedback_database_url`.

The log is append-only: every entry is one row, written in one transaction that first takes
the database's write lock, then reads the head and inserts the next position, so two web
workers never take the same position and a kill -9 leaves either the whole entry or none.
The only change a row ever sees is the erasure of its content by a hide (`--erase`): the
content hash stays, so the chain still verifies.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from ledger.errors import ConfigurationError, LedgerError
from ledger.feedback.chain import GENESIS, ChainLink, content_hash, entry_hash
from ledger.indexer.store import advisory_key, database_url

metadata = MetaData()

entries = Table(
    "feedback_entries",
    metadata,
    Column("sequence", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(8), nullable=False),  # comment | reply | hide
    Column("batch_id", String(66), nullable=False, index=True),
    Column("gtin", String(14), nullable=False, index=True),
    Column("created_at", Integer, nullable=False),
    Column("target", Integer, nullable=True),  # the comment a reply or hide is about
    Column("content", Text, nullable=True),  # canonical JSON; NULL once erased
    Column("content_hash", String(66), nullable=False),
    Column("entry_hash", String(66), nullable=False),
    # sha256 of a comment's normalised text: the same text twice on one lot is refused.
    Column("text_key", String(66), nullable=True, index=True),
)

#: Anchors this server sent (the chain holds the record; this only says when to send the next).
anchors = Table(
    "feedback_anchors",
    metadata,
    Column("count", Integer, primary_key=True, autoincrement=False),
    Column("head", String(66), nullable=False),
    Column("tx_hash", String(66), nullable=False),
    Column("block_number", Integer, nullable=False),
    Column("anchored_at", Integer, nullable=False),
)

WRITE_LOCK_KEY = advisory_key("provenance-ledger feedback: append")
#: PostgreSQL has no cheap signal of a commit: other processes see a new entry within this.
VERSION_TTL_SECONDS = 0.5
#: A file modified this recently may change again within its timestamp's tick (api.deps).
RACY_STAT_NS = 50_000_000
SCHEMA_LOCK_KEY = advisory_key("provenance-ledger feedback: schema")


class DuplicateFeedback(LedgerError):
    """The same text was already left on this lot."""


@dataclass(frozen=True)
class Entry:
    """One entry of the log as stored."""

    sequence: int
    kind: str
    batch_id: str
    gtin: str
    created_at: int
    target: int | None
    content: dict[str, Any] | None
    content_hash: str
    entry_hash: str

    def link(self) -> ChainLink:
        """The entry's place in the hash chain."""
        return ChainLink(self.sequence, self.content_hash, self.entry_hash, self.content)

    def public(self) -> dict[str, Any]:
        """The entry as the public log shows it (content absent once erased)."""
        return {
            "sequence": self.sequence,
            "kind": self.kind,
            "content": self.content,
            "content_hash": self.content_hash,
            "entry_hash": self.entry_hash,
        }


@dataclass(frozen=True)
class Head:
    """The log's last position and its hash (count 0: the empty log, GENESIS)."""

    count: int
    hash: str


@dataclass(frozen=True)
class AnchorRecord:
    """An anchor this server sent."""

    count: int
    head: str
    tx_hash: str
    block_number: int
    anchored_at: int


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed entry survives a power cut too (it may already be anchored on chain).
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # An erased comment's text is overwritten in the file, not just unlinked from it.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _row_entry(row: Any) -> Entry:
    return Entry(
        sequence=row.sequence,
        kind=row.kind,
        batch_id=row.batch_id,
        gtin=row.gtin,
        created_at=row.created_at,
        target=row.target,
        content=None if row.content is None else json.loads(row.content),
        content_hash=row.content_hash,
        entry_hash=row.entry_hash,
    )


class FeedbackStore:
    """The feedback log and the record of its anchors."""

    def __init__(self, url: str) -> None:
        self.url = url
        connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
        self.engine: Engine = create_engine(url, future=True, connect_args=connect_args)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        #: (stamp, value) of the last version read (see `version`).
        self._version: tuple[object | None, int] = (None, 0)
        self._create_tables()

    def _create_tables(self) -> None:
        """Create the tables once, whoever starts first: web workers open the store at the
        same moment (PostgreSQL: under an advisory lock; SQLite: a loser retries)."""
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
                    metadata.create_all(conn)
                return
            except (OperationalError, IntegrityError):
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))

    @classmethod
    def open(cls, url: str | None, data_dir: Path) -> FeedbackStore:
        """The store at `url`, else `feedback.sqlite` in the data directory."""
        if not url:
            data_dir.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{data_dir / 'feedback.sqlite'}"
        try:
            return cls(database_url(url, data_dir))
        except Exception as exc:  # noqa: BLE001 - driver errors vary; the message matters
            raise ConfigurationError(f"cannot open the feedback database {url}: {exc}") from exc

    def dispose(self) -> None:
        """Close the store's connections."""
        self.engine.dispose()

    # ------------------------------------------------------------------ writing

    def _lock(self, conn: Connection) -> None:
        """Take the database's write lock for this transaction: appends take turns."""
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})
        else:
            # A write statement (matching nothing) makes SQLite take its write lock now.
            conn.execute(update(entries).where(text("0 = 1")).values(kind="comment"))

    def append(
        self,
        content: dict[str, Any],
        *,
        batch_id: str,
        gtin: str,
        target: int | None = None,
        text_key: str | None = None,
        erase: int | None = None,
    ) -> Entry:
        """Append one entry (its kind and time are in `content`) at the next position, in
        one transaction. `text_key` refuses a comment whose text this lot already has;
        `erase` blanks the content of that earlier entry in the same transaction."""
        with self.engine.begin() as conn:
            self._lock(conn)
            if (
                text_key is not None
                and conn.execute(
                    select(entries.c.sequence).where(entries.c.batch_id == batch_id, entries.c.text_key == text_key).limit(1)
                ).first()
            ):
                raise DuplicateFeedback("this lot already has a comment with the same text")
            head = self._head(conn)
            digest = content_hash(content)
            sequence = head.count + 1
            row = {
                "sequence": sequence,
                "kind": content["kind"],
                "batch_id": batch_id,
                "gtin": gtin,
                "created_at": int(content["at"]),
                "target": target,
                "content": json.dumps(content, sort_keys=True, ensure_ascii=False),
                "content_hash": digest,
                "entry_hash": entry_hash(head.hash, digest, sequence),
                "text_key": text_key,
            }
            conn.execute(insert(entries).values(**row))
            if erase is not None:
                conn.execute(update(entries).where(entries.c.sequence == erase).values(content=None, text_key=None))
        self._version = (None, 0)  # this process's next page view reads the new position
        if erase is not None and self.engine.dialect.name == "sqlite":
            # The WAL still holds the page with the text: fold it into the file and truncate it.
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return Entry(
            sequence, content["kind"], batch_id, gtin, int(content["at"]), target, content, digest, str(row["entry_hash"])
        )

    def record_anchor(self, anchor: AnchorRecord) -> None:
        """Remember an anchor this server sent."""
        with self.engine.begin() as conn:
            if conn.execute(select(anchors.c.count).where(anchors.c.count == anchor.count)).first() is None:
                conn.execute(insert(anchors).values(**anchor.__dict__))

    # ------------------------------------------------------------------ reading

    @staticmethod
    def _head(conn: Connection) -> Head:
        row = conn.execute(select(entries.c.sequence, entries.c.entry_hash).order_by(entries.c.sequence.desc()).limit(1)).first()
        return Head(0, GENESIS) if row is None else Head(row[0], row[1])

    def head(self) -> Head:
        """The log's last position and hash."""
        with self.engine.connect() as conn:
            return self._head(conn)

    def version(self) -> int:
        """Changes whenever an entry is appended or erased (an erasure comes with its hide
        entry): the last position. Asked on every page view, so it is not read from the
        database while nothing can have changed: SQLite: neither the file nor its WAL
        changed since the last read (two `stat` calls; a file changed in the last 50 ms is
        not trusted, as in api.deps); PostgreSQL: read at most every VERSION_TTL_SECONDS,
        and at once after this process appended."""
        stamp = self._stamp()
        seen, value = self._version
        if stamp is not None and stamp == seen:
            return value
        with self.engine.connect() as conn:
            value = int(conn.execute(select(func.coalesce(func.max(entries.c.sequence), 0))).scalar_one())
        self._version = (stamp, value)  # the stamp was taken before the read: a commit between shows next time
        return value

    def _stamp(self) -> object | None:
        """What says nothing changed since the last read, or None when it cannot say."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database:
            now = time.monotonic()
            seen = self._version[0]
            fresh = isinstance(seen, float) and now - seen < VERSION_TTL_SECONDS
            return seen if fresh else now
        stamps = []
        for path in (database, database + "-wal"):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                stamps.append((0, 0, 0))
                continue
            stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
        if time.time_ns() - max(mtime for _, mtime, _ in stamps) < RACY_STAT_NS:
            return None
        return tuple(stamps)

    def entry(self, sequence: int) -> Entry | None:
        """The entry at `sequence`, if stored."""
        with self.engine.connect() as conn:
            row = conn.execute(select(entries).where(entries.c.sequence == sequence)).first()
        return None if row is None else _row_entry(row)

    def entries_of(self, batch_ids: Iterable[str] = (), gtin: str | None = None) -> list[Entry]:
        """Every entry about the lots `batch_ids` (or every lot of `gtin`), oldest first."""
        query = select(entries).order_by(entries.c.sequence)
        query = query.where(entries.c.gtin == gtin) if gtin is not None else query.where(entries.c.batch_id.in_(list(batch_ids)))
        with self.engine.connect() as conn:
            return [_row_entry(row) for row in conn.execute(query)]

    def log(self, after: int = 0, limit: int = 1000) -> list[Entry]:
        """The log from position `after + 1`, at most `limit` entries."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(entries).where(entries.c.sequence > after).order_by(entries.c.sequence).limit(limit))
            return [_row_entry(row) for row in rows]

    def links(self) -> list[ChainLink]:
        """Every stored entry's place in the chain, in order (for verification)."""
        return [entry.link() for entry in self.log(limit=2**31)]

    def last_anchor(self) -> AnchorRecord | None:
        """The latest anchor this server sent."""
        with self.engine.connect() as conn:
            row = conn.execute(select(anchors).order_by(anchors.c.count.desc()).limit(1)).first()
        return None if row is None else AnchorRecord(*row)
