"""What every route needs, opened once per process by the app's lifespan and handed to
routes as `Annotated` dependencies."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ledger.config import Settings
from ledger.indexer.store import IndexFreshness
from ledger.queries import ReadModel

#: PostgreSQL has no cheap signal of a commit, so a process trusts its last look at the
#: index cursor this long: the bound on how late a page follows the index there.
POSTGRES_FRESHNESS_TTL_SECONDS = 0.5
#: A file modified this recently may be modified again within the same timestamp tick and
#: keep its size (SQLite reuses the WAL from its start after a checkpoint): its stat is
#: not trusted until it is older than this ("racily clean", as git calls it). Linux's file
#: times tick every few milliseconds; a filesystem with whole-second times gets a second.
RACY_STAT_NS = 50_000_000
RACY_STAT_COARSE_NS = 1_100_000_000

#: (inode, mtime ns, size) of the SQLite database file and of its -wal file.
FileStamp = tuple[tuple[int, int, int], ...]


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a build's outcome as seen: a failure every waiter abandoned is not an
    "exception never retrieved"."""
    if not future.cancelled():
        future.exception()


class PageCache:
    """Built pages by what they show, each with the index version it was built from.

    A request for an entry built at the current version costs nothing. When the version
    moved, requests wait for the rebuild: one build per key and version (in a worker
    thread), however many ask, so a new block makes connections wait for one build rather
    than each run its own, and no page older than the version the worker knows is served.
    A build that fails (a lot gone after a rewind) drops the entry and every waiter gets
    the failure; failures are never cached. A build is kept only if the version did not
    move while it ran (`current`), since it may have read either side of the move.
    """

    def __init__(self, size: int = 512, current: Callable[[], Any] | None = None) -> None:
        self.size = size
        self.current = current
        self._entries: OrderedDict[Any, tuple[Any, Any]] = OrderedDict()
        self._building: dict[Any, tuple[Any, asyncio.Future[Any]]] = {}
        self._lock = threading.Lock()

    def __contains__(self, key: Any) -> bool:
        with self._lock:
            return key in self._entries

    def _get(self, key: Any) -> tuple[Any, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def _put(self, key: Any, version: Any, value: Any) -> None:
        with self._lock:
            self._entries[key] = (version, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def _drop(self, key: Any) -> None:
        with self._lock:
            self._entries.pop(key, None)

    async def get(self, key: Any, version: Any, build: Callable[[], Any]) -> Any:
        """The value of `key` at `version`, built (in a worker thread) when the cached one
        is of another version; raises what the build raised."""
        entry = self._get(key)
        if entry is not None and entry[0] == version:
            return entry[1]
        building = self._building.get(key)
        if building is not None and building[0] == version:
            future = building[1]
        else:
            # A build of another version may still run: it cannot serve this request.
            future = asyncio.ensure_future(self._build(key, version, build))
            future.add_done_callback(_retrieve)
            self._building[key] = (version, future)
        # Shielded: a client that disconnects does not cancel the build others wait for.
        return await asyncio.shield(future)

    async def _build(self, key: Any, version: Any, build: Callable[[], Any]) -> Any:
        def build_and_check() -> tuple[Any, bool]:
            value = build()
            return value, self.current is None or self.current() == version

        try:
            value, still_current = await run_in_threadpool(build_and_check)
        except BaseException:
            self._drop(key)
            raise
        else:
            if still_current:
                self._put(key, version, value)
            return value
        finally:
            if self._building.get(key, (None,))[0] == version:
                del self._building[key]


@dataclass
class ApiContext:
    """The settings, the read model over the index, and the page cache of one process."""

    settings: Settings
    model: ReadModel
    pages: PageCache = field(default_factory=PageCache)
    _freshness: tuple[Any, IndexFreshness | None] = field(default=(None, None), init=False, repr=False)
    _sqlite_files: tuple[str, ...] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        engine = self.model.store.engine
        database = engine.url.database
        if engine.dialect.name == "sqlite" and database and database != ":memory:":
            path = os.path.abspath(database)
            self._sqlite_files = (path, path + "-wal")
        if self.pages.current is None:
            self.pages.current = lambda: self.version(recheck=True)

    def freshness(self) -> IndexFreshness | None:
        """The index's cursor and freshness as of the last commit to the index.

        SQLite: re-read only when the database or its WAL changed (every commit changes
        the WAL's time or size, a checkpoint the database's), which costs two `stat`
        calls per request. PostgreSQL: re-read at most every POSTGRES_FRESHNESS_TTL_SECONDS.
        """
        if self._sqlite_files is None:
            return self._freshness_by_age()
        seen, value = self._freshness
        stamp = self._file_stamp()
        if stamp is not None and stamp == seen:
            return value
        value = self.model.freshness()
        # The stamp was taken before the read: a commit in between shows as a change next time.
        self._freshness = (stamp, value)
        return value

    def _file_stamp(self) -> FileStamp | None:
        """The files' stamp, or None while a file changed too recently to trust its stamp."""
        stamps = []
        for path in self._sqlite_files or ():
            try:
                st = os.stat(path)
            except FileNotFoundError:
                stamps.append((0, 0, 0))  # no WAL (yet, or after a clean close)
                continue
            stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
        newest = max(mtime for _, mtime, _ in stamps)
        racy = RACY_STAT_COARSE_NS if newest % 1_000_000_000 == 0 else RACY_STAT_NS
        if time.time_ns() - newest < racy:
            return None
        return tuple(stamps)

    def _freshness_by_age(self) -> IndexFreshness | None:
        looked, value = self._freshness
        now = time.monotonic()
        if looked is None or now - looked > POSTGRES_FRESHNESS_TTL_SECONDS:
            value = self.model.freshness()
            self._freshness = (now, value)
        return value

    def version(self, recheck: bool = False) -> tuple[Any, ...]:
        """What a cached page depends on: what it shows of the index's freshness (cursor,
        the head the follower saw, the minute it compared them) and the current minute
        (claims expire with time even when the chain is still). The second of the last
        check is left out: pages show it to the minute, so it would rebuild every page
        every second for nothing. `recheck` reads the index even within the TTL."""
        if recheck and self._sqlite_files is None:
            self._freshness = (None, None)
        f = self.freshness()
        shown = (f.block_number, f.block_hash, f.head_seen, None if f.checked_at is None else f.checked_at // 60) if f else None
        return (shown, int(time.time()) // 60)


async def get_context(request: Request) -> ApiContext:
    """The process's ApiContext (set up by the app's lifespan). Async on purpose: FastAPI
    runs a plain `def` dependency in a worker thread, a hand-off on every request."""
    return request.app.state.context  # type: ignore[no-any-return]


ContextDep = Annotated[ApiContext, Depends(get_context)]
