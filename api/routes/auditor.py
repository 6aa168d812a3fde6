"""The auditor's API: read-only JSON over the index, every event with its proof
(transaction hash, block, log index, time). Documented at /docs (OpenAPI)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from eth_utils import to_checksum_address
from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import ContextDep
from api.views import freshness_view
from ledger.audit import AuditPolicy, Auditor, Severity
from ledger.errors import InvalidInputError
from ledger.identifiers import batch_id as derive_batch_id
from ledger.identifiers import check_lot, parse_gtin

router = APIRouter(prefix="/api/v1", tags=["auditor"])

BatchId = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="Batch id: keccak256(uint64 GTIN ‖ bytes20 lot), 0x + 64 hex")]
Address = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$", description="Organisation address, 0x + 40 hex")]
Uid = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="Attestation uid, 0x + 64 hex")]
TxHash = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="Transaction hash, 0x + 64 hex")]
# Unix seconds within what the index stores (BIGINT) and what a calendar means.
Timestamp = Annotated[int | None, Query(ge=0, le=253_402_300_799, description="Unix time (seconds); default: now")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")]
Depth = Annotated[int, Query(ge=1, le=64, description="How many transformations deep")]


def _page(items: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "limit": limit, "offset": offset, "next_offset": offset + limit if len(items) == limit else None}


def _now(at: int | None) -> int:
    return int(time.time()) if at is None else at


def _batch_or_404(context: ContextDep, batch_id: str) -> dict[str, Any]:
    batch = context.model.batch(batch_id.lower())
    if batch is None:
        raise HTTPException(404, f"no batch {batch_id} in the index")
    return batch


@router.get("/batches", summary="Batches, newest first, filtered by supplier, GTIN, status, recall and time")
def list_batches(
    context: ContextDep,
    supplier: Annotated[str | None, Query(pattern=r"^0x[0-9a-fA-F]{40}$")] = None,
    gtin: Annotated[str | None, Query(max_length=14, description="GTIN-8/12/13/14")] = None,
    lot: Annotated[str | None, Query(max_length=20, description="With gtin: the one batch of this GTIN + lot")] = None,
    status: Literal["active", "consumed"] | None = None,
    recalled: bool | None = None,
    since: Timestamp = None,
    until: Timestamp = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Pages of batches (`next_offset` is null on the last page)."""
    try:
        gtin14 = parse_gtin(gtin) if gtin else None
        if lot is not None:
            if gtin14 is None:
                raise InvalidInputError("lot needs gtin as well")
            batch = context.model.batch("0x" + derive_batch_id(gtin14, check_lot(lot)).hex())
            return _page([batch] if batch and offset == 0 else [], limit, offset)
    except InvalidInputError as exc:
        raise HTTPException(422, str(exc)) from exc
    items = context.model.batches(
        supplier=to_checksum_address(supplier) if supplier else None, gtin=gtin14, status=status, recalled=recalled,
        since=since, until=until, limit=limit, offset=offset,
    )  # fmt: skip
    return _page(items, limit, offset)


@router.get("/batches/{batch_id}", summary="One batch: product data, custodian, remaining quantity, status")
def get_batch(context: ContextDep, batch_id: BatchId) -> dict[str, Any]:
    """The batch as the index knows it."""
    return _batch_or_404(context, batch_id)


@router.get("/batches/{batch_id}/history", summary="Every event of the batch (and its ancestors) with its proof")
def batch_history(
    context: ContextDep, batch_id: BatchId,
    ancestors: Annotated[bool, Query(description="Include the events of every input, recursively")] = True,
    depth: Depth = 32,
) -> dict[str, Any]:  # fmt: skip
    """Events in chain order, each with transaction hash, block number, log index and time."""
    batch = _batch_or_404(context, batch_id)
    return {"batch": batch, "events": context.model.history(batch["batch_id"], include_ancestors=ancestors, depth=depth)}


@router.get("/batches/{batch_id}/lineage", summary="Lineage up (inputs) or down (descendants) as a tree")
def batch_lineage(
    context: ContextDep, batch_id: BatchId,
    direction: Literal["up", "down"] = "up",
    depth: Depth = 32,
) -> dict[str, Any]:  # fmt: skip
    """Up: what went into the batch, recursively. Down: every lot made from it."""
    batch = _batch_or_404(context, batch_id)
    tree = context.model.lineage_up(batch["batch_id"], depth) if direction == "up" else context.model.lineage_down(batch["batch_id"], depth)
    return {"direction": direction, "depth": depth, "tree": tree}


