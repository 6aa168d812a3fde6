"""Contract v2 on the customer's page and the auditor's API, against a chain of its own
where hostile parties did what the ledger lets them: a lot registered with another
lot's details, rename requests, attacker-written reasons for voiding, recalls, reviews
and revocations; and an index that had to set an event aside."""

from __future__ import annotations

import html as html_module
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from ledger.chain import LocalChain, connect, free_loopback_port
from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.deploy import ensure_deployed
from ledger.identifiers import batch_id, complete_gtin, lot_bytes
from ledger.indexer import schema
from ledger.indexer.scanner import Scanner
from ledger.indexer.store import IndexStore
from ledger.models import AttestationCreate, BatchCreate, LicenceScope, SubjectKind
from ledger.signers import NodeAccountSigner
from ledger.writer import LedgerWriter, hex0x

COFFEE = complete_gtin("0950600013435")  # the honest farm's, prefix 95060001343
ROGUE_GTIN = complete_gtin("0950600019991")  # the rogue's own, prefix 95060001999
VOID_REASON = "<script>alert('void')</script>"
RECALL_REASON = "<script>alert('recall')</script> salmonella"
REVIEW_REASON = "<b>the lab found nothing</b> [red]sure[/red]"  # HTML and console markup
REVOKE_REASON = "<img src=x onerror=alert('revoked')>"
PENDING_NAME = "EthicCert Labs <script>"


def text_of(html: str) -> str:
    """The page's visible text, whitespace collapsed (for phrase checks)."""
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return html_module.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def page(lot: str, gtin: str = COFFEE) -> str:
    return f"/01/{gtin}/10/{lot}"


@dataclass
class Site:
    settings: Settings
    connection: LedgerConnection
    farm: str
    rogue: str
    certifier: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp("v2-site")
    settings = Settings(
        data_dir=data_dir, rpc_url=f"http://127.0.0.1:{free_loopback_port()}", public_base_url="https://provenance.example"
    )
    chain = LocalChain(settings)
    chain.start()
    try:
        ensure_deployed(connect(settings.rpc_url), settings.deployment_file, settings.admin_transfer_delay)
        connection = LedgerConnection.open(settings)
        accounts = connection.w3.eth.accounts
        admin = LedgerWriter(connection, NodeAccountSigner(accounts[0]))
        for index, name in ((1, "Finca Honesta"), (2, "Rogue Farm"), (4, "EthicCert Labs")):
            admin.register_actor(accounts[index], name, "CO")
        for index in (1, 2):
            admin.grant_supplier(accounts[index])
        admin.grant_licence(accounts[1], LicenceScope.company_prefix(COFFEE[1:12]))
        admin.grant_licence(accounts[2], LicenceScope.company_prefix(ROGUE_GTIN[1:12]))
        admin.accredit(accounts[4], "FAIRTRADE")
        farm, rogue, cert = (LedgerWriter(connection, NodeAccountSigner(accounts[i])) for i in (1, 2, 4))

        def lot(name: str) -> BatchCreate:
            batch = BatchCreate(
                gtin=COFFEE, lot=name, quantity=100, unit="KGM", product="Honest coffee", origin="Huila, Colombia"
            )
            farm.register_batch(batch)
            return batch

        honest = lot("HON-1")
        # The rogue anchors the honest lot's metadata hash for a lot of its own GTIN.
        anchored = next(e for e in connection.logs("BatchRegistered") if e["args"]["batchId"] == honest.batch_id)["args"][
            "metadataHash"
        ]
        rogue.send(rogue.contract.functions.registerBatch((int(ROGUE_GTIN), lot_bytes("BORROW-1"), 100, b"KGM", anchored)))
        rogue.request_profile_update(PENDING_NAME, "CO")  # never approved
        voided = lot("VOID-1")
        admin.void_batch(voided.batch_id, VOID_REASON)
        withdrawn, upheld, waiting = lot("HON-2"), lot("HON-3"), lot("HON-4")
        farm.recall_batch(withdrawn.batch_id, RECALL_REASON)
        admin.review_recall(withdrawn.batch_id, False, REVIEW_REASON)
        farm.recall_batch(upheld.batch_id, "glass fragments")
        admin.review_recall(upheld.batch_id, True, "confirmed by the lab")
        farm.recall_batch(waiting.batch_id, "pests in the store")
        uid, _ = cert.attest(AttestationCreate(subject_kind=SubjectKind.BATCH, subject=hex0x(honest.batch_id), claim="FAIRTRADE"))
        cert.revoke_attestation(bytes.fromhex(uid[2:]), REVOKE_REASON)
        cert.request_profile_update("EthicCert Labs GmbH", "DE")
        admin.approve_profile_update(accounts[4])
        store = IndexStore.open(settings.database_url, settings.data_dir)
        Scanner(connection.w3, connection.address, connection.deploy_block, store).sync()
        store.dispose()
        yield Site(settings, connection, accounts[1], accounts[2], accounts[4])
    finally:
        chain.stop()


