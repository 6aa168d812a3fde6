"""Independent verification and proof bundles against a real chain: a clean history
verifies; a tampered document, a doctored index row, and a doctored or incomplete bundle
are each named and fail with exit code 4."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.identifiers import complete_gtin, lot_bytes
from ledger.indexer import schema
from ledger.indexer.scanner import Scanner
from ledger.indexer.store import IndexStore
from ledger.models import AttestationCreate, BatchCreate, DocumentRef, LicenceScope, SubjectKind, TransformationKind
from ledger.signers import NodeAccountSigner
from ledger.writer import LedgerWriter, hex0x

RAW = complete_gtin("0950600013460")
MADE = complete_gtin("0950600013461")


@pytest.fixture
def history(local_ledger, rewind, tmp_path):
    """Two raw lots (one with a certificate document and an attestation), merged and
    processed into a product; indexed into a fresh store. Returns (env, product, store)."""
    settings = Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url)
    connection = LedgerConnection.open(settings)
    accounts = connection.w3.eth.accounts
    admin = LedgerWriter(connection, NodeAccountSigner(accounts[0]))
    for index, name in ((1, "Verify Farm"), (4, "Verify Cert")):
        admin.register_actor(accounts[index], name, "PE")
    admin.grant_supplier(accounts[1])
    admin.grant_licence(accounts[1], LicenceScope.company_prefix(RAW[1:12]))
    admin.accredit(accounts[4], "ORGANIC")
    farm, cert = (
        LedgerWriter(connection, NodeAccountSigner(accounts[1])),
        LedgerWriter(connection, NodeAccountSigner(accounts[4])),
    )
    certificate = farm.documents.put_bytes(b"organic certificate, audit 2026")
    raw = BatchCreate(
        gtin=RAW,
        lot="VF-1",
        quantity=100,
        unit="KGM",
        product="Cacao beans",
        documents=(DocumentRef(name="certificate.pdf", sha256=certificate.hex()),),
    )
    other = BatchCreate(gtin=RAW, lot="VF-2", quantity=50, unit="KGM", product="Cacao beans")
    farm.register_batch(raw)
    farm.register_batch(other)
    farm.record_step(raw.batch_id, "inspecting", "Finca, PE")
    uid, _ = cert.attest(
        AttestationCreate(
            subject_kind=SubjectKind.BATCH,
            subject=hex0x(raw.batch_id),
            claim="ORGANIC",
            evidence_hash=hex0x(cert.documents.put_json({"audit": "ok"})),
        )
    )
    cert.revoke_attestation(bytes.fromhex(uid[2:]), "certificate withdrawn by the scheme", b"\x05" * 32)
    blend = BatchCreate(gtin=RAW, lot="VF-B", quantity=150, unit="KGM", product="Cacao blend")
    farm.transform(TransformationKind.MERGE, [(raw.batch_id, 100), (other.batch_id, 50)], [blend])
    product = BatchCreate(gtin=MADE, lot="VF-P", quantity=120, unit="KGM", product="Cacao nibs")
    farm.transform(TransformationKind.PROCESSING, [(blend.batch_id, 150)], [product])
    database = f"sqlite:///{tmp_path / 'verify.sqlite'}"
    store = IndexStore.open(database, tmp_path)
    Scanner(connection.w3, connection.address, connection.deploy_block, store).sync()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVENANCE_")}
    env.update(local_ledger.env, PROVENANCE_DATABASE_URL=database)
    return env, product, store, certificate, connection


def test_details_borrowed_from_another_lot_fail_verification(history, local_ledger):
    # The attack: another supplier registers a new lot with the metadata hash of VF-1, so
    # a page would show VF-1's product and certificate for it. Verify must fail, naming it.
    env, _, store, _, connection = history
    accounts = connection.w3.eth.accounts
    admin = LedgerWriter(connection, NodeAccountSigner(accounts[0]))
    admin.register_actor(accounts[2], "Borrowing Farm", "PE")
    admin.grant_supplier(accounts[2])
    own_gtin = "09506000234359"
    admin.grant_licence(accounts[2], LicenceScope.single_gtin(own_gtin))
    vf1 = next(e for e in connection.logs("BatchRegistered") if e["args"]["lot"].rstrip(b"\0") == b"VF-1")
    squatter = LedgerWriter(connection, NodeAccountSigner(accounts[2]))
    squatter.send(
        squatter.contract.functions.registerBatch((int(own_gtin), lot_bytes("COPY-1"), 100, b"KGM", vf1["args"]["metadataHash"]))
    )
    Scanner(connection.w3, connection.address, connection.deploy_block, store).sync()
    result = provenance(env, "verify", own_gtin, "COPY-1", "--json")
    assert result.returncode == 4, result.stdout + result.stderr
    (mismatch,) = json.loads(result.stdout)["mismatches"]
    assert mismatch["what"] == "metadata of lot COPY-1 names this lot"
    assert "names GTIN '09506000134604' lot 'VF-1'" in mismatch["detail"] and "belong to another lot" in mismatch["detail"]
    assert provenance(env, "verify", RAW, "VF-1").returncode == 0  # the rightful lot still verifies


def provenance(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
    )


def test_a_clean_history_verifies(history):
    env, product, *_ = history
    result = provenance(env, "verify", MADE, "VF-P", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["mismatches"] == []
    checked = [c["what"] for c in report["checks"]]
    assert sum(w.startswith("BatchRegistered") for w in checked) == 4  # the product, the blend, two raw lots
    assert sum(w.startswith("TransformationRecorded") for w in checked) == 2
    assert any(w.startswith("revocation") for w in checked) and any(w.startswith("Attested") for w in checked)
    assert any(w.startswith("document certificate.pdf of lot VF-1") for w in checked)
    assert any(w.startswith("metadata of lot VF-P") for w in checked)
    human = provenance(env, "verify", MADE, "VF-P")
    assert human.returncode == 0 and "Verified:" in human.stdout


def test_a_tampered_document_is_named(history):
    env, _, _, certificate, connection = history
    path = connection.settings.documents_dir / "sha256" / certificate.hex()[:2] / certificate.hex()[2:]
    path.chmod(0o644)
    original = path.read_bytes()
    path.write_bytes(b"organic certificate, audit 2026 (edited)")
    try:
        result = provenance(env, "verify", MADE, "VF-P")
    finally:
        path.write_bytes(original)  # the document store outlives the test (the chain is rewound, files are not)
    assert result.returncode == 4
    assert "MISMATCH document certificate.pdf of lot VF-1" in result.stdout and "no longer matches" in result.stdout


@pytest.mark.parametrize("doctoring", ["changed quantity", "deleted step", "invented event"])
def test_a_doctored_index_row_is_named(history, doctoring):
    env, _, store, *_ = history
    e = schema.events
    with store.engine.begin() as conn:
        if doctoring == "changed quantity":
            row = conn.execute(e.select().where(e.c.name == "BatchRegistered")).mappings().first()
            args = json.loads(row["args"]) | {"quantity": 999}
            conn.execute(
                update(e).where(e.c.tx_hash == row["tx_hash"], e.c.log_index == row["log_index"]).values(args=json.dumps(args))
            )
        elif doctoring == "deleted step":
            conn.execute(delete(e).where(e.c.name == "StepRecorded"))
        else:
            row = dict(conn.execute(e.select().where(e.c.name == "StepRecorded")).mappings().first())
            conn.execute(e.insert().values({**row, "tx_hash": "0x" + "ab" * 32}))
    result = provenance(env, "verify", MADE, "VF-P", "--json")
    assert result.returncode == 4
    details = " | ".join(f"{m['what']}: {m['detail']}" for m in json.loads(result.stdout)["mismatches"])
    expected = {
        "changed quantity": "other values for quantity",
        "deleted step": "StepRecorded in transaction",
        "invented event": "in the index but not on the chain",
    }[doctoring]
    assert expected in details, details


def test_a_proof_bundle_verifies_in_a_fresh_process_with_only_the_rpc_url(history, tmp_path):
    env, product, *_ = history
    bundle = tmp_path / "proof.json"
    made = provenance(env, "proof", MADE, "VF-P", "-o", str(bundle))
    assert made.returncode == 0, made.stderr
    data = json.loads(bundle.read_text())
    assert data["lot"] == "VF-P" and data["chain_id"] == 31337 and len(data["lineage"]) == 4
    assert all(e["block_hash"].startswith("0x") and e["topics"] for e in data["events"])
    assert {d["role"] for d in data["documents"]} == {"metadata", "evidence"}
    # Nothing but the node: no settings, no data directory, no index.
    bare = {k: v for k, v in os.environ.items() if not k.startswith("PROVENANCE_")}
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    result = provenance(bare, "verify", "--bundle", str(bundle), "--rpc", env["PROVENANCE_RPC_URL"], cwd=empty)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verified:" in result.stdout and not (empty / ".provenance").exists()


def test_a_doctored_or_incomplete_bundle_fails(history, tmp_path):
    env, *_ = history
    bundle = tmp_path / "proof.json"
    assert provenance(env, "proof", MADE, "VF-P", "-o", str(bundle)).returncode == 0
    data = json.loads(bundle.read_text())
    doctored = json.loads(json.dumps(data))
    registered = next(e for e in doctored["events"] if e["name"] == "BatchRegistered")
    registered["args"]["quantity"] = 1_000_000
    incomplete = json.loads(json.dumps(data))
    incomplete["events"] = [e for e in incomplete["events"] if e["name"] != "AttestationRevoked"]
    for name, content, expected in (
        ("doctored", doctored, "decoded arguments differ"),
        ("incomplete", incomplete, "leaves out AttestationRevoked"),
    ):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(content))
        result = provenance(env, "verify", "--bundle", str(path), "--rpc", env["PROVENANCE_RPC_URL"])
        assert result.returncode == 4 and expected in result.stdout, result.stdout


def test_recall_reviews_and_voiding_are_verified_against_the_chain(history):
    env, product, store, _, connection = history
    accounts = connection.w3.eth.accounts
    admin, farm = (LedgerWriter(connection, NodeAccountSigner(accounts[i])) for i in (0, 1))
    farm.recall_batch(product.batch_id, "foreign matter in a sample")
    admin.review_recall(product.batch_id, False, "the sample came from another line")
    blend = BatchCreate(gtin=RAW, lot="VF-B", quantity=150, unit="KGM", product="Cacao blend")
    admin.void_batch(blend.batch_id, "registered under the wrong lot number")
    Scanner(connection.w3, connection.address, connection.deploy_block, store).sync()
    result = provenance(env, "verify", MADE, "VF-P", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    checked = [c["what"] for c in json.loads(result.stdout)["checks"]]
    assert {"BatchRecalled", "RecallReviewed", "BatchVoided"} <= {w.split(" ")[0] for w in checked}
    e = schema.events
    with store.engine.begin() as conn:  # an index that says the recall was upheld, with another reason
        row = conn.execute(e.select().where(e.c.name == "RecallReviewed")).mappings().first()
        args = json.loads(row["args"]) | {"upheld": True, "reason": "confirmed"}
        conn.execute(
            update(e).where(e.c.tx_hash == row["tx_hash"], e.c.log_index == row["log_index"]).values(args=json.dumps(args))
        )
    result = provenance(env, "verify", MADE, "VF-P", "--json")
    assert result.returncode == 4
    (mismatch,) = json.loads(result.stdout)["mismatches"]
    assert mismatch["what"].startswith("RecallReviewed") and "other values for reason, upheld" in mismatch["detail"]
