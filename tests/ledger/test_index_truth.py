"""The chain is the truth: an index that holds blocks the chain no longer has (the chain
got shorter: `anvil_rollback`, a node restarted onto an older snapshot; or changed at the
same height) is rewound to the common ancestor, at start and while following, and ends
equal to a rebuild; /healthz says "ahead" (503) for as long as it holds them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_index import COFFEE, RawLedger, dump, open_store

from ledger.chain import LocalChain, connect, free_loopback_port
from ledger.config import Settings
from ledger.deploy import ensure_deployed
from ledger.indexer import schema
from ledger.indexer.scanner import Scanner
from ledger.indexer.store import IndexStore


@dataclass
class FreshLedger:
    """A chain of this test's own (anvil behind LocalChain), the ledger deployed on it,
    a farm licensed to register, and raw transactions to write with."""

    settings: Settings
    chain: LocalChain
    raw: RawLedger
    farm: str

    @property
    def rpc_url(self) -> str:
        return self.settings.rpc_url

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def address(self) -> str:
        return self.raw.address

    def register(self, *lots: str) -> None:
        """One registration (one block) per lot."""
        for lot in lots:
            self.raw.register(self.farm, COFFEE, lot, 10)

    def rpc(self, method: str, *params: object) -> object:
        response = self.raw.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        assert "error" not in response, response
        return response["result"]

    def head(self) -> int:
        return self.raw.w3.eth.block_number

    def scanner(self, store: IndexStore, **kwargs: object) -> Scanner:
        return Scanner(self.raw.w3, self.address, self.raw.deploy_block, store, **kwargs)  # type: ignore[arg-type]

    def env(self, database_url: str | None = None) -> dict[str, str]:
        """The environment of a `provenance` child process on this ledger."""
        import os

        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVENANCE_")}
        env.update(PROVENANCE_DATA_DIR=str(self.data_dir), PROVENANCE_RPC_URL=self.rpc_url, PYTHONUNBUFFERED="1")
        if database_url:
            env["PROVENANCE_DATABASE_URL"] = database_url
        return env

    def rebuilt(self, directory: Path) -> IndexStore:
        """A fresh index of the chain as it is now (SQLite)."""
        store = open_store("sqlite", directory)
        self.scanner(store).sync()
        return store


def start_fresh_ledger(directory: Path) -> FreshLedger:
    """Start a chain in `directory`, deploy the ledger and license a farm."""
    settings = Settings(data_dir=directory, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings)
    chain.start()
    try:
        deployment, _, _ = ensure_deployed(connect(settings.rpc_url), settings.deployment_file, settings.admin_transfer_delay)

        @dataclass
        class Where:
            rpc_url: str
            address: str
            data_dir: Path

        raw = RawLedger(Where(settings.rpc_url, deployment.address, directory), directory)
        raw.deploy_block = deployment.block_number
        farm = raw.organisation(1, "Finca Verdad", prefix=(7, 9506000))
        return FreshLedger(settings, chain, raw, farm)
    except BaseException:
        chain.stop()
        raise


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[FreshLedger]:
    """A ledger on a chain of the test's own, stopped at the end."""
    ledger = start_fresh_ledger(tmp_path / "chain-data")
    try:
        yield ledger
    finally:
        ledger.chain.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def index_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty index database of the parametrised kind."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'index.sqlite'}"
        return
    url = request.getfixturevalue("postgres_url")
    open_store("postgresql", tmp_path, url).dispose()  # empties the shared test database
    yield url


def health(fresh: FreshLedger, database_url: str) -> TestClient:
    """/healthz (and the rest of the app) over `database_url`, as `provenance serve` runs it."""
    from api.main import create_app

    return TestClient(create_app(fresh.settings.model_copy(update={"database_url": database_url})))


