"""The index store: SQLite (WAL) in the data directory by default, PostgreSQL by URL.

Each scanned range is applied in one database transaction with the cursor, so a crash
leaves either the whole range or none of it; events are keyed by (tx hash, log index)
and their operations run only when the event row is new: exactly once.

An event that cannot be decoded or applied never halts the sync: it is set aside (table
`set_aside`: transaction, log index, block, event name, stage, reason) and the range
goes on. The event stays in `events` (the log of record), so a rebuild decides again;
/healthz then says "degraded" (still 200) and /api/v1/index lists what was set aside.

Writers: one follower writes at a time (ledger/indexer/follow.py holds a lock for that),
and each writing transaction is safe against any other writer anyway: it takes the
database's write lock first (a transaction advisory lock on PostgreSQL, SQLite's own write
lock) and applies its range only if the cursor is still the one the range was read after
(else `CursorMoved`, and the scanner reads again).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError, IntegrityError, InterfaceError, OperationalError

from ledger.errors import ConfigurationError, LedgerError
from ledger.indexer import migrate, schema
from ledger.indexer.handlers import Consume, Delete, Insert, LedgerEvent, Operation, Update, operations_for, subject_of

CURSOR = "main"
#: Database failures that say nothing about the event: the range fails and is retried,
#: instead of setting aside every event of it.
TRANSIENT = (OperationalError, InterfaceError, DisconnectionError)


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock key (signed 64 bits) named by `name`."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


#: Held for the length of each writing transaction (PostgreSQL): writers take turns.
WRITE_LOCK_KEY = advisory_key("provenance-ledger index: write")
#: Held for a whole session by the one follower that writes the index (see follow.py).
LEADER_LOCK_KEY = advisory_key("provenance-ledger index: leader")

#: `expected` left out: the cursor is not compared.
ANY_CURSOR: Any = object()


class CursorMoved(LedgerError):
    """Another writer moved the index's cursor since this range was read: read it again."""


