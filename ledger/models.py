"""Typed records of the ledger: what callers send (`...Create`) and what they get back."""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ledger import identifiers
from ledger.conversions import short_text
from ledger.errors import InvalidInputError

METADATA_SCHEMA = "provenance-ledger/batch-metadata/1"
CLAIM_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
ZERO_HASH = b"\0" * 32


class BatchStatus(IntEnum):
    """Mirror of IProvenanceLedger.BatchStatus."""

    NONE = 0
    ACTIVE = 1
    CONSUMED = 2
    VOIDED = 3


class RecallState(IntEnum):
    """Mirror of IProvenanceLedger.RecallState."""

    NONE = 0
    RECALLED = 1
    UPHELD = 2
    WITHDRAWN = 3


class TransformationKind(IntEnum):
    """Mirror of IProvenanceLedger.TransformationKind."""

    SPLIT = 0
    MERGE = 1
    PROCESSING = 2


class SubjectKind(IntEnum):
    """Mirror of IProvenanceLedger.SubjectKind."""

    BATCH = 0
    ACTOR = 1


class AttestationStatus(IntEnum):
    """Mirror of IProvenanceLedger.AttestationStatus."""

    NOT_FOUND = 0
    VALID = 1
    NOT_YET_VALID = 2
    EXPIRED = 3
    REVOKED = 4
    ISSUER_NOT_ACCREDITED = 5


class DocumentRef(BaseModel):
    """A document kept off chain, named by its sha256. A private one (`private: true` in
    the metadata, under a neutral name) is held by its owner only: servers neither accept,
    fetch nor serve it on the strength of this reference (ledger.documents)."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    private: bool = False

    def as_json(self) -> dict[str, Any]:
        """The reference as metadata names it: `private` only when true, so the metadata of
        a lot with public documents only hashes as it always has."""
        return self.model_dump(exclude_defaults=True)


# RFC 8785 refuses integers beyond the IEEE 754 safe range (JSON numbers are doubles), yet
# the ledger counts up to 2^64 - 1: larger quantities go into documents as decimal text.
_JSON_SAFE_INTEGER = 2**53 - 1


def metadata_mismatch(document: dict[str, Any], gtin: str, lot: str) -> str | None:
    """Why a metadata document is not the batch's own (None when it names this GTIN and lot).

    The chain anchors only a hash, so anyone can point a new lot at another lot's document;
    every reader (index, pages, verify, audit, CLI) refuses such details with this rule."""
    named_gtin, named_lot = document.get("gtin"), document.get("lot")
    if named_gtin != gtin or named_lot != lot:
        return f"the document names GTIN {named_gtin!r} lot {named_lot!r}, not GTIN {gtin!r} lot {lot!r}"
    return None


def json_quantity(quantity: int) -> int | str:
    """A quantity as a metadata document holds it: a number, or decimal text beyond 2^53 - 1."""
    return quantity if quantity <= _JSON_SAFE_INTEGER else str(quantity)


class BatchCreate(BaseModel):
    """What a supplier declares for a new batch. Validated before anything is sent."""

    model_config = ConfigDict(frozen=True)

    gtin: str
    lot: str
    quantity: int
    unit: str
    product: str = Field(min_length=1, max_length=200)
    origin: str | None = Field(default=None, max_length=200)
    documents: tuple[DocumentRef, ...] = ()
    #: Claims the supplier makes itself (e.g. FAIRTRADE); pages show them as self-declared
    #: unless an accredited certifier attests them.
    claims: tuple[str, ...] = ()
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("gtin")
    @classmethod
    def _gtin(cls, value: str) -> str:
        return identifiers.parse_gtin(value)

    @field_validator("lot")
    @classmethod
    def _lot(cls, value: str) -> str:
        return identifiers.check_lot(value)

    @field_validator("quantity")
    @classmethod
    def _quantity(cls, value: int) -> int:
        return identifiers.check_quantity(value)

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        return identifiers.check_unit(value)

    @field_validator("claims")
    @classmethod
    def _claims(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for claim in value:
            if not CLAIM_PATTERN.fullmatch(claim):
                raise ValueError(f"claim {claim!r} must be an upper-case claim type such as FAIRTRADE (A-Z, 0-9, _; up to 32)")
        return tuple(sorted(set(value)))

    @property
    def batch_id(self) -> bytes:
        """The ledger's id of this GTIN + lot."""
        return identifiers.checked_batch_id(int(self.gtin), self.lot.encode("ascii"))  # fields validated

    def metadata_document(self) -> dict[str, Any]:
        """The off-chain metadata document whose RFC 8785 hash is anchored on chain."""
        document: dict[str, Any] = {
            "schema": METADATA_SCHEMA,
            "gtin": self.gtin,
            "lot": self.lot,
            "product": self.product,
            "quantity": json_quantity(self.quantity),
            "unit": self.unit,
        }
        if self.origin:
            document["origin"] = self.origin
        if self.claims:
            document["claims"] = list(self.claims)
        if self.documents:
            document["documents"] = [d.as_json() for d in self.documents]
        if self.extra:
            document["extra"] = self.extra
        return document

    def contract_input(self, metadata_hash: bytes) -> tuple[int, bytes, int, bytes, bytes]:
        """The IProvenanceLedger.BatchInput tuple."""
        return (
            int(self.gtin),
            identifiers.lot_bytes(self.lot),
            self.quantity,
            self.unit.encode("ascii").ljust(3, b"\0"),
            metadata_hash,
        )


