"""The auditor's API: read-only JSON over the index, every event with its proof
(transaction hash, block, log index, time). Documented at /docs (OpenAPI)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response
from web3 import HTTPProvider, Web3

from api.deps import ContextDep
from api.schemas import (
    INVALID,
    NOT_FOUND,
    UNAVAILABLE,
    ActorClaims,
    ActorDetail,
    ActorPage,
    AuditReport,
    Batch,
    BatchClaims,
    BatchHistory,
    BatchPage,
    ClaimAt,
    IndexStatus,
    LicenceList,
    Lineage,
    ProofBundle,
    Transaction,
)
from api.views import freshness_view
from ledger.audit import Auditor, AuditPolicy, Finding, Severity
from ledger.epcis import EpcisExporter
from ledger.errors import InvalidInputError, LedgerError
from ledger.identifiers import batch_id as derive_batch_id
from ledger.identifiers import check_lot, parse_gtin
from ledger.indexer.store import IndexFreshness
from ledger.records import Batch as BatchRecord
from ledger.verify import ChainLineage, proof_bundle

# Answers are validated against their models and keep exactly the keys the read model
# gives (`exclude_unset`: a lineage leaf has no `inputs`, not `"inputs": null`).
router = APIRouter(prefix="/api/v1", tags=["auditor"], responses=INVALID)
to_checksum_address = Web3.to_checksum_address

BatchId = Annotated[
    str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="Batch id: keccak256(uint64 GTIN ‖ bytes20 lot), 0x + 64 hex")
]
Address = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$", description="Organisation address, 0x + 40 hex")]
AddressFilter = Annotated[str | None, Query(pattern=r"^0x[0-9a-fA-F]{40}$")]
Uid = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="Attestation uid, 0x + 64 hex")]
TxHash = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="Transaction hash, 0x + 64 hex")]
# Unix seconds within what the index stores (BIGINT) and what a calendar means.
Timestamp = Annotated[int | None, Query(ge=0, le=253_402_300_799, description="Unix time (seconds); default: now")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")]
Depth = Annotated[int, Query(ge=1, le=64, description="How many transformations deep")]


def _page(items: Sequence[Any], limit: int, offset: int) -> dict[str, Any]:
    """A page of records (or dicts), serialised."""
    return {
        "items": [_json(i) for i in items],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(items) == limit else None,
    }


def _json(item: Any) -> Any:
    """A read-model record as the JSON the API serves (dicts pass as they are)."""
    return item.as_dict() if hasattr(item, "as_dict") else item


def _now(at: int | None) -> int:
    return int(time.time()) if at is None else at


def _batch_or_404(context: ContextDep, batch_id: str) -> BatchRecord:
    batch = context.model.batch(batch_id.lower())
    if batch is None:
        raise HTTPException(404, f"no batch {batch_id} in the index")
    return batch


@router.get(
    "/batches",
    response_model=BatchPage,
    response_model_exclude_unset=True,
    summary="Batches, newest first, filtered by supplier, GTIN, status, recall and time",
)
def list_batches(
    context: ContextDep,
    supplier: AddressFilter = None,
    gtin: Annotated[str | None, Query(max_length=14, description="GTIN-8/12/13/14")] = None,
    lot: Annotated[str | None, Query(max_length=20, description="With gtin: the one batch of this GTIN + lot")] = None,
    status: Literal["active", "consumed", "voided"] | None = None,
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
        supplier=to_checksum_address(supplier) if supplier else None,
        gtin=gtin14,
        status=status,
        recalled=recalled,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return _page(items, limit, offset)


@router.get(
    "/batches/{batch_id}",
    response_model=Batch,
    responses=NOT_FOUND,
    response_model_exclude_unset=True,
    summary="One batch: product data, custodian, remaining quantity, status",
)
def get_batch(context: ContextDep, batch_id: BatchId) -> dict[str, Any]:
    """The batch as the index knows it."""
    return _batch_or_404(context, batch_id).as_dict()


@router.get(
    "/batches/{batch_id}/history",
    response_model=BatchHistory,
    responses=NOT_FOUND,
    response_model_exclude_unset=True,
    summary="Every event of the batch (and its ancestors) with its proof",
)
def batch_history(
    context: ContextDep,
    batch_id: BatchId,
    ancestors: Annotated[bool, Query(description="Include the events of every input, recursively")] = True,
    depth: Depth = 32,
) -> dict[str, Any]:
    """Events in chain order, each with transaction hash, block number, log index and time."""
    batch = _batch_or_404(context, batch_id)
    events = context.model.history(batch.batch_id, include_ancestors=ancestors, depth=depth)
    return {"batch": batch.as_dict(), "events": [e.as_dict() for e in events]}


@router.get(
    "/batches/{batch_id}/lineage",
    response_model=Lineage,
    responses=NOT_FOUND,
    response_model_exclude_unset=True,
    summary="Lineage up (inputs) or down (descendants) as a tree",
)
def batch_lineage(
    context: ContextDep,
    batch_id: BatchId,
    direction: Literal["up", "down"] = "up",
    depth: Depth = 32,
) -> dict[str, Any]:
    """Up: what went into the batch, recursively. Down: every lot made from it."""
    batch = _batch_or_404(context, batch_id)
    tree = (
        context.model.lineage_up(batch.batch_id, depth)
        if direction == "up"
        else context.model.lineage_down(batch.batch_id, depth)
    )
    return {"direction": direction, "depth": depth, "tree": tree.as_dict()}


@router.get(
    "/batches/{batch_id}/claims",
    response_model=BatchClaims,
    responses=NOT_FOUND,
    response_model_exclude_unset=True,
    summary="Claims about the batch with their status at a time",
)
def batch_claims(context: ContextDep, batch_id: BatchId, at: Timestamp = None) -> dict[str, Any]:
    """Status at `at`: valid, not_yet_valid, expired, revoked, issuer_not_accredited."""
    batch = _batch_or_404(context, batch_id)
    moment = _now(at)
    return {
        "at": moment,
        "claims": [c.as_dict() for c in context.model.claims(batch.batch_id, moment)],
        "coverage": context.model.coverage(batch.batch_id, moment),
    }


@router.get("/actors", response_model=ActorPage, response_model_exclude_unset=True, summary="Registered organisations")
def list_actors(context: ContextDep, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Organisations in registration order."""
    return _page(context.model.actors(limit, offset), limit, offset)


