"""One pure function per ledger event: the event in, the store operations it implies out.

Handlers read nothing and write nothing; `store.apply` carries their operations out in
the same database transaction as the event row, so an event is applied exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from eth_utils.crypto import keccak

from ledger.conversions import SUBJECT_KINDS as CONVERSION_SUBJECT_KINDS
from ledger.conversions import TRANSFORMATION_KINDS
from ledger.indexer import schema

SUPPLIER_ROLE = "0x" + keccak(text="SUPPLIER_ROLE").hex()
DEFAULT_ADMIN_ROLE = "0x" + "00" * 32
SINGLE_GTIN = 14  # a licence's prefix length when it names exactly one GTIN-14
KINDS = dict(enumerate(TRANSFORMATION_KINDS))  # the contract's numbers -> names (ledger.conversions)
SUBJECT_KINDS = dict(enumerate(CONVERSION_SUBJECT_KINDS))


# Events and operations are named tuples, not frozen dataclasses: a bulk range makes
# hundreds of thousands of them and a tuple is built several times faster.


class LedgerEvent(NamedTuple):
    """A decoded log of the ledger contract with where and when it happened."""

    name: str
    args: dict[str, Any]
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    timestamp: int


class Insert(NamedTuple):
    """Insert one row: `values` in `columns` order (columns left out are NULL). A tuple,
    not a dict, so a bulk range's rows go to the driver as they are."""

    table: Any
    columns: tuple[str, ...]
    values: tuple[Any, ...]


def insert(table: Any, values: dict[str, Any]) -> Insert:
    """An Insert written as a dict of column -> value (handlers that are not hot paths)."""
    return Insert(table, tuple(values), tuple(values.values()))


class Update(NamedTuple):
    """Update rows matching `where` (a None value matches NULL)."""

    table: Any
    where: dict[str, Any]
    values: dict[str, Any]


class Delete(NamedTuple):
    """Delete rows matching `where`."""

    table: Any
    where: dict[str, Any]


class Consume(NamedTuple):
    """Take `quantity` from a batch's remaining quantity; a batch at zero is consumed."""

    batch_id: str
    quantity: int


Operation = Insert | Update | Delete | Consume


class Subject(NamedTuple):
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


def _event_key(e: LedgerEvent) -> str:
    return f"{e.tx_hash}:{e.log_index}"


@handles("ClaimTypeDefined")
def claim_type_defined(e: LedgerEvent) -> list[Operation]:
    # MaxBackdatingSet follows in the same transaction with the default period.
    return [
        insert(
            schema.claim_types,
            {
                "claim": e.args["claim"],
                "claim_type_id": e.args["claimTypeId"],
                "role": e.args["accreditationRole"],
                "max_backdating": None,
            },
        )
    ]


@handles("MaxBackdatingSet")
def max_backdating_set(e: LedgerEvent) -> list[Operation]:
    return [Update(schema.claim_types, {"claim": e.args["claim"]}, {"max_backdating": e.args["period"]})]


def _name_row(e: LedgerEvent) -> Insert:
    """The approved name from this event on (history pages may show the name of the time)."""
    a = e.args
    return insert(
        schema.actor_names,
        {
            "address": a["account"],
            "block_number": e.block_number,
            "log_index": e.log_index,
            "name": a["name"],
            "country": a["country"],
            "since": e.timestamp,
        },
    )


