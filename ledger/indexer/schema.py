"""Tables of the index (SQLAlchemy Core). Addresses are checksummed text, ids 0x-hex text,
times unix seconds, quantities integers (NUMERIC for PostgreSQL's sake: uint64 overflows BIGINT)."""

from __future__ import annotations

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
)

metadata = MetaData()

Quantity = Numeric(20, 0)

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
    Column("registered_quantity", Quantity, nullable=False),
    Column("remaining_quantity", Quantity, nullable=False),
    Column("unit", String(3), nullable=False),
    Column("metadata_hash", String(66), nullable=False),
    Column("status", String(10), nullable=False, index=True),  # active | consumed
    Column("recalled", Boolean, nullable=False),
    Column("recalled_at", BigInteger),
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
    Column("quantity", Quantity, nullable=False),
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
    # The transactions behind the attestation and its revocation: each claim on a page
    # links to its proof.
    Column("tx_hash", String(66)),
    Column("revoked_tx_hash", String(66)),
)

#: Tables derived from `events`; a rewind clears and replays them.
DERIVED = (actors, roles, claim_types, accreditations, batches, transformations, transformation_inputs,
           transformation_outputs, attestations)  # fmt: skip
