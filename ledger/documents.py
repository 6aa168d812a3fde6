"""Off-chain documents, anchored on chain by sha256.

Metadata is JSON canonicalised with RFC 8785 (JCS) before hashing, so the same content
always has the same hash whatever produced it. Files (certificates, photos) go into a
content-addressed store in the data directory: `documents/sha256/ab/cdef...`.

A document its owner anchored as private (`--private`) is marked `documents/private/<hex>`:
it is never pushed to a server (ledger.publishing) and never served by the documents API,
even by its owner's own server. A server that accepts a metadata document records the
documents it names in `documents/refs/<child hex>` (the parent's hash), so it can accept
those files too: they are anchored through the metadata's hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import rfc8785

from ledger.errors import InvalidInputError

#: Most bytes a server accepts for a JSON document anchored directly (batch metadata,
#: organisation profile, notes and reasons): they are a few hundred bytes in practice.
MAX_METADATA_BYTES = 64 * 1024
#: Most bytes a server accepts for any other document (certificates, audit reports, photos).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


def canonical_json(document: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of `document`."""
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata cannot be canonicalised as JSON: {exc}") from exc


def sha256(data: bytes) -> bytes:
    """sha256 digest."""
    return hashlib.sha256(data).digest()


def metadata_hash(document: Any) -> bytes:
    """The hash anchored on chain for a metadata document: sha256 of its canonical JSON."""
    return sha256(canonical_json(document))


class DocumentStore:
    """A content-addressed file store: every file is kept under its sha256."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, digest: bytes) -> Path:
        """Where the document with `digest` lives (whether or not it exists)."""
        hexdigest = digest.hex()
        return self.root / "sha256" / hexdigest[:2] / hexdigest[2:]

    def put_bytes(self, data: bytes) -> bytes:
        """Store `data`; returns its sha256. Storing the same content twice is a no-op."""
        digest = sha256(data)
        target = self.path_of(digest)
        if not target.exists():
            if not target.parent.is_dir():
                target.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a crash never leaves a truncated file under a valid hash.
            fd, tmp = tempfile.mkstemp(dir=target.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        return digest

    def put_file(self, source: Path) -> bytes:
        """Store a file's content; returns its sha256."""
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read document {source}: {exc.strerror}") from exc
        return self.put_bytes(data)

    def put_json(self, document: Any) -> bytes:
        """Store a metadata document as canonical JSON; returns the hash to anchor."""
        return self.put_bytes(canonical_json(document))

    def get(self, digest: bytes) -> bytes:
        """The content stored under `digest` (FileNotFoundError if absent)."""
        return self.path_of(digest).read_bytes()

    def verify(self, digest: bytes) -> bool:
        """Whether the stored content still hashes to `digest`."""
        try:
            return sha256(self.get(digest)) == digest
        except FileNotFoundError:
            return False

    def has(self, digest: bytes) -> bool:
        """Whether a document with `digest` is stored here."""
        return self.path_of(digest).is_file()

    def _marker(self, kind: str, digest: bytes) -> Path:
        return self.root / kind / digest.hex()

    def mark_private(self, digest: bytes) -> None:
        """Remember that the owner keeps this document private: never pushed, never served."""
        marker = self._marker("private", digest)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    def is_private(self, digest: bytes) -> bool:
        """Whether the document was anchored as private here."""
        return self._marker("private", digest).exists()

    def record_references(self, parent: bytes, document: Any) -> None:
        """Remember the files a metadata document names (`documents: [{sha256}]`), so
        that they count as anchored through `parent`."""
        refs = document.get("documents") if isinstance(document, dict) else None
        for ref in refs if isinstance(refs, list) else []:
            child = ref.get("sha256") if isinstance(ref, dict) else None
            if isinstance(child, str) and len(child) == 64:
                try:
                    marker = self._marker("refs", bytes.fromhex(child))
                except ValueError:
                    continue
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text(parent.hex())

    def referenced_by(self, digest: bytes) -> bytes | None:
        """The metadata document that names this file, if one was recorded."""
        try:
            return bytes.fromhex(self._marker("refs", digest).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def export(self, digest: bytes, target: Path) -> None:
        """Copy a stored document out to `target`."""
        shutil.copyfile(self.path_of(digest), target)
