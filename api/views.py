"""What a product page says, as plain data: built from the read model, rendered by the
HTML template and served as JSON alike, so both always say the same thing.

Nothing here formats HTML; every string stays as it came from the chain and is escaped
by the template engine when rendered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.identifiers import DigitalLink
from ledger.indexer.decoding import INVALID_TEXT, INVALID_TEXT_NOTE
from ledger.indexer.store import IndexFreshness
from ledger.queries import ReadModel

#: UN/ECE Rec 20 codes a customer would not read as words.
UNIT_NAMES = {"KGM": "kg", "GRM": "g", "TNE": "t", "LTR": "L", "MLT": "mL", "H87": "pieces", "EA": "each", "MTR": "m"}

#: How each CBV business step reads on the timeline.
STEP_TITLES = {
    "commissioning": "Produced", "inspecting": "Inspected", "shipping": "Shipped", "receiving": "Received",
    "packing": "Packed", "storing": "Stored", "loading": "Loaded", "unloading": "Unloaded", "transporting": "Transported",
    "processing": "Processed", "sampling": "Sampled", "holding": "Held", "accepting": "Accepted", "departing": "Departed",
    "arriving": "Arrived", "repackaging": "Repackaged", "retail_selling": "Sold", "destroying": "Destroyed",
}  # fmt: skip

STATUS_LABELS = {
    "valid": "Valid",
    "expired": "Expired",
    "revoked": "Revoked",
    "not_yet_valid": "Not yet valid",
    "issuer_not_accredited": "Certifier no longer accredited",
    "self_declared": "Self-declared",
}

CLAIM_NAMES = {"FAIRTRADE": "Fair trade", "ORGANIC": "Organic", "DEFORESTATION_FREE": "Deforestation-free"}


def quantity_text(quantity: int, unit: str) -> str:
    """`12,000 kg`, `2,000 pieces`; unknown codes are shown as they are."""
    return f"{quantity:,} {UNIT_NAMES.get(unit, unit)}"


def claim_name(claim: str) -> str:
    """A claim type as people say it."""
    return CLAIM_NAMES.get(claim, claim.replace("_", " ").capitalize())


@dataclass(frozen=True)
class PageContext:
    """What a page needs beside the batch: where it is served and which ledger it reads."""

    base_url: str
    chain_id: int
    contract: str | None


def _lot_label(batch: dict[str, Any] | None) -> str:
    if not batch:
        return "an unknown lot"
    return f"{batch.get('product') or 'lot'} (lot {batch['lot']})"


#: What the timeline says about an event beside the common fields: the event's arguments,
#: its lot, every lot of the lineage and the names of the accounts -> the entry's own fields.
_EntryFields = Callable[[dict[str, Any], dict[str, Any] | None, dict[str, dict[str, Any]], dict[str, str]], dict[str, Any]]


def _registered_entry(a: dict[str, Any], lot: dict[str, Any] | None, lots: dict[str, dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """A lot registered on its own: who produced how much, and where."""
    return {"title": "Registered", "who": names.get(a["supplier"], a["supplier"]), "where": lot.get("origin") if lot else None,
            "detail": quantity_text(int(a["quantity"]), a["unit"])}  # fmt: skip


def _step_entry(a: dict[str, Any], lot: dict[str, Any] | None, lots: dict[str, dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """A business step (CBV), titled as customers read it."""
    return {"title": STEP_TITLES.get(a["bizStep"], a["bizStep"].replace("_", " ").capitalize()),
            "who": names.get(a["actor"], a["actor"]), "where": a["location"] or None}  # fmt: skip


def _handover_entry(a: dict[str, Any], lot: dict[str, Any] | None, lots: dict[str, dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """An accepted hand-over, told from the new custodian."""
    return {"title": "Handed over", "who": names.get(a["to"], a["to"]),
            "detail": f"from {names.get(a['from'], a['from'])} to {names.get(a['to'], a['to'])}"}  # fmt: skip


def _transformation_entry(a: dict[str, Any], lot: dict[str, Any] | None, lots: dict[str, dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """A split, merge or process: what went in and what came out, shown on its first output."""
    inputs = [f"{quantity_text(int(q), lots.get(b, {}).get('unit', ''))} of {_lot_label(lots.get(b))}" for b, q in a["inputs"]]
    outputs = [
        f"{quantity_text(int(lots[b]['registered_quantity']), lots[b]['unit'])} of {_lot_label(lots[b])}"
        if b in lots and "registered_quantity" in lots[b] else _lot_label(lots.get(b))
        for b in a["outputs"]
    ]
    first = lots.get(a["outputs"][0]) if a["outputs"] else None
    return {
        "title": {0: "Split", 1: "Merged", 2: "Processed"}.get(int(a["kind"]), "Transformed"),
        "who": names.get(a["custodian"], a["custodian"]), "detail": f"{'; '.join(inputs)} into {'; '.join(outputs)}",
        "lot": first["lot"] if first else None, "gtin": first["gtin"] if first else None,
        "product": first.get("product") if first else None,
    }  # fmt: skip


def _recalled_entry(a: dict[str, Any], lot: dict[str, Any] | None, lots: dict[str, dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """A recall, flagged so the page can show it as one."""
    return {"title": "Recalled", "who": names.get(a["by"], a["by"]), "detail": a.get("reason"), "recall": True}


def _review_entry(a: dict[str, Any], lot: dict[str, Any] | None, lots: dict[str, dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """The admin's review of a recall."""
    return {"title": "Recall upheld" if a["upheld"] else "Recall withdrawn", "who": names.get(a["by"], a["by"]), "detail": a.get("reason")}


