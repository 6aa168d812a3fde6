"""The index: the same query suite on SQLite and PostgreSQL; incremental equals rebuild;
reorganisations rewound; a SIGKILLed indexer resumes with nothing lost or doubled."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from ledger.chain import LocalChain, connect, free_loopback_port
from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.demo import DEMO_BAG, DEMO_LOAF, FARM_COFFEE, FLOUR, GREEN_COFFEE, HUILA_BLEND, demo_genesis_timestamp, seed_demo
from ledger.deploy import ensure_deployed
from ledger.documents import DocumentStore
from ledger.identifiers import batch_id, complete_gtin, lot_bytes
from ledger.indexer import schema
from ledger.indexer.scanner import Scanner
from ledger.indexer.store import IndexStore
from ledger.models import BatchCreate, TransformationKind
from ledger.queries import ReadModel
from ledger.signers import NodeAccountSigner
from ledger.writer import LedgerWriter


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A local chain with the demo history."""
    data_dir = tmp_path_factory.mktemp("index-data")
    settings = Settings(data_dir=data_dir, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings)
    chain.start(genesis_timestamp=demo_genesis_timestamp())
    try:
        ensure_deployed(connect(settings.rpc_url), settings.deployment_file, settings.admin_transfer_delay)
        connection = LedgerConnection.open(settings)
        seed_demo(connection)
        yield connection
    finally:
        chain.stop()


def open_store(kind: str, tmp_path: Path, postgres_url: str | None = None) -> IndexStore:
    if kind == "sqlite":
        store = IndexStore.open(None, tmp_path)
    else:
        assert postgres_url
        _reset_postgres(postgres_url)
        store = IndexStore.open(postgres_url, tmp_path)
    store.drop_all()
    return store


def _reset_postgres(url: str) -> None:
    """Start from an empty test database, whatever an earlier run left there."""
    from sqlalchemy import create_engine

    from ledger.indexer.store import database_url

    engine = create_engine(database_url(url, Path(".")))
    schema.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    store = open_store(request.param, tmp_path, url)
    yield store
    store.dispose()


@pytest.fixture
def rewind(demo):
    snapshot = demo.w3.provider.make_request("evm_snapshot", [])["result"]
    yield
    demo.w3.provider.make_request("evm_revert", [snapshot])


def scanner(demo, store, **kwargs) -> Scanner:
    return Scanner(demo.w3, demo.address, demo.deploy_block, store, **kwargs)


def dump(store: IndexStore) -> dict[str, list[tuple]]:
    """Every row of every table but the cursor and blocks, in a stable order."""
    out = {}
    with store.engine.connect() as conn:
        for table in (schema.events, *schema.DERIVED):
            rows = conn.execute(select(table)).all()
            out[table.name] = sorted(tuple(str(v) for v in row) for row in rows)
    return out


def lots(store: IndexStore) -> list[str]:
    """The lot of every indexed batch (the column named `lot`, not a position in a row)."""
    with store.engine.connect() as conn:
        return list(conn.execute(select(schema.batches.c.lot)).scalars())


def now(demo) -> int:
    return demo.w3.eth.get_block("latest")["timestamp"]


