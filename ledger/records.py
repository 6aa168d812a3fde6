"""Typed records: what the read model (ledger.queries) returns to the pages, the API,
EPCIS, the audit, verification and the CLI.

Every record is a frozen, slotted dataclass built in one place (the read model) from the
index's rows. Ledger events are decoded once: `event_data` turns a stored event's name and
arguments into one record per event kind (`BatchRegistered`, `StepRecorded`...), so readers
`match` on the record's class instead of re-reading string keys. `as_dict()` gives the JSON
the API serves (the same keys as the index's columns and the event's ABI arguments).

Records are read by attribute only (`batch.lot`): there is no key access, so a misspelt
field is a type error, not a silent None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.conversions import INVALID_TEXT, kind_name


class _Record:
    """What every record serves as JSON."""

    __slots__ = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, nested records as dicts."""
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]


# ---------------------------------------------------------------------- event arguments


@dataclass(frozen=True, slots=True)
class BatchRegistered:
    """A lot registered (on its own, or as a transformation's output)."""

    batch_id: str
    supplier: str
    gtin: int
    lot: str
    quantity: int
    unit: str
    metadata_hash: str


@dataclass(frozen=True, slots=True)
class StepRecorded:
    """A business step (CBV) recorded on a lot."""

    batch_id: str
    actor: str
    biz_step: str
    location: str
    data_hash: str


@dataclass(frozen=True, slots=True)
class CustodyTransferProposed:
    """A hand-over offered by the custodian."""

    batch_id: str
    sender: str  # the ABI's `from`
    to: str


@dataclass(frozen=True, slots=True)
class CustodyTransferAccepted:
    """A hand-over accepted by the new custodian."""

    batch_id: str
    sender: str
    to: str


@dataclass(frozen=True, slots=True)
class CustodyTransferCancelled:
    """A hand-over withdrawn before it was accepted."""

    batch_id: str
    sender: str
    to: str


@dataclass(frozen=True, slots=True)
class TransformationRecorded:
    """A split, merge or process: inputs with the quantity each gave, and outputs."""

    transformation_id: str
    custodian: str
    kind: str  # "split", "merge" or "processing" (ledger.conversions.kind_name)
    inputs: tuple[tuple[str, int], ...]
    outputs: tuple[str, ...]
    data_hash: str


@dataclass(frozen=True, slots=True)
class BatchRecalled:
    """A recall of a lot."""

    batch_id: str
    by: str
    reason: str
    reason_hash: str


@dataclass(frozen=True, slots=True)
class RecallReviewed:
    """The admin's review of a recall: upheld or withdrawn."""

    batch_id: str
    by: str
    upheld: bool
    reason: str


@dataclass(frozen=True, slots=True)
class BatchVoided:
    """A lot voided as registered in error."""

    batch_id: str
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class Attested:
    """An attestation (a claim about a lot or an organisation)."""

    uid: str
    subject: str
    issuer: str
    subject_kind: int
    claim: str
    valid_from: int
    valid_until: int
    evidence_hash: str


@dataclass(frozen=True, slots=True)
class AttestationRevoked:
    """An attestation revoked by its issuer or the admin."""

    uid: str
    by: str
    reason: str
    reason_hash: str


@dataclass(frozen=True, slots=True)
class ActorDeactivated:
    """An organisation deactivated by the admin."""

    account: str


@dataclass(frozen=True, slots=True)
class ActorReactivated:
    """An organisation reactivated by the admin."""

    account: str


@dataclass(frozen=True, slots=True)
class MaxBackdatingSet:
    """How far back a claim type's attestations may start."""

    claim: str
    period: int


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """Any other ledger event (organisations, roles, licences...), its arguments as stored."""

    name: str
    values: Mapping[str, Any]


EventData = (
    BatchRegistered | StepRecorded | CustodyTransferProposed | CustodyTransferAccepted | CustodyTransferCancelled
    | TransformationRecorded | BatchRecalled | RecallReviewed | BatchVoided | Attested | AttestationRevoked
    | ActorDeactivated | ActorReactivated | MaxBackdatingSet | OtherEvent
)  # fmt: skip

