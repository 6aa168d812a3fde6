"""What every route needs, opened once per process by the app's lifespan and handed to
routes as `Annotated` dependencies."""

from __future__ import annotations

import asyncio
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
    """Built pages by what they show, each with the index version it was built from.

    The version is the index's cursor (and the minute, since claim statuses change with
    time even when the chain does not). A request for a current entry costs nothing; when
    the version moved, one build runs in a worker thread while requests keep getting the
    previous page (milliseconds old), so a new block never makes every connection wait
    on a rebuild at once. A page never built before is built once, however many ask.
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._entries: OrderedDict[Any, tuple[Any, Any]] = OrderedDict()
        self._building: dict[Any, asyncio.Future[Any]] = {}
        self._lock = threading.Lock()

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

    async def get(self, key: Any, version: Any, build: Callable[[], Any]) -> Any:
        """The value of `key` at `version`, building it (in a worker thread) when needed."""
        entry = self._get(key)
        if entry is not None and entry[0] == version:
            return entry[1]
        future = self._building.get(key)
        if future is None:
            future = asyncio.ensure_future(self._build(key, version, build))
            # A failed rebuild nobody awaited (stale page served) is not an unhandled error.
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._building[key] = future
        if entry is not None:
            return entry[1]  # the previous version while the new one is built
        return await asyncio.shield(future)

    async def _build(self, key: Any, version: Any, build: Callable[[], Any]) -> Any:
        try:
            value = await run_in_threadpool(build)
            self._put(key, version, value)
            return value
        finally:
            self._building.pop(key, None)


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