def test_query_suite(demo, store):
    report = scanner(demo, store).sync()
    assert report.events_added > 50 and report.cursor == demo.w3.eth.block_number
    model = ReadModel(store, DocumentStore(demo.settings.documents_dir))

    bag = model.batch_by_gtin_lot(*DEMO_BAG)
    assert bag.product == "Huila blend coffee beans, 250 g bag"
    assert bag.supplier_name == "Tostadores del Puerto" and bag.custodian_name == "Tostadores del Puerto"
    assert (bag.registered_quantity, bag.remaining_quantity, bag.unit, bag.status) == (2000, 2000, "H87", "active")

    journey = model.history(bag.batch_id)
    lots = [e.lot for e in journey if e.name == "BatchRegistered"]
    assert lots[:3] == ["ESP-2026-07", "MIR-2026-07", "NAR-2026-07"] and lots[-1] == DEMO_BAG[1]
    assert all(e.tx_hash.startswith("0x") and e.block_number > 0 and e.timestamp > 0 for e in journey)
    assert [e.block_number for e in journey] == sorted(e.block_number for e in journey)
    assert {"StepRecorded", "CustodyTransferAccepted", "TransformationRecorded"} <= {e.name for e in journey}

    up = model.lineage_up(bag.batch_id)
    export = up.inputs[0].inputs[0]
    assert export.summary.lot == "AH-EXP-0420" and export.quantity_used == 13000
    assert sorted(i.summary.lot for i in export.inputs) == ["ESP-2026-07", "MIR-2026-07", "NAR-2026-07"]
    assert model.lineage_up(bag.batch_id, depth=1).inputs[0].inputs is None

    flour = model.batch_by_gtin_lot(FLOUR, "MV-F-2211")
    assert flour.recalled and flour.remaining_quantity == 4700
    # v2: the recall says why, and the admin's review (upheld) with its reason.
    assert flour.recall_reason == "Deoxynivalenol above the EU limit in retained sample"
    assert (flour.recall_state, flour.recalled_by_name, flour.reviewed_by_name) == (
        "upheld",
        "Moulin de la Vallee",
        "the ledger's admin",
    )
    assert flour.review_reason.startswith("Confirmed by the accredited laboratory")
    assert flour.details_status == "ok" and model.set_aside() == (0, [])
    down = model.lineage_down(flour.batch_id)
    assert [o.summary.lot for o in down.outputs] == [DEMO_LOAF[1]]

    statuses = {
        c.claim: c.status
        for c in model.claims(model.batch_by_gtin_lot(FARM_COFFEE["naranjos"], "NAR-2026-07").batch_id, now(demo))
    }
    assert statuses == {"FAIRTRADE": "valid", "ORGANIC": "revoked", "DEFORESTATION_FREE": "valid"}
    mirador = model.batch_by_gtin_lot(FARM_COFFEE["mirador"], "MIR-2026-07").batch_id
    assert {c.claim: c.status for c in model.claims(mirador, now(demo))}["FAIRTRADE"] == "expired"
    # At a time before the revocation, the revoked claim was valid.
    naranjos = model.batch_by_gtin_lot(FARM_COFFEE["naranjos"], "NAR-2026-07").batch_id
    organic = next(c for c in model.claims(naranjos, now(demo)) if c.claim == "ORGANIC")
    assert organic.revocation_reason == "Pesticide residue found in re-audit" and organic.revoked_by_name == "EthicCert Labs"
    # The demo spreads its history over months (a chain born in the past keeps its clock
    # there): the revocation came 115 days after the certificate (less the seconds the
    # demo spent attesting other lots that day).
    assert 114 * 86_400 < organic.revoked_at - organic.attested_at <= 115 * 86_400
    assert next(c for c in model.claims(naranjos, organic.revoked_at - 1) if c.claim == "ORGANIC").status == "valid"
    coop = demo.w3.eth.accounts[4]
    assert [c.status for c in model.claims(coop, now(demo))] == ["valid"]

    coverage = model.coverage(bag.batch_id, now(demo))
    assert coverage["DEFORESTATION_FREE"] == 1.0
    assert coverage["FAIRTRADE"] == pytest.approx(18 / 26, abs=1e-6)  # Mirador's certificate expired
    assert coverage["ORGANIC"] == pytest.approx(12 / 26, abs=1e-6)  # Los Naranjos' was revoked

    roaster = demo.w3.eth.accounts[5]
    assert {b.lot for b in model.batches(supplier=roaster)} == {"TP-R-1107", DEMO_BAG[1]}
    assert {b.lot for gtin in FARM_COFFEE.values() for b in model.batches(gtin=gtin, status="consumed")} == {
        "ESP-2026-07",
        "MIR-2026-07",
        "NAR-2026-07",
    }
    assert {(r.licensee_name, r.sub_licence) for r in model.licences()} >= {
        ("Cooperativa Cafetera Alto Huila", False),
        ("Finca El Mirador", True),
        ("Tostadores del Puerto", False),
    }
    assert [b.lot for b in model.batches(recalled=True)] == ["MV-F-2211"]
    assert model.batches(since=now(demo) + 10) == []
    assert len(model.batches(limit=3)) == 3 and len(model.batches(limit=3, offset=8)) == 1
    assert model.actor(coop).name == "Cooperativa Cafetera Alto Huila" and model.actor(coop).supplier
    assert model.actor(demo.w3.eth.accounts[9]).accredited_claims == ["FAIRTRADE", "ORGANIC"]


