"""Fetching documents a reader lacks from `document_sources`, checked by hash.

A source is another ledger server (`GET {url}/api/v1/documents/{sha256 hex}`) or an IPFS
gateway (`GET {url}/ipfs/{cid}`, the raw CIDv1 of the same digest, see ledger.cid). A URL
containing `/ipfs` is taken as a gateway; anything else as a ledger server. Every answer
is hashed before it is stored or used: a source that sends other bytes is skipped, so a
mismatching document is never shown. What one fetches is kept in the local store; a miss
is remembered for MISS_TTL_SECONDS so a page view does not wait on the same dead source
again.

A source is not trusted beyond its bytes' hash: each socket operation times out after
FETCH_TIMEOUT_SECONDS and a whole answer after FETCH_DEADLINE_SECONDS (a source that
trickles is dropped), at most MAX_DOCUMENT_BYTES are read, and a redirect is followed
only to http(s) on the source's own host or a subdomain of it (an IPFS subdomain gateway),
never to a file or another host (an internal address). Credentials in a source's URL
(`https://user:pass@host`) are sent as HTTP Basic authentication and never printed:
`redact` is what messages show.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ledger.cid import cid_of_digest
from ledger.documents import MAX_DOCUMENT_BYTES, CheckedDocumentStore, DocumentStore, sha256

#: Seconds one socket operation of a fetch may take.
FETCH_TIMEOUT_SECONDS = 2.0
#: Seconds one whole answer may take (a page waits at most about this per source).
FETCH_DEADLINE_SECONDS = 10.0
#: How long a document no source had is not asked for again.
MISS_TTL_SECONDS = 30.0
#: Redirects one fetch follows (same host or a subdomain of it only).
MAX_REDIRECTS = 3
_CHUNK = 64 * 1024


def redact(url: str) -> str:
    """`url` without the password of its credentials, for messages and files."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def authenticated_request(url: str, **kwargs: Any) -> urllib.request.Request:
    """A request for `url` with its credentials (if any) moved into an Authorization header
    (urllib does not read them from the URL)."""
    parts = urllib.parse.urlsplit(url)
    headers = dict(kwargs.pop("headers", {}))
    if parts.username is not None or parts.password is not None:
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        if ":" in (parts.hostname or ""):  # an IPv6 literal keeps its brackets
            netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
        url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return urllib.request.Request(url, headers=headers, **kwargs)


def source_url(source: str, digest: bytes) -> str:
    """Where `source` serves the document with `digest`."""
    base = source.rstrip("/")
    if base.endswith("/ipfs") or "/ipfs/" in base + "/":
        return f"{base.removesuffix('/ipfs')}/ipfs/{cid_of_digest(digest)}"
    return f"{base}/api/v1/documents/{digest.hex()}"


class _SameSiteRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to http(s) on `host` or a subdomain of it; drops the
    Authorization header when the host changes."""

    max_redirections = MAX_REDIRECTS

    def __init__(self, host: str) -> None:
        self.host = host.lower()

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> urllib.request.Request | None:  # noqa: D102
        target = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl))
        host = (target.hostname or "").lower()
        if target.scheme not in ("http", "https") or not (host == self.host or host.endswith("." + self.host)):
            raise urllib.error.HTTPError(req.full_url, code, f"redirect to {target.scheme}://{host} refused", headers, fp)
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and host != self.host:
            new.remove_header("Authorization")
        return new


def _read_bounded(response: Any, limit: int, deadline: float) -> bytes | None:
    """At most `limit` bytes of the answer before `deadline`; None when it is longer or slower."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            return None
        chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def fetch_verified(
    sources: Sequence[str], digest: bytes, timeout: float = FETCH_TIMEOUT_SECONDS,
    deadline_seconds: float = FETCH_DEADLINE_SECONDS, max_bytes: int = MAX_DOCUMENT_BYTES,
) -> bytes | None:  # fmt: skip
    """The document with `digest` from the first source whose answer hashes to it."""
    for source in sources:
        request = authenticated_request(source_url(source, digest))
        host = urllib.parse.urlsplit(request.full_url).hostname or ""
        opener = urllib.request.build_opener(_SameSiteRedirects(host))
        try:
            with opener.open(request, timeout=timeout) as response:
                data = _read_bounded(response, max_bytes, time.monotonic() + deadline_seconds)
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
            continue  # down, 404, timeout, refused redirect: try the next source
        if data is not None and sha256(data) == digest:
            return data
    return None


class FetchingDocumentStore(CheckedDocumentStore):
    """A document store that fetches what it lacks from `sources` and keeps it. Only
    callers that know a hash is anchored ask it to fetch (`get`, `has`): pages ask for the
    documents the index names; the documents API checks the anchor first (`held` does not
    fetch)."""

    def __init__(self, root: Path, sources: Sequence[str], timeout: float = FETCH_TIMEOUT_SECONDS) -> None:
        super().__init__(root)
        self.sources = list(sources)
        self.timeout = timeout
        self._misses: dict[bytes, float] = {}
        self._lock = threading.Lock()
        self._fetching: dict[bytes, threading.Lock] = {}

    def _fetch(self, digest: bytes) -> bool:
        """Fetch and store `digest` if some source has it; remembers misses briefly. One
        fetch per document at a time: concurrent page views wait for it."""
        if not self.sources:
            return False
        with self._lock:
            missed = self._misses.get(digest)
            if missed is not None and time.monotonic() - missed < MISS_TTL_SECONDS:
                return False
            one = self._fetching.setdefault(digest, threading.Lock())
        with one:
            try:
                if self.verify(digest):  # another thread fetched it meanwhile
                    return True
                data = fetch_verified(self.sources, digest, self.timeout)
                with self._lock:
                    if data is None:
                        self._misses[digest] = time.monotonic()
                        return False
                self.put_bytes(data)
                self._remember_references(digest, data)
                return True
            finally:
                with self._lock:
                    self._fetching.pop(digest, None)

    def _remember_references(self, digest: bytes, data: bytes) -> None:
        """A fetched JSON document may name files: they count as anchored through it
        while it is anchored (ledger.anchors checks), as for an uploaded one."""
        if data[:1] != b"{":
            return
        with contextlib.suppress(ValueError):
            self.record_references(digest, json.loads(data))

    def get(self, digest: bytes) -> bytes:
        """The document under `digest`, fetched from the sources when absent or damaged
        here (FileNotFoundError if no source has it)."""
        try:
            return self.held(digest)
        except FileNotFoundError:
            self._fetch(digest)
        return self.held(digest)

    def has(self, digest: bytes) -> bool:
        """Whether the document is here or could be fetched now."""
        return super().has(digest) or self._fetch(digest)


def document_store(documents_dir: Path, sources: Sequence[str]) -> DocumentStore:
    """The store a reader uses (every read checked by hash): local only when no sources
    are set, fetching otherwise."""
    return FetchingDocumentStore(documents_dir, sources) if sources else CheckedDocumentStore(documents_dir)
