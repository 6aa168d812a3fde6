"""What a product page says, as plain data: built from the read model, rendered by the
HTML template and served as JSON alike, so both always say the same thing.

Nothing here formats HTML; every string stays as it came from the chain and is escaped
by the template engine when rendered.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from api.stages import journey_stages, place_of
from ledger.conversions import subject_of_address
from ledger.documents import document_references, enveloped_evidence
from ledger.identifiers import DigitalLink
from ledger.indexer.decoding import INVALID_TEXT_NOTE
from ledger.indexer.store import IndexFreshness
from ledger.queries import ReadModel
from ledger.records import (
    Batch,
    BatchRecalled,
    BatchRegistered,
    BatchVoided,
    Claim,
    CustodyTransferAccepted,
    HistoryEvent,
    RecallReviewed,
    StepRecorded,
    TransformationRecorded,
)

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

#: How each transformation kind reads on the timeline.
KIND_TITLES = {"split": "Split", "merge": "Merged", "processing": "Processed"}

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


#: The lots of a page's lineage by id: None for an id the index does not hold.
Lots = dict[str, Batch | None]


def _lot_label(lots: Lots, batch_id: str) -> str:
    if batch_id not in lots:
        return "an unknown lot"
    batch = lots[batch_id]
    return f"{batch.product or 'lot'} (lot {batch.lot})" if batch else "lot (lot ?)"


def _lot_fields(lots: Lots, batch_id: str | None) -> dict[str, Any]:
    """The lot, GTIN and product a timeline entry names ("?" for a lot the index lacks)."""
    if not batch_id or batch_id not in lots:
        return {"lot": None, "gtin": None, "product": None}
    batch = lots[batch_id]
    return (
        {"lot": batch.lot, "gtin": batch.gtin, "product": batch.product} if batch else {"lot": "?", "gtin": "", "product": None}
    )


def _transformation_entry(a: TransformationRecorded, lots: Lots, names: dict[str, str]) -> dict[str, Any]:
    """A split, merge or process: what went in and what came out, shown on its first output."""

    def unit(batch_id: str) -> str:
        batch = lots.get(batch_id)
        return batch.unit if batch else ""

    def made(batch_id: str) -> str:
        batch = lots.get(batch_id)
        label = _lot_label(lots, batch_id)
        return f"{quantity_text(batch.registered_quantity, batch.unit)} of {label}" if batch else label

    inputs = [f"{quantity_text(q, unit(b))} of {_lot_label(lots, b)}" for b, q in a.inputs]
    return {
        "title": KIND_TITLES.get(a.kind, "Transformed"),
        "who": names.get(a.custodian, a.custodian),
        "detail": f"{'; '.join(inputs)} into {'; '.join(made(b) for b in a.outputs)}",
        **(_lot_fields(lots, a.outputs[0]) if a.outputs else {"lot": None, "gtin": None, "product": None}),
    }


def _entry_fields(e: HistoryEvent, lots: Lots, names: dict[str, str]) -> dict[str, Any] | None:
    """What the timeline says about one event beside the common fields (None: the
    timeline does not show this kind of event)."""
    lot = lots.get(e.batch_id or "")
    match e.data:
        case BatchRegistered() as a:  # a lot registered on its own: who produced how much, and where
            return {
                "title": "Registered",
                "who": names.get(a.supplier, a.supplier),
                "where": lot.origin if lot else None,
                "detail": quantity_text(a.quantity, a.unit),
            }
        case StepRecorded() as a:  # a business step (CBV), titled as customers read it
            return {
                "title": STEP_TITLES.get(a.biz_step, a.biz_step.replace("_", " ").capitalize()),
                "who": names.get(a.actor, a.actor),
                "where": a.location or None,
            }
        case CustodyTransferAccepted() as a:  # an accepted hand-over, told from the new custodian
            return {
                "title": "Handed over",
                "who": names.get(a.to, a.to),
                "detail": f"from {names.get(a.sender, a.sender)} to {names.get(a.to, a.to)}",
            }
        case TransformationRecorded() as a:
            return _transformation_entry(a, lots, names)
        case BatchRecalled() as a:  # flagged so the page can show it as one
            return {"title": "Recalled", "who": names.get(a.by, a.by), "detail": a.reason, "recall": True}
        case RecallReviewed() as a:
            return {
                "title": "Recall upheld" if a.upheld else "Recall withdrawn",
                "who": names.get(a.by, a.by),
                "detail": a.reason,
            }
        case BatchVoided() as a:  # a lot voided as registered in error
            return {"title": "Voided", "who": names.get(a.by, a.by), "detail": a.reason}
    return None


def _journey(events: list[HistoryEvent], lots: Lots, names: dict[str, str]) -> list[dict[str, Any]]:
    """The customer's timeline: registrations, steps, accepted hand-overs, transformations
    and recalls of the batch and its ancestors, oldest first. Offers and cancelled
    hand-overs and attestations are left to the auditor's history and the claims list."""
    entries: list[dict[str, Any]] = []
    # A transformation registers its outputs in its own transaction: its entry says it all.
    made = {e.tx_hash for e in events if isinstance(e.data, TransformationRecorded)}
    for e in events:
        if isinstance(e.data, BatchRegistered) and e.tx_hash in made:
            continue
        fields = _entry_fields(e, lots, names)
        if fields is not None:
            entries.append(_journey_entry(e, lots) | fields)
    return entries