@dataclass(frozen=True)
class SetAside:
    """An event the index could not decode or apply, and why. The sync goes on without it."""

    tx_hash: str
    log_index: int
    block_number: int
    name: str
    stage: str  # "decode" | "apply"
    reason: str

    def row(self) -> dict[str, Any]:
        """The `set_aside` table's row."""
        return {
            "tx_hash": self.tx_hash,
            "log_index": self.log_index,
            "block_number": self.block_number,
            "name": self.name[:40],
            "stage": self.stage,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class IndexFreshness:
    """Where the index stands: its cursor block (and that block's time), and the chain head
    the last sync saw, when. Pages show it; /healthz compares it with the live head."""

    contract: str
    chain_id: int
    block_number: int
    block_hash: str
    head_seen: int | None
    checked_at: int | None
    block_timestamp: int | None


@dataclass(frozen=True)
class Cursor:
    """The last block fully applied to the store."""

    block_number: int
    block_hash: str


def database_url(url: str | None, data_dir: Path) -> str:
    """The store's SQLAlchemy URL: `url`, else SQLite in the data directory."""
    if url:
        if url.startswith("postgresql://"):
            return "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'index.sqlite'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers (the API) never block the indexer's writes, and commits are cheap.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class IndexStore:
    """The index database."""

    def __init__(self, url: str) -> None:
        self.url = url
        # A database that went away answers "unreachable" within seconds (followers retry,
        # /healthz says so) instead of hanging on the operating system's connect timeout.
        connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
        self.engine: Engine = create_engine(url, future=True, connect_args=connect_args)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        before = migrate.upgrade(self.engine)
        if before is not None and before < migrate.REPLAY_BEFORE:
            with self.engine.begin() as conn:
                self._replay(conn)

    @classmethod
    def open(cls, url: str | None, data_dir: Path) -> IndexStore:
        """The store at `url` (or the data directory's SQLite file)."""
        try:
            return cls(database_url(url, data_dir))
        except Exception as exc:  # noqa: BLE001 - driver errors vary; the message matters
            raise ConfigurationError(f"cannot open the index database {url or data_dir}: {exc}") from exc

    # ------------------------------------------------------------------ cursor

    def cursor(self, contract: str, chain_id: int) -> Cursor | None:
        """Where indexing stopped, or None before the first range. A store built for
        another contract or chain is refused."""
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.cursor).where(schema.cursor.c.name == CURSOR)).mappings().first()
        if row is None:
            return None
        if row["contract"] != contract or row["chain_id"] != chain_id:
            raise ConfigurationError(
                f"the index at {self.url} was built for ledger {row['contract']} on chain {row['chain_id']}, "
                f"not {contract} on chain {chain_id}: use another database or `provenance index --rebuild`"
            )
        return Cursor(row["block_number"], row["block_hash"])

    def mark_checked(self, head: int, at: int | None = None) -> None:
        """Record that a sync found the store caught up with chain head `head` (at `at`)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(schema.cursor)
                .where(schema.cursor.c.name == CURSOR)
                .values(head_seen=head, checked_at=int(time.time()) if at is None else at)
            )

    def freshness(self) -> IndexFreshness | None:
        """How fresh the index is, from the store alone (None before the first range)."""
        c, b = schema.cursor, schema.blocks
        with self.engine.connect() as conn:
            row = conn.execute(
                select(c.c.contract, c.c.chain_id, c.c.block_number, c.c.block_hash, c.c.head_seen, c.c.checked_at, b.c.timestamp)
                .select_from(c.outerjoin(b, b.c.number == c.c.block_number))
                .where(c.c.name == CURSOR)
            ).first()
        return None if row is None else IndexFreshness(*row)

    def _begin_write(self, conn: Connection, expected: Any) -> None:
        """Take the database's write lock for this transaction, then check that the cursor
        is still `expected` (unless ANY_CURSOR): a writer that lost a race never applies a
        range read after another cursor."""
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})
        elif conn.dialect.name == "sqlite":
            # A write statement (matching nothing) makes SQLite take its write lock now, so
            # the cursor read below cannot be overtaken before this transaction commits.
            conn.execute(update(schema.cursor).where(text("0 = 1")).values(name=CURSOR))
        if expected is ANY_CURSOR:
            return
        row = conn.execute(
            select(schema.cursor.c.block_number, schema.cursor.c.block_hash).where(schema.cursor.c.name == CURSOR)
        ).first()
        current = None if row is None else Cursor(row[0], row[1])
        if current != expected:
            raise CursorMoved(f"the index cursor moved from {expected} to {current} under this writer")

    def _set_cursor(self, conn: Connection, contract: str, chain_id: int, cursor: Cursor) -> None:
        values = {
            "contract": contract,
            "chain_id": chain_id,
            "block_number": cursor.block_number,
            "block_hash": cursor.block_hash,
        }
        updated = conn.execute(update(schema.cursor).where(schema.cursor.c.name == CURSOR).values(**values)).rowcount
        if not updated:
            conn.execute(insert(schema.cursor).values(name=CURSOR, **values))

    # ------------------------------------------------------------------ applying

    def apply_range(
        self,
        contract: str,
        chain_id: int,
        ledger_events: Sequence[LedgerEvent],
        blocks: Iterable[tuple[int, str, int]],
        end: Cursor,
        undecodable: Sequence[SetAside] = (),
        expected: Cursor | None = ANY_CURSOR,
    ) -> int:
        """Apply a scanned range (events in chain order, block hashes seen, new cursor)
        in one transaction. Returns how many events were new. Logs that could not be
        decoded, and events whose operations fail, are set aside with their reason; the
        rest of the range is applied and the cursor moves on. With `expected` (the cursor
        the range was read after, None before the first range), a cursor another writer
        moved meanwhile raises CursorMoved and nothing is written."""
        try:
            return self._apply_range(contract, chain_id, ledger_events, blocks, end, undecodable, expected)
        except IntegrityError as exc:
            # Only a writer that skipped the write lock (an older version) gets here: the
            # rows it wrote are there now, so reading the range again is right.
            raise CursorMoved(f"another writer wrote this range: {type(exc).__name__}") from exc

    def _apply_range(
        self,
        contract: str,
        chain_id: int,
        ledger_events: Sequence[LedgerEvent],
        blocks: Iterable[tuple[int, str, int]],
        end: Cursor,
        undecodable: Sequence[SetAside],
        expected: Any,
    ) -> int:
        added = 0
        with self.engine.begin() as conn:
            self._begin_write(conn, expected)
            known_blocks = {number for number, _, _ in blocks}
            if known_blocks:
                conn.execute(delete(schema.blocks).where(schema.blocks.c.number.in_(known_blocks)))
                conn.execute(insert(schema.blocks), [{"number": n, "hash": h, "timestamp": t} for n, h, t in blocks])
            new = self._new_events(conn, ledger_events)
            if new:
                _bulk_insert_tuples(conn, schema.events, EVENT_COLUMNS, [_event_row(e) for e in new])
                _record_set_aside(conn, _apply_operations(conn, new))
            if undecodable:
                sa = schema.set_aside
                keys = [(x.tx_hash, x.log_index) for x in undecodable]
                known = {
                    (t, i)
                    for t, i in conn.execute(
                        select(sa.c.tx_hash, sa.c.log_index).where(sa.c.block_number.in_({x.block_number for x in undecodable}))
                    )
                }
                _record_set_aside(conn, [x for x, key in zip(undecodable, keys, strict=True) if key not in known])
            added = len(new)
            self._set_cursor(conn, contract, chain_id, end)
        return added

    def set_aside(self, limit: int = 100) -> tuple[int, list[SetAside]]:
        """How many events are set aside, and the newest `limit` of them."""
        sa = schema.set_aside
        with self.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(sa)).scalar() or 0
            rows = (
                conn.execute(select(sa).order_by(sa.c.block_number.desc(), sa.c.log_index.desc()).limit(limit)).mappings().all()
            )
        return int(count), [
            SetAside(r["tx_hash"], r["log_index"], r["block_number"], r["name"], r["stage"], r["reason"]) for r in rows
        ]

    def anchored_in(self, key: str, columns: Sequence[Any], event_arguments: Sequence[tuple[str, str]]) -> int | None:
        """Where the hash `key` is anchored (ledger.anchors says what counts): the position
        of the first of `columns` holding it, else len(columns) + the position of the first
        (event name, argument) whose stored arguments hold it, else None. The index stores
        arguments as compact JSON and a quote inside a string value is always escaped, so
        the pattern matches the argument only."""
        e = schema.events
        with self.engine.connect() as conn:
            for position, column in enumerate(columns):
                if conn.execute(select(column).where(column == key).limit(1)).first() is not None:
                    return position
            for position, (name, argument) in enumerate(event_arguments, start=len(columns)):
                pattern = f'%"{argument}":"{key}"%'
                if (
                    conn.execute(select(e.c.tx_hash).where(and_(e.c.name == name, e.c.args.like(pattern))).limit(1)).first()
                    is not None
                ):
                    return position
        return None

    @staticmethod
    def _new_events(conn: Connection, ledger_events: Sequence[LedgerEvent]) -> list[LedgerEvent]:
        """The events not yet in the store (a re-scanned range repeats some)."""
        if not ledger_events:
            return []
        low = min(e.block_number for e in ledger_events)
        high = max(e.block_number for e in ledger_events)
        e = schema.events
        rows = conn.execute(select(e.c.tx_hash, e.c.log_index).where(e.c.block_number.between(low, high)))
        known = {(tx_hash, log_index) for tx_hash, log_index in rows}
        return [ev for ev in ledger_events if (ev.tx_hash, ev.log_index) not in known]

    # ------------------------------------------------------------------ reorgs and rebuilds

    def stored_blocks_desc(self, above: int = -1) -> list[tuple[int, str]]:
        """(number, hash) of remembered blocks, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(schema.blocks.c.number, schema.blocks.c.hash)
                .where(schema.blocks.c.number > above)
                .order_by(schema.blocks.c.number.desc())
            ).all()
        return [(r[0], r[1]) for r in rows]

    def rewind(self, contract: str, chain_id: int, ancestor: Cursor, expected: Cursor | None = ANY_CURSOR) -> int:
        """Forget everything after `ancestor` and rebuild the derived tables from the
        remaining events (no chain calls). Returns how many events were dropped. With
        `expected`, a cursor another writer moved meanwhile raises CursorMoved."""
        with self.engine.begin() as conn:
            self._begin_write(conn, expected)
            dropped = conn.execute(delete(schema.events).where(schema.events.c.block_number > ancestor.block_number)).rowcount
            conn.execute(delete(schema.blocks).where(schema.blocks.c.number > ancestor.block_number))
            conn.execute(delete(schema.set_aside).where(schema.set_aside.c.block_number > ancestor.block_number))
            self._replay(conn)
            self._set_cursor(conn, contract, chain_id, ancestor)
        return dropped

    def undecoded(self) -> list[SetAside]:
        """Every log set aside because it could not be decoded, oldest first."""
        sa = schema.set_aside
        with self.engine.connect() as conn:
            rows = (
                conn.execute(select(sa).where(sa.c.stage == "decode").order_by(sa.c.block_number, sa.c.log_index))
                .mappings()
                .all()
            )
        return [SetAside(r["tx_hash"], r["log_index"], r["block_number"], r["name"], r["stage"], r["reason"]) for r in rows]

    def readmit(self, ledger_events: Sequence[LedgerEvent]) -> int:
        """Take in events that were set aside as undecodable and can be decoded now (a
        newer decoder): they join `events` and leave `set_aside`, and the derived tables are
        rebuilt from all events in chain order, since these events are older than ones
        already applied. Returns how many were taken in."""
        if not ledger_events:
            return 0
        sa = schema.set_aside
        with self.engine.begin() as conn:
            self._begin_write(conn, ANY_CURSOR)
            new = self._new_events(conn, ledger_events)
            if new:
                _bulk_insert_tuples(conn, schema.events, EVENT_COLUMNS, [_event_row(e) for e in new])
            for e in ledger_events:
                conn.execute(delete(sa).where(and_(sa.c.tx_hash == e.tx_hash, sa.c.log_index == e.log_index)))
            self._replay(conn)
        return len(new)

    def _replay(self, conn: Connection) -> None:
        for table in reversed(schema.DERIVED):
            conn.execute(delete(table))
        # Undecodable logs stay set aside (they are not in `events`); the rest is decided again.
        conn.execute(delete(schema.set_aside).where(schema.set_aside.c.stage == "apply"))
        rows = conn.execute(select(schema.events).order_by(schema.events.c.block_number, schema.events.c.log_index)).mappings()
        replayed = [
            LedgerEvent(
                row["name"],
                json.loads(row["args"]),
                row["tx_hash"],
                row["log_index"],
                row["block_number"],
                row["block_hash"],
                row["timestamp"],
            )
            for row in rows.all()
        ]
        _record_set_aside(conn, _apply_operations(conn, replayed))

    def drop_all(self) -> None:
        """Empty the index completely (for `--rebuild`), schema recreated by the migrations."""
        schema.metadata.drop_all(self.engine)
        with self.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        migrate.upgrade(self.engine)

    def dispose(self) -> None:
        """Close the connections."""
        self.engine.dispose()


