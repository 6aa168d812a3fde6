"""Which document hashes the ledger anchors, read from the index (never the chain).

A server accepts an uploaded document, and fetches a missing one from its document
sources, only if its sha256 is one of these: then the document can only be the one its
hash names, so uploading needs no account. The one place that knows where the index
keeps anchored hashes:

* hash columns of the index's tables (the current state);
* the decoded arguments of events that anchor a hash but leave no column: a step's note
  (`StepRecorded.dataHash`), and the notices of earlier recalls, revocations and profile
  requests that a later event replaced in its table;
* files named (`documents: [{sha256}]`) by such a document, when this server holds that
  document and it is anchored directly (one level: a file names nothing further).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, select

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

#: (event name, argument, what it is, whether it is JSON metadata): hashes only the events
#: table keeps. The index stores arguments as compact JSON (`"name":"0x..."`), and a quote
#: inside a string value is always escaped, so the pattern matches the argument only.
_ANCHOR_EVENT_ARGS = (
    ("StepRecorded", "dataHash", "step note", True),
    ("BatchRecalled", "reasonHash", "recall reason", True),
    ("ActorRegistered", "metadataHash", "organisation profile", True),
    ("ActorProfileUpdateRequested", "metadataHash", "requested organisation profile", True),
    ("ActorProfileUpdated", "metadataHash", "organisation profile", True),
    ("AttestationRevoked", "reasonHash", "revocation notice", False),
)

_ZERO_KEY = "0x" + "00" * 32


@dataclass(frozen=True)
class Anchor:
    """Where a document hash is anchored, and the most bytes a server takes for it."""

    kind: str
    is_metadata: bool

    @property
    def max_bytes(self) -> int:
        """The size limit for this kind of document."""
        return MAX_METADATA_BYTES if self.is_metadata else MAX_DOCUMENT_BYTES


def find_direct_anchor(store: IndexStore, digest: bytes) -> Anchor | None:
    """How `digest` is anchored directly: in a hash column, or in an event's arguments."""
    key = "0x" + digest.hex()
    if key == _ZERO_KEY:  # "no document" on chain, never a document
        return None
    events = schema.events
    with store.engine.connect() as conn:
        for column, kind, is_metadata in _ANCHOR_COLUMNS:
            if conn.execute(select(column).where(column == key).limit(1)).first() is not None:
                return Anchor(kind, is_metadata)
        for name, argument, kind, is_metadata in _ANCHOR_EVENT_ARGS:
            pattern = f'%"{argument}":"{key}"%'
            found = conn.execute(select(events.c.tx_hash).where(and_(events.c.name == name, events.c.args.like(pattern))).limit(1)).first()
            if found is not None:
                return Anchor(kind, is_metadata)
    return None


def find_anchor(store: IndexStore, documents: DocumentStore, digest: bytes) -> Anchor | None:
    """How `digest` is anchored: directly (see find_direct_anchor), or as a file named by
    a directly anchored metadata document this server holds."""
    anchor = find_direct_anchor(store, digest)
    if anchor is not None:
        return anchor
    for parent in documents.referenced_by(digest):
        if parent != digest and documents.verify(parent) and find_direct_anchor(store, parent) is not None:
            return Anchor("document named by anchored metadata", False)
    return None
