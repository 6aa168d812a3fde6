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
from ledger.records import (
    AttestationRevoked,
    Attested,
    Batch,
    BatchRecalled,
    BatchRegistered,
    BatchVoided,
    CustodyTransferAccepted,
    EventRecord,
    HistoryEvent,
    RecallReviewed,
    StepRecorded,
    TransformationRecorded,
)

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
#: This ledger's extension fields (JSON-LD prefix `pl`).
EXTENSION_NAMESPACE = "https://w3id.org/provenance-ledger/epcis#"
#: Units counted in pieces carry no `uom` in EPCIS (a count of instances).
COUNT_UNITS = {"H87", "EA", "C62"}
KIND_STEPS = {"split": "repackaging", "merge": "assembling", "processing": "commissioning"}
STEP_DISPOSITIONS = {
    "shipping": "in_transit",
    "receiving": "in_progress",
    "inspecting": "active",
    "packing": "in_progress",
    "commissioning": "active",
    "storing": "in_progress",
    "destroying": "destroyed",
}


def lot_class(gtin: str, lot: str) -> str:
    """The lot's EPCIS class identifier: the canonical GS1 Digital Link of its LGTIN."""
    return f"https://id.gs1.org/01/{gtin}/10/{quote(lot, safe='')}"


def party(chain_id: int, address: str) -> str:
    """An organisation's identifier: its ledger account as a DID (no GLN on the ledger)."""
    return f"did:pkh:eip155:{chain_id}:{address}"


