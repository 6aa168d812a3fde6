"""Which document hashes the ledger anchors, read from the index (never the chain).

A server accepts an uploaded document, and fetches a missing one from its document
sources, only if its sha256 is one of these: then the document can only be the one its
hash names, so uploading needs no account. The one place that knows where the index
keeps anchored hashes (the SQL is `IndexStore.anchored_in`):

* hash columns of the index's tables (the current state);
* the decoded arguments of events that anchor a hash but leave no column: a step's note
  (`StepRecorded.dataHash`), and the notices of earlier recalls, revocations and profiles
  that a later event replaced in its table;
* files named publicly (`documents: [{sha256}]`, not `"private": true`, the first
  MAX_REFERENCES_PER_DOCUMENT) by such a JSON document, when this server holds that
  document and it is anchored directly (one level: a file names nothing further).

None of these counts for a file `withheld` here (`DocumentStore.withheld`): its owner's
writes marked it private, or a document this server took or fetched (anchored metadata,
an evidence envelope) names it `"private": true`. The private flag wins over another
organisation naming the same hash publicly and over any direct anchor, whichever came
first: from the moment the private naming is recorded, the file is not an anchor.

A profile an organisation has only asked for (`ActorProfileUpdateRequested`, awaiting the
admin) is not an anchor: no server takes or serves it on the brand's domain before the
admin approves it (the admin reviews the request's name and country from the chain).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ledger.documents import MAX_DOCUMENT_BYTES, MAX_METADATA_BYTES, DocumentStore, public_references
from ledger.indexer import schema
from ledger.indexer.store import IndexStore

#: (table column, what it is, whether it is a JSON document anchored directly).
_ANCHOR_COLUMNS = (
    (schema.batches.c.metadata_hash, "batch metadata", True),
    (schema.actors.c.metadata_hash, "organisation profile", True),
    (schema.transformations.c.data_hash, "transformation note", True),
    (schema.batches.c.recall_reason_hash, "recall reason", True),
    (schema.attestations.c.evidence_hash, "attestation evidence", False),
    (schema.attestations.c.revocation_reason_hash, "revocation notice", False),
)

#: (event name, argument, what it is, whether it is JSON metadata): hashes only the events
#: table keeps (the index store looks them up: `IndexStore.anchored_in`).
_ANCHOR_EVENT_ARGS = (
    ("StepRecorded", "dataHash", "step note", True),
    ("BatchRecalled", "reasonHash", "recall reason", True),
    ("ActorRegistered", "metadataHash", "organisation profile", True),
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
    found = store.anchored_in(
        key, [column for column, _, _ in _ANCHOR_COLUMNS], [(name, arg) for name, arg, _, _ in _ANCHOR_EVENT_ARGS]
    )
    if found is None:
        return None
    _, kind, is_metadata = (_ANCHOR_COLUMNS + tuple((a, k, m) for _, a, k, m in _ANCHOR_EVENT_ARGS))[found]
    return Anchor(kind, is_metadata)


def find_anchor(store: IndexStore, documents: DocumentStore, digest: bytes) -> Anchor | None:
    """How `digest` is anchored: directly (see find_direct_anchor), or as a file named by
    a directly anchored metadata document this server holds; never when it is withheld
    (named private anywhere this server knows of)."""
    if documents.withheld(digest):
        return None
    anchor = find_direct_anchor(store, digest)
    if anchor is not None:
        return anchor
    for parent in documents.referenced_by(digest):
        if (
            parent != digest
            and digest.hex() in _public_references_of(documents, parent)
            and find_direct_anchor(store, parent) is not None
        ):
            return Anchor("document named by anchored metadata", False)
    return None


def _public_references_of(documents: DocumentStore, parent: bytes) -> list[str]:
    """The files `parent` names publicly, read again from the document itself (references
    recorded before private ones were told apart must not open a private file)."""
    try:
        if documents.size_of(parent) > MAX_METADATA_BYTES:
            return []
        return public_references(json.loads(documents.held(parent)))
    except (OSError, ValueError):
        return []