@router.get(
    "/actors/{address}",
    response_model=ActorDetail,
    responses=NOT_FOUND,
    response_model_exclude_unset=True,
    summary="One organisation with its roles",
)
def get_actor(context: ContextDep, address: Address) -> dict[str, Any]:
    """Name, country, active flag, supplier role and accredited claim types."""
    actor = context.model.actor(to_checksum_address(address))
    if actor is None:
        raise HTTPException(404, f"no organisation {address} is registered")
    return actor.as_dict()


@router.get(
    "/actors/{address}/claims",
    response_model=ActorClaims,
    response_model_exclude_unset=True,
    summary="Claims about an organisation with their status at a time",
)
def actor_claims(context: ContextDep, address: Address, at: Timestamp = None) -> dict[str, Any]:
    """Claims whose subject is the organisation (e.g. a fair-trade cooperative)."""
    moment = _now(at)
    return {"at": moment, "claims": [c.as_dict() for c in context.model.claims(to_checksum_address(address), moment)]}


@router.get(
    "/claims/{uid}",
    response_model=ClaimAt,
    responses=NOT_FOUND,
    response_model_exclude_unset=True,
    summary="One attestation and its status at a time",
)
def get_claim(context: ContextDep, uid: Uid, at: Timestamp = None) -> dict[str, Any]:
    """The attestation with its status at `at` (default now)."""
    moment = _now(at)
    claim = context.model.attestation(uid, moment)
    if claim is None:
        raise HTTPException(404, f"no attestation {uid} in the index")
    return {"at": moment, **claim.as_dict()}