@handles("ActorRegistered", lambda a: Subject(actor=a["account"]))
def actor_registered(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [
        insert(schema.actors, {"address": a["account"], "actor_id": a["actorId"], "name": a["name"], "country": a["country"],
                               "metadata_hash": a["metadataHash"], "active": True, "registered_at": e.timestamp,
                               "requested_name": None, "requested_country": None, "requested_metadata_hash": None,
                               "requested_at": None}),
        _name_row(e),
    ]  # fmt: skip


@handles("ActorProfileUpdateRequested", lambda a: Subject(actor=a["account"]))
def actor_profile_update_requested(e: LedgerEvent) -> list[Operation]:
    # Only a request: the organisation's name stays what the admin approved.
    a = e.args
    return [
        Update(
            schema.actors,
            {"address": a["account"]},
            {
                "requested_name": a["name"],
                "requested_country": a["country"],
                "requested_metadata_hash": a["metadataHash"],
                "requested_at": e.timestamp,
            },
        )
    ]


@handles("ActorProfileUpdated", lambda a: Subject(actor=a["account"]))
def actor_profile_updated(e: LedgerEvent) -> list[Operation]:
    # Emitted only when the admin approves the request.
    a = e.args
    return [
        Update(schema.actors, {"address": a["account"]}, {"name": a["name"], "country": a["country"], "metadata_hash": a["metadataHash"],
                                                          "requested_name": None, "requested_country": None,
                                                          "requested_metadata_hash": None, "requested_at": None}),
        _name_row(e),
    ]  # fmt: skip


def prefix_digits(prefix_length: int, prefix: int) -> str:
    """A licence's prefix as the digits it stands for (leading zeros kept)."""
    return f"{prefix:0{prefix_length}d}"


@handles("LicenceGranted", lambda a: Subject(actor=a["licensee"]))
def licence_granted(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [
        insert(
            schema.licences,
            {
                "granted_event": _event_key(e),
                "key": a["key"],
                "prefix_length": a["prefixLength"],
                "prefix": prefix_digits(a["prefixLength"], a["prefix"]),
                "licensee": a["licensee"],
                "grantor": a["grantor"],
                "parent_key": a["parentKey"],
                "granted_block": e.block_number,
                "granted_tx": e.tx_hash,
                "granted_at": e.timestamp,
                "withdrawn_block": None,
                "withdrawn_tx": None,
                "withdrawn_at": None,
                "withdrawn_by": None,
                "lapsed_at": None,
                "in_force": True,
            },
        )
    ]


@handles("LicenceWithdrawn", lambda a: Subject(actor=a["licensee"]))
def licence_withdrawn(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [
        Update(schema.licences, {"key": a["key"], "withdrawn_tx": None},
               {"withdrawn_block": e.block_number, "withdrawn_tx": e.tx_hash, "withdrawn_at": e.timestamp, "withdrawn_by": a["by"],
                "in_force": False}),
        # Sub-licences cut from this root licence lapse with it, for good: a root licence
        # granted again later does not revive them (the contract compares serials).
        Update(schema.licences, {"parent_key": a["key"], "withdrawn_tx": None, "lapsed_at": None},
               {"lapsed_at": e.timestamp, "in_force": False}),
    ]  # fmt: skip


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
        insert(schema.roles, {"role": a["role"], "account": a["account"]}),
        insert(
            schema.accreditations,
            {
                "certifier": a["account"],
                "role": a["role"],
                "granted_event": f"{e.tx_hash}:{e.log_index}",
                "granted_at": e.timestamp,
                "revoked_at": None,
            },
        ),
    ]


@handles("RoleRevoked", lambda a: Subject(actor=a["account"]))
def role_revoked(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [
        Delete(schema.roles, {"role": a["role"], "account": a["account"]}),
        Update(
            schema.accreditations, {"certifier": a["account"], "role": a["role"], "revoked_at": None}, {"revoked_at": e.timestamp}
        ),
    ]


#: The columns a registration fills; the others (recall, review, voiding, pending
#: custodian, transformation) stay NULL until a later event sets them.
BATCH_ROW = (
    "batch_id",
    "gtin",
    "lot",
    "supplier",
    "custodian",
    "registered_quantity",
    "remaining_quantity",
    "unit",
    "metadata_hash",
    "status",
    "recalled",
    "recall_state",
    "registered_at",
    "block_number",
)


@handles("BatchRegistered", lambda a: Subject(batch_id=a["batchId"], actor=a["supplier"]))
def batch_registered(e: LedgerEvent) -> list[Operation]:
    # The hot path of a bulk registration: a tuple in BATCH_ROW order, no dict.
    a = e.args
    return [
        Insert(
            schema.batches,
            BATCH_ROW,
            (
                a["batchId"],
                f"{a['gtin']:014d}",
                a["lot"],
                a["supplier"],
                a["supplier"],
                a["quantity"],
                a["quantity"],
                a["unit"],
                a["metadataHash"],
                "active",
                False,
                "none",
                e.timestamp,
                e.block_number,
            ),
        )
    ]


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
        insert(
            schema.transformations,
            {
                "transformation_id": tid,
                "custodian": a["custodian"],
                "kind": KINDS[a["kind"]],
                "data_hash": a["dataHash"],
                "timestamp": e.timestamp,
                "tx_hash": e.tx_hash,
            },
        )
    ]
    for position, (batch_id, quantity) in enumerate(a["inputs"]):
        ops.append(
            insert(
                schema.transformation_inputs,
                {"transformation_id": tid, "position": position, "batch_id": batch_id, "quantity": quantity},
            )
        )
        ops.append(Consume(batch_id, quantity))
    for position, batch_id in enumerate(a["outputs"]):
        ops.append(insert(schema.transformation_outputs, {"transformation_id": tid, "position": position, "batch_id": batch_id}))
        ops.append(Update(schema.batches, {"batch_id": batch_id}, {"transformation_id": tid}))
    return ops


@handles("BatchRecalled", lambda a: Subject(batch_id=a["batchId"], actor=a["by"]))
def batch_recalled(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [
        Update(
            schema.batches,
            {"batch_id": a["batchId"]},
            {
                "recalled": True,
                "recalled_at": e.timestamp,
                "recall_state": "recalled",
                "recalled_by": a["by"],
                "recall_reason": a.get("reason"),
                "recall_reason_hash": a["reasonHash"],
                "recall_tx_hash": e.tx_hash,
                "reviewed_at": None,
                "reviewed_by": None,
                "review_reason": None,
                "review_tx_hash": None,
            },
        )
    ]


@handles("RecallReviewed", lambda a: Subject(batch_id=a["batchId"], actor=a["by"]))
def recall_reviewed(e: LedgerEvent) -> list[Operation]:
    a = e.args
    # Upheld is final; a withdrawn recall frees the batch: it is no longer recalled.
    return [
        Update(
            schema.batches,
            {"batch_id": a["batchId"]},
            {
                "recalled": bool(a["upheld"]),
                "recall_state": "upheld" if a["upheld"] else "withdrawn",
                "reviewed_at": e.timestamp,
                "reviewed_by": a["by"],
                "review_reason": a["reason"],
                "review_tx_hash": e.tx_hash,
            },
        )
    ]


@handles("BatchVoided", lambda a: Subject(batch_id=a["batchId"], actor=a["by"]))
def batch_voided(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [
        Update(
            schema.batches,
            {"batch_id": a["batchId"]},
            {
                "status": "voided",
                "pending_custodian": None,
                "voided_at": e.timestamp,
                "voided_by": a["by"],
                "void_reason": a["reason"],
                "void_tx_hash": e.tx_hash,
            },
        )
    ]


@handles("NoncesInvalidated", lambda a: Subject(actor=a["issuer"]))
def nonces_invalidated(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [
        Delete(schema.issuer_nonces, {"issuer": a["issuer"]}),
        insert(schema.issuer_nonces, {"issuer": a["issuer"], "next_nonce": str(a["nextNonce"]), "invalidated_at": e.timestamp}),
    ]


@handles("Attested", lambda a: Subject(batch_id=a["subject"] if a["subjectKind"] == 0 else None, actor=a["issuer"]))
def attested(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [
        insert(
            schema.attestations,
            {
                "uid": a["uid"], "issuer": a["issuer"], "subject_kind": SUBJECT_KINDS[a["subjectKind"]], "subject": a["subject"],
                "claim": a["claim"], "valid_from": a["validFrom"], "valid_until": a["validUntil"],
                "evidence_hash": a["evidenceHash"], "attested_at": e.timestamp, "revoked_at": None, "revoked_by": None,
                "revocation_reason_hash": None, "revocation_reason": None, "tx_hash": e.tx_hash, "revoked_tx_hash": None,
            },
        )
    ]  # fmt: skip


@handles("AttestationRevoked", lambda a: Subject(actor=a["by"]))
def attestation_revoked(e: LedgerEvent) -> list[Operation]:
    a = e.args
    return [
        Update(
            schema.attestations,
            {"uid": a["uid"]},
            {
                "revoked_at": e.timestamp,
                "revoked_by": a["by"],
                "revocation_reason_hash": a["reasonHash"],
                "revocation_reason": a.get("reason"),
                "revoked_tx_hash": e.tx_hash,
            },
        )
    ]