_BUILDERS: dict[str, Callable[[Mapping[str, Any]], EventData]] = {
    "BatchRegistered": lambda a: BatchRegistered(
        a["batchId"], a["supplier"], int(a["gtin"]), a["lot"], int(a["quantity"]), a["unit"], a["metadataHash"]
    ),
    "StepRecorded": lambda a: StepRecorded(a["batchId"], a["actor"], a["bizStep"], a["location"], a["dataHash"]),
    "CustodyTransferProposed": lambda a: CustodyTransferProposed(a["batchId"], a["from"], a["to"]),
    "CustodyTransferAccepted": lambda a: CustodyTransferAccepted(a["batchId"], a["from"], a["to"]),
    "CustodyTransferCancelled": lambda a: CustodyTransferCancelled(a["batchId"], a["from"], a["to"]),
    "TransformationRecorded": lambda a: TransformationRecorded(
        a["transformationId"],
        a["custodian"],
        kind_name(a["kind"]),
        tuple((b, int(q)) for b, q in a["inputs"]),
        tuple(a["outputs"]),
        a["dataHash"],
    ),
    "BatchRecalled": lambda a: BatchRecalled(a["batchId"], a["by"], a["reason"], a["reasonHash"]),
    "RecallReviewed": lambda a: RecallReviewed(a["batchId"], a["by"], bool(a["upheld"]), a["reason"]),
    "BatchVoided": lambda a: BatchVoided(a["batchId"], a["by"], a["reason"]),
    "Attested": lambda a: Attested(
        a["uid"],
        a["subject"],
        a["issuer"],
        int(a["subjectKind"]),
        a["claim"],
        int(a["validFrom"]),
        int(a["validUntil"]),
        a["evidenceHash"],
    ),
    "AttestationRevoked": lambda a: AttestationRevoked(a["uid"], a["by"], a["reason"], a["reasonHash"]),
    "ActorDeactivated": lambda a: ActorDeactivated(a["account"]),
    "ActorReactivated": lambda a: ActorReactivated(a["account"]),
    "MaxBackdatingSet": lambda a: MaxBackdatingSet(a["claim"], int(a["period"])),
}


def event_data(name: str, args: Mapping[str, Any]) -> EventData:
    """The typed record of a stored event (its name and decoded arguments): the one place
    event arguments are read by key."""
    build = _BUILDERS.get(name)
    return build(args) if build else OtherEvent(name, dict(args))


@dataclass(frozen=True, slots=True)
class EventRecord(_Record):
    """A ledger event with its proof (transaction, block, log index, time). `args` are the
    arguments as stored (what the API serves), `data` the same, typed."""

    name: str
    batch_id: str | None
    actor: str | None
    actor_name: str | None
    args: dict[str, Any]
    tx_hash: str
    block_number: int
    log_index: int
    timestamp: int
    data: EventData = field(compare=False)

    @property
    def position(self) -> tuple[int, int]:
        """(block, log index): the event's place in chain order."""
        return (self.block_number, self.log_index)

    @property
    def invalid_text(self) -> list[str]:
        """The text arguments whose bytes were not valid UTF-8 (shown with U+FFFD)."""
        return list(self.args.get(INVALID_TEXT) or [])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the typed `data` is the same as `args`, so it is left out)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "data"}


@dataclass(frozen=True, slots=True)
class HistoryEvent(EventRecord):
    """An event of a lot's history, with the lot it is about and the actor's name then."""

    lot: str | None = None
    gtin: str | None = None
    actor_name_then: str | None = None  # the organisation's approved name when it happened


@dataclass(frozen=True, slots=True)
class TransactionEvent(EventRecord):
    """An event of one transaction, with its block's hash."""

    block_hash: str | None = None


# ---------------------------------------------------------------------- lots and claims


@dataclass(frozen=True, slots=True)
class BatchRow(_Record):
    """A lot as the index stores it (quantities as int: they go up to 2^64 - 1)."""

    batch_id: str
    gtin: str
    lot: str
    supplier: str
    custodian: str
    pending_custodian: str | None
    registered_quantity: int
    remaining_quantity: int
    unit: str
    metadata_hash: str
    status: str  # active | consumed | voided
    recalled: bool
    recalled_at: int | None
    recall_state: str  # none | recalled | upheld | withdrawn
    recalled_by: str | None
    recall_reason: str | None
    recall_reason_hash: str | None
    recall_tx_hash: str | None
    reviewed_at: int | None
    reviewed_by: str | None
    review_reason: str | None
    review_tx_hash: str | None
    voided_at: int | None
    voided_by: str | None
    void_reason: str | None
    void_tx_hash: str | None
    transformation_id: str | None
    registered_at: int
    block_number: int

    @classmethod
    def from_row(cls, row: Any) -> BatchRow:
        """The record of a `batches` row."""
        return cls(**_batch_columns(row))


def _batch_columns(row: Any) -> dict[str, Any]:
    return {k: (int(v) if k.endswith("_quantity") else v) for k, v in dict(row).items()}


@dataclass(frozen=True, slots=True)
class BatchListing(BatchRow):
    """A lot in a list: as stored, with its product name (only from its own details)."""

    product: str | None = None


