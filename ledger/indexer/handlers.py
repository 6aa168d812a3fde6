"""One pure function per ledger event: the event in, the store operations it implies out.

Handlers read nothing and write nothing; `store.apply` carries their operations out in
the same database transaction as the event row, so an event is applied exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak

from ledger.indexer import schema

SUPPLIER_ROLE = "0x" + keccak(text="SUPPLIER_ROLE").hex()
KINDS = {0: "split", 1: "merge", 2: "processing"}
SUBJECT_KINDS = {0: "batch", 1: "actor"}


@dataclass(frozen=True)
class LedgerEvent:
    """A decoded log of the ledger contract with where and when it happened."""

    name: str
    args: dict[str, Any]
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    timestamp: int


@dataclass(frozen=True)
class Insert:
    """Insert one row."""

    table: Any
    values: dict[str, Any]


@dataclass(frozen=True)
class Update:
    """Update rows matching `where` (a None value matches NULL)."""

    table: Any
    where: dict[str, Any]
    values: dict[str, Any]


@dataclass(frozen=True)
class Delete:
    """Delete rows matching `where`."""

    table: Any
    where: dict[str, Any]


@dataclass(frozen=True)
class Consume:
    """Take `quantity` from a batch's remaining quantity; a batch at zero is consumed."""

    batch_id: str
    quantity: int


Operation = Insert | Update | Delete | Consume


@dataclass(frozen=True)
class Subject:
    """What an event is about, for the events table's lookup columns."""

    batch_id: str | None = None
    actor: str | None = None


Handler = Callable[[LedgerEvent], list[Operation]]
HANDLERS: dict[str, Handler] = {}
SUBJECTS: dict[str, Callable[[dict[str, Any]], Subject]] = {}


def handles(name: str, subject: Callable[[dict[str, Any]], Subject] = lambda a: Subject()) -> Callable[[Handler], Handler]:
    """Register `function` as the handler of event `name`."""

    def register(function: Handler) -> Handler:
        HANDLERS[name] = function
        SUBJECTS[name] = subject
        return function

    return register


def operations_for(event: LedgerEvent) -> list[Operation]:
    """The operations of `event` (none for events the index does not model, e.g. admin hand-over)."""
    handler = HANDLERS.get(event.name)
    return handler(event) if handler else []


def subject_of(event: LedgerEvent) -> Subject:
    """The batch and actor an event is about."""
    subject = SUBJECTS.get(event.name)
    return subject(event.args) if subject else Subject()


@handles("ClaimTypeDefined")
def claim_type_defined(e: LedgerEvent) -> list[Operation]:
    return [Insert(schema.claim_types, {"claim": e.args["claim"], "claim_type_id": e.args["claimTypeId"], "role": e.args["accreditationRole"]})]