class TxReceipt(BaseModel):
    """Where a write landed."""

    tx_hash: str
    block_number: int
    gas_used: int


class RegistrationResult(BaseModel):
    """The outcome of registering one batch."""

    batch_id: str
    gtin: str
    lot: str
    status: str  # "registered" | "already_registered"
    tx_hash: str | None
    block_number: int | None
    url: str
    metadata_hash: str


class BatchState(BaseModel):
    """A batch as the contract's rules see it now."""

    batch_id: str
    supplier: str
    custodian: str
    pending_custodian: str | None
    registered_quantity: int
    remaining_quantity: int
    status: BatchStatus
    recalled: bool
    recall_state: RecallState = RecallState.NONE
    registered_at: int = 0


class AttestationCreate(BaseModel):
    """What a certifier states when attesting a claim."""

    subject_kind: SubjectKind
    subject: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    claim: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,31}$")
    valid_from: int = Field(default=0, ge=0)
    valid_until: int = Field(default=0, ge=0)
    evidence_hash: str = Field(default="0x" + "00" * 32, pattern=r"^0x[0-9a-fA-F]{64}$")

    def contract_input(self) -> tuple[int, bytes, bytes, int, int, bytes]:
        """The IProvenanceLedger.AttestationRequest tuple."""
        return (
            int(self.subject_kind),
            bytes.fromhex(self.subject[2:]),
            claim_bytes(self.claim),
            self.valid_from,
            self.valid_until,
            bytes.fromhex(self.evidence_hash[2:]),
        )


class SignedAttestation(BaseModel):
    """An EIP-712 signed attestation, made offline by a certifier and submitted by anyone.

    `signed_at` is part of the signature: a request with `valid_from` 0 starts then, so
    whoever submits it cannot choose the start.
    """

    request: AttestationCreate
    issuer: str
    signed_at: int = Field(ge=0)
    nonce: int
    deadline: int
    chain_id: int
    contract: str
    signature: str


class LicenceScope(BaseModel):
    """What a GS1 licence covers: a GS1 Company Prefix (or a longer range inside one), or one GTIN.

    `prefix_length` 4..12 counts the digits after the GTIN-14's indicator digit; 14 means
    exactly one GTIN-14 (then `prefix` is the GTIN as a number).
    """

    model_config = ConfigDict(frozen=True)

    prefix_length: int
    prefix: int

    @classmethod
    def company_prefix(cls, digits: str) -> LicenceScope:
        """A GS1 Company Prefix given as its digits (4 to 12; leading zeros count)."""
        cleaned = digits.strip()
        if not cleaned.isdigit() or not 4 <= len(cleaned) <= 12:
            raise InvalidInputError(
                f"prefix {digits!r} must be 4 to 12 digits: a GS1 Company Prefix as GS1 issued it "
                "(the digits after a GTIN-14's indicator digit), or use a single GTIN"
            )
        return cls(prefix_length=len(cleaned), prefix=int(cleaned))

    @classmethod
    def single_gtin(cls, gtin: str) -> LicenceScope:
        """Exactly one GTIN (GTIN-8/12/13/14, check digit verified)."""
        return cls(prefix_length=14, prefix=int(identifiers.parse_gtin(gtin)))

    @property
    def key(self) -> int:
        """The contract's licence key: (prefix << 4) | prefix_length."""
        return (self.prefix << 4) | self.prefix_length

    @classmethod
    def from_key(cls, key: int) -> LicenceScope:
        """Inverse of :attr:`key`."""
        return cls(prefix_length=key & 0xF, prefix=key >> 4)

    @property
    def digits(self) -> str:
        """The prefix as printed (leading zeros kept), or the GTIN-14."""
        return f"{self.prefix:0{self.prefix_length}d}"

    def covers(self, gtin: str) -> bool:
        """Whether `gtin` falls inside this scope."""
        gtin14 = identifiers.parse_gtin(gtin)
        if self.prefix_length == 14:
            return gtin14 == self.digits
        return gtin14[1:].startswith(self.digits)

    def describe(self) -> str:
        """'GS1 Company Prefix 9506000' or 'GTIN 09506000134376'."""
        return describe_licence(self.prefix_length, self.prefix)


def describe_licence(prefix_length: int, prefix: int) -> str:
    """Words for a licence scope as the contract's errors and events give it."""
    if prefix_length == 14:
        return f"GTIN {prefix:014d}"
    if 4 <= prefix_length <= 12:
        return f"GS1 Company Prefix {prefix:0{prefix_length}d}"
    return f"prefix {prefix} of length {prefix_length}"


def claim_bytes(claim: str) -> bytes:
    """A claim type as the contract takes it: ASCII left-aligned in 32 bytes."""
    return claim.encode("ascii").ljust(32, b"\0")


def short_string(raw: bytes) -> str:
    """Inverse of :func:`claim_bytes` (and of business steps)."""
    return short_text(raw)