def _journey_entry(e: HistoryEvent, lots: Lots) -> dict[str, Any]:
    """The fields every timeline entry has, before the event's own say what it was."""
    return {
        "event": e.name, "timestamp": e.timestamp, "tx_hash": e.tx_hash, "block_number": e.block_number,
        "log_index": e.log_index, **_lot_fields(lots, e.batch_id), "who": e.actor_name or e.actor, "where": None,
        "detail": None,
        # A raw transaction put bytes that are not UTF-8 into this event's text (shown with U+FFFD).
        "text_note": INVALID_TEXT_NOTE if e.invalid_text else None,
    }  # fmt: skip


def _origins(model: ReadModel, batch_id: str) -> tuple[list[dict[str, Any]], Lots]:
    """The raw lots the product comes from (lineage leaves), with their share of the input,
    and every lot of the lineage by id."""
    links = model.ancestors(batch_id)
    ids = {batch_id} | set(links) | {p for _, inputs in links.values() for p, _ in inputs}
    lots: Lots = {bid: model.batch(bid) for bid in ids}
    shares = model.input_shares(batch_id)
    origins = [
        {**_lot_summary(bid, lots[bid]), "share": round(share, 4)}
        for bid, share in sorted(shares.items(), key=lambda kv: -kv[1])
        if bid != batch_id
    ]
    return origins, lots


def _lot_summary(batch_id: str, batch: Batch | None) -> dict[str, Any]:
    if batch is None:
        return {
            "batch_id": batch_id,
            "gtin": "",
            "lot": "?",
            "product": None,
            "origin": None,
            "supplier": None,
            "supplier_name": None,
            "quantity": None,
            "unit": None,
            "recalled": False,
            "voided": False,
            "details_status": None,
        }
    return {
        "batch_id": batch.batch_id, "gtin": batch.gtin, "lot": batch.lot, "product": batch.product,
        "origin": batch.origin, "supplier": batch.supplier, "supplier_name": batch.supplier_name,
        "quantity": batch.registered_quantity, "unit": batch.unit, "recalled": bool(batch.recalled),
        "voided": batch.status == "voided", "details_status": batch.details_status,
    }  # fmt: skip


def _claims(model: ReadModel, batch: Batch, lots: Lots, at: int) -> list[dict[str, Any]]:
    """Every claim about the lot, its ingredients' lots and their producers, good and bad,
    each judged when its lot was traded and now, then the supplier's own unattested claims
    as self-declared."""
    suppliers = sorted({b.supplier for b in lots.values() if b and b.supplier})
    found = model.claims_at_trade(batch.batch_id, at)
    claims: list[dict[str, Any]] = []
    by_key = {k.lower(): v for k, v in found.items()}
    for bid, lot in lots.items():
        for c in by_key.get(bid.lower(), []):
            if bid == batch.batch_id:
                about = "this lot"
            elif lot is None:
                about = "lot (lot ?, None)"
            else:
                about = f"{lot.product or 'lot'} (lot {lot.lot}, {lot.supplier_name or lot.supplier})"
            claims.append({**_claim(c), "about": about, "about_kind": "batch", "subject_lot": lot.lot if lot else "?"})
    supplier_names = model.actor_names(set(suppliers))
    for supplier in suppliers:
        for c in by_key.get(subject_of_address(supplier), []):
            claims.append(
                {**_claim(c), "about": supplier_names.get(supplier, supplier), "about_kind": "organisation", "subject_lot": None}
            )
    claims += _self_declared_claims(batch, {c["claim"] for c in claims if c["status_at_trade"] == "valid"})
    claims.sort(key=lambda c: (c["claim"], list(CLAIM_STATES).index(c["state"]), c["about"]))
    return claims


