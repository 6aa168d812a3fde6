"""Off-chain documents, anchored on chain by sha256.

Metadata is JSON canonicalised with RFC 8785 (JCS) before hashing, so the same content
always has the same hash whatever produced it. Files (certificates, photos) go into a
content-addressed store in the data directory: `documents/sha256/ab/cdef...`.

A document its owner anchored as private (`--private`) is marked `documents/private/<hex>`:
it is never pushed to a server (ledger.publishing) and never served by the documents API,
even by its owner's own server. A server that accepts or fetches a JSON document records
the documents it names in `documents/refs/<child hex>` (the parents' hashes, one a line),
so it can accept those files too once a parent is anchored (ledger.anchors checks that).

Readers that show or serve documents use a CheckedDocumentStore, whose `get` refuses
content that does not hash to its name (a damaged or tampered file): nothing shown or
served is ever other than the anchored document.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import rfc8785

from ledger.errors import InvalidInputError

#: Most bytes a server accepts for a JSON document anchored directly (batch metadata,
#: organisation profile, notes and reasons): they are a few hundred bytes in practice.
MAX_METADATA_BYTES = 64 * 1024
#: Most bytes a server accepts for any other document (certificates, audit reports, photos).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


class DamagedDocumentError(FileNotFoundError):
    """The file stored under a hash holds other content: treated as absent."""


def _write_atomically(target: Path, data: bytes) -> None:
    """Write then rename: a crash or a concurrent writer never leaves a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        """Store `data`; returns its sha256. Storing the same content twice is a no-op;
        a damaged copy under the same hash is replaced."""
        digest = sha256(data)
        target = self.path_of(digest)
        if not self.verify(digest):
            _write_atomically(target, data)
        return digest

    @contextmanager
    def incoming(self) -> Iterator[tuple[IO[bytes], Path]]:
        """A temporary file in the store's file system for a document being received (an
        upload is spooled to disk, never held whole in memory); removed unless adopted."""
        spool = self.root / "incoming"
        spool.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=spool)
        path = Path(name)
        try:
            with os.fdopen(fd, "w+b") as handle:
                yield handle, path
        finally:
            path.unlink(missing_ok=True)

    def adopt(self, path: Path, digest: bytes) -> None:
        """Move a received file (whose sha256 the caller computed as `digest`) into place."""
        if self.verify(digest):
            return
        target = self.path_of(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)

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
        """The content stored under `digest`, as it is (FileNotFoundError if absent): for
        checkers that report a mismatch themselves (`provenance verify`). Readers that show
        documents use a CheckedDocumentStore (ledger.sources.document_store)."""
        return self.path_of(digest).read_bytes()

    def held(self, digest: bytes) -> bytes:
        """The content stored here under `digest`, checked: FileNotFoundError if absent,
        DamagedDocumentError (a FileNotFoundError) if it no longer hashes to `digest`."""
        data = self.path_of(digest).read_bytes()
        if sha256(data) != digest:
            raise DamagedDocumentError(f"the file stored as {digest.hex()} holds other content")
        return data

    def verify(self, digest: bytes) -> bool:
        """Whether a document is stored under `digest` and still hashes to it."""
        try:
            self.held(digest)
        except (FileNotFoundError, IsADirectoryError):
            return False
        return True

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
        that they count as anchored through `parent` (while `parent` is anchored)."""
        refs = document.get("documents") if isinstance(document, dict) else None
        for ref in refs if isinstance(refs, list) else []:
            child = ref.get("sha256") if isinstance(ref, dict) else None
            if not (isinstance(child, str) and len(child) == 64 and all(c in "0123456789abcdefABCDEF" for c in child)):
                continue  # metadata is anyone's JSON: only a sha256 names a file
            marker = self._marker("refs", bytes.fromhex(child))
            parents = self.referenced_by(bytes.fromhex(child))
            if parent not in parents:
                _write_atomically(marker, "".join(p.hex() + "\n" for p in [*parents, parent]).encode())

    def referenced_by(self, digest: bytes) -> list[bytes]:
        """The metadata documents recorded as naming this file (oldest first)."""
        try:
            lines = self._marker("refs", digest).read_text().split()
        except (FileNotFoundError, UnicodeDecodeError):
            return []
        return [bytes.fromhex(line) for line in lines if len(line) == 64 and all(c in "0123456789abcdef" for c in line)]

    def export(self, digest: bytes, target: Path) -> None:
        """Copy a stored document out to `target`."""
        shutil.copyfile(self.path_of(digest), target)


class CheckedDocumentStore(DocumentStore):
    """A store whose every read is checked against the hash (see `held`): what pages,
    the API and the CLI's readers use, so a damaged file counts as absent."""

    def get(self, digest: bytes) -> bytes:
        """The content under `digest`, checked (FileNotFoundError if absent or damaged)."""
        return self.held(digest)