@pytest.fixture(scope="module")
def client(site: Site) -> Iterator[TestClient]:
    with TestClient(create_app(site.settings)) as test_client:
        yield test_client


def test_a_lot_with_another_lots_details_says_they_do_not_match(client):
    response = client.get(page("BORROW-1", ROGUE_GTIN))
    assert response.status_code == 200
    html, text = response.text, text_of(response.text)
    assert "<h1>Details do not match this lot</h1>" in html and "The details do not match this lot." in text
    assert "Honest coffee" not in html and "Huila" not in html  # nothing from the borrowed document
    data = client.get(page("BORROW-1", ROGUE_GTIN), headers={"Accept": "application/json"}).json()
    assert (data["details_status"], data["product"], data["origin"], data["documents"]) == ("mismatch", None, None, [])
    assert "do not match" in data["details_problem"]
    honest = client.get(page("HON-1"), headers={"Accept": "application/json"}).json()
    assert (honest["details_status"], honest["product"], honest["details_problem"]) == ("ok", "Honest coffee", None)
    api = client.get(f"/api/v1/batches/0x{batch_id(ROGUE_GTIN, 'BORROW-1').hex()}").json()
    assert api["details_status"] == "mismatch" and api["product"] is None


def test_a_voided_lot_says_so_by_whom_and_why(client):
    html = client.get(page("VOID-1")).text
    text = text_of(html)
    assert html.index('id="void-title"') < html.index("<h1>")
    assert "This lot was voided" in text and "voided by the ledger's admin" in text
    assert f"Reason given: “{VOID_REASON}”" in text  # shown as text...
    assert "&lt;script&gt;alert(&#39;void&#39;)&lt;/script&gt;" in html and "<script" not in html.lower()  # ...escaped
    # ...and isolated, so a right-to-left override in it cannot reorder the page's own words.
    assert "<bdi>“&lt;script&gt;alert(&#39;void&#39;)&lt;/script&gt;”</bdi>" in html
    journey = html[html.index('id="journey"') :]
    assert "Voided: Honest coffee, lot VOID-1" in text_of(journey)
    assert client.get("/api/v1/batches", params={"status": "voided"}).json()["items"][0]["lot"] == "VOID-1"


def test_recalls_show_their_reason_and_review(client):
    withdrawn = client.get(page("HON-2")).text
    assert 'class="banner recall"' not in withdrawn  # a withdrawn recall: the lot is not recalled
    journey = text_of(withdrawn[withdrawn.index('id="journey"') :])
    assert "Recalled: Honest coffee, lot HON-2" in journey and RECALL_REASON in journey
    assert (
        "Recall withdrawn: Honest coffee, lot HON-2" in journey and "the ledger's admin" in journey and REVIEW_REASON in journey
    )
    assert "<script" not in withdrawn.lower() and "<b>" not in withdrawn
    upheld = text_of(client.get(page("HON-3")).text)
    assert "This lot was recalled by Finca Honesta" in upheld and "“glass fragments”" in upheld
    assert "reviewed and upheld by the ledger's admin: “confirmed by the lab”" in upheld and "Recall upheld" in upheld
    waiting = text_of(client.get(page("HON-4")).text)
    assert "“pests in the store”" in waiting and "Awaiting review by the ledger's admin" in waiting
    data = client.get(page("HON-3"), params={"linkType": "gs1:recallStatus"}).json()
    (recall,) = data["recalls"]
    assert (recall["reason"], recall["state"], recall["reviewed_by"], recall["review_reason"]) == (
        "glass fragments",
        "upheld",
        "the ledger's admin",
        "confirmed by the lab",
    )


def test_a_revoked_claim_shows_its_reason_escaped(client):
    html = client.get(page("HON-1")).text
    text = text_of(html)
    assert "Revoked by EthicCert Labs GmbH on" in text and f"“{REVOKE_REASON}”" in text
    assert "<img" not in html.lower() and "&lt;img src=x onerror=alert(&#39;revoked&#39;)&gt;" in html


def test_names_are_the_approved_ones_and_a_pending_request_never_shows(client, site):
    for lot, gtin in (("HON-1", COFFEE), ("BORROW-1", ROGUE_GTIN), ("VOID-1", COFFEE)):
        html = client.get(page(lot, gtin)).text
        assert "EthicCert Labs &lt;script&gt;" not in html and PENDING_NAME not in text_of(html)
    actors = client.get("/api/v1/actors").json()["items"]
    assert {a["name"] for a in actors} == {"Finca Honesta", "Rogue Farm", "EthicCert Labs GmbH"}
    rogue = client.get(f"/api/v1/actors/{site.rogue}").json()
    assert rogue["name"] == "Rogue Farm" and rogue["pending_profile_request"]["name"] == PENDING_NAME
    # History keeps the name each event was made under.
    events = client.get(f"/api/v1/batches/0x{batch_id(COFFEE, 'HON-1').hex()}/history").json()["events"]
    attested = next(e for e in events if e["name"] == "Attested")
    assert (attested["actor_name"], attested["actor_name_then"]) == ("EthicCert Labs GmbH", "EthicCert Labs")
    licences = client.get("/api/v1/licences", params={"licensee": site.farm}).json()["items"]
    assert [(lic["prefix"], lic["in_force"], lic["grantor_name"]) for lic in licences] == [
        (COFFEE[1:12], True, "the ledger's admin")
    ]