#: How a claim reads, judged when its lot was traded and now: state -> (label, sentence).
#: The order is the page's, best news first.
CLAIM_STATES = {
    "valid": ("Valid", "valid"),
    "expired_since": ("Valid when traded", "valid when traded; has since expired"),
    "revoked_since": ("Valid when traded", "valid when traded; has since been revoked"),
    "not_accredited_since": ("Valid when traded", "valid when traded; its certifier has since lost its accreditation"),
    "self_declared": ("Self-declared", "stated by the supplier itself"),
    "not_yet_valid": ("Not yet valid", "not yet valid when it was traded"),
    "expired": ("Expired", "expired before it was traded"),
    "not_accredited": ("Not accredited", "its certifier was not accredited when it was traded"),
    "revoked": ("Revoked", "revoked before it was traded"),
}

#: A claim valid when traded, by its status now.
_SINCE = {"expired": "expired_since", "revoked": "revoked_since", "issuer_not_accredited": "not_accredited_since"}


def claim_state(at_trade: str, now: str) -> str:
    """The page's state of a claim (a key of CLAIM_STATES) from its status when its lot was
    traded and its status now: what held at trade decides, what changed since is told."""
    if at_trade == "valid":
        return _SINCE.get(now, "valid")
    return "not_accredited" if at_trade == "issuer_not_accredited" else at_trade


