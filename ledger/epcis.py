"""EPCIS 2.0 JSON-LD and FSMA 204 CSV exports of a lot's history (and its ancestors').

EPCIS: an `EPCISDocument` with GS1's standard context. Registrations are ObjectEvents
(ADD, commissioning) with the lot's class identifier (`https://id.gs1.org/01/{gtin}/10/{lot}`,
the canonical GS1 Digital Link of an LGTIN) and its quantity in its UN/ECE unit;
business steps and hand-overs are ObjectEvents (OBSERVE) with CBV business steps and
dispositions, hand-overs naming source and destination possessing parties;
transformations are TransformationEvents with input and output quantity lists; claims
are ObjectEvents carrying `certificationInfo`; recalls are ObjectEvents with the
`recalled` disposition. Each event's `eventID` is its EPCIS event hash (the CBV 2.0
algorithm, `ledger.epcis_hash`: the epcis-event-hash-generator package writes a JSON-LD
event's sourceList/destinationList out of the canonical order). Organisations have no
GLN on the ledger, so parties are named by their ledger account as a DID
(`did:pkh:eip155:{chain}:{address}`) and places travel as an extension field; the
ledger's transaction of each event is in `pl:txHash`.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ledger.epcis_hash import event_hash
from ledger.queries import ReadModel

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
#: This ledger's extension fields (JSON-LD prefix `pl`).
EXTENSION_NAMESPACE = "https://w3id.org/provenance-ledger/epcis#"
#: Units counted in pieces carry no `uom` in EPCIS (a count of instances).
COUNT_UNITS = {"H87", "EA", "C62"}
KIND_STEPS = {0: "repackaging", 1: "assembling", 2: "commissioning"}
STEP_DISPOSITIONS = {"shipping": "in_transit", "receiving": "in_progress", "inspecting": "active", "packing": "in_progress",
                     "commissioning": "active", "storing": "in_progress", "destroying": "destroyed"}  # fmt: skip


def lot_class(gtin: str, lot: str) -> str:
    """The lot's EPCIS class identifier: the canonical GS1 Digital Link of its LGTIN."""
    return f"https://id.gs1.org/01/{gtin}/10/{quote(lot, safe='')}"


def party(chain_id: int, address: str) -> str:
    """An organisation's identifier: its ledger account as a DID (no GLN on the ledger)."""
    return f"did:pkh:eip155:{chain_id}:{address}"