#: The events table's columns, in the order of `_event_row`'s tuples.
EVENT_COLUMNS = ("tx_hash", "log_index", "block_number", "block_hash", "timestamp", "name", "batch_id", "actor", "args")
# One encoder for every row (json.dumps builds a new one per call); same output as
# json.dumps(args, separators=(",", ":")).
_encode_args = json.JSONEncoder(separators=(",", ":")).encode


def _event_row(e: LedgerEvent) -> tuple[Any, ...]:
    """The events table's row of `e`, as a tuple in EVENT_COLUMNS order."""
    subject = subject_of(e)
    return (
        e.tx_hash,
        e.log_index,
        e.block_number,
        e.block_hash,
        e.timestamp,
        e.name,
        subject.batch_id,
        subject.actor,
        _encode_args(e.args),
    )


def _insert_sql(conn: Connection, table: Any, columns: Sequence[str]) -> str:
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"


def _bulk_insert_tuples(conn: Connection, table: Any, columns: Sequence[str], values: list[Any]) -> None:
    """Insert rows given as tuples in `columns` order through the driver's executemany."""
    # The driver sees raw values: quantity columns get their storage form here (padded
    # digits on SQLite), as SQLAlchemy would do for a Core insert.
    positions = [columns.index(name) for name in schema.quantity_columns(table) if name in columns]
    if positions:
        store = schema.quantity_storage(conn.dialect)

        def stored(row: Any) -> tuple[Any, ...]:
            converted = list(row)
            for position in positions:
                converted[position] = store(converted[position])
            return tuple(converted)

        values = [stored(row) for row in values]
    conn.exec_driver_sql(_insert_sql(conn, table, columns), values)