def random_history(demo, rng: random.Random, steps: int, tag: str) -> None:
    """Registrations, hand-overs, transformations, recalls and claims at random."""
    accounts = demo.w3.eth.accounts
    farms = [LedgerWriter(demo, NodeAccountSigner(accounts[i])) for i in (1, 2, 3, 4)]
    # Each registers and transforms under a GTIN it is licensed for (the farms' own, the coop's blend).
    gtins = [FARM_COFFEE["esperanza"], FARM_COFFEE["mirador"], FARM_COFFEE["naranjos"], HUILA_BLEND]
    held: dict[int, list[BatchCreate]] = {i: [] for i in range(4)}
    for step in range(steps):
        who = rng.randrange(4)
        action = rng.random()
        if action < 0.4 or not held[who]:
            batch = BatchCreate(gtin=gtins[who], lot=f"{tag}{step}", quantity=rng.randint(10, 1000), unit="KGM", product="Coffee")
            farms[who].register_batch(batch)
            held[who].append(batch)
        elif action < 0.6:
            batch = held[who].pop(rng.randrange(len(held[who])))
            to = (who + 1 + rng.randrange(3)) % 4
            farms[who].transfer_custody(batch.batch_id, farms[to].signer.address)
            farms[to].accept_custody(batch.batch_id)
            held[to].append(batch)
        elif action < 0.85:
            source = held[who].pop(rng.randrange(len(held[who])))
            out = BatchCreate(gtin=gtins[who], lot=f"{tag}{step}T", quantity=source.quantity, unit="KGM", product="Coffee")
            farms[who].transform(TransformationKind.SPLIT, [(source.batch_id, source.quantity)], [out])
            held[who].append(out)
        else:
            batch = held[who][rng.randrange(len(held[who]))]
            farms[who].record_step(batch.batch_id, "inspecting", f"Warehouse {step}")


def test_incremental_index_equals_rebuild(demo, rewind, tmp_path):
    incremental = open_store("sqlite", tmp_path / "a")
    rng = random.Random(7)
    for round_ in range(6):
        random_history(demo, rng, 15, f"R{round_}-")
        scanner(demo, incremental, max_range=rng.choice([1, 3, 50])).sync()
    rebuilt = open_store("sqlite", tmp_path / "b")
    scanner(demo, rebuilt).sync()
    assert dump(incremental) == dump(rebuilt)
    assert len(dump(rebuilt)["events"]) > 150


def test_reorganisation_is_rewound(demo, rewind, store, tmp_path):
    scan = scanner(demo, store)
    scan.sync()
    fork_point = demo.w3.provider.make_request("evm_snapshot", [])["result"]
    random_history(demo, random.Random(1), 12, "OLD-")
    scan.sync()
    assert any(lot.startswith("OLD-") for lot in lots(store)), "the old branch was indexed before the fork"
    # Replace those blocks: revert to the fork point and build a longer, different chain.
    demo.w3.provider.make_request("evm_revert", [fork_point])
    random_history(demo, random.Random(2), 20, "NEW-")
    report = scan.sync()
    assert report.reorgs == 1 and report.events_dropped > 0
    rebuilt = open_store("sqlite", tmp_path / "rebuilt")
    scanner(demo, rebuilt).sync()
    assert dump(store) == dump(rebuilt)
    # The lot column, by name: the old branch's lots are gone, the new branch's are there.
    assert not any(lot.startswith("OLD-") for lot in lots(store))
    assert any(lot.startswith("NEW-") for lot in lots(store))