@handles("ActorRegistered", lambda a: Subject(actor=a["account"]))
def actor_registered(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [Insert(schema.actors, {"address": a["account"], "actor_id": a["actorId"], "name": a["name"], "country": a["country"],
                                   "metadata_hash": a["metadataHash"], "active": True, "registered_at": e.timestamp})]  # fmt: skip


@handles("ActorProfileUpdated", lambda a: Subject(actor=a["account"]))
def actor_profile_updated(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [Update(schema.actors, {"address": a["account"]}, {"name": a["name"], "country": a["country"], "metadata_hash": a["metadataHash"]})]


@handles("ActorDeactivated", lambda a: Subject(actor=a["account"]))
def actor_deactivated(e: LedgerEvent) -> list[Operation]:
    return [Update(schema.actors, {"address": e.args["account"]}, {"active": False})]


@handles("ActorReactivated", lambda a: Subject(actor=a["account"]))
def actor_reactivated(e: LedgerEvent) -> list[Operation]:
    return [Update(schema.actors, {"address": e.args["account"]}, {"active": True})]


@handles("RoleGranted", lambda a: Subject(actor=a["account"]))
def role_granted(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [
        Insert(schema.roles, {"role": a["role"], "account": a["account"]}),
        Insert(schema.accreditations, {"certifier": a["account"], "role": a["role"], "granted_event": f"{e.tx_hash}:{e.log_index}",
                                       "granted_at": e.timestamp, "revoked_at": None}),  # fmt: skip
    ]


@handles("RoleRevoked", lambda a: Subject(actor=a["account"]))
def role_revoked(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [
        Delete(schema.roles, {"role": a["role"], "account": a["account"]}),
        Update(schema.accreditations, {"certifier": a["account"], "role": a["role"], "revoked_at": None}, {"revoked_at": e.timestamp}),
    ]


@handles("BatchRegistered", lambda a: Subject(batch_id=a["batchId"], actor=a["supplier"]))
def batch_registered(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [
        Insert(
            schema.batches,
            {
                "batch_id": a["batchId"], "gtin": f"{a['gtin']:014d}", "lot": a["lot"], "supplier": a["supplier"],
                "custodian": a["supplier"], "pending_custodian": None, "registered_quantity": a["quantity"],
                "remaining_quantity": a["quantity"], "unit": a["unit"], "metadata_hash": a["metadataHash"],
                "status": "active", "recalled": False, "recalled_at": None, "transformation_id": None,
                "registered_at": e.timestamp, "block_number": e.block_number,
            },
        )
    ]  # fmt: skip


@handles("CustodyTransferProposed", lambda a: Subject(batch_id=a["batchId"], actor=a["to"]))
def custody_proposed(e: LedgerEvent) -> list[Operation]:
    return [Update(schema.batches, {"batch_id": e.args["batchId"]}, {"pending_custodian": e.args["to"]})]


@handles("CustodyTransferAccepted", lambda a: Subject(batch_id=a["batchId"], actor=a["to"]))
def custody_accepted(e: LedgerEvent) -> list[Operation]:
    return [Update(schema.batches, {"batch_id": e.args["batchId"]}, {"custodian": e.args["to"], "pending_custodian": None})]


@handles("CustodyTransferCancelled", lambda a: Subject(batch_id=a["batchId"], actor=a["to"]))
def custody_cancelled(e: LedgerEvent) -> list[Operation]:
    return [Update(schema.batches, {"batch_id": e.args["batchId"]}, {"pending_custodian": None})]


@handles("StepRecorded", lambda a: Subject(batch_id=a["batchId"], actor=a["actor"]))
def step_recorded(e: LedgerEvent) -> list[Operation]:
    return []  # a step changes no state: the events table is its record


@handles("TransformationRecorded", lambda a: Subject(actor=a["custodian"]))
def transformation_recorded(e: LedgerEvent) -> list[Operation]:
    a = e.args
    tid = a["transformationId"]
    ops: list[Operation] = [
        Insert(schema.transformations, {"transformation_id": tid, "custodian": a["custodian"], "kind": KINDS[a["kind"]],
                                        "data_hash": a["dataHash"], "timestamp": e.timestamp, "tx_hash": e.tx_hash})  # fmt: skip
    ]
    for position, (batch_id, quantity) in enumerate(a["inputs"]):
        ops.append(Insert(schema.transformation_inputs, {"transformation_id": tid, "position": position, "batch_id": batch_id, "quantity": quantity}))
        ops.append(Consume(batch_id, quantity))
    for position, batch_id in enumerate(a["outputs"]):
        ops.append(Insert(schema.transformation_outputs, {"transformation_id": tid, "position": position, "batch_id": batch_id}))
        ops.append(Update(schema.batches, {"batch_id": batch_id}, {"transformation_id": tid}))
    return ops


@handles("BatchRecalled", lambda a: Subject(batch_id=a["batchId"], actor=a["by"]))
def batch_recalled(e: LedgerEvent) -> list[Operation]:
    return [Update(schema.batches, {"batch_id": e.args["batchId"]}, {"recalled": True, "recalled_at": e.timestamp})]


@handles("Attested", lambda a: Subject(batch_id=a["subject"] if a["subjectKind"] == 0 else None, actor=a["issuer"]))
def attested(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [
        Insert(
            schema.attestations,
            {
                "uid": a["uid"], "issuer": a["issuer"], "subject_kind": SUBJECT_KINDS[a["subjectKind"]], "subject": a["subject"],
                "claim": a["claim"], "valid_from": a["validFrom"], "valid_until": a["validUntil"],
                "evidence_hash": a["evidenceHash"], "attested_at": e.timestamp, "revoked_at": None, "revoked_by": None,
                "revocation_reason_hash": None, "tx_hash": e.tx_hash, "revoked_tx_hash": None,
            },
        )
    ]  # fmt: skip


@handles("AttestationRevoked", lambda a: Subject(actor=a["by"]))
def attestation_revoked(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [Update(schema.attestations, {"uid": a["uid"]}, {"revoked_at": e.timestamp, "revoked_by": a["by"], "revocation_reason_hash": a["reasonHash"], "revoked_tx_hash": e.tx_hash})]
