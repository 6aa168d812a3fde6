"""What a product page says, as plain data: built from the read model, rendered by the
HTML template and served as JSON alike, so both always say the same thing.

Nothing here formats HTML; every string stays as it came from the chain and is escaped
by the template engine when rendered.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from api.claim_types import with_explainers
from api.formats import number_text
from api.i18n import N_, _, who_name
from api.origin_map import lineage_map
from api.stages import journey_stages, place_of
from ledger.claim_types import ClaimType, claim_types
from ledger.conversions import subject_of_address
from ledger.documents import document_references, enveloped_evidence
from ledger.identifiers import DigitalLink
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
UNIT_NAMES = {
    "KGM": N_("kg"), "GRM": N_("g"), "TNE": N_("t"), "LTR": N_("L"), "MLT": N_("mL"), "H87": N_("pieces"), "EA": N_("each"),
    "MTR": N_("m"),
}  # fmt: skip

#: How each CBV business step reads on the timeline.
STEP_TITLES = {
    "commissioning": N_("Produced"), "inspecting": N_("Inspected"), "shipping": N_("Shipped"), "receiving": N_("Received"),
    "packing": N_("Packed"), "storing": N_("Stored"), "loading": N_("Loaded"), "unloading": N_("Unloaded"),
    "transporting": N_("Transported"), "processing": N_("Processed"), "sampling": N_("Sampled"), "holding": N_("Held"),
    "accepting": N_("Accepted"), "departing": N_("Departed"), "arriving": N_("Arrived"), "repackaging": N_("Repackaged"),
    "retail_selling": N_("Sold"), "destroying": N_("Destroyed"),
}  # fmt: skip

STATUS_LABELS = {
    "valid": N_("Valid"),
    "expired": N_("Expired"),
    "revoked": N_("Revoked"),
    "not_yet_valid": N_("Not yet valid"),
    "issuer_not_accredited": N_("Certifier no longer accredited"),
    "self_declared": N_("Self-declared"),
}

#: How each transformation kind reads on the timeline.
KIND_TITLES = {"split": N_("Split"), "merge": N_("Merged"), "processing": N_("Processed")}
TRANSFORMED = N_("Transformed")

CLAIM_NAMES = {"FAIRTRADE": N_("Fair trade"), "ORGANIC": N_("Organic"), "DEFORESTATION_FREE": N_("Deforestation-free")}


def quantity_text(quantity: int, unit: str) -> str:
    """`12,000 kg`, `2,000 pieces` (`12.000 kg` in German...); unknown codes are shown as they are."""
    return f"{number_text(quantity)} {_(UNIT_NAMES[unit]) if unit in UNIT_NAMES else unit}"


def claim_name(claim: str) -> str:
    """A claim type as people say it (in the page's language)."""
    return _(CLAIM_NAMES[claim]) if claim in CLAIM_NAMES else claim.replace("_", " ").capitalize()


def step_title(biz_step: str) -> str:
    """A CBV business step as the timeline says it; one outside the list by its own words."""
    return _(STEP_TITLES[biz_step]) if biz_step in STEP_TITLES else biz_step.replace("_", " ").capitalize()


def kind_title(kind: str) -> str:
    """A transformation's kind as the timeline says it ("Merged")."""
    return _(KIND_TITLES.get(kind, TRANSFORMED))


def status_label(status: str) -> str:
    """A claim's status in words."""
    return _(STATUS_LABELS[status]) if status in STATUS_LABELS else status


def text_note() -> str:
    """The note beside text whose bytes were not UTF-8 (ledger.indexer.decoding's
    INVALID_TEXT_NOTE, in the page's language)."""
    return _("this text contains bytes that are not valid UTF-8; they are shown as \ufffd")


def lot_name(product: str | None, lot: str) -> str:
    """ "Green coffee (lot ESP-2026-07)"; a lot without a product name as "lot (lot X)"."""
    return _("%(product)s (lot %(lot)s)") % {"product": product or _("lot"), "lot": lot}


@dataclass(frozen=True)
class PageContext:
    """What a page needs beside the batch: where it is served and which ledger it reads."""

    base_url: str
    chain_id: int
    contract: str | None
    #: What each claim type means and its scheme's site (the packaged texts unless the config file says otherwise).
    claim_types: Mapping[str, ClaimType] = field(default_factory=lambda: claim_types(None))


#: The lots of a page's lineage by id: None for an id the index does not hold.
Lots = dict[str, Batch | None]


def _lot_label(lots: Lots, batch_id: str) -> str:
    if batch_id not in lots:
        return _("an unknown lot")
    batch = lots[batch_id]
    return lot_name(batch.product, batch.lot) if batch else lot_name(None, "?")


def _lot_fields(lots: Lots, batch_id: str | None) -> dict[str, Any]:
    """The lot, GTIN and product a timeline entry names ("?" for a lot the index lacks)."""
    if not batch_id or batch_id not in lots:
        return {"lot": None, "gtin": None, "product": None}
    batch = lots[batch_id]
    return (
        {"lot": batch.lot, "gtin": batch.gtin, "product": batch.product} if batch else {"lot": "?", "gtin": "", "product": None}
    )


def amount_of(quantity: str, lot: str) -> str:
    """ "12,000 kg of Green coffee (lot X)"."""
    return _("%(quantity)s of %(lot)s") % {"quantity": quantity, "lot": lot}


def _transformation_entry(a: TransformationRecorded, lots: Lots, names: dict[str, str]) -> dict[str, Any]:
    """A split, merge or process: what went in and what came out, shown on its first output."""

    def unit(batch_id: str) -> str:
        batch = lots.get(batch_id)
        return batch.unit if batch else ""

    def made(batch_id: str) -> str:
        batch = lots.get(batch_id)
        label = _lot_label(lots, batch_id)
        return amount_of(quantity_text(batch.registered_quantity, batch.unit), label) if batch else label

    inputs = [amount_of(quantity_text(q, unit(b)), _lot_label(lots, b)) for b, q in a.inputs]
    return {
        "title": kind_title(a.kind),
        "step": a.kind,
        "who": names.get(a.custodian, a.custodian),
        "detail": _("%(inputs)s into %(outputs)s")
        % {"inputs": "; ".join(inputs), "outputs": "; ".join(made(b) for b in a.outputs)},
        **(_lot_fields(lots, a.outputs[0]) if a.outputs else {"lot": None, "gtin": None, "product": None}),
    }


def _entry_fields(e: HistoryEvent, lots: Lots, names: dict[str, str]) -> dict[str, Any] | None:
    """What the timeline says about one event beside the common fields (None: the
    timeline does not show this kind of event)."""
    lot = lots.get(e.batch_id or "")
    match e.data:
        case BatchRegistered() as a:  # a lot registered on its own: who produced how much, and where
            return {
                "title": _("Registered"),
                "who": names.get(a.supplier, a.supplier),
                "where": lot.origin if lot else None,
                "detail": quantity_text(a.quantity, a.unit),
            }
        case StepRecorded() as a:  # a business step (CBV), titled as customers read it
            return {
                "title": step_title(a.biz_step),
                "step": a.biz_step,
                "who": names.get(a.actor, a.actor),
                "where": a.location or None,
            }
        case CustodyTransferAccepted() as a:  # an accepted hand-over, told from the new custodian
            return {
                "title": _("Handed over"),
                "who": names.get(a.to, a.to),
                "detail": _("from %(sender)s to %(receiver)s")
                % {"sender": names.get(a.sender, a.sender), "receiver": names.get(a.to, a.to)},
            }
        case TransformationRecorded() as a:
            return _transformation_entry(a, lots, names)
        case BatchRecalled() as a:  # flagged so the page can show it as one
            return {"title": _("Recalled"), "who": names.get(a.by, a.by), "detail": a.reason, "recall": True}
        case RecallReviewed() as a:
            return {
                "title": _("Recall upheld") if a.upheld else _("Recall withdrawn"),
                "who": names.get(a.by, a.by),
                "detail": a.reason,
            }
        case BatchVoided() as a:  # a lot voided as registered in error
            return {"title": _("Voided"), "who": names.get(a.by, a.by), "detail": a.reason}
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
        "detail": None, "step": None,
        # A raw transaction put bytes that are not UTF-8 into this event's text (shown with U+FFFD).
        "text_note": text_note() if e.invalid_text else None,
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
                about = _("this lot")
            else:
                about = _("%(product)s (lot %(lot)s, %(supplier)s)") % {
                    "product": (lot.product if lot else None) or _("lot"),
                    "lot": lot.lot if lot else "?",
                    "supplier": (lot.supplier_name or lot.supplier) if lot else None,
                }
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
    "valid": (N_("Valid"), N_("valid")),
    "expired_since": (N_("Valid when traded"), N_("valid when traded; has since expired")),
    "revoked_since": (N_("Valid when traded"), N_("valid when traded; has since been revoked")),
    "not_accredited_since": (N_("Valid when traded"), N_("valid when traded; its certifier has since lost its accreditation")),
    "self_declared": (N_("Self-declared"), N_("stated by the supplier itself")),
    "not_yet_valid": (N_("Not yet valid"), N_("not yet valid when it was traded")),
    "expired": (N_("Expired"), N_("expired before it was traded")),
    "not_accredited": (N_("Not accredited"), N_("its certifier was not accredited when it was traded")),
    "revoked": (N_("Revoked"), N_("revoked before it was traded")),
}