@router.get(
    "/transactions/{tx_hash}",
    response_model=Transaction,
    responses=NOT_FOUND,
    response_model_exclude_unset=True,
    summary="The ledger events of one transaction",
)
def get_transaction(context: ContextDep, tx_hash: TxHash) -> dict[str, Any]:
    """What a transaction recorded on the ledger: the proof behind a fact on a page."""
    events = context.model.transaction_events(tx_hash)
    if not events:
        raise HTTPException(404, f"transaction {tx_hash} emitted no ledger event known to the index")
    return {
        "tx_hash": tx_hash.lower(),
        "block_number": events[0].block_number,
        "block_hash": events[0].block_hash,
        "timestamp": events[0].timestamp,
        "events": [e.as_dict() for e in events],
    }


@router.get(
    "/index",
    response_model=IndexStatus,
    response_model_exclude_unset=True,
    summary="Where the index stands, and the events it set aside",
)
def index_status(context: ContextDep, limit: Limit = 100) -> dict[str, Any]:
    """The indexed block, its time, and the chain head the last sync saw (no chain call).
    `set_aside`: events the indexer could not decode or apply (each with its transaction,
    log index, block, event name and reason); the index went on without them, so what it
    shows may be incomplete while `count` is above zero (`status` is then `degraded`)."""
    freshness = context.model.freshness()
    count, items = context.model.set_aside(limit)
    return {
        "contract": freshness.contract if freshness else None,
        "chain_id": freshness.chain_id if freshness else None,
        **freshness_view(freshness),
        "status": "degraded" if count else "ok",
        "set_aside": {"count": count, "items": [item.row() for item in items]},
    }


@router.get(
    "/licences",
    response_model=LicenceList,
    response_model_exclude_unset=True,
    summary="Licences to GS1 identifiers (company prefixes, ranges, single GTINs)",
)
def list_licences(
    context: ContextDep,
    licensee: AddressFilter = None,
    in_force: bool | None = None,
) -> dict[str, Any]:
    """Every licence granted, by the admin (root) or a root licence's holder (sub-licence),
    with when it was withdrawn or lapsed."""
    return {"items": [r.as_dict() for r in context.model.licences(to_checksum_address(licensee) if licensee else None, in_force)]}


def _auditor(context: ContextDep) -> Auditor:
    return Auditor(context.model, AuditPolicy.load(context.settings.data_dir / "audit.toml"))


SeverityParam = Annotated[
    Literal["info", "low", "medium", "high", "critical"], Query(description="Only findings at or above this severity")
]


def _report(scope: str, findings: Iterable[Finding], min_severity: str) -> dict[str, Any]:
    """An audit report over `scope` ("all" or a batch id): the findings at or above `min_severity`."""
    threshold = Severity.parse(min_severity)
    return {"scope": scope, "findings": [f.as_dict() for f in findings if f.severity >= threshold]}


@router.get(
    "/audit",
    response_model=AuditReport,
    response_model_exclude_unset=True,
    summary="Automatic checks over the whole ledger, most severe first",
)
def audit_all(context: ContextDep, min_severity: SeverityParam = "info") -> dict[str, Any]:
    """Recall reach and events after recalls, claims (revoked, expired, accreditation,
    validity vs production), mass balance, custody, step order; each finding with the
    events behind it."""
    return _report("all", _auditor(context).audit_all(), min_severity)


@router.get(
    "/audit/batches/{batch_id}",
    response_model=AuditReport,
    responses=NOT_FOUND,
    response_model_exclude_unset=True,
    summary="Automatic checks over a batch and its lineage",
)
def audit_batch(context: ContextDep, batch_id: BatchId, min_severity: SeverityParam = "info") -> dict[str, Any]:
    """The findings about the batch, its inputs (recursively) and what was made from it."""
    batch = _batch_or_404(context, batch_id)
    return _report(batch.batch_id, _auditor(context).audit_batch(batch.batch_id), min_severity)


