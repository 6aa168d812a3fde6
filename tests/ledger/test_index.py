"""The index: the same query suite on SQLite and PostgreSQL; incremental equals rebuild;
reorganisations rewound; a SIGKILLed indexer resumes with nothing lost or doubled."""

from __future__ import annotations

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
from ledger.demo import DEMO_BAG, DEMO_LOAF, FLOUR, GREEN_COFFEE, demo_genesis_timestamp, seed_demo
from ledger.deploy import ensure_deployed
from ledger.documents import DocumentStore
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


def now(demo) -> int:
    return demo.w3.eth.get_block("latest")["timestamp"]


def test_query_suite(demo, store):
    report = scanner(demo, store).sync()
    assert report.events_added > 50 and report.cursor == demo.w3.eth.block_number
    model = ReadModel(store, DocumentStore(demo.settings.documents_dir))

    bag = model.batch_by_gtin_lot(*DEMO_BAG)
    assert bag["product"] == "Huila blend coffee beans, 250 g bag"
    assert bag["supplier_name"] == "Tostadores del Puerto" and bag["custodian_name"] == "Tostadores del Puerto"
    assert (bag["registered_quantity"], bag["remaining_quantity"], bag["unit"], bag["status"]) == (2000, 2000, "H87", "active")

    journey = model.history(bag["batch_id"])
    lots = [e["lot"] for e in journey if e["name"] == "BatchRegistered"]
    assert lots[:3] == ["ESP-2026-07", "MIR-2026-07", "NAR-2026-07"] and lots[-1] == DEMO_BAG[1]
    assert all(e["tx_hash"].startswith("0x") and e["block_number"] > 0 and e["timestamp"] > 0 for e in journey)
    assert [e["block_number"] for e in journey] == sorted(e["block_number"] for e in journey)
    assert {"StepRecorded", "CustodyTransferAccepted", "TransformationRecorded"} <= {e["name"] for e in journey}

    up = model.lineage_up(bag["batch_id"])
    export = up["inputs"][0]["inputs"][0]
    assert export["lot"] == "AH-EXP-0420" and export["quantity_used"] == 13000
    assert sorted(i["lot"] for i in export["inputs"]) == ["ESP-2026-07", "MIR-2026-07", "NAR-2026-07"]
    assert model.lineage_up(bag["batch_id"], depth=1)["inputs"][0].get("inputs") is None

    flour = model.batch_by_gtin_lot(FLOUR, "MV-F-2211")
    assert flour["recalled"] and flour["remaining_quantity"] == 4700
    down = model.lineage_down(flour["batch_id"])
    assert [o["lot"] for o in down["outputs"]] == [DEMO_LOAF[1]]

    statuses = {c["claim"]: c["status"] for c in model.claims(model.batch_by_gtin_lot(GREEN_COFFEE, "NAR-2026-07")["batch_id"], now(demo))}
    assert statuses == {"FAIRTRADE": "valid", "ORGANIC": "revoked", "DEFORESTATION_FREE": "valid"}
    mirador = model.batch_by_gtin_lot(GREEN_COFFEE, "MIR-2026-07")["batch_id"]
    assert {c["claim"]: c["status"] for c in model.claims(mirador, now(demo))}["FAIRTRADE"] == "expired"
    # At a time before the revocation, the revoked claim was valid.
    naranjos = model.batch_by_gtin_lot(GREEN_COFFEE, "NAR-2026-07")["batch_id"]
    organic = next(c for c in model.claims(naranjos, now(demo)) if c["claim"] == "ORGANIC")
    assert next(c for c in model.claims(naranjos, organic["revoked_at"] - 1) if c["claim"] == "ORGANIC")["status"] == "valid"
    coop = demo.w3.eth.accounts[4]
    assert [c["status"] for c in model.claims(coop, now(demo))] == ["valid"]

    coverage = model.coverage(bag["batch_id"], now(demo))
    assert coverage["DEFORESTATION_FREE"] == 1.0
    assert coverage["FAIRTRADE"] == pytest.approx(18 / 26, abs=1e-6)  # Mirador's certificate expired
    assert coverage["ORGANIC"] == pytest.approx(12 / 26, abs=1e-6)  # Los Naranjos' was revoked

    roaster = demo.w3.eth.accounts[5]
    assert {b["lot"] for b in model.batches(supplier=roaster)} == {"TP-R-1107", DEMO_BAG[1]}
    assert {b["lot"] for b in model.batches(gtin=GREEN_COFFEE, status="consumed")} == {"ESP-2026-07", "MIR-2026-07", "NAR-2026-07"}
    assert [b["lot"] for b in model.batches(recalled=True)] == ["MV-F-2211"]
    assert model.batches(since=now(demo) + 10) == []
    assert len(model.batches(limit=3)) == 3 and len(model.batches(limit=3, offset=8)) == 1
    assert model.actor(coop)["name"] == "Cooperativa Cafetera Alto Huila" and model.actor(coop)["supplier"]
    assert model.actor(demo.w3.eth.accounts[9])["accredited_claims"] == ["FAIRTRADE", "ORGANIC"]