def state_label(state: str) -> str:
    """A claim's page state (a key of CLAIM_STATES) as its badge says it."""
    return _(CLAIM_STATES[state][0])


def state_verdict(state: str) -> str:
    """A claim's page state in a sentence's words."""
    return _(CLAIM_STATES[state][1])


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
                "state_label": state_label(state),
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
            "status_label": status_label("self_declared"),
            "status_at_trade": "self_declared",
            "status_now": "self_declared",
            "traded_at": None,
            "state": "self_declared",
            "state_label": state_label("self_declared"),
            "verdict": state_verdict("self_declared"),
            "issuer": batch.supplier,
            "issuer_name": batch.supplier_name,
            "valid_from": None,
            "valid_until": None,
            "about": _("this lot"),
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
        "claim": c.claim, "claim_name": claim_name(c.claim), "status": c.status, "status_label": status_label(c.status),
        "status_at_trade": at_trade, "status_now": c.status, "traded_at": c.traded_at,
        "state": state, "state_label": state_label(state), "verdict": state_verdict(state),
        "issuer": c.issuer, "issuer_name": c.issuer_name, "valid_from": c.valid_from, "valid_until": c.valid_until or None,
        "uid": c.uid, "tx_hash": c.tx_hash, "revoked_at": c.revoked_at, "revoked_tx_hash": c.revoked_tx_hash,
        "revocation_reason": c.revocation_reason, "revoked_by_name": who_name(c.revoked_by_name),
        "revocation_reason_note": text_note() if c.revocation_reason_invalid_utf8 else None,
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
    view = document_view(model, evidence_hex, _("evidence"), holder)
    if view["available"] and model.documents is not None:
        digest = bytes.fromhex(view["sha256"])
        with contextlib.suppress(OSError):
            if model.documents.size_of(digest) <= _MAX_ENVELOPE_BYTES:
                private = enveloped_evidence(model.documents.held(digest))
                if private is not None:
                    return document_view(model, private.hex(), _("private evidence"), holder, private=True) | {
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
DEFAULT_WHAT_TO_DO = N_("Stop using this product and return it to the shop where you bought it for a refund.")
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
        "headline": _notice_text(document, "notice")
        or _("Recall of %(product)s (lot %(lot)s)") % {"product": b.product or _("lot"), "lot": b.lot},
        "what_to_do": _notice_text(document, "what_to_do") or _(DEFAULT_WHAT_TO_DO),
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
            "recalled_by": who_name(b.recalled_by_name) or b.recalled_by,
            "reason": b.recall_reason,
            "reason_hash": b.recall_reason_hash,
            "state": b.recall_state,
            "reviewed_by": who_name(b.reviewed_by_name) or b.reviewed_by,
            "review_reason": b.review_reason,
            "reviewed_at": b.reviewed_at,
            "review_tx_hash": b.review_tx_hash,
            "reason_note": text_note() if "recall_reason" in invalid else None,
            "review_reason_note": text_note() if "review_reason" in invalid else None,
        }
    )