def event_time(timestamp: int) -> str:
    """EPCIS dateTimeStamp in UTC with milliseconds."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _quantity(lot: Batch, quantity: int | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"epcClass": lot_class(lot.gtin, lot.lot)}
    if quantity is not None:
        element["quantity"] = quantity
        if lot.unit not in COUNT_UNITS:
            element["uom"] = lot.unit
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

    def _lots(self, history: list[HistoryEvent], batch_id: str) -> dict[str, Batch]:
        ids = {batch_id} | {e.batch_id for e in history if e.batch_id}
        for e in history:
            if isinstance(e.data, TransformationRecorded):
                ids |= {b for b, _ in e.data.inputs} | set(e.data.outputs)
        return {bid: b for bid in ids if (b := self.model.batch(bid))}

    def _base(self, e: EventRecord, kind: str) -> dict[str, Any]:
        return {
            "type": kind,
            "eventTime": event_time(e.timestamp),
            "eventTimeZoneOffset": "+00:00",
            "pl:txHash": e.tx_hash,
            "pl:blockNumber": e.block_number,
            "pl:logIndex": e.log_index,
        }

    def _observe(self, e: EventRecord, lot: Batch, biz_step: str, disposition: str | None, **extension: Any) -> dict[str, Any]:
        """An OBSERVE ObjectEvent of the lot (its class, no quantity) with extension fields."""
        event = self._base(e, "ObjectEvent") | {"action": "OBSERVE", "bizStep": biz_step}
        if disposition is not None:
            event["disposition"] = disposition
        return event | {"epcList": [], "quantityList": [_quantity(lot)]} | extension

    def events(self, batch_id: str) -> list[dict[str, Any]]:
        """The EPCIS events of the lot and its ancestors, in chain order."""
        history = self.model.history(batch_id)
        lots = self._lots(history, batch_id)
        made_by_transformation = {e.tx_hash for e in history if isinstance(e.data, TransformationRecorded)}
        out: list[dict[str, Any]] = []
        for e in history:
            if isinstance(e.data, TransformationRecorded):
                out.append(self._transformation_event(e, e.data, lots))
                continue
            lot = lots.get(e.batch_id or "")
            if lot is None or (isinstance(e.data, BatchRegistered) and e.tx_hash in made_by_transformation):
                continue
            event = self._lot_event(e, lot)
            if event is not None:
                out.append(event)
        out.extend(self._revocations(lots))
        out.sort(key=lambda ev: (ev["pl:blockNumber"], ev["pl:logIndex"]))
        return out

    def _lot_event(self, e: HistoryEvent, lot: Batch) -> dict[str, Any] | None:
        """The EPCIS event of one ledger event about `lot` (None: not an EPCIS event)."""
        match e.data:
            case BatchRegistered() as a:
                return self._base(e, "ObjectEvent") | {
                    "action": "ADD",
                    "bizStep": "commissioning",
                    "disposition": "active",
                    "epcList": [],
                    "quantityList": [_quantity(lot, a.quantity)],
                    "sourceList": [{"type": "owning_party", "source": party(self.chain_id, a.supplier)}],
                    "ilmd": {"pl:product": lot.product or "", "pl:origin": lot.origin or "", "pl:metadataHash": a.metadata_hash},
                }
            case StepRecorded() as a:
                return self._observe(
                    e, lot, a.biz_step, STEP_DISPOSITIONS.get(a.biz_step), **({"pl:location": a.location} if a.location else {})
                )
            case CustodyTransferAccepted() as a:
                return self._observe(
                    e,
                    lot,
                    "accepting",
                    "in_progress",
                    sourceList=[{"type": "possessing_party", "source": party(self.chain_id, a.sender)}],
                    destinationList=[{"type": "possessing_party", "destination": party(self.chain_id, a.to)}],
                )
            case BatchRecalled() as a:
                return self._observe(e, lot, "holding", "recalled", **{"pl:reason": a.reason, "pl:reasonHash": a.reason_hash})
            case RecallReviewed() as a:
                # Upheld: still recalled; withdrawn: the lot is active again.
                return self._observe(
                    e,
                    lot,
                    "holding",
                    "recalled" if a.upheld else "active",
                    **{
                        "pl:recallReview": "upheld" if a.upheld else "withdrawn",
                        "pl:reason": a.reason,
                        "pl:reviewedBy": party(self.chain_id, a.by),
                    },
                )
            case BatchVoided() as a:
                return self._base(e, "ObjectEvent") | {
                    "action": "DELETE",
                    "bizStep": "decommissioning",
                    "disposition": "inactive",
                    "epcList": [],
                    "quantityList": [_quantity(lot)],
                    "pl:voidReason": a.reason,
                    "pl:voidedBy": party(self.chain_id, a.by),
                }
            case Attested() as a:
                return self._observe(
                    e,
                    lot,
                    "inspecting",
                    "conformant",
                    **{
                        "certificationInfo": [f"{self.base_url}/api/v1/claims/{a.uid}"],
                        "pl:claim": a.claim,
                        "pl:certifier": party(self.chain_id, a.issuer),
                        "pl:validFrom": event_time(a.valid_from),
                        **({"pl:validUntil": event_time(a.valid_until)} if a.valid_until else {}),
                        "pl:evidenceHash": a.evidence_hash,
                    },
                )
        return None

    def _transformation_event(self, e: HistoryEvent, a: TransformationRecorded, lots: dict[str, Batch]) -> dict[str, Any]:
        """A TransformationEvent: what went in (with the quantity each gave) and what came out."""
        return self._base(e, "TransformationEvent") | {
            "transformationID": f"urn:provenance-ledger:transformation:{self.chain_id}:{a.transformation_id}",
            "bizStep": KIND_STEPS.get(a.kind, "commissioning"),
            "disposition": "active",
            "inputQuantityList": [_quantity(lots[b], q) for b, q in a.inputs if b in lots],
            "outputQuantityList": [_quantity(lots[b], lots[b].registered_quantity) for b in a.outputs if b in lots],
        }

    def _revocations(self, lots: dict[str, Batch]) -> list[dict[str, Any]]:
        """Revoked claims about the lots: an ObjectEvent with the non_conformant disposition."""
        revocations = []
        for bid, lot in lots.items():
            for claim in self.model.claims(bid, 2**62):
                if not claim.revoked_tx_hash:
                    continue
                e = next(
                    x for x in self.model.transaction_events(claim.revoked_tx_hash) if isinstance(x.data, AttestationRevoked)
                )
                assert isinstance(e.data, AttestationRevoked)
                revocations.append(
                    self._observe(
                        e,
                        lot,
                        "inspecting",
                        "non_conformant",
                        **{
                            "certificationInfo": [f"{self.base_url}/api/v1/claims/{claim.uid}"],
                            "pl:claim": claim.claim,
                            "pl:revokedBy": party(self.chain_id, e.data.by),
                            "pl:reason": e.data.reason,
                            "pl:reasonHash": e.data.reason_hash,
                        },
                    )
                )
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
        names = self.model.actor_names({v for e in history for v in e.args.values() if isinstance(v, str) and len(v) == 42})
        made = {e.tx_hash for e in history if isinstance(e.data, TransformationRecorded)}
        rows: list[dict[str, Any]] = []
        for e in history:
            row: dict[str, Any] = {
                "event_time_utc": event_time(e.timestamp),
                "reference_document": e.tx_hash,
                "block_number": e.block_number,
            }
            if isinstance(e.data, TransformationRecorded):
                rows.extend(_fsma_transformation_rows(row, e.data, lots, names))
                continue
            lot = lots.get(e.batch_id or "")
            if lot is None or (isinstance(e.data, BatchRegistered) and e.tx_hash in made):
                continue
            fields = _fsma_fields(e, lot, names)
            if fields is None:
                continue
            row |= fields | {
                "traceability_lot_code": _tlc(lot),
                "gtin": lot.gtin,
                "lot": lot.lot,
                "product_description": lot.product or "",
            }
            row.setdefault("quantity", "")
            row.setdefault("unit_of_measure", lot.unit)
            row["business_name"] = names.get(row.get("business_account", ""), row.get("business_account", ""))
            rows.append(row)
        _pair_shipping_with_recipient(rows)
        return rows

    def fsma_csv(self, batch_id: str) -> str:
        """The FSMA 204 table as CSV (one row per tracking event, sortable)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.FSMA_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.fsma_rows(batch_id):
            writer.writerow({k: spreadsheet_safe(row.get(k, "")) for k in self.FSMA_COLUMNS})
        return buffer.getvalue()


