"""Pages follow the index: a cached page is served only at the index version it was built
from; when the version moved, requests wait for one rebuild; a rebuild that fails drops
the page. Unit tests of the cache, then a real chain and index: a recall, a rewind."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from api.deps import RACY_STAT_COARSE_NS, ApiContext, PageCache
from ledger.chain import LocalChain, connect, free_loopback_port
from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.deploy import ensure_deployed
from ledger.identifiers import complete_gtin, digital_link
from ledger.indexer.scanner import Scanner
from ledger.indexer.store import IndexStore
from ledger.models import BatchCreate, LicenceScope
from ledger.signers import NodeAccountSigner
from ledger.writer import LedgerWriter

GTIN = complete_gtin("0950600088810")
RECALL_REASON = "Salmonella found in a retained sample"


def run(scenario):
    """asyncio.run in a thread of its own: Playwright's sync API (session-scoped browser
    fixture) keeps an event loop running in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(scenario())).result()


# ---------------------------------------------------------------- the cache alone


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


def test_when_the_version_moved_every_request_waits_for_one_rebuild():
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
        during = [asyncio.ensure_future(cache.get("bag", 2, build("v2", wait=True))) for _ in range(5)]
        await asyncio.sleep(0.05)
        assert not any(f.done() for f in during)  # nobody got the page of version 1
        release.set()
        return await asyncio.gather(*during), await cache.get("bag", 2, build("never"))

    during, after = run(scenario)
    assert during == ["v2"] * 5 and after == "v2" and builds == ["v1", "v2"]


def test_a_failed_rebuild_drops_the_page_and_reaches_every_caller():
    cache = PageCache()
    release = threading.Event()
    calls = []

    def failing():
        calls.append(1)
        release.wait(5)
        raise LookupError("no such lot")

    async def scenario():
        assert await cache.get("lot", 1, lambda: "page") == "page"
        waiting = [asyncio.ensure_future(cache.get("lot", 2, failing)) for _ in range(3)]
        await asyncio.sleep(0.05)
        release.set()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(o, LookupError) for o in outcomes)
        assert "lot" not in cache  # not kept for a later request at version 1 either
        with pytest.raises(LookupError):  # failures are not cached: built again
            await cache.get("lot", 2, failing)

    run(scenario)
    assert len(calls) == 2


def test_a_page_built_while_the_version_moved_is_not_kept():
    versions = iter([2])  # the version the cache sees once the build is done
    cache = PageCache(current=lambda: next(versions))
    builds = []

    def build():
        builds.append(1)
        return "read on either side of the move"

    async def scenario():
        first = await cache.get("bag", 1, build)
        return first, "bag" in cache

    assert run(scenario) == ("read on either side of the move", False) and len(builds) == 1


# ---------------------------------------------------------------- a real chain and index


@dataclass
class LotSite:
    """A chain of its own (the shared demo site stays untouched), its index, an app in
    process, and a supplier that registers and recalls lots."""

    settings: Settings
    connection: LedgerConnection
    supplier: LedgerWriter
    client: TestClient

    @property
    def context(self) -> ApiContext:
        return self.client.app.state.context  # type: ignore[attr-defined,no-any-return]

    def store(self) -> IndexStore:
        return IndexStore.open(self.settings.database_url, self.settings.data_dir)

    def sync(self) -> None:
        """What the follower does: bring the index up to the chain, in another connection."""
        store = self.store()
        Scanner(self.connection.w3, self.connection.address, self.connection.deploy_block, store).sync()
        store.dispose()

    def register(self, lot: str) -> BatchCreate:
        batch = BatchCreate(gtin=GTIN, lot=lot, quantity=5, unit="KGM", product=f"Green beans {lot}")
        self.supplier.register_batch(batch)
        return batch