def test_an_event_set_aside_is_reported_by_the_index_status_and_healthz(client, site, tmp_path):
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/api/v1/index").json()["set_aside"] == {"count": 0, "items": []}
    w3 = site.connection.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        database = f"sqlite:///{tmp_path / 'doctored.sqlite'}"
        store = IndexStore.open(database, tmp_path)
        scanner = Scanner(w3, site.connection.address, site.connection.deploy_block, store)
        scanner.sync()
        # A store left by a faulty indexer: a row already holds the next lot's GTIN + lot.
        with store.engine.begin() as conn:
            row = conn.execute(select(schema.batches).where(schema.batches.c.lot == "HON-1")).mappings().first()
            conn.execute(schema.batches.insert().values({**row, "batch_id": "0x" + "ee" * 32, "lot": "NEXT-1"}))
        farm = LedgerWriter(site.connection, NodeAccountSigner(site.farm))
        farm.register_batch(BatchCreate(gtin=COFFEE, lot="NEXT-1", quantity=5, unit="KGM", product="Next"))
        farm.register_batch(BatchCreate(gtin=COFFEE, lot="NEXT-2", quantity=5, unit="KGM", product="Next"))
        scanner.sync()
        store.dispose()
        with TestClient(create_app(site.settings.model_copy(update={"database_url": database}))) as doctored:
            health = doctored.get("/healthz")
            assert health.status_code == 200  # degraded, not down: the index follows the chain
            body = health.json()
            assert body["status"] == "degraded" and body["index"]["set_aside"] == 1 and "set aside 1 event" in body["warnings"][0]
            status = doctored.get("/api/v1/index").json()
            assert status["status"] == "degraded" and status["set_aside"]["count"] == 1
            (item,) = status["set_aside"]["items"]
            assert item["name"] == "BatchRegistered" and item["stage"] == "apply" and "IntegrityError" in item["reason"]
            assert item["tx_hash"].startswith("0x") and item["block_number"] > 0 and isinstance(item["log_index"], int)
            assert doctored.get(page("NEXT-2")).status_code == 200  # the sync went on past it
    finally:
        w3.provider.make_request("evm_revert", [snapshot])


def test_exports_carry_voiding_recall_reviews_and_reasons(client):
    voided = client.get(f"/api/v1/batches/0x{batch_id(COFFEE, 'VOID-1').hex()}/epcis")
    assert voided.status_code == 200
    (void,) = [e for e in voided.json()["epcisBody"]["eventList"] if "pl:voidReason" in e]
    assert (void["action"], void["disposition"], void["pl:voidReason"]) == ("DELETE", "inactive", VOID_REASON) and void["eventID"]
    reviewed = client.get(f"/api/v1/batches/0x{batch_id(COFFEE, 'HON-2').hex()}/epcis").json()["epcisBody"]["eventList"]
    assert [(e.get("pl:recallReview"), e["pl:reason"]) for e in reviewed if "pl:reason" in e] == [
        (None, RECALL_REASON),
        ("withdrawn", REVIEW_REASON),
    ]
    revoked = client.get(f"/api/v1/batches/0x{batch_id(COFFEE, 'HON-1').hex()}/epcis").json()["epcisBody"]["eventList"]
    assert [e["pl:reason"] for e in revoked if e.get("disposition") == "non_conformant"] == [REVOKE_REASON]
    csv_text = client.get(f"/api/v1/batches/0x{batch_id(COFFEE, 'HON-2').hex()}/fsma.csv").text
    assert "recall withdrawn" in csv_text


def test_the_landing_page_lists_no_voided_or_test_lots(client):
    html = client.get("/").text
    assert "VOID-1" not in html and "BORROW-1" not in html and "Honest coffee" not in html


def test_the_history_command_shows_the_name_an_organisation_acted_under(site):
    from typer.testing import CliRunner

    from ledger.cli import app

    env = {"PROVENANCE_DATA_DIR": str(site.settings.data_dir), "PROVENANCE_RPC_URL": site.settings.rpc_url}
    result = CliRunner().invoke(app, ["history", COFFEE, "HON-1"], env=env, catch_exceptions=False, terminal_width=250)
    assert result.exit_code == 0, result.stdout
    assert "EthicCert Labs (now EthicCert Labs GmbH)" in result.stdout
    recalls = CliRunner().invoke(app, ["history", COFFEE, "HON-2"], env=env, catch_exceptions=False, terminal_width=250).stdout
    # Printed as text, never as console markup (the table may wrap the reason).
    assert f"RECALLED: {RECALL_REASON}" in recalls and "recall withdrawn: <b>the lab found nothing</b>" in recalls
    assert "[red]sure[/red]" in recalls and "the ledger's admin" in recalls