def test_sigkilled_indexer_resumes_without_loss_or_duplicates(demo, rewind, tmp_path):
    random_history(demo, random.Random(3), 60, "K-")
    env = {
        **os.environ,
        "PROVENANCE_DATA_DIR": str(demo.settings.data_dir),
        "PROVENANCE_RPC_URL": demo.settings.rpc_url,
        "PROVENANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'crash.sqlite'}",
    }
    command = [sys.executable, "-m", "ledger.cli", "index", "--max-blocks", "1", "--json"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = IndexStore(env["PROVENANCE_DATABASE_URL"])
    deadline = time.monotonic() + 60
    head = demo.w3.eth.block_number
    cursor = None
    while time.monotonic() < deadline and process.poll() is None:
        cursor = store.cursor(demo.address, 31337)
        if cursor and cursor.block_number > demo.deploy_block + 20:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    cursor = store.cursor(demo.address, 31337)
    assert cursor is not None and cursor.block_number < head, "the indexer was not caught midway"
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    rebuilt = open_store("sqlite", tmp_path / "rebuilt")
    scanner(demo, rebuilt).sync()
    assert dump(store) == dump(rebuilt)


def test_store_for_another_ledger_is_refused(demo, tmp_path):
    store = open_store("sqlite", tmp_path)
    scanner(demo, store).sync()
    with pytest.raises(Exception, match="was built for ledger"):
        store.cursor("0x" + "12" * 20, 31337)


def test_auditor_commands(demo, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ledger.cli import app

    for key in [k for k in os.environ if k.startswith("PROVENANCE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PROVENANCE_DATA_DIR", str(demo.settings.data_dir))
    monkeypatch.setenv("PROVENANCE_RPC_URL", demo.settings.rpc_url)
    monkeypatch.setenv("PROVENANCE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, list(args), catch_exceptions=False, terminal_width=200)
        return result.exit_code, result.stdout, result.stderr

    code, out, err = run("index")
    assert code == 0, err
    assert "new events" in out
    code, out, _ = run("history", *DEMO_BAG)
    assert code == 0
    for farm in ("Finca La Esperanza", "Finca El Mirador", "Finca Los Naranjos"):
        assert farm in out
    first_tx = demo.logs("BatchRegistered")[0]["transactionHash"].hex()
    assert first_tx.removeprefix("0x") in out
    code, out, _ = run("history", *DEMO_BAG, "--json")
    assert len(__import__("json").loads(out)["events"]) > 30
    code, out, _ = run("lineage", *DEMO_BAG)
    assert "AH-EXP-0420" in out and "NAR-2026-07" in out
    code, out, _ = run("lineage", FLOUR, "MV-F-2211")
    assert "RECALLED" in out and DEMO_LOAF[1] in out
    code, out, _ = run("claims", *DEMO_BAG)
    assert "FAIRTRADE: 69%" in out
    code, out, _ = run("claims", FARM_COFFEE["naranjos"], "NAR-2026-07", "--json")
    assert {c["status"] for c in __import__("json").loads(out)["claims"]} == {"valid", "revoked"}
    code, _, err = run("history", GREEN_COFFEE, "NOPE")
    assert code == 1 and "not in the index" in err
    code, out, _ = run("index", "--rebuild", "--json")
    assert __import__("json").loads(out)["events_added"] > 50 and __import__("json").loads(out)["set_aside"] == 0


def test_fast_word_decoding_equals_the_generic_decoder(demo, monkeypatch):
    from ledger.indexer import decoding

    logs = demo.w3.provider.make_request("eth_getLogs", [{"address": demo.address, "fromBlock": "0x0", "toBlock": "latest"}])[
        "result"
    ]
    fast = [decoding.LogDecoder().decode(log) for log in logs]
    # A decoder built with every word read by eth_abi and every event's data decoded by it.
    monkeypatch.setattr(decoding, "_is_static", lambda abi_type: False)
    monkeypatch.setattr(
        decoding,
        "_word_reader",
        lambda abi_type, name: (
            lambda word: decoding._normalise(name, abi_type, decoding.abi_decode([abi_type], bytes.fromhex(word))[0])
        ),
    )
    generic = [decoding.LogDecoder().decode(log) for log in logs]
    assert fast == generic
    assert {name for name, _ in fast} >= {"BatchRegistered", "TransformationRecorded", "Attested", "RoleGranted", "StepRecorded"}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrations_build_exactly_the_schema_the_code_uses(kind, tmp_path, request):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = open_store(kind, tmp_path, request.getfixturevalue("postgres_url") if kind == "postgresql" else None)
    with store.engine.connect() as conn:
        # The shared PostgreSQL test database also holds the feedback store's tables (its own
        # store, never the index): only the index's own tables are compared.
        def index_only(obj, name, type_, reflected, compare_to):  # noqa: ANN001, ANN202 - alembic's hook
            return not (type_ == "table" and reflected and compare_to is None and name.startswith("feedback_"))

        opts = {"compare_type": True, "include_object": index_only}
        differences = compare_metadata(MigrationContext.configure(conn, opts=opts), schema.metadata)
        version = conn.execute(text("select version_num from alembic_version")).scalar()
    assert differences == [], "the models changed without a migration: add one in ledger/indexer/migrations/versions"
    assert version == "0003"
    store.dispose()


def test_upgrading_an_index_from_0001_keeps_its_data_and_fills_new_columns(demo, tmp_path):
    from alembic import command

    from ledger.indexer import migrate

    store = open_store("sqlite", tmp_path)
    scanner(demo, store).sync()
    before = dump(store)
    with store.engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0001")
    store.dispose()
    upgraded = IndexStore.open(None, tmp_path)  # opening upgrades to head
    assert dump(upgraded) == before
    with upgraded.engine.connect() as conn:
        rows = conn.execute(
            select(schema.attestations.c.tx_hash, schema.attestations.c.revoked_at, schema.attestations.c.revoked_tx_hash)
        ).all()
    assert rows and all(tx and tx.startswith("0x") for tx, _, _ in rows)
    assert all((revoked is None) == (revoked_tx is None) for _, revoked, revoked_tx in rows)


def test_reopening_an_index_keeps_its_data(demo, tmp_path):
    store = open_store("sqlite", tmp_path)
    scanner(demo, store).sync()
    before = dump(store)
    store.dispose()
    again = IndexStore.open(None, tmp_path)
    assert dump(again) == before
    assert again.cursor(demo.address, 31337) is not None


def test_index_follow_picks_up_new_events_and_stops_on_ctrl_c(demo, rewind, tmp_path):
    database = tmp_path / "follow.sqlite"
    env = {
        **os.environ,
        "PROVENANCE_DATA_DIR": str(demo.settings.data_dir),
        "PROVENANCE_RPC_URL": demo.settings.rpc_url,
        "PROVENANCE_DATABASE_URL": f"sqlite:///{database}",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ledger.cli", "index", "--follow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        store = IndexStore(env["PROVENANCE_DATABASE_URL"])
        model = ReadModel(store)
        deadline = time.monotonic() + 60
        while store.cursor(demo.address, 31337) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        farm = LedgerWriter(demo, NodeAccountSigner(demo.w3.eth.accounts[1]))
        farm.register_batch(BatchCreate(gtin=GREEN_COFFEE, lot="FOLLOW-1", quantity=5, unit="KGM", product="Coffee"))
        while model.batch_by_gtin_lot(GREEN_COFFEE, "FOLLOW-1") is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert model.batch_by_gtin_lot(GREEN_COFFEE, "FOLLOW-1") is not None
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    assert "Following the chain" in out


# ---------------------------------------------------------------------- contract v2 on a bare ledger
#
# These tests send raw contract transactions from the node's unlocked accounts (web3's
# contract functions, no client code in between), so they exercise exactly what any
# caller could put on chain.

MAX = 2**64 - 1
COFFEE = complete_gtin("0950600013435")  # 09506000134352: company prefix 9506000
ROASTED = complete_gtin("0950600013436")
ZERO32 = b"\0" * 32


class RawLedger:
    """The deployed ledger driven by raw transactions, with metadata documents stored."""

    def __init__(self, local_ledger, tmp_path: Path) -> None:
        from web3 import Web3

        from ledger.artifacts import load_artifact

        self.w3 = Web3(Web3.HTTPProvider(local_ledger.rpc_url))
        self.address = local_ledger.address
        self.contract = self.w3.eth.contract(address=local_ledger.address, abi=load_artifact().abi)
        self.accounts = self.w3.eth.accounts
        self.admin = self.accounts[0]
        self.documents = DocumentStore(local_ledger.data_dir / "documents")
        self.deploy_block = 0
        self.tmp_path = tmp_path

    def send(self, sender: str, function: str, *args):
        tx = getattr(self.contract.functions, function)(*args).transact({"from": sender})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1, function
        return receipt

    def organisation(self, index: int, name: str, supplier: bool = True, prefix: tuple[int, int] | None = None) -> str:
        account = self.accounts[index]
        self.send(self.admin, "registerActor", account, name, b"FR", ZERO32)
        if supplier:
            self.send(self.admin, "grantRole", self.contract.functions.SUPPLIER_ROLE().call(), account)
        if prefix:
            self.send(self.admin, "grantLicence", account, *prefix)
        return account

    def batch_input(self, gtin: str, lot: str, quantity: int, metadata: dict | None = None, unit: str = "KGM"):
        # RFC 8785 numbers are IEEE doubles: a quantity beyond 2^53 goes as text.
        document = metadata or {
            "schema": "provenance-ledger/batch-metadata/1",
            "gtin": gtin,
            "lot": lot,
            "product": f"Product {lot}",
            "quantity": quantity if quantity < 2**53 else str(quantity),
            "unit": unit,
            "origin": f"Origin of {lot}",
        }
        digest = self.documents.put_json(document)
        return (int(gtin), lot_bytes(lot), quantity, unit.encode().ljust(3, b"\0"), digest)

    def register(self, sender: str, gtin: str, lot: str, quantity: int, **kwargs) -> str:
        self.send(sender, "registerBatch", self.batch_input(gtin, lot, quantity, **kwargs))
        return "0x" + batch_id(gtin, lot).hex()

    def transform(self, sender: str, kind: int, inputs: list[tuple[str, int]], outputs: list[tuple]) -> None:
        self.send(sender, "transform", kind, [(bytes.fromhex(b[2:]), q) for b, q in inputs], outputs, ZERO32)

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def scan(self, store: IndexStore, **kwargs) -> Scanner:
        scan = Scanner(self.w3, self.address, self.deploy_block, store, **kwargs)
        scan.sync()
        return scan

    def model(self, store: IndexStore) -> ReadModel:
        return ReadModel(store, self.documents)


@pytest.fixture
def raw(local_ledger, tmp_path):
    """The bare ledger, reverted after the test (this module's `rewind` is the demo's)."""
    ledger = RawLedger(local_ledger, tmp_path)
    snapshot = ledger.w3.provider.make_request("evm_snapshot", [])["result"]
    yield ledger
    ledger.w3.provider.make_request("evm_revert", [snapshot])


def test_quantities_up_to_2_64_minus_1_survive_split_merge_transform_and_consumption(raw, store):
    farm = raw.organisation(1, "Big Farm", prefix=(7, 9506000))
    whole = raw.register(farm, COFFEE, "HUGE-1", MAX)
    # Split everything into 2^63 and 2^63 - 1: the first input of >= 2^63 that halted SQLite.
    raw.transform(
        farm, 0, [(whole, MAX)], [raw.batch_input(COFFEE, "HUGE-A", 2**63), raw.batch_input(COFFEE, "HUGE-B", 2**63 - 1)]
    )
    part_a, part_b = ("0x" + batch_id(COFFEE, lot).hex() for lot in ("HUGE-A", "HUGE-B"))
    raw.transform(farm, 1, [(part_a, 2**63), (part_b, 2**63 - 1)], [raw.batch_input(COFFEE, "HUGE-M", MAX)])
    merged = "0x" + batch_id(COFFEE, "HUGE-M").hex()
    raw.transform(farm, 2, [(merged, MAX - 1)], [raw.batch_input(ROASTED, "HUGE-R", MAX - 1)])
    roasted = "0x" + batch_id(ROASTED, "HUGE-R").hex()
    raw.transform(farm, 2, [(merged, 1)], [raw.batch_input(ROASTED, "HUGE-S", 1)])
    certifier = raw.organisation(4, "Big Cert", supplier=False)
    claim = b"FAIRTRADE".ljust(32, b"\0")
    raw.send(raw.admin, "accreditCertifier", certifier, claim)
    raw.send(certifier, "attest", (0, bytes.fromhex(whole[2:]), claim, 0, 0, ZERO32))
    raw.scan(store)
    model = raw.model(store)
    assert model.set_aside() == (0, [])
    quantities = {b.lot: (b.registered_quantity, b.remaining_quantity, b.status) for b in model.batches(limit=10)}
    assert quantities == {
        "HUGE-1": (MAX, 0, "consumed"), "HUGE-A": (2**63, 0, "consumed"), "HUGE-B": (2**63 - 1, 0, "consumed"),
        "HUGE-M": (MAX, 0, "consumed"), "HUGE-R": (MAX - 1, MAX - 1, "active"), "HUGE-S": (1, 1, "active"),
    }  # fmt: skip
    assert model.batch(merged).remaining_quantity == 0 and model.batch(roasted).registered_quantity == MAX - 1
    up = model.lineage_up(roasted)
    assert up.inputs[0].quantity_used == MAX - 1 and {i.quantity_used for i in up.inputs[0].inputs} == {2**63, 2**63 - 1}
    assert model.input_shares(roasted) == {whole: 1.0}
    assert model.coverage(roasted, raw.now()) == {"FAIRTRADE": 1.0}  # shares of 2^64 - 1 units
    # Sums over quantities (mass balance) are exact: nothing came out of nothing.
    from ledger.audit import Auditor

    assert [f for f in Auditor(model, now=raw.now()).audit_all() if f.check == "mass_balance"] == []
    with store.engine.connect() as conn:  # the storage itself holds every digit
        stored = conn.execute(select(schema.transformation_inputs.c.quantity)).scalars().all()
    assert sorted(stored) == sorted([MAX, 2**63, 2**63 - 1, MAX - 1, 1])


def test_licences_sub_licences_withdrawal_and_lapse_are_indexed(raw, store):
    """Sub-licences are granted with grantLicence by the holder of a root licence (subLicense is gone)."""
    coop = raw.organisation(1, "Coop", prefix=(7, 9506000))
    member = raw.organisation(2, "Member Farm")
    packer = raw.organisation(3, "Co-packer")
    raw.send(coop, "grantLicence", member, 14, int(COFFEE))  # one GTIN for a member farm
    raw.send(coop, "grantLicence", packer, 9, 950600013)  # a range for a co-packer
    raw.register(member, COFFEE, "MEMBER-1", 10)
    raw.send(coop, "withdrawLicence", 9, 950600013)
    raw.send(raw.admin, "withdrawLicence", 7, 9506000)  # the member's sub-licence lapses with it
    raw.scan(store)
    model = raw.model(store)
    rows = {(r.prefix_length, r.prefix): r for r in model.licences()}
    assert set(rows) == {(7, "9506000"), (14, COFFEE), (9, "950600013")}
    root, single, ranged = rows[(7, "9506000")], rows[(14, COFFEE)], rows[(9, "950600013")]
    assert (root.licensee_name, root.grantor_name, root.parent_key, root.sub_licence) == ("Coop", "the ledger's admin", 0, False)
    assert root.key == (9506000 << 4) | 7 and single.parent_key == root.key and single.grantor == coop
    assert not root.in_force and root.withdrawn_by_name == "the ledger's admin" and root.withdrawn_tx.startswith("0x")
    assert not single.in_force and single.lapsed_at is not None and single.withdrawn_tx is None
    assert not ranged.in_force and ranged.withdrawn_by == coop and ranged.lapsed_at is None
    assert [r.prefix for r in model.actor(member).licences] == [COFFEE]


def test_void_recall_review_revocation_reasons_names_and_nonces_are_indexed(raw, store):
    farm = raw.organisation(1, "Finca Uno", prefix=(7, 9506000))
    certifier = raw.organisation(4, "Cert Body", supplier=False)
    claim = b"FAIRTRADE".ljust(32, b"\0")
    raw.send(raw.admin, "accreditCertifier", certifier, claim)
    raw.send(raw.admin, "setMaxBackdating", claim, 30 * 24 * 3600)
    wrong = raw.register(farm, COFFEE, "VOID-1", 5)
    raw.send(raw.admin, "voidBatch", bytes.fromhex(wrong[2:]), "registered with the wrong GTIN <b>")
    kept = raw.register(farm, COFFEE, "REC-1", 5)
    raw.send(farm, "recallBatch", bytes.fromhex(kept[2:]), "salmonella found in a sample", b"\x07" * 32)
    raw.send(raw.admin, "reviewRecall", bytes.fromhex(kept[2:]), False, "the sample was from another lot")
    held = raw.register(farm, COFFEE, "REC-2", 5)
    raw.send(farm, "recallBatch", bytes.fromhex(held[2:]), "glass fragments", ZERO32)
    raw.send(raw.admin, "reviewRecall", bytes.fromhex(held[2:]), True, "confirmed by the lab")
    receipt = raw.send(certifier, "attest", (0, bytes.fromhex(kept[2:]), claim, 0, 0, ZERO32))
    uid = receipt["logs"][0]["topics"][1].hex()
    raw.send(certifier, "revokeAttestation", bytes.fromhex(uid.removeprefix("0x")), "audit failed", ZERO32)
    raw.send(certifier, "invalidateNonces", 5)
    raw.send(farm, "requestProfileUpdate", "Cert Body Two", b"FR", ZERO32)  # asked, never approved
    raw.send(certifier, "requestProfileUpdate", "Cert Body Renamed", b"DE", ZERO32)
    raw.send(raw.admin, "approveProfileUpdate", certifier, "Cert Body Renamed", b"DE", ZERO32)
    raw.scan(store)
    model = raw.model(store)
    void = model.batch(wrong)
    assert (void.status, void.void_reason, void.voided_by_name) == (
        "voided",
        "registered with the wrong GTIN <b>",
        "the ledger's admin",
    )
    withdrawn, upheld = model.batch(kept), model.batch(held)
    assert (withdrawn.recalled, withdrawn.recall_state, withdrawn.recall_reason, withdrawn.review_reason) == (
        False,
        "withdrawn",
        "salmonella found in a sample",
        "the sample was from another lot",
    )
    assert withdrawn.recall_reason_hash == "0x" + "07" * 32 and withdrawn.recalled_by_name == "Finca Uno"
    assert (upheld.recalled, upheld.recall_state, upheld.reviewed_by_name) == (True, "upheld", "the ledger's admin")
    assert [b.lot for b in model.batches(recalled=True)] == ["REC-2"] and [b.lot for b in model.batches(status="voided")] == [
        "VOID-1"
    ]
    (revoked,) = model.claims(kept, raw.now())
    assert (revoked.status, revoked.revocation_reason, revoked.revoked_by_name) == (
        "revoked",
        "audit failed",
        "Cert Body Renamed",
    )
    # Names: the approved one everywhere; a request never shows; history keeps the old name.
    assert model.actor(farm).name == "Finca Uno" and model.actor(farm).pending_profile_request.name == "Cert Body Two"
    assert "Cert Body Two" not in {a.name for a in model.actors()} and model.actor_names({farm}) == {farm: "Finca Uno"}
    assert model.actor(certifier).name == "Cert Body Renamed" and model.actor(certifier).pending_profile_request is None
    events = {e.name: e for e in model.history(kept) if e.actor == certifier}
    assert events["Attested"].actor_name_then == "Cert Body" and events["Attested"].actor_name == "Cert Body Renamed"
    with store.engine.connect() as conn:
        assert (
            conn.execute(select(schema.issuer_nonces.c.next_nonce).where(schema.issuer_nonces.c.issuer == certifier)).scalar()
            == "5"
        )
        backdating = dict(conn.execute(select(schema.claim_types.c.claim, schema.claim_types.c.max_backdating)).all())
    assert backdating["FAIRTRADE"] == 30 * 24 * 3600 and backdating["ORGANIC"] == 90 * 24 * 3600


def test_an_event_that_cannot_be_applied_is_set_aside_and_the_sync_goes_on(raw, store):
    farm = raw.organisation(1, "Finca Dos", prefix=(7, 9506000))
    first = raw.register(farm, COFFEE, "SET-1", 10)
    scan = raw.scan(store)
    # A faulty indexer (or a hand-edited store) left a row that makes the next event fail:
    # a batch already at SET-2's GTIN + lot under another id breaks the unique index.
    with store.engine.begin() as conn:
        row = conn.execute(select(schema.batches).where(schema.batches.c.batch_id == first)).mappings().first()
        conn.execute(schema.batches.insert().values({**row, "batch_id": "0x" + "ee" * 32, "lot": "SET-2"}))
    raw.register(farm, COFFEE, "SET-2", 20)
    after = raw.register(farm, COFFEE, "SET-3", 30)
    raw.send(farm, "recallBatch", bytes.fromhex(first[2:]), "moulds", ZERO32)
    report = scan.sync()
    assert report.cursor == raw.w3.eth.block_number  # the sync went on
    model = raw.model(store)
    count, items = model.set_aside()
    assert count == 1 and items[0].name == "BatchRegistered" and items[0].stage == "apply"
    assert "IntegrityError" in items[0].reason and items[0].tx_hash.startswith("0x") and items[0].block_number > 0
    assert model.batch(after).registered_quantity == 30 and model.batch(first).recalled  # later events applied
    assert model.batch("0x" + batch_id(COFFEE, "SET-2").hex()) is None  # nothing half-applied
    # Nothing was lost: the event is in the log of record, and a rebuild applies it.
    assert len(model.history("0x" + batch_id(COFFEE, "SET-2").hex(), include_ancestors=False)) == 1
    with store.engine.begin() as conn:
        conn.execute(schema.batches.delete().where(schema.batches.c.batch_id == "0x" + "ee" * 32))
        IndexStore._replay(store, conn)
    assert model.set_aside()[0] == 0 and model.batch("0x" + batch_id(COFFEE, "SET-2").hex()).registered_quantity == 20


def test_a_log_that_cannot_be_decoded_is_set_aside_and_the_sync_goes_on(raw, tmp_path):
    from ledger.artifacts import load_artifact
    from ledger.indexer.decoding import LogDecoder

    farm = raw.organisation(1, "Finca Tres", prefix=(7, 9506000))
    wrong = raw.register(farm, COFFEE, "DEC-1", 10)
    raw.send(raw.admin, "voidBatch", bytes.fromhex(wrong[2:]), "duplicate of DEC-2")
    later = raw.register(farm, COFFEE, "DEC-2", 10)
    # An indexer whose ABI drifted from the contract: BatchVoided's batchId read as a data
    # field (same signature, same topic 0), so the log's data cannot be decoded with it.
    abi = json.loads(json.dumps(load_artifact().abi))
    voided = next(item for item in abi if item.get("name") == "BatchVoided" and item["type"] == "event")
    voided["inputs"][0]["indexed"] = False
    store = open_store("sqlite", tmp_path)
    raw.scan(store, decoder=LogDecoder(abi))
    model = raw.model(store)
    count, (item,) = model.set_aside()
    assert (count, item.name, item.stage) == (1, "BatchVoided", "decode") and "cannot decode" in item.reason
    assert model.batch(later) is not None and model.batch(wrong).status == "active"


def test_metadata_naming_another_lot_is_never_shown_as_the_batch_details(raw, store):
    honest = raw.organisation(1, "Finca Honesta", prefix=(7, 9506000))
    squatter = raw.organisation(2, "Borrowing Farm", prefix=(7, 9506001))
    theirs = raw.register(honest, COFFEE, "HON-1", 100)
    gtin = complete_gtin("0950600113435")
    # The other farm's document, anchored for a new lot of the squatter's own GTIN.
    document = {
        "schema": "provenance-ledger/batch-metadata/1",
        "gtin": COFFEE,
        "lot": "HON-1",
        "product": "Product HON-1",
        "quantity": 100,
        "unit": "KGM",
        "origin": "Origin of HON-1",
    }
    raw.send(squatter, "registerBatch", (int(gtin), lot_bytes("BORROW-1"), 100, b"KGM", raw.documents.put_json(document)))
    raw.scan(store)
    model = raw.model(store)
    copy = model.batch("0x" + batch_id(gtin, "BORROW-1").hex())
    assert copy.details_status == "mismatch" and "do not match" in copy.details_problem
    assert copy.product is None and copy.origin is None and copy.documents == []
    assert model.batch(theirs).product == "Product HON-1" and model.batch(theirs).details_status == "ok"
    assert {b.lot: b.product for b in model.batches()} == {"HON-1": "Product HON-1", "BORROW-1": None}