def assert_healthy(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["index"]["position"] == "following"


def assert_ahead(client: TestClient, words: str) -> dict:
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503 and body["status"] == "unhealthy", body
    assert (
        body["index"]["position"] == "ahead" and "ahead of the chain" in body["problems"][0] and words in body["problems"][0]
    ), body
    return body


def lots(store: IndexStore) -> set[str]:
    """The lots the index holds."""
    with store.engine.connect() as conn:
        return set(conn.execute(select(schema.batches.c.lot)).scalars())


def test_a_chain_shorter_than_the_index_is_rewound_and_healthz_says_ahead_until_then(fresh, kind, index_url, tmp_path):
    store = IndexStore.open(index_url, tmp_path)
    scanner = fresh.scanner(store)
    fresh.register("KEEP-1", "KEEP-2", "KEEP-3")
    scanner.sync()
    with health(fresh, index_url) as client:
        assert_healthy(client)
        fresh.register("GONE-1", "GONE-2", "GONE-3")
        scanner.sync()
        indexed = fresh.head()
        assert_healthy(client)
        # The node loses its last three blocks (a restart onto an older snapshot does the same).
        fresh.rpc("anvil_rollback", 3)
        head = fresh.head()
        assert head == indexed - 3
        body = assert_ahead(client, f"holds blocks up to {indexed} but the chain's head is {head}")
        assert body["index"]["ahead_blocks"] == 3
        report = scanner.sync()
        assert (report.reorgs, report.events_dropped, report.rewound_to, report.cursor) == (1, 3, head, head)
        assert report.rewind_notice() == f"index rewound to block {head:,}: dropped 3 event(s) the chain no longer holds"
        assert_healthy(client)
        assert lots(store) == {"KEEP-1", "KEEP-2", "KEEP-3"}
        assert dump(store) == dump(fresh.rebuilt(tmp_path / "rebuilt-1"))
        # The chain grows again past the old height with other blocks: followed as usual.
        fresh.register("NEW-1", "NEW-2", "NEW-3", "NEW-4", "NEW-5")
        report = scanner.sync()
        assert report.reorgs == 0 and report.cursor == fresh.head()
        assert_healthy(client)
        assert dump(store) == dump(fresh.rebuilt(tmp_path / "rebuilt-2"))
    store.dispose()


def test_a_chain_whose_blocks_changed_at_the_same_height_is_rewound(fresh, kind, index_url, tmp_path):
    store = IndexStore.open(index_url, tmp_path)
    scanner = fresh.scanner(store)
    fresh.register("BASE-1", "BASE-2")
    scanner.sync()
    fork = fresh.rpc("evm_snapshot")
    fork_block = fresh.head()
    fresh.register("OLD-1", "OLD-2", "OLD-3")
    scanner.sync()
    indexed = fresh.head()
    with health(fresh, index_url) as client:
        assert_healthy(client)
        # Another history of the same length: same head, other blocks.
        fresh.rpc("evm_revert", fork)
        fresh.register("NEW-1", "NEW-2", "NEW-3")
        assert fresh.head() == indexed
        assert_ahead(client, f"its block {indexed} is not the chain's block {indexed}")
        report = scanner.sync()
        assert (report.reorgs, report.events_dropped, report.rewound_to) == (1, 3, fork_block)
        assert report.events_added == 3 and report.cursor == indexed
        assert_healthy(client)
    assert lots(store) == {"BASE-1", "BASE-2", "NEW-1", "NEW-2", "NEW-3"}
    assert dump(store) == dump(fresh.rebuilt(tmp_path / "rebuilt"))
    store.dispose()


def test_provenance_run_starts_with_an_index_ahead_says_what_it_rewound_and_follows_rollbacks(fresh, tmp_path, capsys):
    """`start_index_follower` is what `provenance run` starts the index with: today it
    refused ("block N is not available from the node")."""
    from ledger.cli.node import start_index_follower

    store = IndexStore.open(None, fresh.data_dir)  # run's own index: SQLite in the data directory
    fresh.register("RUN-1", "RUN-2", "RUN-3", "RUN-4")
    fresh.scanner(store).sync()
    fresh.rpc("anvil_rollback", 2)
    head = fresh.head()
    stop = threading.Event()
    start_index_follower(fresh.settings, stop)
    try:
        out = capsys.readouterr().out
        assert f"Index rewound to block {head:,}: dropped 2 event(s) the chain no longer holds" in out
        assert lots(store) == {"RUN-1", "RUN-2"}
        # While following: blocks it indexed vanish again; /healthz is sampled meanwhile.
        with health(fresh, f"sqlite:///{fresh.data_dir / 'index.sqlite'}") as client:
            fresh.register("RUN-5", "RUN-6", "RUN-7")
            wait_until(lambda: lots(store) == {"RUN-1", "RUN-2", "RUN-5", "RUN-6", "RUN-7"})
            assert_healthy(client)
            fresh.rpc("anvil_rollback", 2)
            head = fresh.head()
            samples = []
            deadline = time.monotonic() + 30
            while lots(store) != {"RUN-1", "RUN-2", "RUN-5"} and time.monotonic() < deadline:
                samples.append(client.get("/healthz").json())
            assert lots(store) == {"RUN-1", "RUN-2", "RUN-5"}
            # Truthful throughout: every sample is "ahead" or, once rewound, healthy.
            assert all(s["index"]["position"] in ("ahead", "following") for s in samples)
            assert all((s["status"] == "unhealthy") == (s["index"]["position"] == "ahead") for s in samples), samples
            assert_healthy(client)
        said: list[str] = []
        wait_until(
            lambda: (
                said.append(capsys.readouterr().err) or f"index rewound to block {head:,}: dropped 2 event(s)" in "".join(said)
            )
        )
    finally:
        stop.set()
        for thread in threading.enumerate():
            if thread.name == "index-follower":
                thread.join(timeout=30)
    assert dump(store) == dump(fresh.rebuilt(tmp_path / "rebuilt"))
    store.dispose()


def test_index_command_says_what_it_rewound(fresh, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ledger.cli import app

    for key, value in fresh.env(f"sqlite:///{tmp_path / 'cli.sqlite'}").items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    fresh.register("CLI-1", "CLI-2", "CLI-3")
    assert runner.invoke(app, ["index"], catch_exceptions=False).exit_code == 0
    fresh.rpc("anvil_rollback", 1)
    result = runner.invoke(app, ["index"], catch_exceptions=False, terminal_width=200)
    assert result.exit_code == 0, result.stderr
    head = fresh.head()
    assert f"index rewound to block {head:,}: dropped 1 event(s) the chain no longer holds" in result.stderr
    assert "1 reorganisation(s) rewound" in result.stdout
    result = runner.invoke(app, ["index", "--json"], catch_exceptions=False)
    assert '"reorgs": 0' in result.stdout and '"rewound_to": null' in result.stdout


def wait_until(condition, timeout: float = 30.0) -> None:
    """Poll `condition` until it holds (fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("the condition did not hold in time")