@dataclass(frozen=True, slots=True)
class Batch(BatchRow):
    """A lot as pages and the API show it: as stored, with its product details (only from
    a metadata document that names this GTIN and lot), names, and which reasons were not
    valid UTF-8."""

    details_status: str = "missing"  # ok | mismatch | missing
    details_problem: str | None = None
    product: str | None = None
    origin: str | None = None
    documents: list[Any] = field(default_factory=list)
    declared_claims: list[Any] = field(default_factory=list)
    supplier_name: str | None = None
    custodian_name: str | None = None
    recalled_by_name: str | None = None
    reviewed_by_name: str | None = None
    voided_by_name: str | None = None
    invalid_utf8: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Attestation(_Record):
    """An attestation as the index stores it."""

    uid: str
    issuer: str
    subject_kind: str  # batch | actor
    subject: str
    claim: str
    valid_from: int
    valid_until: int  # 0: open-ended
    evidence_hash: str
    attested_at: int
    revoked_at: int | None
    revoked_by: str | None
    revocation_reason_hash: str | None
    revocation_reason: str | None
    tx_hash: str | None
    revoked_tx_hash: str | None


@dataclass(frozen=True, slots=True)
class Claim(Attestation):
    """An attestation with its status at a time: valid, not_yet_valid, expired, revoked or
    issuer_not_accredited, and the names of who issued and revoked it; with its subject's
    time of trade, its status then as well."""

    status: str
    issuer_name: str | None
    revoked_by_name: str | None
    revocation_reason_invalid_utf8: bool
    # Judged when the subject was traded (ReadModel.times_of_trade), when asked for.
    traded_at: int | None = None
    status_at_trade: str | None = None


# ---------------------------------------------------------------------- organisations


@dataclass(frozen=True, slots=True)
class Licence(_Record):
    """A licence to GS1 identifiers (a company prefix, a range, or one GTIN), with names."""

    granted_event: str  # "<tx hash>:<log index>"
    key: int  # (prefix << 4) | prefix_length
    prefix_length: int  # 4..12 digits, or 14 for one GTIN
    prefix: str
    licensee: str
    grantor: str
    parent_key: int  # 0 for a root licence
    granted_block: int
    granted_tx: str
    granted_at: int
    withdrawn_block: int | None
    withdrawn_tx: str | None
    withdrawn_at: int | None
    withdrawn_by: str | None
    lapsed_at: int | None  # a sub-licence whose root licence was withdrawn
    in_force: bool
    licensee_name: str | None
    grantor_name: str | None
    withdrawn_by_name: str | None
    sub_licence: bool


@dataclass(frozen=True, slots=True)
class Actor(_Record):
    """A registered organisation as listed (its approved name; never a pending request)."""

    address: str
    actor_id: int
    name: str
    country: str
    metadata_hash: str
    active: bool
    registered_at: int


@dataclass(frozen=True, slots=True)
class ProfileRequest(_Record):
    """A profile change an organisation asked for and the admin has not approved."""

    name: str
    country: str | None
    metadata_hash: str | None
    at: int | None
    name_invalid_utf8: bool


@dataclass(frozen=True, slots=True)
class ActorDetail(Actor):
    """An organisation with its roles, its pending profile request and its licences."""

    name_invalid_utf8: bool = False
    supplier: bool = False
    accredited_claims: list[str] = field(default_factory=list)
    pending_profile_request: ProfileRequest | None = None
    licences: list[Licence] = field(default_factory=list)


# ---------------------------------------------------------------------- lineage


@dataclass(frozen=True, slots=True)
class LotSummary(_Record):
    """A lot as a lineage tree names it."""

    batch_id: str
    gtin: str
    lot: str
    supplier: str
    supplier_name: str | None
    quantity: int  # registered
    unit: str
    recalled: bool
    status: str
    product: str | None


@dataclass(frozen=True, slots=True)
class LineageNode(_Record):
    """A lot in a lineage tree (`summary` None: the index does not hold it). Up: `inputs` with
    the `quantity_used` of each; down: `outputs`, each with the `transformation_id` that
    made it. None marks what a node does not have (a leaf has no `inputs`)."""

    batch_id: str
    summary: LotSummary | None = None
    transformation_id: str | None = None
    quantity_used: int | None = None
    inputs: tuple[LineageNode, ...] | None = None
    outputs: tuple[LineageNode, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the lot's fields flat beside the node's, only those the node has."""
        data: dict[str, Any] = self.summary.as_dict() if self.summary else {"batch_id": self.batch_id}
        if self.quantity_used is not None:
            data["quantity_used"] = self.quantity_used
        if self.transformation_id is not None:
            data["transformation_id"] = self.transformation_id
        if self.inputs is not None:
            data["inputs"] = [n.as_dict() for n in self.inputs]
        if self.outputs is not None:
            data["outputs"] = [n.as_dict() for n in self.outputs]
        return data
