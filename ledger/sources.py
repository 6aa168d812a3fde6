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
only to the source's own host or a subdomain of it (an IPFS subdomain gateway), on the
same scheme (or from http up to https) and port, never to a file, another host or port
(an internal service) or down from https to http. Credentials in a source's URL
(`https://user:pass@host`) are sent as HTTP Basic authentication, never past a redirect
that changes scheme, host or port, and never printed: `redact` is what messages show.

A page build fetches within a time budget (`FetchingDocumentStore.budget`): once it is
spent, the documents not yet here are shown as held by their owner, so a slow or hostile
source delays a page by seconds, not by one timeout per document it names.
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
from collections.abc import Iterator, Sequence
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


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of `url`, the port filled in from the scheme when absent."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number names nothing
        port = -1
    return scheme, (parts.hostname or "").lower(), port


class _SameSiteRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to the source's host or a subdomain of it, on the same scheme
    (or http up to https) and the same port (a default port counts as itself when the
    scheme is upgraded); drops the Authorization header (the source URL's credentials) on
    any change of scheme, host or port."""

    max_redirections = MAX_REDIRECTS

    def __init__(self, url: str) -> None:
        self.scheme, self.host, self.port = _origin(url)

    def _allowed(self, scheme: str, host: str, port: int | None) -> bool:
        upgrade = self.scheme == "http" and scheme == "https"
        same_port = port == self.port or (upgrade and self.port == 80 and port == 443)
        return (scheme == self.scheme or upgrade) and same_port and (host == self.host or host.endswith("." + self.host))

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:  # noqa: D102
        scheme, host, port = _origin(urllib.parse.urljoin(req.full_url, newurl))
        if not self._allowed(scheme, host, port):
            raise urllib.error.HTTPError(req.full_url, code, f"redirect to {scheme}://{host}:{port} refused", headers, fp)
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and (scheme, host, port) != (self.scheme, self.host, self.port):
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
    sources: Sequence[str],
    digest: bytes,
    timeout: float = FETCH_TIMEOUT_SECONDS,
    deadline_seconds: float = FETCH_DEADLINE_SECONDS,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    until: float | None = None,
) -> bytes | None:
    """The document with `digest` from the first source whose answer hashes to it; with
    `until` (a time.monotonic() instant), no source is asked, or waited for, past it."""
    for source in sources:
        left = None if until is None else until - time.monotonic()
        if left is not None and left <= 0:
            return None
        request = authenticated_request(source_url(source, digest))
        opener = urllib.request.build_opener(_SameSiteRedirects(request.full_url))
        try:
            with opener.open(request, timeout=timeout if left is None else min(timeout, left)) as response:
                data = _read_bounded(
                    response, max_bytes, time.monotonic() + (deadline_seconds if left is None else min(deadline_seconds, left))
                )
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
        #: One lock per document being fetched, with how many threads hold or wait for it:
        #: the entry goes only when the last one leaves, so a late thread never makes a
        #: second lock (and a second fetch) for the same document.
        self._fetching: dict[bytes, tuple[threading.Lock, int]] = {}
        self._budget = threading.local()

    @contextlib.contextmanager
    def budget(self, seconds: float) -> Iterator[None]:
        """Fetches made by this thread inside the block share `seconds` in all (a page build):
        once spent, a missing document is simply not here (not remembered as a miss)."""
        outer = getattr(self._budget, "until", None)
        until = time.monotonic() + seconds
        self._budget.until = until if outer is None else min(outer, until)
        try:
            yield
        finally:
            self._budget.until = outer

    def _remaining(self) -> float | None:
        until = getattr(self._budget, "until", None)
        return None if until is None else until - time.monotonic()

    def _missed_recently(self, digest: bytes) -> bool:
        missed = self._misses.get(digest)
        return missed is not None and time.monotonic() - missed < MISS_TTL_SECONDS

    def _fetch(self, digest: bytes) -> bool:
        """Fetch and store `digest` if some source has it; remembers misses briefly. One
        fetch per document at a time: concurrent page views wait for it (within their
        budget), then see its result (the document, or the miss it remembered)."""
        remaining = self._remaining()
        if not self.sources or (remaining is not None and remaining <= 0) or self.withheld(digest):
            return False  # a file named private is never asked for, whoever names it publicly
        with self._lock:
            if self._missed_recently(digest):
                return False
            one, users = self._fetching.get(digest, (threading.Lock(), 0))
            self._fetching[digest] = (one, users + 1)
        try:
            if not one.acquire(timeout=-1 if remaining is None else remaining):
                return False  # the page's budget ran out while another thread fetched it
            try:
                return self._fetch_held(digest)
            finally:
                one.release()
        finally:
            with self._lock:
                one, users = self._fetching[digest]
                if users > 1:
                    self._fetching[digest] = (one, users - 1)
                else:
                    del self._fetching[digest]

    def _fetch_held(self, digest: bytes) -> bool:
        """The fetch itself, holding the document's lock: what another thread did meanwhile
        (fetched it, or found no source has it) counts first."""
        if self.verify(digest):
            return True
        with self._lock:
            if self._missed_recently(digest):
                return False
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            return False
        until = None if remaining is None else time.monotonic() + remaining
        data = fetch_verified(self.sources, digest, self.timeout, until=until)
        if data is None:
            left = self._remaining()
            if left is None or left > 0:  # a fetch cut short by a page's budget is no evidence of a miss
                with self._lock:
                    self._misses[digest] = time.monotonic()
            return False
        self.put_bytes(data)
        self._remember_references(digest, data)
        return True

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