def _record_set_aside(conn: Connection, entries: Sequence[SetAside]) -> None:
    if entries:
        conn.execute(insert(schema.set_aside), [x.row() for x in entries])


def _apply_operations(conn: Connection, ledger_events: Sequence[LedgerEvent]) -> list[SetAside]:
    """Run the events' operations in order and return the events set aside. The whole
    run goes first in one savepoint (the fast path: bulk inserts stay batched); if any
    operation fails, that savepoint is rolled back and each event runs in its own, so
    only the events that fail are set aside, with their reason, and the rest applies."""
    try:
        with conn.begin_nested():
            _run_operations(conn, ledger_events)
        return []
    except TRANSIENT:
        raise
    except Exception:  # noqa: BLE001 - any failure of an event's operations is its reason
        pass
    failed: list[SetAside] = []
    for ledger_event in ledger_events:
        try:
            with conn.begin_nested():
                _run_operations(conn, [ledger_event])
        except TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001
            reason = f"{type(exc).__name__}: {exc}".split("\n[SQL:")[0][:1000]
            failed.append(
                SetAside(
                    ledger_event.tx_hash, ledger_event.log_index, ledger_event.block_number, ledger_event.name, "apply", reason
                )
            )
    return failed


def _run_operations(conn: Connection, ledger_events: Sequence[LedgerEvent]) -> None:
    """Run the events' operations in order; consecutive inserts into one table with the
    same columns go as one executemany (a bulk registration is thousands of them in a row)."""
    pending_table: Any = None
    pending_columns: tuple[str, ...] = ()
    pending: list[tuple[Any, ...]] = []

    def flush() -> None:
        if pending:
            _bulk_insert_tuples(conn, pending_table, pending_columns, pending)
            pending.clear()

    for ledger_event in ledger_events:
        for operation in operations_for(ledger_event):
            if isinstance(operation, Insert):
                if operation.table is not pending_table or operation.columns != pending_columns:
                    flush()
                    pending_table, pending_columns = operation.table, operation.columns
                pending.append(operation.values)
            else:
                flush()
                _execute(conn, operation)
    flush()