@pytest.fixture(scope="module")
def lots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LotSite]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("lots"),
        rpc_url=f"http://127.0.0.1:{free_loopback_port()}",
        public_base_url="https://provenance.example",
        featured_products=[GTIN],  # the landing page lists this product's lots
    )
    chain = LocalChain(settings)
    chain.start()
    try:
        ensure_deployed(connect(settings.rpc_url), settings.deployment_file, settings.admin_transfer_delay)
        connection = LedgerConnection.open(settings)
        admin_account, supplier_account = connection.w3.eth.accounts[:2]
        admin = LedgerWriter(connection, NodeAccountSigner(admin_account))
        admin.register_actor(supplier_account, "Finca Cache", "CO")
        admin.grant_supplier(supplier_account)
        admin.grant_licence(supplier_account, LicenceScope.single_gtin(GTIN))
        from api.main import create_app

        with TestClient(create_app(settings)) as client:
            site = LotSite(settings, connection, LedgerWriter(connection, NodeAccountSigner(supplier_account)), client)
            site.sync()
            yield site
    finally:
        chain.stop()


def test_a_commit_to_the_index_is_seen_by_the_next_request(lots):
    lots.client.get("/")  # the worker has looked at the index
    before = lots.context.freshness()
    assert before is not None
    store = lots.store()
    try:
        store.mark_checked(before.head_seen + 7)  # what a follower's sync commits
    finally:
        store.dispose()
    assert lots.context.freshness().head_seen == before.head_seen + 7  # at once, no time to live
    lots.sync()


def test_an_unchanged_index_is_not_read_again(lots, monkeypatch):
    lots.client.get("/")
    time.sleep(RACY_STAT_COARSE_NS / 1e9)  # past the window in which a file's stamp is not trusted
    lots.context.freshness()  # reads once: the last read was inside the window
    reads = []
    original = lots.context.model.freshness
    monkeypatch.setattr(lots.context.model, "freshness", lambda: reads.append(1) or original())
    for _ in range(50):
        lots.context.freshness()
    assert reads == []


def test_the_first_view_after_a_recall_shows_the_banner(lots):
    batch = lots.register("RECALL-1")
    lots.sync()
    path = digital_link(batch.gtin, batch.lot).path()
    first = lots.client.get(path)
    assert first.status_code == 200 and "Recall: do not eat" not in first.text
    assert lots.client.get(path).text == first.text  # cached

    lots.supplier.recall_batch(batch.batch_id, RECALL_REASON)
    lots.sync()

    after = lots.client.get(path)
    assert after.status_code == 200 and "Recall: do not eat" in after.text and RECALL_REASON in after.text
    recall = lots.client.get(path, params={"linkType": "gs1:recallStatus"}).json()
    assert recall["recalled"] is True


def test_after_a_rewind_a_vanished_lot_is_the_unknown_lot_page_not_the_cached_one(lots):
    w3 = lots.connection.w3
    store = lots.store()
    try:
        ancestor = store.cursor(lots.connection.address, w3.eth.chain_id)
    finally:
        store.dispose()
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    batch = lots.register("REWIND-1")
    lots.sync()
    path = digital_link(batch.gtin, batch.lot).path()
    assert lots.client.get(path).status_code == 200
    assert batch.lot in lots.client.get("/").text
    assert ("page", digital_link(batch.gtin, batch.lot), "en") in lots.context.pages  # one page per language

    # The chain loses the block and the index rewinds to the common ancestor.
    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    store = lots.store()
    try:
        store.rewind(lots.connection.address, w3.eth.chain_id, ancestor)
    finally:
        store.dispose()

    gone = lots.client.get(path)
    unknown = lots.client.get(digital_link(GTIN, "NEVER-1").path())
    assert gone.status_code == unknown.status_code == 404
    assert gone.text == unknown.text.replace("NEVER-1", "REWIND-1")  # the same page as any unknown lot
    assert ("page", digital_link(batch.gtin, batch.lot), "en") not in lots.context.pages  # the failed rebuild dropped it
    assert batch.lot not in lots.client.get("/").text  # nor listed on the landing page
    assert lots.client.get(path, headers={"Accept": "application/json"}).status_code == 404
