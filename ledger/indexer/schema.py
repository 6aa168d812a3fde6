"""Tables of the index (SQLAlchemy Core). Addresses are checksummed text, ids 0x-hex text,
times unix seconds, quantities exact integers up to 2^64 - 1 (see `Quantity`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

metadata = MetaData()

#: uint64 quantities: 2^64 - 1 has 20 digits.
QUANTITY_DIGITS = 20
MAX_QUANTITY = 2**64 - 1


class Quantity(TypeDecorator[int]):
    """An exact uint64 quantity. PostgreSQL: NUMERIC(20, 0) (BIGINT stops at 2^63 - 1).
    SQLite: 20 zero-padded digits as text, because SQLite's integers are signed 64-bit
    (the driver raises OverflowError from 2^63) and NUMERIC affinity turns larger values
    into lossy floats; padded digits sort and compare like the numbers. Arithmetic on
    quantities happens in Python (`store._consume`, the read model's sums), never in SQL."""

    impl = Numeric(QUANTITY_DIGITS, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(QUANTITY_DIGITS))
        return dialect.type_descriptor(Numeric(QUANTITY_DIGITS, 0))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = int(value)
        if not 0 <= number <= MAX_QUANTITY:
            raise ValueError(f"quantity {number} is outside 0..2^64-1")
        return f"{number:0{QUANTITY_DIGITS}d}" if dialect.name == "sqlite" else number

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


def quantity_storage(dialect: Dialect) -> Any:
    """A fast `Quantity` bind conversion for the bulk insert path (same result)."""
    sqlite = dialect.name == "sqlite"

    def store(value: Any) -> Any:
        number = int(value)
        if not 0 <= number <= MAX_QUANTITY:
            raise ValueError(f"quantity {number} is outside 0..2^64-1")
        return f"{number:020d}" if sqlite else number

    return store


def quantity_columns(table: Table) -> list[str]:
    """The names of `table`'s quantity columns (the bulk insert converts them itself)."""
    return [c.name for c in table.columns if isinstance(c.type, Quantity)]


cursor = Table(
    "indexer_cursor",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("contract", String(42), nullable=False),
    Column("chain_id", BigInteger, nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", String(66), nullable=False),
    # Freshness: the chain head seen by the last completed sync and when (unix seconds),
    # so readers can say how far behind the index is without asking the chain.
    Column("head_seen", BigInteger, nullable=True),
    Column("checked_at", BigInteger, nullable=True),
)

blocks = Table(
    "blocks",
    metadata,
    Column("number", BigInteger, primary_key=True),
    Column("hash", String(66), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("tx_hash", String(66), primary_key=True),
    Column("log_index", Integer, primary_key=True),
    Column("block_number", BigInteger, nullable=False, index=True),
    Column("block_hash", String(66), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("name", String(40), nullable=False),
    Column("batch_id", String(66), index=True),
    Column("actor", String(42), index=True),
    Column("args", Text, nullable=False),  # JSON of the decoded arguments
)

actors = Table(
    "actors",
    metadata,
    Column("address", String(42), primary_key=True),
    Column("actor_id", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("country", String(2), nullable=False),
    Column("metadata_hash", String(66), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("registered_at", BigInteger, nullable=False),
    # A profile change the organisation asked for and the admin has not approved yet:
    # never shown as its name anywhere.
    Column("requested_name", Text),
    Column("requested_country", String(2)),
    Column("requested_metadata_hash", String(66)),
    Column("requested_at", BigInteger),
)

actor_names = Table(  # every approved name of an organisation, from when it held it
    "actor_names",
    metadata,
    Column("address", String(42), primary_key=True),
    Column("block_number", BigInteger, primary_key=True),
    Column("log_index", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("country", String(2), nullable=False),
    Column("since", BigInteger, nullable=False),
)

licences = Table(  # every licence to GS1 identifiers ever granted, by granting event
    "licences",
    metadata,
    Column("granted_event", String(80), primary_key=True),  # "<tx hash>:<log index>"
    Column("key", BigInteger, nullable=False, index=True),  # (prefix << 4) | prefix_length
    Column("prefix_length", Integer, nullable=False),  # 4..12 digits, or 14 for one GTIN
    Column("prefix", String(14), nullable=False),  # the digits, leading zeros kept
    Column("licensee", String(42), nullable=False, index=True),
    Column("grantor", String(42), nullable=False),
    Column("parent_key", BigInteger, nullable=False),  # 0 for a root licence
    Column("granted_block", BigInteger, nullable=False),
    Column("granted_tx", String(66), nullable=False),
    Column("granted_at", BigInteger, nullable=False),
    Column("withdrawn_block", BigInteger),
    Column("withdrawn_tx", String(66)),
    Column("withdrawn_at", BigInteger),
    Column("withdrawn_by", String(42)),
    Column("lapsed_at", BigInteger),  # a sub-licence whose root licence was withdrawn
    Column("in_force", Boolean, nullable=False),
)

roles = Table(
    "roles",
    metadata,
    Column("role", String(66), primary_key=True),
    Column("account", String(42), primary_key=True),
)

claim_types = Table(
    "claim_types",
    metadata,
    Column("claim", String(32), primary_key=True),
    Column("claim_type_id", Integer, nullable=False),
    Column("role", String(66), nullable=False, unique=True),
    Column("max_backdating", BigInteger),  # seconds an attestation may start before its block
)

issuer_nonces = Table(  # signed attestations below this nonce can no longer be submitted
    "issuer_nonces",
    metadata,
    Column("issuer", String(42), primary_key=True),
    Column("next_nonce", Text, nullable=False),  # uint256 as decimal digits
    Column("invalidated_at", BigInteger, nullable=False),
)

accreditations = Table(  # every period a certifier held an accreditation role
    "accreditations",
    metadata,
    Column("certifier", String(42), primary_key=True),
    Column("role", String(66), primary_key=True),
    Column("granted_event", String(80), primary_key=True),  # "<tx hash>:<log index>"
    Column("granted_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)

batches = Table(
    "batches",
    metadata,
    Column("batch_id", String(66), primary_key=True),
    Column("gtin", String(14), nullable=False),
    Column("lot", String(20), nullable=False),
    Column("supplier", String(42), nullable=False, index=True),
    Column("custodian", String(42), nullable=False, index=True),
    Column("pending_custodian", String(42)),
    Column("registered_quantity", Quantity(), nullable=False),
    Column("remaining_quantity", Quantity(), nullable=False),
    Column("unit", String(3), nullable=False),
    Column("metadata_hash", String(66), nullable=False),
    Column("status", String(10), nullable=False, index=True),  # active | consumed | voided
    Column("recalled", Boolean, nullable=False),  # recalled and not withdrawn on review
    Column("recalled_at", BigInteger),
    Column("recall_state", String(10), nullable=False),  # none | recalled | upheld | withdrawn
    Column("recalled_by", String(42)),
    Column("recall_reason", Text),
    Column("recall_reason_hash", String(66)),
    Column("recall_tx_hash", String(66)),
    Column("reviewed_at", BigInteger),
    Column("reviewed_by", String(42)),
    Column("review_reason", Text),
    Column("review_tx_hash", String(66)),
    Column("voided_at", BigInteger),
    Column("voided_by", String(42)),
    Column("void_reason", Text),
    Column("void_tx_hash", String(66)),
    Column("transformation_id", String(66)),  # the transformation that produced it, if any
    Column("registered_at", BigInteger, nullable=False, index=True),
    Column("block_number", BigInteger, nullable=False),
    Index("ix_batches_gtin_lot", "gtin", "lot", unique=True),
)

transformations = Table(
    "transformations",
    metadata,
    Column("transformation_id", String(66), primary_key=True),
    Column("custodian", String(42), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("data_hash", String(66), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("tx_hash", String(66), nullable=False),
)

transformation_inputs = Table(
    "transformation_inputs",
    metadata,
    Column("transformation_id", String(66), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("batch_id", String(66), nullable=False, index=True),
    Column("quantity", Quantity(), nullable=False),
)

transformation_outputs = Table(
    "transformation_outputs",
    metadata,
    Column("transformation_id", String(66), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("batch_id", String(66), nullable=False, index=True),
)

attestations = Table(
    "attestations",
    metadata,
    Column("uid", String(66), primary_key=True),
    Column("issuer", String(42), nullable=False, index=True),
    Column("subject_kind", String(5), nullable=False),
    Column("subject", String(66), nullable=False, index=True),
    Column("claim", String(32), nullable=False),
    Column("valid_from", BigInteger, nullable=False),
    Column("valid_until", BigInteger, nullable=False),
    Column("evidence_hash", String(66), nullable=False),
    Column("attested_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("revoked_by", String(42)),
    Column("revocation_reason_hash", String(66)),
    Column("revocation_reason", Text),
    # The transactions behind the attestation and its revocation: each claim on a page
    # links to its proof.
    Column("tx_hash", String(66)),
    Column("revoked_tx_hash", String(66)),
)

set_aside = Table(  # events the index could not decode or apply, with why; the sync went on
    "set_aside",
    metadata,
    Column("tx_hash", String(66), primary_key=True),
    Column("log_index", Integer, primary_key=True),
    Column("block_number", BigInteger, nullable=False, index=True),
    Column("name", String(40), nullable=False),  # the event's name, or its topic 0 when unknown
    Column("stage", String(6), nullable=False),  # decode | apply
    Column("reason", Text, nullable=False),
)

#: Tables derived from `events`; a rewind clears and replays them.
DERIVED = (
    actors,
    actor_names,
    roles,
    claim_types,
    accreditations,
    licences,
    issuer_nonces,
    batches,
    transformations,
    transformation_inputs,
    transformation_outputs,
    attestations,
)
