"""Off-chain documents, anchored on chain by sha256.

Metadata is JSON canonicalised with RFC 8785 (JCS) before hashing, so the same content
always has the same hash whatever produced it. Files (certificates, photos) go into a
content-addressed store in the data directory: `documents/sha256/ab/cdef...`.

A document its owner anchored as private (`--private`) is marked `documents/private/<hex>`
(holding its real file name): it is never pushed to a server (ledger.publishing) and never
served by the documents API, even by its owner's own server. Public metadata names it
`{"name": "private document 1", "sha256": ..., "private": true}`; private attestation
evidence is anchored through a public evidence envelope (`evidence_envelope`) that names
the file the same way. A server that accepts or fetches a JSON document records the public
documents it names (at most MAX_REFERENCES_PER_DOCUMENT) in `documents/refs/<child hex>`
(the parents' hashes, one a line), so it can accept those files too once a parent is
anchored (ledger.anchors checks that). The files it names privately go into the reverse
index of private namings, `documents/named-private/<child hex>` (same format): such a file
is `withheld` (as is one marked private by its owner's writes): no server accepts,
fetches or serves it, whoever names it publicly or anchors its hash directly, and
whichever naming arrived first. The private flag wins.

Readers that show or serve documents use a CheckedDocumentStore, whose `get` refuses
content that does not hash to its name (a damaged or tampered file): nothing shown or
served is ever other than the anchored document.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import rfc8785

from ledger.document_packs import PackIndex
from ledger.errors import InvalidInputError

#: Most bytes a server accepts for a JSON document anchored directly (batch metadata,
#: organisation profile, notes and reasons): they are a few hundred bytes in practice.
MAX_METADATA_BYTES = 64 * 1024
#: Most bytes a server accepts for any other document (certificates, audit reports, photos).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: Files one JSON document may make acceptable (`documents: [...]`): a lot names a few;
#: more would let one anchored hash open a server to gigabytes of uploads and make a
#: page wait on hundreds of fetches.
MAX_REFERENCES_PER_DOCUMENT = 32
#: The schema of the public envelope anchored for private attestation evidence.
EVIDENCE_ENVELOPE_SCHEMA = "provenance-ledger/private-evidence/1"
#: The reverse index of private namings: `documents/named-private/<child hex>`.
_NAMED_PRIVATE = "named-private"


def _is_sha256_hex(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value)


def document_references(document: Any) -> list[dict[str, Any]]:
    """The well-formed entries of a JSON document's `documents` list (metadata is anyone's
    JSON: only an object with a 64-hex sha256 names a file), the first
    MAX_REFERENCES_PER_DOCUMENT only, hashes in lower case."""
    refs = document.get("documents") if isinstance(document, dict) else None
    named = [ref for ref in refs if isinstance(ref, dict) and _is_sha256_hex(ref.get("sha256"))] if isinstance(refs, list) else []
    return [{**ref, "sha256": ref["sha256"].lower()} for ref in named[:MAX_REFERENCES_PER_DOCUMENT]]


def public_references(document: Any) -> list[str]:
    """The sha256 (hex) of the files a JSON document names publicly: not `private: true`."""
    return [ref["sha256"] for ref in document_references(document) if ref.get("private") is not True]


def private_references(document: Any) -> list[str]:
    """The sha256 (hex) of the files a JSON document names `private: true`."""
    return [ref["sha256"] for ref in document_references(document) if ref.get("private") is True]


def evidence_envelope(private_file: bytes) -> dict[str, Any]:
    """The public JSON anchored on chain as private attestation evidence: it names the
    file by hash only, so an auditor handed the file checks file -> envelope -> chain,
    while no server ever holds (or may accept) the file itself."""
    return {
        "schema": EVIDENCE_ENVELOPE_SCHEMA,
        "documents": [{"name": "private evidence", "sha256": private_file.hex(), "private": True}],
    }


def enveloped_evidence(content: bytes) -> bytes | None:
    """The private file an evidence envelope names (None: `content` is not an envelope)."""
    if content[:1] != b"{":
        return None
    try:
        document = json.loads(content)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("schema") != EVIDENCE_ENVELOPE_SCHEMA:
        return None
    private = private_references(document)
    return bytes.fromhex(private[0]) if len(private) == 1 else None


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
        #: Documents the bulk path wrote many at a time (ledger.document_packs).
        self.packs = PackIndex(root)

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

    def put_many(self, documents: Sequence[tuple[bytes, bytes]]) -> None:
        """Store many (sha256, content) pairs whose hashes the caller computed (the bulk
        path): those not held yet go into one pack (ledger.document_packs), a single file
        for all of them. Read back like any other document."""
        # Only the packs are asked (a document packed but damaged or lost is packed again;
        # one also held as a file is packed too: harmless, a spare copy, and it spares a
        # file-system look-up per document).
        packed = self.packs.intact([digest for digest, _ in documents])
        missing = {digest: data for digest, data in documents if digest not in packed}
        self.packs.add(list(missing.items()))

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

    def clear_incoming(self, older_than: float) -> int:
        """Remove spooled uploads older than `older_than` seconds (a killed worker leaves
        its upload's spool file behind); returns how many were removed."""
        spool = self.root / "incoming"
        removed = 0
        cutoff = time.time() - older_than
        for leftover in spool.iterdir() if spool.is_dir() else ():
            with contextlib.suppress(OSError):  # another worker may be removing it too
                if leftover.is_file() and leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
                    removed += 1
        return removed

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
        return self._read(digest)

    def _read(self, digest: bytes) -> bytes:
        """The bytes stored under `digest`, from its file or its pack (unchecked)."""
        try:
            return self.path_of(digest).read_bytes()
        except FileNotFoundError:
            return self.packs.read(digest)

    def size_of(self, digest: bytes) -> int:
        """The size of the document stored under `digest` (FileNotFoundError if absent)."""
        try:
            return self.path_of(digest).stat().st_size
        except FileNotFoundError:
            size = self.packs.size(digest)
            if size is None:
                raise
            return size

    def held(self, digest: bytes) -> bytes:
        """The content stored here under `digest`, checked: FileNotFoundError if absent,
        DamagedDocumentError (a FileNotFoundError) if it no longer hashes to `digest`."""
        data = self._read(digest)
        if sha256(data) != digest:
            with contextlib.suppress(FileNotFoundError):  # a damaged file: its packed copy, if any
                data = self.packs.read(digest)
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
        return self.path_of(digest).is_file() or self.packs.holds(digest)

    def _marker(self, kind: str, digest: bytes) -> Path:
        return self.root / kind / digest.hex()

    def mark_private(self, digest: bytes, name: str | None = None) -> None:
        """Remember that the owner keeps this document private: never pushed, never served.
        Its real file name (never published) is kept in the marker."""
        _write_atomically(self._marker("private", digest), (name or "").encode())

    def private_name(self, digest: bytes) -> str | None:
        """The real file name of a private document held here (None: unknown or not private)."""
        try:
            return self._marker("private", digest).read_text() or None
        except (FileNotFoundError, UnicodeDecodeError):
            return None

    def is_private(self, digest: bytes) -> bool:
        """Whether the document was anchored as private here."""
        return self._marker("private", digest).exists()

    def mark_anchored(self, digest: bytes) -> None:
        """Remember that a write of this data directory anchored this public document, so
        `provenance documents push --all` can queue it again (publish_to set later, or a
        write interrupted between its transaction and the queue)."""
        marker = self._marker("anchored", digest)
        if not marker.exists():
            _write_atomically(marker, b"")

    def anchored_here(self) -> list[bytes]:
        """The public documents writes of this data directory anchored (see mark_anchored)."""
        folder = self.root / "anchored"
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
        marked = {bytes.fromhex(n) for n in names if _is_sha256_hex(n)}
        return sorted(marked | set(self.packs.anchored()))

    def mark_anchored_many(self, digests: Iterable[bytes]) -> None:
        """mark_anchored for many documents at once (a bulk import): kept in the pack index,
        not as one marker file each."""
        self.packs.mark_anchored(digests)

    def record_references(self, parent: bytes, document: Any) -> None:
        """Remember the public files a metadata document names (`documents: [{sha256}]`,
        the first MAX_REFERENCES_PER_DOCUMENT), so that they count as anchored through
        `parent` (while `parent` is anchored); the files it names privately are recorded
        as withheld (see record_private_namings)."""
        self.record_private_namings(parent, document)
        for child_hex in public_references(document):
            self._add_parent("refs", bytes.fromhex(child_hex), parent)

    def record_private_namings(self, parent: bytes, document: Any) -> None:
        """Remember the files a JSON document this server took or fetched (anchored
        metadata, an evidence envelope) names `private: true`: from now on they are
        withheld here, whoever else names them publicly."""
        for child_hex in private_references(document):
            self._add_parent(_NAMED_PRIVATE, bytes.fromhex(child_hex), parent)

    def _add_parent(self, kind: str, child: bytes, parent: bytes) -> None:
        parents = self._parents(kind, child)
        if parent not in parents:
            _write_atomically(self._marker(kind, child), "".join(p.hex() + "\n" for p in [*parents, parent]).encode())

    def _parents(self, kind: str, digest: bytes) -> list[bytes]:
        try:
            lines = self._marker(kind, digest).read_text().split()
        except (FileNotFoundError, UnicodeDecodeError):
            return []
        return [bytes.fromhex(line) for line in lines if len(line) == 64 and all(c in "0123456789abcdef" for c in line)]

    def referenced_by(self, digest: bytes) -> list[bytes]:
        """The metadata documents recorded as naming this file (oldest first)."""
        return self._parents("refs", digest)

    def named_private_by(self, digest: bytes) -> list[bytes]:
        """The documents recorded as naming this file `private: true` (oldest first)."""
        return self._parents(_NAMED_PRIVATE, digest)

    def withheld(self, digest: bytes) -> bool:
        """Whether this file is private as far as this store knows: marked so by its owner's
        writes here, or named `private: true` by a document taken or fetched here. Such a
        file is never accepted, fetched or served, however else it is anchored."""
        return self.is_private(digest) or self._marker(_NAMED_PRIVATE, digest).exists()

    def export(self, digest: bytes, target: Path) -> None:
        """Copy a stored document out to `target`, checked against its hash."""
        Path(target).write_bytes(self.held(digest))  # checked: a damaged file's packed copy, never its bytes


class CheckedDocumentStore(DocumentStore):
    """A store whose every read is checked against the hash (see `held`): what pages,
    the API and the CLI's readers use, so a damaged file counts as absent."""

    def get(self, digest: bytes) -> bytes:
        """The content under `digest`, checked (FileNotFoundError if absent or damaged)."""
        return self.held(digest)