def _tlc(lot: Batch) -> str:
    """The FSMA traceability lot code: GS1 element strings of GTIN and lot."""
    return f"(01){lot.gtin}(10){lot.lot}"


def _fsma_fields(e: HistoryEvent, lot: Batch, names: dict[str, str]) -> dict[str, Any] | None:
    """The FSMA 204 fields of one event about `lot` (None: not a tracking event)."""
    match e.data:
        case BatchRegistered() as a:
            return {
                "critical_tracking_event": "Initial Packing",
                "business_step": "commissioning",
                "quantity": a.quantity,
                "unit_of_measure": a.unit,
                "location_description": lot.origin or "",
                "business_account": a.supplier,
            }
        case StepRecorded() as a:
            return {
                "critical_tracking_event": {"shipping": "Shipping", "receiving": "Receiving"}.get(a.biz_step, "Other"),
                "business_step": a.biz_step,
                "location_description": a.location,
                "business_account": a.actor,
            }
        case CustodyTransferAccepted() as a:
            return {
                "critical_tracking_event": "Receiving",
                "business_step": "accepting",
                "business_account": a.to,
                "immediate_previous_source": names.get(a.sender, a.sender),
            }
        case BatchRecalled() as a:
            return {"critical_tracking_event": "Other", "business_step": "recall", "business_account": a.by}
        case RecallReviewed() as a:
            return {
                "critical_tracking_event": "Other",
                "business_step": "recall upheld" if a.upheld else "recall withdrawn",
                "business_account": a.by,
            }
        case BatchVoided() as a:
            return {"critical_tracking_event": "Other", "business_step": "voided", "business_account": a.by}
    return None


def _fsma_transformation_rows(
    row: dict[str, Any], a: TransformationRecorded, lots: dict[str, Batch], names: dict[str, str]
) -> list[dict[str, Any]]:
    """One Transformation row per output the index knows, naming every input's lot code."""
    inputs = " ".join(_tlc(lots[b]) for b, _ in a.inputs if b in lots)
    return [
        {
            **row,
            "critical_tracking_event": "Transformation",
            "business_step": KIND_STEPS.get(a.kind, ""),
            "traceability_lot_code": _tlc(output),
            "gtin": output.gtin,
            "lot": output.lot,
            "product_description": output.product or "",
            "quantity": output.registered_quantity,
            "unit_of_measure": output.unit,
            "business_account": a.custodian,
            "business_name": names.get(a.custodian, a.custodian),
            "input_lot_codes": inputs,
        }
        for output in (lots[b] for b in a.outputs if b in lots)
    ]


def _pair_shipping_with_recipient(rows: list[dict[str, Any]]) -> None:
    """The hand-over after a shipping step names who received it: fill in the recipient."""
    for i, row in enumerate(rows):
        if row["critical_tracking_event"] == "Shipping":
            after = next((r for r in rows[i + 1 :] if r["lot"] == row["lot"] and r["business_step"] == "accepting"), None)
            if after:
                row["immediate_subsequent_recipient"] = after["business_name"]
