"""The page cache: one build per version however many ask, and the previous page served
while the next one is built."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from api.deps import PageCache


def run(scenario):
    """asyncio.run in a thread of its own: Playwright's sync API (session-scoped browser
    fixture) keeps an event loop running in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(scenario())).result()


def test_concurrent_requests_for_a_new_page_build_it_once():
    cache = PageCache()
    builds = []
    release = threading.Event()

    def build():
        builds.append(1)
        release.wait(5)
        return "page v1"

    async def scenario():
        waiting = [asyncio.ensure_future(cache.get("bag", 1, build)) for _ in range(20)]
        await asyncio.sleep(0.05)
        release.set()
        return await asyncio.gather(*waiting)

    assert run(scenario) == ["page v1"] * 20 and len(builds) == 1


def test_a_new_version_is_built_once_while_the_previous_page_is_served():
    cache = PageCache()
    release = threading.Event()
    builds = []

    def build(value, wait=False):
        def make():
            builds.append(value)
            if wait:
                release.wait(5)
            return value
        return make

    async def scenario():
        assert await cache.get("bag", 1, build("v1")) == "v1"
        during = [await cache.get("bag", 2, build("v2", wait=True)) for _ in range(5)]
        release.set()
        await asyncio.sleep(0.1)
        after = await cache.get("bag", 2, build("never"))
        return during, after

    during, after = run(scenario)
    assert during == ["v1"] * 5 and after == "v2" and builds == ["v1", "v2"]


def test_a_failed_build_is_not_cached_and_reaches_the_caller():
    cache = PageCache()
    calls = []

    def failing():
        calls.append(1)
        raise LookupError("no such lot")

    async def scenario():
        for _ in range(2):
            with pytest.raises(LookupError):
                await cache.get("nope", 1, failing)

    run(scenario)
    assert len(calls) == 2