def event_time(timestamp: int) -> str:
    """EPCIS dateTimeStamp in UTC with milliseconds."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _quantity(lot: dict[str, Any], quantity: int | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"epcClass": lot_class(lot["gtin"], lot["lot"])}
    if quantity is not None:
        element["quantity"] = quantity
        if lot["unit"] not in COUNT_UNITS:
            element["uom"] = lot["unit"]
    return element



# A spreadsheet reads a cell starting with one of these as a formula (`=HYPERLINK(...)`
# from a supplier's step location would run when an auditor opens the export).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell that no spreadsheet evaluates: text starting like a formula gets a
    leading apostrophe (OWASP's advice for CSV injection); other values stay as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value

class EpcisExporter:
    """Builds EPCIS documents and FSMA 204 tables from the read model."""

    def __init__(self, model: ReadModel, chain_id: int, contract: str, base_url: str) -> None:
        self.model, self.chain_id, self.contract, self.base_url = model, chain_id, contract, base_url.rstrip("/")

    def _lots(self, history: list[dict[str, Any]], batch_id: str) -> dict[str, dict[str, Any]]:
        ids = {batch_id} | {e["batch_id"] for e in history if e["batch_id"]}
        for e in history:
            if e["name"] == "TransformationRecorded":
                ids |= {b for b, _ in e["args"]["inputs"]} | set(e["args"]["outputs"])
        return {bid: b for bid in ids if (b := self.model.batch(bid))}

    def _base(self, e: dict[str, Any], kind: str) -> dict[str, Any]:
        return {"type": kind, "eventTime": event_time(e["timestamp"]), "eventTimeZoneOffset": "+00:00",
                "pl:txHash": e["tx_hash"], "pl:blockNumber": e["block_number"], "pl:logIndex": e["log_index"]}  # fmt: skip

    def events(self, batch_id: str) -> list[dict[str, Any]]:
        """The EPCIS events of the lot and its ancestors, in chain order."""
        history = self.model.history(batch_id)
        lots = self._lots(history, batch_id)
        made_by_transformation = {e["tx_hash"] for e in history if e["name"] == "TransformationRecorded"}
        out: list[dict[str, Any]] = []
        for e in history:
            a, lot = e["args"], lots.get(e["batch_id"] or "")
            if e["name"] == "BatchRegistered" and lot and e["tx_hash"] not in made_by_transformation:
                event = self._base(e, "ObjectEvent") | {
                    "action": "ADD", "bizStep": "commissioning", "disposition": "active",
                    "epcList": [], "quantityList": [_quantity(lot, int(a["quantity"]))],
                    "sourceList": [{"type": "owning_party", "source": party(self.chain_id, a["supplier"])}],
                    "ilmd": {"pl:product": lot.get("product") or "", "pl:origin": lot.get("origin") or "",
                             "pl:metadataHash": a["metadataHash"]},
                }  # fmt: skip
            elif e["name"] == "StepRecorded" and lot:
                event = self._base(e, "ObjectEvent") | {"action": "OBSERVE", "bizStep": a["bizStep"], "epcList": [],
                                                         "quantityList": [_quantity(lot)]}  # fmt: skip
                if a["bizStep"] in STEP_DISPOSITIONS:
                    event["disposition"] = STEP_DISPOSITIONS[a["bizStep"]]
                if a["location"]:
                    event["pl:location"] = a["location"]
            elif e["name"] == "CustodyTransferAccepted" and lot:
                event = self._base(e, "ObjectEvent") | {
                    "action": "OBSERVE", "bizStep": "accepting", "disposition": "in_progress", "epcList": [],
                    "quantityList": [_quantity(lot)],
                    "sourceList": [{"type": "possessing_party", "source": party(self.chain_id, a["from"])}],
                    "destinationList": [{"type": "possessing_party", "destination": party(self.chain_id, a["to"])}],
                }  # fmt: skip
            elif e["name"] == "TransformationRecorded":
                event = self._base(e, "TransformationEvent") | {
                    "transformationID": f"urn:provenance-ledger:transformation:{self.chain_id}:{a['transformationId']}",
                    "bizStep": KIND_STEPS.get(int(a["kind"]), "commissioning"), "disposition": "active",
                    "inputQuantityList": [_quantity(lots[b], int(q)) for b, q in a["inputs"] if b in lots],
                    "outputQuantityList": [_quantity(lots[b], int(lots[b]["registered_quantity"])) for b in a["outputs"] if b in lots],
                }  # fmt: skip
            elif e["name"] == "BatchRecalled" and lot:
                event = self._base(e, "ObjectEvent") | {"action": "OBSERVE", "bizStep": "holding", "disposition": "recalled",
                                                         "epcList": [], "quantityList": [_quantity(lot)], "pl:reason": a.get("reason", ""),
                                                         "pl:reasonHash": a["reasonHash"]}  # fmt: skip
            elif e["name"] == "RecallReviewed" and lot:
                # Upheld: still recalled; withdrawn: the lot is active again.
                event = self._base(e, "ObjectEvent") | {"action": "OBSERVE", "bizStep": "holding",
                                                         "disposition": "recalled" if a["upheld"] else "active", "epcList": [],
                                                         "quantityList": [_quantity(lot)], "pl:recallReview": "upheld" if a["upheld"] else "withdrawn",
                                                         "pl:reason": a["reason"], "pl:reviewedBy": party(self.chain_id, a["by"])}  # fmt: skip
            elif e["name"] == "BatchVoided" and lot:
                event = self._base(e, "ObjectEvent") | {"action": "DELETE", "bizStep": "decommissioning", "disposition": "inactive",
                                                         "epcList": [], "quantityList": [_quantity(lot)], "pl:voidReason": a["reason"],
                                                         "pl:voidedBy": party(self.chain_id, a["by"])}  # fmt: skip
            elif e["name"] == "Attested" and lot:
                event = self._base(e, "ObjectEvent") | {
                    "action": "OBSERVE", "bizStep": "inspecting", "disposition": "conformant", "epcList": [],
                    "quantityList": [_quantity(lot)],
                    "certificationInfo": [f"{self.base_url}/api/v1/claims/{a['uid']}"],
                    "pl:claim": a["claim"], "pl:certifier": party(self.chain_id, a["issuer"]),
                    "pl:validFrom": event_time(int(a["validFrom"])),
                    **({"pl:validUntil": event_time(int(a["validUntil"]))} if int(a["validUntil"]) else {}),
                    "pl:evidenceHash": a["evidenceHash"],
                }  # fmt: skip
            else:
                continue
            out.append(event)
        out.extend(self._revocations(lots))
        out.sort(key=lambda ev: (ev["pl:blockNumber"], ev["pl:logIndex"]))
        return out

    def _revocations(self, lots: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Revoked claims about the lots: an ObjectEvent with the non_conformant disposition."""
        revocations = []
        for bid, lot in lots.items():
            for claim in self.model.claims(bid, 2**62):
                if claim["revoked_tx_hash"]:
                    (e,) = [x for x in self.model.transaction_events(claim["revoked_tx_hash"]) if x["name"] == "AttestationRevoked"][:1]
                    revocations.append(self._base(e, "ObjectEvent") | {
                        "action": "OBSERVE", "bizStep": "inspecting", "disposition": "non_conformant", "epcList": [],
                        "quantityList": [_quantity(lot)],
                        "certificationInfo": [f"{self.base_url}/api/v1/claims/{claim['uid']}"],
                        "pl:claim": claim["claim"], "pl:revokedBy": party(self.chain_id, e["args"]["by"]),
                        "pl:reason": e["args"].get("reason", ""), "pl:reasonHash": e["args"]["reasonHash"],
                    })  # fmt: skip
        return revocations

    def document(self, batch_id: str, created: int | None = None) -> dict[str, Any]:
        """An EPCISDocument of the lot's full history, each event with its EPCIS event hash."""
        document: dict[str, Any] = {
            "@context": [EPCIS_CONTEXT, {"pl": EXTENSION_NAMESPACE}],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": event_time(created if created is not None else int(datetime.now(UTC).timestamp())),
            "sender": party(self.chain_id, self.contract),
            "epcisBody": {"eventList": self.events(batch_id)},
        }
        for event in document["epcisBody"]["eventList"]:
            event["eventID"] = event_hash(event, {"pl": EXTENSION_NAMESPACE})
        return document

    # ------------------------------------------------------------------ FSMA 204

    FSMA_COLUMNS = (
        "event_time_utc", "critical_tracking_event", "business_step", "traceability_lot_code", "gtin", "lot",
        "product_description", "quantity", "unit_of_measure", "location_description", "business_name",
        "business_account", "immediate_previous_source", "immediate_subsequent_recipient", "input_lot_codes",
        "reference_document", "block_number",
    )  # fmt: skip

    def fsma_rows(self, batch_id: str) -> list[dict[str, Any]]:
        """Key data elements per tracking event (FSMA 204), oldest first."""
        history = self.model.history(batch_id)
        lots = self._lots(history, batch_id)
        names = self.model.actor_names({v for e in history for v in e["args"].values() if isinstance(v, str) and len(v) == 42})
        made = {e["tx_hash"] for e in history if e["name"] == "TransformationRecorded"}
        rows = []

        def tlc(lot: dict[str, Any]) -> str:
            return f"(01){lot['gtin']}(10){lot['lot']}"

        for e in history:
            a, lot = e["args"], lots.get(e["batch_id"] or "")
            row: dict[str, Any] = {"event_time_utc": event_time(e["timestamp"]), "reference_document": e["tx_hash"],
                                   "block_number": e["block_number"]}  # fmt: skip
            if e["name"] == "BatchRegistered" and lot and e["tx_hash"] not in made:
                row |= {"critical_tracking_event": "Initial Packing", "business_step": "commissioning",
                        "quantity": int(a["quantity"]), "unit_of_measure": a["unit"], "location_description": lot.get("origin") or "",
                        "business_account": a["supplier"]}  # fmt: skip
            elif e["name"] == "StepRecorded" and lot:
                cte = {"shipping": "Shipping", "receiving": "Receiving"}.get(a["bizStep"], "Other")
                row |= {"critical_tracking_event": cte, "business_step": a["bizStep"], "location_description": a["location"],
                        "business_account": a["actor"]}  # fmt: skip
            elif e["name"] == "CustodyTransferAccepted" and lot:
                row |= {"critical_tracking_event": "Receiving", "business_step": "accepting", "business_account": a["to"],
                        "immediate_previous_source": names.get(a["from"], a["from"])}  # fmt: skip
            elif e["name"] == "TransformationRecorded":
                for output in (lots[b] for b in a["outputs"] if b in lots):
                    rows.append({**row, "critical_tracking_event": "Transformation", "business_step": KIND_STEPS.get(int(a["kind"]), ""),
                                 "traceability_lot_code": tlc(output), "gtin": output["gtin"], "lot": output["lot"],
                                 "product_description": output.get("product") or "", "quantity": int(output["registered_quantity"]),
                                 "unit_of_measure": output["unit"], "business_account": a["custodian"],
                                 "business_name": names.get(a["custodian"], a["custodian"]),
                                 "input_lot_codes": " ".join(tlc(lots[b]) for b, _ in a["inputs"] if b in lots)})  # fmt: skip
                continue
            elif e["name"] == "BatchRecalled" and lot:
                row |= {"critical_tracking_event": "Other", "business_step": "recall", "business_account": a["by"]}
            elif e["name"] == "RecallReviewed" and lot:
                row |= {"critical_tracking_event": "Other", "business_step": "recall upheld" if a["upheld"] else "recall withdrawn",
                        "business_account": a["by"]}  # fmt: skip
            elif e["name"] == "BatchVoided" and lot:
                row |= {"critical_tracking_event": "Other", "business_step": "voided", "business_account": a["by"]}
            else:
                continue
            assert lot is not None
            row |= {"traceability_lot_code": tlc(lot), "gtin": lot["gtin"], "lot": lot["lot"], "product_description": lot.get("product") or ""}
            row.setdefault("quantity", "")
            row.setdefault("unit_of_measure", lot["unit"])
            row["business_name"] = names.get(row.get("business_account", ""), row.get("business_account", ""))
            rows.append(row)
        # The previous custody hand-over names who shipped it; pair shipping with the recipient.
        for i, row in enumerate(rows):
            if row["critical_tracking_event"] == "Shipping":
                after = next((r for r in rows[i + 1 :] if r["lot"] == row["lot"] and r["business_step"] == "accepting"), None)
                if after:
                    row["immediate_subsequent_recipient"] = after["business_name"]
        return rows

    def fsma_csv(self, batch_id: str) -> str:
        """The FSMA 204 table as CSV (one row per tracking event, sortable)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.FSMA_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.fsma_rows(batch_id):
            writer.writerow({k: spreadsheet_safe(row.get(k, "")) for k in self.FSMA_COLUMNS})
        return buffer.getvalue()