def _claim_groups(claims: list[dict[str, Any]], coverage: dict[str, float]) -> list[dict[str, Any]]:
    """One entry per claim type: its coverage (attested claims only), its best state, and
    the claims under it (lots and organisations), in the order of `claims`."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for c in claims:
        grouped.setdefault(c["claim"], []).append(c)
    groups = []
    for claim, entries in grouped.items():
        state = min((c["state"] for c in entries), key=list(CLAIM_STATES).index)
        attested = any(c["status"] != "self_declared" for c in entries)
        groups.append(
            {
                "claim": claim,
                "claim_name": claim_name(claim),
                "coverage": coverage.get(claim, 0.0) if attested else None,
                "state": state,
                "state_label": CLAIM_STATES[state][0],
                "claims": entries,
            }
        )
    return groups


def _self_declared_claims(batch: Batch, attested_valid: set[str]) -> list[dict[str, Any]]:
    """The supplier's own claims in the lot's metadata, with no attestation behind them
    (`also_attested`: a valid attestation of the same claim is listed too)."""
    return [
        {
            "claim": claim,
            "claim_name": claim_name(claim),
            "status": "self_declared",
            "status_label": STATUS_LABELS["self_declared"],
            "status_at_trade": "self_declared",
            "status_now": "self_declared",
            "traded_at": None,
            "state": "self_declared",
            "state_label": CLAIM_STATES["self_declared"][0],
            "verdict": CLAIM_STATES["self_declared"][1],
            "issuer": batch.supplier,
            "issuer_name": batch.supplier_name,
            "valid_from": None,
            "valid_until": None,
            "about": "this lot",
            "about_kind": "batch",
            "subject_lot": batch.lot,
            "uid": None,
            "tx_hash": None,
            "revoked_at": None,
            "revoked_tx_hash": None,
            "revocation_reason": None,
            "revoked_by_name": None,
            "revocation_reason_note": None,
            "evidence_hash": None,
            "also_attested": claim in attested_valid,
        }
        for claim in batch.declared_claims or []
    ]


def _claim(c: Claim) -> dict[str, Any]:
    """An attested claim as the page shows it: `status` and `status_now` are its status at
    the page's time, `status_at_trade` when its subject was traded (`traded_at`)."""
    at_trade = c.status_at_trade or c.status
    state = claim_state(at_trade, c.status)
    return {
        "claim": c.claim, "claim_name": claim_name(c.claim), "status": c.status, "status_label": STATUS_LABELS.get(c.status, c.status),
        "status_at_trade": at_trade, "status_now": c.status, "traded_at": c.traded_at,
        "state": state, "state_label": CLAIM_STATES[state][0], "verdict": CLAIM_STATES[state][1],
        "issuer": c.issuer, "issuer_name": c.issuer_name, "valid_from": c.valid_from, "valid_until": c.valid_until or None,
        "uid": c.uid, "tx_hash": c.tx_hash, "revoked_at": c.revoked_at, "revoked_tx_hash": c.revoked_tx_hash,
        "revocation_reason": c.revocation_reason, "revoked_by_name": c.revoked_by_name,
        "revocation_reason_note": INVALID_TEXT_NOTE if c.revocation_reason_invalid_utf8 else None,
        "evidence_hash": c.evidence_hash, "attested_at": c.attested_at,
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


def document_view(
    model: ReadModel, sha256_hex: str, name: str | None, holder: str | None, private: bool = False
) -> dict[str, Any]:
    """A document the chain anchors, as a page shows it: a link when this server has it
    (or fetched it from its document sources, checked by hash), else who holds it and its
    hash (a private document, named `private: true`, is never linked, whoever uploaded a
    copy anywhere)."""
    digest_hex = sha256_hex.lower().removeprefix("0x")
    try:
        digest = bytes.fromhex(digest_hex)
    except ValueError:  # metadata is anyone's JSON: a malformed hash names no document
        digest = b""
    documents = model.documents
    available = (
        not private and len(digest) == 32 and documents is not None and not documents.withheld(digest) and documents.has(digest)
    )
    return {
        "name": name,
        "sha256": digest_hex,
        "available": available,
        "holder": holder,
        "href": f"/api/v1/documents/{digest_hex}" if available else None,
    }


#: Seconds one page build may spend fetching from document_sources, in all: the metadata
#: of the lot and of every lot of its lineage, its documents and evidence. What is not
#: here by then shows as not available (a lot's details "missing", a document held by its
#: owner) and is not remembered as a miss, so a slow source cannot hold pages up.
PAGE_FETCH_SECONDS = 3.0
#: An evidence envelope is a few hundred bytes: a bigger file is the evidence itself.
_MAX_ENVELOPE_BYTES = 4096


def page_budget(model: ReadModel) -> contextlib.AbstractContextManager[None]:
    """The fetch budget of one page build (PAGE_FETCH_SECONDS): every read of the model
    inside it, in this thread, fetches within it. Nested, the outer budget holds."""
    budget = getattr(model.documents, "budget", None)  # only a fetching store fetches
    return budget(PAGE_FETCH_SECONDS) if budget is not None else contextlib.nullcontext()


def _evidence_view(model: ReadModel, evidence_hex: str, holder: str | None) -> dict[str, Any]:
    """An attestation's evidence: a link to it, or, when the chain anchors an envelope for
    private evidence, the private file's hash held by the issuer (never a link)."""
    view = document_view(model, evidence_hex, "evidence", holder)
    if view["available"] and model.documents is not None:
        digest = bytes.fromhex(view["sha256"])
        with contextlib.suppress(OSError):
            if model.documents.path_of(digest).stat().st_size <= _MAX_ENVELOPE_BYTES:
                private = enveloped_evidence(model.documents.held(digest))
                if private is not None:
                    return document_view(model, private.hex(), "private evidence", holder, private=True) | {
                        "envelope": view["sha256"]
                    }
    return view


def _with_evidence(model: ReadModel, claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each attested claim with its evidence document (if it has one), held by its issuer."""
    for c in claims:
        evidence = c.get("evidence_hash")
        c["evidence"] = (
            _evidence_view(model, evidence, c.get("issuer_name") or c.get("issuer"))
            if evidence and evidence != ZERO_DIGEST
            else None
        )
    return claims


#: What a shopper is told to do when the recall's document does not say.
DEFAULT_WHAT_TO_DO = "Stop using this product and return it to the shop where you bought it for a refund."
#: The longest text taken from a recall document (it is anyone's JSON).
_MAX_NOTICE_TEXT = 1000


def _recall_document(model: ReadModel, reason_hash: str | None) -> dict[str, Any]:
    """The recall's reason document ({"reason", "notice", "what_to_do", "contact",
    "notice_url"}), when this server holds it under the anchored hash ({} otherwise)."""
    documents = model.documents
    try:
        digest = bytes.fromhex((reason_hash or "").lower().removeprefix("0x"))
    except ValueError:
        return {}
    if documents is None or len(digest) != 32 or digest == bytes(32) or documents.withheld(digest):
        return {}
    try:
        document = json.loads(documents.held(digest)) if documents.has(digest) else {}
    except (OSError, ValueError):  # absent, damaged or not JSON: the notice falls back to defaults
        return {}
    return document if isinstance(document, dict) else {}


def _notice_text(document: dict[str, Any], key: str) -> str | None:
    """A text field of a recall document (None: absent, empty or not text)."""
    value = document.get(key)
    return value.strip()[:_MAX_NOTICE_TEXT] or None if isinstance(value, str) else None


def notice_link(url: str | None) -> str | None:
    """An official notice's address, only when it is a plain http(s) link (never
    `javascript:` or `data:`: the page links it)."""
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _affected_lots(model: ReadModel, batch_id: str) -> list[dict[str, Any]]:
    """The recalled lot and every lot made from it downstream, in the order the recall reaches them."""
    lots: list[dict[str, Any]] = []
    pending = [model.lineage_down(batch_id)]
    while pending:
        node = pending.pop(0)
        if all(lot["batch_id"] != node.batch_id for lot in lots):
            summary = node.summary
            lots.append(
                {
                    "batch_id": node.batch_id,
                    "gtin": summary.gtin if summary else None,
                    "lot": summary.lot if summary else None,
                    "product": summary.product if summary else None,
                }
            )
        pending.extend(node.outputs or ())
    return lots


def _recall_notice(model: ReadModel, b: Batch, contact: str | None) -> dict[str, Any]:
    """The notice a shopper reads: headline, what to do, whom to contact, the official
    notice's link and the lots the recall reaches (defaults when the document is silent)."""
    document = _recall_document(model, b.recall_reason_hash)
    return {
        "headline": _notice_text(document, "notice") or f"Recall of {b.product or 'lot'} (lot {b.lot})",
        "what_to_do": _notice_text(document, "what_to_do") or DEFAULT_WHAT_TO_DO,
        "contact": _notice_text(document, "contact") or contact,
        "notice_url": notice_link(_notice_text(document, "notice_url")),
        "affected_lots": _affected_lots(model, b.batch_id),
    }