def _voided_entry(a: dict[str, Any], lot: dict[str, Any] | None, lots: dict[str, dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """A lot voided as registered in error."""
    return {"title": "Voided", "who": names.get(a["by"], a["by"]), "detail": a.get("reason")}


#: The events the customer's timeline shows, and how each reads.
JOURNEY_ENTRIES: dict[str, _EntryFields] = {
    "BatchRegistered": _registered_entry, "StepRecorded": _step_entry, "CustodyTransferAccepted": _handover_entry,
    "TransformationRecorded": _transformation_entry, "BatchRecalled": _recalled_entry, "RecallReviewed": _review_entry,
    "BatchVoided": _voided_entry,
}  # fmt: skip


def _journey(events: list[dict[str, Any]], lots: dict[str, dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    """The customer's timeline: registrations, steps, accepted hand-overs, transformations
    and recalls of the batch and its ancestors, oldest first. Offers and cancelled
    hand-overs and attestations are left to the auditor's history and the claims list."""
    entries: list[dict[str, Any]] = []
    # A transformation registers its outputs in its own transaction: its entry says it all.
    made = {e["tx_hash"] for e in events if e["name"] == "TransformationRecorded"}
    for e in events:
        fields = JOURNEY_ENTRIES.get(e["name"])
        if fields is None or (e["name"] == "BatchRegistered" and e["tx_hash"] in made):
            continue
        lot = lots.get(e["batch_id"] or "")
        entries.append(_journey_entry(e, lot) | fields(e["args"], lot, lots, names))
    return entries


def _journey_entry(e: dict[str, Any], lot: dict[str, Any] | None) -> dict[str, Any]:
    """The fields every timeline entry has, before the event's own say what it was."""
    return {
        "event": e["name"], "timestamp": e["timestamp"], "tx_hash": e["tx_hash"], "block_number": e["block_number"],
        "log_index": e["log_index"], "lot": lot["lot"] if lot else None, "gtin": lot["gtin"] if lot else None,
        "product": lot.get("product") if lot else None, "who": e["actor_name"] or e["actor"], "where": None,
        "detail": None,
        # A raw transaction put bytes that are not UTF-8 into this event's text (shown with U+FFFD).
        "text_note": INVALID_TEXT_NOTE if e["args"].get(INVALID_TEXT) else None,
    }  # fmt: skip


def _origins(model: ReadModel, batch_id: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The raw lots the product comes from (lineage leaves), with their share of the input,
    and every lot of the lineage by id."""
    links = model.ancestors(batch_id)
    ids = {batch_id} | set(links) | {p for _, inputs in links.values() for p, _ in inputs}
    lots = {bid: model.batch(bid) or {"batch_id": bid, "lot": "?", "gtin": ""} for bid in ids}
    shares = model.input_shares(batch_id)
    origins = [
        {**_lot_summary(lots[bid]), "share": round(share, 4)}
        for bid, share in sorted(shares.items(), key=lambda kv: -kv[1])
        if bid != batch_id
    ]
    return origins, lots


def _lot_summary(batch: dict[str, Any]) -> dict[str, Any]:
    return {
        "batch_id": batch["batch_id"], "gtin": batch.get("gtin"), "lot": batch.get("lot"), "product": batch.get("product"),
        "origin": batch.get("origin"), "supplier": batch.get("supplier"), "supplier_name": batch.get("supplier_name"),
        "quantity": batch.get("registered_quantity"), "unit": batch.get("unit"), "recalled": bool(batch.get("recalled")),
        "voided": batch.get("status") == "voided", "details_status": batch.get("details_status"),
    }  # fmt: skip


def _claims(model: ReadModel, batch: dict[str, Any], lots: dict[str, dict[str, Any]], at: int) -> list[dict[str, Any]]:
    """Every claim about the lot, its ingredients' lots and their producers, good and bad,
    then the supplier's own unattested claims as self-declared."""
    subjects = list(lots) + sorted({b["supplier"] for b in lots.values() if b.get("supplier")})
    found = model.claims_of(subjects, at)
    claims: list[dict[str, Any]] = []
    by_key = {k.lower(): v for k, v in found.items()}
    for bid, lot in lots.items():
        for c in by_key.get(bid.lower(), []):
            about = "this lot" if bid == batch["batch_id"] else f"{lot.get('product') or 'lot'} (lot {lot['lot']}, {lot.get('supplier_name') or lot.get('supplier')})"
            claims.append({**_claim(c), "about": about, "about_kind": "batch", "subject_lot": lot.get("lot")})
    suppliers = sorted({b["supplier"] for b in lots.values() if b.get("supplier")})
    supplier_names = model.actor_names(set(suppliers))
    for supplier in suppliers:
        key = "0x" + supplier.lower().removeprefix("0x").rjust(64, "0")
        for c in by_key.get(key, []):
            claims.append({**_claim(c), "about": supplier_names.get(supplier, supplier), "about_kind": "organisation",
                           "subject_lot": None})  # fmt: skip
    claims += _self_declared_claims(batch, {c["claim"] for c in claims if c["status"] == "valid"})
    order = {"valid": 0, "self_declared": 1, "not_yet_valid": 2, "expired": 3, "issuer_not_accredited": 4, "revoked": 5}
    claims.sort(key=lambda c: (c["claim"], order.get(c["status"], 9), c["about"]))
    return claims


def _self_declared_claims(batch: dict[str, Any], attested_valid: set[str]) -> list[dict[str, Any]]:
    """The supplier's own claims in the lot's metadata, with no attestation behind them
    (`also_attested`: a valid attestation of the same claim is listed too)."""
    return [{
        "claim": claim, "claim_name": claim_name(claim), "status": "self_declared", "status_label": STATUS_LABELS["self_declared"],
        "issuer": batch["supplier"], "issuer_name": batch.get("supplier_name"), "valid_from": None, "valid_until": None,
        "about": "this lot", "about_kind": "batch", "subject_lot": batch["lot"], "uid": None, "tx_hash": None,
        "revoked_at": None, "revoked_tx_hash": None, "revocation_reason": None, "revoked_by_name": None,
        "revocation_reason_note": None, "evidence_hash": None, "also_attested": claim in attested_valid,
    } for claim in batch.get("declared_claims") or []]  # fmt: skip


def _claim(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "claim": c["claim"], "claim_name": claim_name(c["claim"]), "status": c["status"], "status_label": STATUS_LABELS.get(c["status"], c["status"]),
        "issuer": c["issuer"], "issuer_name": c.get("issuer_name"), "valid_from": c["valid_from"], "valid_until": c["valid_until"] or None,
        "uid": c["uid"], "tx_hash": c.get("tx_hash"), "revoked_at": c["revoked_at"], "revoked_tx_hash": c.get("revoked_tx_hash"),
        "revocation_reason": c.get("revocation_reason"), "revoked_by_name": c.get("revoked_by_name"),
        "revocation_reason_note": INVALID_TEXT_NOTE if c.get("revocation_reason_invalid_utf8") else None,
        "evidence_hash": c["evidence_hash"], "attested_at": c["attested_at"],
    }  # fmt: skip


def freshness_view(freshness: IndexFreshness | None) -> dict[str, Any]:
    """How fresh the index is, from the store alone."""
    if freshness is None:
        return {"indexed_block": None, "indexed_block_time": None, "head_seen": None, "checked_at": None, "blocks_behind": None}
    behind = None if freshness.head_seen is None else max(0, freshness.head_seen - freshness.block_number)
    return {
        "indexed_block": freshness.block_number, "indexed_block_time": freshness.block_timestamp,
        "head_seen": freshness.head_seen, "checked_at": freshness.checked_at, "blocks_behind": behind,
    }  # fmt: skip


ZERO_DIGEST = "0x" + "00" * 32


def document_view(model: ReadModel, sha256_hex: str, name: str | None, holder: str | None) -> dict[str, Any]:
    """A document the chain anchors, as a page shows it: a link when this server has it
    (or fetched it from its document sources, checked by hash), else who holds it and its
    hash (a private document is never published, so it is always shown that way)."""
    digest_hex = sha256_hex.lower().removeprefix("0x")
    try:
        digest = bytes.fromhex(digest_hex)
    except ValueError:  # metadata is anyone's JSON: a malformed hash names no document
        digest = b""
    documents = model.documents
    available = len(digest) == 32 and documents is not None and not documents.is_private(digest) and documents.has(digest)
    return {"name": name, "sha256": digest_hex, "available": available, "holder": holder,
            "href": f"/api/v1/documents/{digest_hex}" if available else None}  # fmt: skip


def _with_evidence(model: ReadModel, claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each attested claim with its evidence document (if it has one), held by its issuer."""
    for c in claims:
        evidence = c.get("evidence_hash")
        c["evidence"] = document_view(model, evidence, "evidence", c.get("issuer_name") or c.get("issuer")) if evidence and evidence != ZERO_DIGEST else None
    return claims


def _recall_view(b: dict[str, Any], is_this_lot: bool) -> dict[str, Any]:
    """A recalled lot of the lineage: the recall, its review, and notes on text that was not UTF-8."""
    invalid = b.get("invalid_utf8") or []
    return _lot_summary(b) | {
        "is_this_lot": is_this_lot, "recalled_at": b.get("recalled_at"), "tx_hash": b.get("recall_tx_hash"),
        "recalled_by": b.get("recalled_by_name") or b.get("recalled_by"), "reason": b.get("recall_reason"),
        "reason_hash": b.get("recall_reason_hash"), "state": b.get("recall_state"),
        "reviewed_by": b.get("reviewed_by_name") or b.get("reviewed_by"), "review_reason": b.get("review_reason"),
        "reviewed_at": b.get("reviewed_at"), "review_tx_hash": b.get("review_tx_hash"),
        "reason_note": INVALID_TEXT_NOTE if "recall_reason" in invalid else None,
        "review_reason_note": INVALID_TEXT_NOTE if "review_reason" in invalid else None,
    }  # fmt: skip


def _void_view(batch: dict[str, Any]) -> dict[str, Any] | None:
    """Who voided the lot, when and why (None: not voided)."""
    if batch["status"] != "voided":
        return None
    return {"by": batch.get("voided_by_name") or batch.get("voided_by"), "at": batch.get("voided_at"),
            "reason": batch.get("void_reason"), "tx_hash": batch.get("void_tx_hash"),
            "reason_note": INVALID_TEXT_NOTE if "void_reason" in (batch.get("invalid_utf8") or []) else None}  # fmt: skip


def _producer_view(model: ReadModel, batch: dict[str, Any]) -> dict[str, Any]:
    """The lot's supplier as the page names it."""
    supplier = model.actor(batch["supplier"]) or {}
    return {"address": batch["supplier"], "name": batch.get("supplier_name"), "country": supplier.get("country"),
            "active": supplier.get("active"),
            "name_note": INVALID_TEXT_NOTE if supplier.get("name_invalid_utf8") else None}  # fmt: skip


def _lot_documents(model: ReadModel, batch: dict[str, Any]) -> list[dict[str, Any]]:
    """The documents the lot's metadata names (well-formed entries only: metadata is
    anyone's JSON), held by the supplier."""
    holder = batch.get("supplier_name") or batch["supplier"]
    return [document_view(model, d["sha256"], d.get("name"), holder)
            for d in batch.get("documents") or [] if isinstance(d, dict) and isinstance(d.get("sha256"), str) and len(d["sha256"]) == 64]  # fmt: skip


def product_view(model: ReadModel, batch: dict[str, Any], link: DigitalLink, context: PageContext, at: int) -> dict[str, Any]:
    """Everything the product page shows about `batch`, as JSON-ready data."""
    origins, lots = _origins(model, batch["batch_id"])
    history = model.history(batch["batch_id"])
    # Approved names (never a pending request); an admin acting as such is "the ledger's admin".
    names = model.who({v for e in history for k, v in e["args"].items() if isinstance(v, str) and len(v) == 42})
    journey = _journey(history, lots, names)
    recalled = [_recall_view(b, bid == batch["batch_id"]) for bid, b in lots.items() if b.get("recalled")]
    voided = _void_view(batch)
    producer = _producer_view(model, batch)
    registration = next((e for e in history if e["name"] == "BatchRegistered" and e["batch_id"] == batch["batch_id"]), None)
    coverage = model.coverage(batch["batch_id"], at)
    return {
        "url": link.url(context.base_url),
        "digital_link": {"gtin": link.gtin, "lot": link.lot, "serial": link.serial},
        "batch_id": batch["batch_id"],
        "product": batch.get("product"),
        "gtin": batch["gtin"],
        "lot": batch["lot"],
        "quantity": batch["registered_quantity"],
        "remaining_quantity": batch["remaining_quantity"],
        "unit": batch["unit"],
        "quantity_text": quantity_text(batch["registered_quantity"], batch["unit"]),
        "status": batch["status"],
        "voided": voided,
        "details_status": batch.get("details_status"),
        "details_problem": batch.get("details_problem") if batch.get("details_status") == "mismatch" else None,
        "origin": batch.get("origin"),
        "registered_at": batch["registered_at"],
        "registration_tx": registration["tx_hash"] if registration else None,
        "producer": producer,
        "custodian": {"address": batch["custodian"], "name": batch.get("custodian_name")},
        "documents": _lot_documents(model, batch),
        "recalled": recalled,
        "origins": origins,
        "journey": journey,
        "claims": _with_evidence(model, _claims(model, batch, lots, at)),
        "coverage": [{"claim": c, "claim_name": claim_name(c), "share": share} for c, share in coverage.items()],
        "proof": {"chain_id": context.chain_id, "contract": context.contract, **freshness_view(model.freshness())},
        "at": at,
    }