def _where(table: Any, where: dict[str, Any]) -> Any:
    return and_(*[table.c[k].is_(None) if v is None else table.c[k] == v for k, v in where.items()])


def _execute(conn: Connection, operation: Operation) -> None:
    """Run one update, delete or consume (inserts go through `_bulk_insert_tuples`)."""
    if isinstance(operation, Update):
        conn.execute(update(operation.table).where(_where(operation.table, operation.where)).values(**operation.values))
    elif isinstance(operation, Delete):
        conn.execute(delete(operation.table).where(_where(operation.table, operation.where)))
    elif isinstance(operation, Consume):
        _consume(conn, operation)
    else:  # pragma: no cover - the union is closed
        raise TypeError(operation)


def _consume(conn: Connection, operation: Consume) -> None:
    """Take a transformation's input quantity from its batch, in Python: quantities go up
    to 2^64 - 1, beyond what SQLite's integers hold."""
    batches = schema.batches
    row = conn.execute(
        select(batches.c.remaining_quantity, batches.c.status).where(batches.c.batch_id == operation.batch_id)
    ).first()
    if row is None:
        raise LookupError(f"the transformation consumes batch {operation.batch_id}, which the index does not hold")
    remaining = int(row[0]) - int(operation.quantity)
    if remaining < 0:
        raise ValueError(
            f"the transformation consumes {operation.quantity} of batch {operation.batch_id}, which has only {int(row[0])} left"
        )
    values: dict[str, Any] = {"remaining_quantity": remaining}
    if remaining == 0 and row[1] == "active":
        values["status"] = "consumed"
    conn.execute(update(batches).where(batches.c.batch_id == operation.batch_id).values(**values))
