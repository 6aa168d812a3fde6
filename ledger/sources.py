"""Fetching documents a reader lacks from `document_sources`, checked by hash.

A source is another ledger server (`GET {url}/api/v1/documents/{sha256 hex}`) or an IPFS
gateway (`GET {url}/ipfs/{cid}`, the raw CIDv1 of the same digest, see ledger.cid). A URL
containing `/ipfs` is taken as a gateway; anything else as a ledger server. Every answer
is hashed before it is stored or used: a source that sends other bytes is skipped, so a
mismatching document is never shown. What one fetches is kept in the local store; a miss
is remembered for MISS_TTL_SECONDS so a page view does not wait on the same dead source
again, and each request has a short timeout.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from ledger.cid import cid_of_digest
from ledger.documents import MAX_DOCUMENT_BYTES, DocumentStore, sha256

#: Seconds one source may take to answer (a page waits at most this per source).
FETCH_TIMEOUT_SECONDS = 2.0
#: How long a document no source had is not asked for again.
MISS_TTL_SECONDS = 30.0


def source_url(source: str, digest: bytes) -> str:
    """Where `source` serves the document with `digest`."""
    base = source.rstrip("/")
    if base.endswith("/ipfs") or "/ipfs/" in base + "/":
        return f"{base.removesuffix('/ipfs')}/ipfs/{cid_of_digest(digest)}"
    return f"{base}/api/v1/documents/{digest.hex()}"


def fetch_verified(sources: Sequence[str], digest: bytes, timeout: float = FETCH_TIMEOUT_SECONDS) -> bytes | None:
    """The document with `digest` from the first source whose answer hashes to it."""
    for source in sources:
        try:
            with urllib.request.urlopen(source_url(source, digest), timeout=timeout) as response:  # noqa: S310 - http(s) URLs from settings
                data = response.read(MAX_DOCUMENT_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError):
            continue  # down, 404, timeout: try the next source
        if len(data) <= MAX_DOCUMENT_BYTES and sha256(data) == digest:
            return data
    return None


class FetchingDocumentStore(DocumentStore):
    """A document store that fetches what it lacks from `sources` and keeps it."""

    def __init__(self, root: Path, sources: Sequence[str], timeout: float = FETCH_TIMEOUT_SECONDS) -> None:
        super().__init__(root)
        self.sources = list(sources)
        self.timeout = timeout
        self._misses: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def _fetch(self, digest: bytes) -> bool:
        """Fetch and store `digest` if some source has it; remembers misses briefly."""
        if not self.sources:
            return False
        with self._lock:
            missed = self._misses.get(digest)
            if missed is not None and time.monotonic() - missed < MISS_TTL_SECONDS:
                return False
        data = fetch_verified(self.sources, digest, self.timeout)
        if data is None:
            with self._lock:
                self._misses[digest] = time.monotonic()
            return False
        self.put_bytes(data)
        return True

    def get(self, digest: bytes) -> bytes:
        """The document under `digest`, fetched from the sources when absent here
        (FileNotFoundError if no source has it)."""
        if not super().has(digest):
            self._fetch(digest)
        return super().get(digest)

    def has(self, digest: bytes) -> bool:
        """Whether the document is here or could be fetched now."""
        return super().has(digest) or self._fetch(digest)


def document_store(documents_dir: Path, sources: Sequence[str]) -> DocumentStore:
    """The store a reader uses: plain when no sources are set, fetching otherwise."""
    return FetchingDocumentStore(documents_dir, sources) if sources else DocumentStore(documents_dir)
