"""What every route needs, opened once per process by the app's lifespan and handed to
routes as `Annotated` dependencies."""

from __future__ import annotations

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

#: How long a process trusts its last look at the index cursor. Pages follow the index
#: within this (plus the follower's own second), and most requests skip the query.
FRESHNESS_TTL_SECONDS = 0.5


class PageCache:
    """Rendered pages by (what, version): a page is rebuilt only when the index moved.

    The version is the index's cursor (and the minute, since claim statuses change with
    time even when the chain does not), so a cached page is never older than the index.
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Any | None:
        """The cached value of `key`, or None."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        return None

    def put(self, key: tuple[Any, ...], value: Any) -> Any:
        """Keep `value` under `key` (dropping the least recently used beyond `size`)."""
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    async def get_or_build_async(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """Like `get_or_build`, with `build` (database work) in a worker thread, so a hit
        costs the event loop nothing and a miss does not block it."""
        value = self.get(key)
        if value is None:
            value = self.put(key, await run_in_threadpool(build))
        return value

    def get_or_build(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """The cached value of `key`, or `build()`'s (kept for next time)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = build()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value


@dataclass
class ApiContext:
    """The settings, the read model over the index, and the page cache of one process."""

    settings: Settings
    model: ReadModel
    pages: PageCache = field(default_factory=PageCache)
    _freshness: tuple[float, IndexFreshness | None] = (0.0, None)

    def freshness(self) -> IndexFreshness | None:
        """The index's cursor and freshness, re-read at most every FRESHNESS_TTL_SECONDS."""
        looked, value = self._freshness
        now = time.monotonic()
        if now - looked > FRESHNESS_TTL_SECONDS:
            value = self.model.freshness()
            self._freshness = (now, value)
        return value

    def version(self) -> tuple[Any, ...]:
        """What a cached page depends on: the index cursor and the current minute."""
        f = self.freshness()
        cursor = (f.block_number, f.block_hash, f.checked_at) if f else None
        return (cursor, int(time.time()) // 60)


async def get_context(request: Request) -> ApiContext:
    """The process's ApiContext (set up by the app's lifespan). Async on purpose: FastAPI
    runs a plain `def` dependency in a worker thread, a hand-off on every request."""
    return request.app.state.context  # type: ignore[no-any-return]


ContextDep = Annotated[ApiContext, Depends(get_context)]