def _void_view(batch: Batch) -> dict[str, Any] | None:
    """Who voided the lot, when and why (None: not voided)."""
    if batch.status != "voided":
        return None
    return {
        "by": who_name(batch.voided_by_name) or batch.voided_by,
        "at": batch.voided_at,
        "reason": batch.void_reason,
        "tx_hash": batch.void_tx_hash,
        "reason_note": text_note() if "void_reason" in (batch.invalid_utf8 or []) else None,
    }


def _producer_view(model: ReadModel, batch: Batch) -> dict[str, Any]:
    """The lot's supplier as the page names it."""
    supplier = model.actor(batch.supplier)
    return {
        "address": batch.supplier,
        "name": batch.supplier_name,
        "country": supplier.country if supplier else None,
        "active": supplier.active if supplier else None,
        "name_note": text_note() if supplier and supplier.name_invalid_utf8 else None,
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
    names = {address: who_name(name) or address for address, name in names.items()}
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
        # Where it was grown and processed, drawn from a packaged atlas (None: no atlas or no country known).
        "origin_map": lineage_map(model, batch, lots, {o["batch_id"] for o in origins}),
        "claims": claims,
        "claim_groups": with_explainers(model, _claim_groups(claims, coverage), context.claim_types),
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
        "recall_headline": first["headline"] if first else _("No recall"),
    }