def _recall_view(model: ReadModel, b: Batch, is_this_lot: bool, contact: str | None) -> dict[str, Any]:
    """A recalled lot of the lineage: the recall, its review, its notice (`contact`: whom
    to ask when the notice names no one) and notes on text that was not UTF-8."""
    invalid = b.invalid_utf8 or []
    return (
        _lot_summary(b.batch_id, b)
        | _recall_notice(model, b, contact)
        | {
            "is_this_lot": is_this_lot,
            "recalled_at": b.recalled_at,
            "tx_hash": b.recall_tx_hash,
            "recalled_by": b.recalled_by_name or b.recalled_by,
            "reason": b.recall_reason,
            "reason_hash": b.recall_reason_hash,
            "state": b.recall_state,
            "reviewed_by": b.reviewed_by_name or b.reviewed_by,
            "review_reason": b.review_reason,
            "reviewed_at": b.reviewed_at,
            "review_tx_hash": b.review_tx_hash,
            "reason_note": INVALID_TEXT_NOTE if "recall_reason" in invalid else None,
            "review_reason_note": INVALID_TEXT_NOTE if "review_reason" in invalid else None,
        }
    )


def _void_view(batch: Batch) -> dict[str, Any] | None:
    """Who voided the lot, when and why (None: not voided)."""
    if batch.status != "voided":
        return None
    return {
        "by": batch.voided_by_name or batch.voided_by,
        "at": batch.voided_at,
        "reason": batch.void_reason,
        "tx_hash": batch.void_tx_hash,
        "reason_note": INVALID_TEXT_NOTE if "void_reason" in (batch.invalid_utf8 or []) else None,
    }


