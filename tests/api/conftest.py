"""Fixtures for the web app: one real chain with the demo history plus a hostile batch,
indexed into a real store, served by TestClient and by a real uvicorn process."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from apisite import HOSTILE_GTIN, HOSTILE_LOT, HOSTILE_NAME, HOSTILE_PLACE, HOSTILE_PRODUCT, OUTPUT
from fastapi.testclient import TestClient

from ledger.chain import LocalChain, connect, free_loopback_port
from ledger.cli.web import WebServer
from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.demo import demo_genesis_timestamp, seed_demo
from ledger.deploy import ensure_deployed
from ledger.indexer.scanner import Scanner
from ledger.indexer.store import IndexStore
from ledger.models import BatchCreate, LicenceScope
from ledger.signers import NodeAccountSigner
from ledger.writer import LedgerWriter


@dataclass
class DemoSite:
    """The chain, the settings pointing at it and its index, and the hostile batch."""

    settings: Settings
    connection: LedgerConnection
    hostile_batch_id: str

    def sync(self) -> None:
        """Bring the index up to the chain."""
        store = IndexStore.open(self.settings.database_url, self.settings.data_dir)
        Scanner(self.connection.w3, self.connection.address, self.connection.deploy_block, store).sync()
        store.dispose()


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    """A local chain with the demo and a batch whose strings try to inject HTML."""
    data_dir = tmp_path_factory.mktemp("site")
    settings = Settings(
        data_dir=data_dir, rpc_url=f"http://127.0.0.1:{free_loopback_port()}", public_base_url="https://provenance.example"
    )
    chain = LocalChain(settings)
    chain.start(genesis_timestamp=demo_genesis_timestamp())
    try:
        ensure_deployed(connect(settings.rpc_url), settings.deployment_file, settings.admin_transfer_delay)
        connection = LedgerConnection.open(settings)
        seed_demo(connection)
        accounts = connection.w3.eth.accounts
        admin = LedgerWriter(connection, NodeAccountSigner(accounts[0]))
        admin.register_actor(accounts[11], HOSTILE_NAME, "FR")
        admin.grant_supplier(accounts[11])
        admin.grant_licence(accounts[11], LicenceScope.single_gtin(HOSTILE_GTIN))
        hostile = LedgerWriter(connection, NodeAccountSigner(accounts[11]))
        batch = BatchCreate(
            gtin=HOSTILE_GTIN,
            lot=HOSTILE_LOT,
            quantity=10,
            unit="KGM",
            product=HOSTILE_PRODUCT,
            origin=HOSTILE_NAME,
            claims=("FAIRTRADE",),
        )
        hostile.register_batch(batch)
        hostile.record_step(batch.batch_id, "inspecting", HOSTILE_PLACE)
        demo = DemoSite(settings, connection, "0x" + batch.batch_id.hex())
        demo.sync()
        yield demo
    finally:
        chain.stop()


@pytest.fixture(scope="session")
def client(site: DemoSite) -> Iterator[TestClient]:
    """The app in process (the real index, no chain calls but /healthz)."""
    from api.main import create_app

    with TestClient(create_app(site.settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def live_server(site: DemoSite) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, as `provenance serve` runs it."""
    port = free_loopback_port()
    settings = site.settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    server = WebServer(settings, "127.0.0.1", port, workers=1)
    try:
        server.start()
        yield server.url
    finally:
        server.stop()


def chromium_path() -> str:
    """Debian's chromium (the tests never download a browser); the tests fail, saying how
    to install it, when it is absent."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    # Not a skip: the page tests are part of what `make test` promises.
    pytest.fail("Debian's chromium is not installed: `apt-get install chromium` (the browser tests drive it headless)")


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """Headless chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """reports/tests/<test name>/: where a test leaves screenshots for people to look at."""
    directory = OUTPUT / request.node.name.replace("/", "_")
    directory.mkdir(parents=True, exist_ok=True)
    return directory
