"""Which document hashes the ledger anchors, read from the index (never the chain).

A server accepts an uploaded document only if its sha256 is one of these: then the
document can only be the one its hash names, so uploading needs no account.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ledger.documents import MAX_DOCUMENT_BYTES, MAX_METADATA_BYTES, DocumentStore
from ledger.indexer import schema
from ledger.indexer.store import IndexStore

#: (table column, what it is, whether it is a JSON document anchored directly).
_ANCHOR_COLUMNS = (
    (schema.batches.c.metadata_hash, "batch metadata", True),
    (schema.actors.c.metadata_hash, "organisation profile", True),
    (schema.actors.c.requested_metadata_hash, "requested organisation profile", True),
    (schema.transformations.c.data_hash, "transformation note", True),
    (schema.batches.c.recall_reason_hash, "recall reason", True),
    (schema.attestations.c.evidence_hash, "attestation evidence", False),
    (schema.attestations.c.revocation_reason_hash, "revocation notice", False),
)


@dataclass(frozen=True)
class Anchor:
    """Where a document hash is anchored, and the most bytes a server takes for it."""

    kind: str
    is_metadata: bool

    @property
    def max_bytes(self) -> int:
        """The size limit for this kind of document."""
        return MAX_METADATA_BYTES if self.is_metadata else MAX_DOCUMENT_BYTES


def find_anchor(store: IndexStore, documents: DocumentStore, digest: bytes) -> Anchor | None:
    """How `digest` is anchored in the index: directly (a hash column of an event's
    record), or as a file named by an anchored metadata document this server holds."""
    key = "0x" + digest.hex()
    with store.engine.connect() as conn:
        for column, kind, is_metadata in _ANCHOR_COLUMNS:
            if conn.execute(select(column).where(column == key).limit(1)).first() is not None:
                return Anchor(kind, is_metadata)
    parent = documents.referenced_by(digest)
    if parent is not None and parent != digest and documents.has(parent) and find_anchor(store, documents, parent):
        return Anchor("document named by anchored metadata", False)
    return None