#: The exports are standard documents, described by their standards rather than a model.
EPCIS_DOCUMENT = {
    "type": "object",
    "required": ["@context", "type", "epcisBody"],
    "description": "An EPCIS 2.0 EPCISDocument (JSON-LD, standard context)",
}
FSMA_CSV = {"type": "string", "description": "FSMA 204 key data elements, one row per tracking event, with a header row"}


def _freshness_or_503(context: ContextDep) -> IndexFreshness:
    """Which contract and chain the index follows; 503 while nothing is indexed yet."""
    freshness = context.model.freshness()
    if freshness is None:
        raise HTTPException(503, "the index is empty: run `provenance index`")
    return freshness


def _exporter(context: ContextDep) -> EpcisExporter:
    freshness = _freshness_or_503(context)
    return EpcisExporter(context.model, freshness.chain_id, freshness.contract, context.settings.public_base_url)


@router.get(
    "/batches/{batch_id}/epcis",
    summary="EPCIS 2.0 JSON-LD document of the batch's full history",
    response_class=Response,
    responses={200: {"content": {"application/ld+json": {"schema": EPCIS_DOCUMENT}}}, **NOT_FOUND, **UNAVAILABLE},
)
def batch_epcis(context: ContextDep, batch_id: BatchId) -> Response:
    """An EPCISDocument (standard context): ObjectEvents, TransformationEvents, CBV steps
    and dispositions, lot-level class identifiers, certification information, event hashes."""
    batch = _batch_or_404(context, batch_id)
    document = _exporter(context).document(batch.batch_id)
    return _attachment(json.dumps(document), "application/ld+json", f"epcis-{_file_stem(batch)}.jsonld")


@router.get(
    "/batches/{batch_id}/fsma.csv",
    summary="FSMA 204 key data elements per tracking event (CSV)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": FSMA_CSV}}}, **NOT_FOUND, **UNAVAILABLE},
)
def batch_fsma_csv(context: ContextDep, batch_id: BatchId) -> Response:
    """One row per tracking event of the batch and its ancestors, oldest first."""
    batch = _batch_or_404(context, batch_id)
    return _attachment(_exporter(context).fsma_csv(batch.batch_id), "text/csv; charset=utf-8", f"fsma204-{_file_stem(batch)}.csv")


@router.get(
    "/batches/{batch_id}/proof",
    summary="Proof bundle of the batch, read from the chain (a verification endpoint)",
    response_class=Response,
    responses={200: {"model": ProofBundle, "description": "The bundle, as an attachment"}, **NOT_FOUND, **UNAVAILABLE},
)
def batch_proof(context: ContextDep, batch_id: BatchId) -> Response:
    """The lot's events with their raw logs, transactions and block hashes, read from the
    chain (not the index): check it anywhere with `provenance verify --bundle FILE --rpc URL`."""
    batch = _batch_or_404(context, batch_id)
    freshness = _freshness_or_503(context)
    try:
        w3 = Web3(HTTPProvider(context.settings.rpc_url, request_kwargs={"timeout": 20}))
        deploy = context.settings.deploy_block if context.settings.deploy_block is not None else _deploy_block(context)
        chain = ChainLineage(w3, freshness.contract, deploy)
        bundle = proof_bundle(chain, freshness.chain_id, batch.batch_id, batch.gtin, batch.lot)
    except (LedgerError, OSError, ValueError) as exc:
        raise HTTPException(503, f"the chain at {context.settings.rpc_url} could not be read: {exc}") from exc
    return _attachment(json.dumps(bundle, indent=2), "application/json", f"proof-{_file_stem(batch)}.json")


def _deploy_block(context: ContextDep) -> int:
    """Where the ledger's events start: the index's first event block (no chain lookup)."""
    return context.model.first_event_block()


def _attachment(body: str, media_type: str, filename: str) -> Response:
    """A download: `body` served as the file `filename`."""
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _file_stem(batch: BatchRecord) -> str:
    """`<GTIN>-<lot>`, the lot made safe for a file name."""
    return f"{batch.gtin}-{_safe(batch.lot)}"


def _safe(text: str) -> str:
    """A lot as it may appear in a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