@router.get("/batches/{batch_id}/claims", summary="Claims about the batch with their status at a time")
def batch_claims(context: ContextDep, batch_id: BatchId, at: Timestamp = None) -> dict[str, Any]:
    """Status at `at`: valid, not_yet_valid, expired, revoked, issuer_not_accredited."""
    batch = _batch_or_404(context, batch_id)
    moment = _now(at)
    return {"at": moment, "claims": context.model.claims(batch["batch_id"], moment),
            "coverage": context.model.coverage(batch["batch_id"], moment)}  # fmt: skip


@router.get("/actors", summary="Registered organisations")
def list_actors(context: ContextDep, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Organisations in registration order."""
    return _page(context.model.actors(limit, offset), limit, offset)


@router.get("/actors/{address}", summary="One organisation with its roles")
def get_actor(context: ContextDep, address: Address) -> dict[str, Any]:
    """Name, country, active flag, supplier role and accredited claim types."""
    actor = context.model.actor(to_checksum_address(address))
    if actor is None:
        raise HTTPException(404, f"no organisation {address} is registered")
    return actor


@router.get("/actors/{address}/claims", summary="Claims about an organisation with their status at a time")
def actor_claims(context: ContextDep, address: Address, at: Timestamp = None) -> dict[str, Any]:
    """Claims whose subject is the organisation (e.g. a fair-trade cooperative)."""
    moment = _now(at)
    return {"at": moment, "claims": context.model.claims(to_checksum_address(address), moment)}


@router.get("/claims/{uid}", summary="One attestation and its status at a time")
def get_claim(context: ContextDep, uid: Uid, at: Timestamp = None) -> dict[str, Any]:
    """The attestation with its status at `at` (default now)."""
    moment = _now(at)
    claim = context.model.attestation(uid, moment)
    if claim is None:
        raise HTTPException(404, f"no attestation {uid} in the index")
    return {"at": moment, **claim}


@router.get("/transactions/{tx_hash}", summary="The ledger events of one transaction")
def get_transaction(context: ContextDep, tx_hash: TxHash) -> dict[str, Any]:
    """What a transaction recorded on the ledger: the proof behind a fact on a page."""
    events = context.model.transaction_events(tx_hash)
    if not events:
        raise HTTPException(404, f"transaction {tx_hash} emitted no ledger event known to the index")
    return {"tx_hash": tx_hash.lower(), "block_number": events[0]["block_number"], "block_hash": events[0]["block_hash"],
            "timestamp": events[0]["timestamp"], "events": events}  # fmt: skip


@router.get("/index", summary="Where the index stands")
def index_status(context: ContextDep) -> dict[str, Any]:
    """The indexed block, its time, and the chain head the last sync saw (no chain call)."""
    freshness = context.model.freshness()
    return {"contract": freshness.contract if freshness else None, "chain_id": freshness.chain_id if freshness else None,
            **freshness_view(freshness)}  # fmt: skip


def _auditor(context: ContextDep) -> Auditor:
    return Auditor(context.model, AuditPolicy.load(context.settings.data_dir / "audit.toml"))


SeverityParam = Annotated[Literal["info", "low", "medium", "high", "critical"], Query(description="Only findings at or above this severity")]


@router.get("/audit", summary="Automatic checks over the whole ledger, most severe first")
def audit_all(context: ContextDep, min_severity: SeverityParam = "info") -> dict[str, Any]:
    """Recall reach and events after recalls, claims (revoked, expired, accreditation,
    validity vs production), mass balance, custody, step order; each finding with the
    events behind it."""
    threshold = Severity.parse(min_severity)
    findings = [f.as_dict() for f in _auditor(context).audit_all() if f.severity >= threshold]
    return {"scope": "all", "findings": findings}


@router.get("/audit/batches/{batch_id}", summary="Automatic checks over a batch and its lineage")
def audit_batch(context: ContextDep, batch_id: BatchId, min_severity: SeverityParam = "info") -> dict[str, Any]:
    """The findings about the batch, its inputs (recursively) and what was made from it."""
    batch = _batch_or_404(context, batch_id)
    threshold = Severity.parse(min_severity)
    findings = [f.as_dict() for f in _auditor(context).audit_batch(batch["batch_id"]) if f.severity >= threshold]
    return {"scope": batch["batch_id"], "findings": findings}