def random_history(demo, rng: random.Random, steps: int, tag: str) -> None:
    """Registrations, hand-overs, transformations, recalls and claims at random."""
    accounts = demo.w3.eth.accounts
    farms = [LedgerWriter(demo, NodeAccountSigner(accounts[i])) for i in (1, 2, 3, 4)]
    held: dict[int, list[BatchCreate]] = {i: [] for i in range(4)}
    for step in range(steps):
        who = rng.randrange(4)
        action = rng.random()
        if action < 0.4 or not held[who]:
            batch = BatchCreate(gtin=GREEN_COFFEE, lot=f"{tag}{step}", quantity=rng.randint(10, 1000), unit="KGM", product="Coffee")
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
            out = BatchCreate(gtin=GREEN_COFFEE, lot=f"{tag}{step}T", quantity=source.quantity, unit="KGM", product="Coffee")
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
    # Replace those blocks: revert to the fork point and build a longer, different chain.
    demo.w3.provider.make_request("evm_revert", [fork_point])
    random_history(demo, random.Random(2), 20, "NEW-")
    report = scan.sync()
    assert report.reorgs == 1 and report.events_dropped > 0
    rebuilt = open_store("sqlite", tmp_path / "rebuilt")
    scanner(demo, rebuilt).sync()
    assert dump(store) == dump(rebuilt)
    assert not any("OLD-" in row[1] for row in dump(store)["batches"])


def test_sigkilled_indexer_resumes_without_loss_or_duplicates(demo, rewind, tmp_path):
    random_history(demo, random.Random(3), 60, "K-")
    env = {**os.environ, "PROVENANCE_DATA_DIR": str(demo.settings.data_dir), "PROVENANCE_RPC_URL": demo.settings.rpc_url,
           "PROVENANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'crash.sqlite'}"}  # fmt: skip
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
    code, out, _ = run("claims", GREEN_COFFEE, "NAR-2026-07", "--json")
    assert {c["status"] for c in __import__("json").loads(out)["claims"]} == {"valid", "revoked"}
    code, _, err = run("history", GREEN_COFFEE, "NOPE")
    assert code == 1 and "not in the index" in err
    code, out, _ = run("index", "--rebuild", "--json")
    assert __import__("json").loads(out)["events_added"] > 50


def test_fast_word_decoding_equals_the_generic_decoder(demo, monkeypatch):
    from ledger.indexer import decoding

    logs = demo.w3.provider.make_request("eth_getLogs", [{"address": demo.address, "fromBlock": "0x0", "toBlock": "latest"}])["result"]
    decoder = decoding.LogDecoder()
    fast = [decoder.decode(log) for log in logs]
    monkeypatch.setattr(decoding, "_is_static", lambda abi_type: False)
    monkeypatch.setattr(decoding, "_word", lambda abi_type, name, word: decoding._normalise(
        name, abi_type, decoding.abi_decode([abi_type], bytes.fromhex(word))[0]))  # fmt: skip
    generic = [decoder.decode(log) for log in logs]
    assert fast == generic
    assert {name for name, _ in fast} >= {"BatchRegistered", "TransformationRecorded", "Attested", "RoleGranted", "StepRecorded"}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrations_build_exactly_the_schema_the_code_uses(kind, tmp_path, request):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = open_store(kind, tmp_path, request.getfixturevalue("postgres_url") if kind == "postgresql" else None)
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), schema.metadata)
        version = conn.execute(text("select version_num from alembic_version")).scalar()
    assert differences == [], "the models changed without a migration: add one in ledger/indexer/migrations/versions"
    assert version == "0002"
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
        rows = conn.execute(select(schema.attestations.c.tx_hash, schema.attestations.c.revoked_at, schema.attestations.c.revoked_tx_hash)).all()
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
    env = {**os.environ, "PROVENANCE_DATA_DIR": str(demo.settings.data_dir), "PROVENANCE_RPC_URL": demo.settings.rpc_url,
           "PROVENANCE_DATABASE_URL": f"sqlite:///{database}", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "ledger.cli", "index", "--follow"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
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