def _producer_view(model: ReadModel, batch: Batch) -> dict[str, Any]:
    """The lot's supplier as the page names it."""
    supplier = model.actor(batch.supplier)
    return {
        "address": batch.supplier,
        "name": batch.supplier_name,
        "country": supplier.country if supplier else None,
        "active": supplier.active if supplier else None,
        "name_note": INVALID_TEXT_NOTE if supplier and supplier.name_invalid_utf8 else None,
    }


def _lot_documents(model: ReadModel, batch: Batch) -> list[dict[str, Any]]:
    """The documents the lot's metadata names (well-formed entries only: metadata is
    anyone's JSON), held by the supplier."""
    holder = batch.supplier_name or batch.supplier
    return [
        document_view(model, d["sha256"], d.get("name"), holder, private=d.get("private") is True)
        for d in document_references({"documents": batch.documents or []})
    ]


def product_view(model: ReadModel, batch: Batch, link: DigitalLink, context: PageContext, at: int) -> dict[str, Any]:
    """Everything the product page shows about `batch`, as JSON-ready data, built within
    one fetch budget (page_budget; the caller's, when it opened one to find `batch`)."""
    with page_budget(model):
        return _product_view(model, batch, link, context, at)


def _product_view(model: ReadModel, batch: Batch, link: DigitalLink, context: PageContext, at: int) -> dict[str, Any]:
    origins, lots = _origins(model, batch.batch_id)
    history = model.history(batch.batch_id)
    # Approved names (never a pending request); an admin acting as such is "the ledger's admin".
    names = model.who({v for e in history for k, v in e.args.items() if isinstance(v, str) and len(v) == 42})
    journey = _journey(history, lots, names)
    maker = batch.supplier_name or batch.supplier
    recalled = [_recall_view(model, b, bid == batch.batch_id, maker) for bid, b in lots.items() if b and b.recalled]
    registration = next((e for e in history if isinstance(e.data, BatchRegistered) and e.batch_id == batch.batch_id), None)
    # A raw lot counts when its claim was valid when it was traded (not judged today).
    coverage = model.coverage(batch.batch_id, at, at_trade=True)
    documents, claims = _lot_documents(model, batch), _with_evidence(model, _claims(model, batch, lots, at))
    return {
        "url": link.url(context.base_url),
        "digital_link": {"gtin": link.gtin, "lot": link.lot, "serial": link.serial},
        "batch_id": batch.batch_id,
        "product": batch.product,
        "gtin": batch.gtin,
        "lot": batch.lot,
        "quantity": batch.registered_quantity,
        "remaining_quantity": batch.remaining_quantity,
        "unit": batch.unit,
        "quantity_text": quantity_text(batch.registered_quantity, batch.unit),
        "status": batch.status,
        "voided": _void_view(batch),
        "details_status": batch.details_status,
        "details_problem": batch.details_problem if batch.details_status == "mismatch" else None,
        "origin": batch.origin,
        "registered_at": batch.registered_at,
        "registration_tx": registration.tx_hash if registration else None,
        "producer": _producer_view(model, batch),
        "custodian": {"address": batch.custodian, "name": batch.custodian_name},
        "documents": documents,
        "recalled": recalled,
        "origins": origins,
        # The journey in a few plain stages, then every record it sums up.
        "stages": journey_stages(journey, {o["lot"] for o in origins}),
        "journey": journey,
        "claims": claims,
        "claim_groups": _claim_groups(claims, coverage),
        "verdict": _verdict(origins, recalled),
        "coverage": [{"claim": c, "claim_name": claim_name(c), "share": share} for c, share in coverage.items()],
        "proof": {"chain_id": context.chain_id, "contract": context.contract, **freshness_view(model.freshness())},
        "at": at,
    }


def _verdict(origins: list[dict[str, Any]], recalled: list[dict[str, Any]]) -> dict[str, Any]:
    """What the first screen says beside the claim chips: where the product comes from in
    plain words, from how many producers and raw lots, and the recall state in words."""
    places = list(dict.fromkeys(p for p in (place_of(o["origin"]) for o in origins) if p))
    first = next((r for r in recalled if r["is_this_lot"]), recalled[0] if recalled else None)
    return {
        "places": places,
        "origin_lots": len(origins),
        "producers": len({o["supplier"] for o in origins if o["supplier"]}),
        "recall_headline": first["headline"] if first else "No recall",
    }
