"""Documents by the sha256 the chain anchors: upload (the API's only write) and download.

`POST /api/v1/documents` (or `/api/v1/documents/{sha256}`, which also names the hash the
body must have) stores a document if, and only if, its hash is anchored in this server's
index: then it can only be the document the ledger names, so no account is needed.
Refusals, each a JSON `{"detail": ...}`, cheapest first:

* 429 with Retry-After: more than UPLOAD_BURST uploads from one client address (an IPv6
  client by its /64 network), refilled at UPLOAD_RATE_PER_SECOND (a token bucket in the
  memory of each worker process). The address is the connection's peer: `provenance
  serve` trusts X-Forwarded-For only from the proxies named in FORWARDED_ALLOW_IPS;
* 422 before any of the body is read, when the address names a hash that is not
  anchored; 413 before reading when Content-Length is over the limit of that hash's kind;
* 413: over MAX_DOCUMENT_BYTES, or over MAX_METADATA_BYTES for a JSON document anchored
  directly (batch metadata, profiles, notes); a body is streamed to a file in the store
  while it is hashed, never held whole in memory, and abandoned as soon as it is too big;
* 408: the body took longer than UPLOAD_BODY_SECONDS to arrive (a client that trickles);
* 400: the body does not hash to the sha256 in the path;
* 422: the hash is not anchored in this server's index (not a ledger document, or the
  index has not reached its block yet: retry later).

`GET /api/v1/documents/{sha256}` serves a document held here (checked by hash) or, if
its hash is anchored, fetched from `document_sources` (checked by hash): a request for
an unanchored hash never makes this server ask anyone. So servers can be each other's
sources. A document named private (marked so by its owner's writes, or named `"private":
true` by metadata or an evidence envelope this server took or fetched) is never taken,
fetched or served (404), even when another organisation names the same hash publicly or
a copy is held here. Anyone's bytes never run as a page of this site: `nosniff`, a CSP sandbox
that allows nothing, and every document but JSON sent as an attachment.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import math
import threading
import time
from pathlib import Path as FilePath
from typing import IO, Annotated

import anyio
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ContextDep
from api.schemas import DocumentStored, Responses, problem
from ledger.anchors import Anchor, find_anchor
from ledger.cid import cid_of_digest
from ledger.documents import MAX_DOCUMENT_BYTES, MAX_METADATA_BYTES, DocumentStore

router = APIRouter(prefix="/api/v1", tags=["documents"])

#: Uploads one client address may make at once, and how fast its allowance refills.
UPLOAD_BURST = 300
UPLOAD_RATE_PER_SECOND = 10.0
#: Seconds a whole upload body may take to arrive.
UPLOAD_BODY_SECONDS = 120.0
#: Client addresses remembered before full buckets are forgotten.
_MAX_TRACKED_CLIENTS = 10_000

Sha256Path = Annotated[str, Path(pattern=r"^(0x)?[0-9a-fA-F]{64}$", description="sha256 of the document, hex.")]


class UploadLimiter:
    """A token bucket per client address (per worker process: a replica set multiplies
    the allowance by its processes, which is fine for slowing a flood down)."""

    def __init__(self, burst: int = UPLOAD_BURST, rate: float = UPLOAD_RATE_PER_SECOND) -> None:
        self.burst = burst
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Take one upload for `client`: 0 if allowed, else the seconds until it would be."""
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) > _MAX_TRACKED_CLIENTS:
                self._forget_full(now)
            tokens, seen = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - seen) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate if self.rate > 0 else 3600.0

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: many addresses must not grow memory forever."""
        self._buckets = {c: (t, seen) for c, (t, seen) in self._buckets.items() if t + (now - seen) * self.rate < self.burst}


def client_key(host: str | None) -> str:
    """Whom an upload counts against: the peer's address, or its /64 network for IPv6 (one
    customer's allocation: rotating addresses within it must not bypass the limit)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address.ipv4_mapped or address) if isinstance(address, ipaddress.IPv6Address) else str(address)


def clear_spool(documents: DocumentStore) -> int:
    """Remove upload spool files no upload in progress can still be writing (older than
    UPLOAD_BODY_SECONDS): a worker killed mid-upload leaves its file behind. Called when
    the server starts; returns how many were removed."""
    return documents.clear_incoming(older_than=UPLOAD_BODY_SECONDS)


def _limiter(request: Request) -> UploadLimiter:
    limiter = getattr(request.app.state, "upload_limiter", None)
    if limiter is None:
        limiter = request.app.state.upload_limiter = UploadLimiter()
    return limiter


def _refuse(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers or None)


class _TooBig(Exception):
    """The body went over the limit."""


async def _receive(request: Request, handle: IO[bytes], limit: int) -> tuple[bytes, int] | None:
    """Stream the body into `handle` while hashing it: (sha256, size), or None when it took
    longer than UPLOAD_BODY_SECONDS. _TooBig as soon as it exceeds `limit` bytes."""
    digest, size = hashlib.sha256(), 0
    with anyio.move_on_after(UPLOAD_BODY_SECONDS) as scope:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooBig
            digest.update(chunk)
            handle.write(chunk)
    if scope.cancelled_caught:
        return None
    handle.flush()
    return digest.digest(), size


def _too_big(anchor: Anchor | None) -> JSONResponse:
    if anchor is None:
        return _refuse(413, f"the document is larger than this server accepts ({MAX_DOCUMENT_BYTES} bytes)")
    return _refuse(413, f"a {anchor.kind} document may have at most {anchor.max_bytes} bytes")


def _not_anchored(context: ContextDep, digest: bytes) -> JSONResponse:
    freshness = context.freshness()
    at = f" (its index is at block {freshness.block_number})" if freshness else ""
    return _refuse(
        422,
        f"no document with sha256 {digest.hex()} is anchored on the ledger as this server's index knows it{at}; "
        "only documents the chain anchors are accepted",
    )


def _store(documents: DocumentStore, path: FilePath, digest: bytes, anchor: Anchor, size: int) -> bool:
    """Move the received file into place; returns whether the document was held already."""
    existed = documents.verify(digest)
    documents.adopt(path, digest)
    if size > MAX_METADATA_BYTES:  # a certificate or a photo: not a JSON document naming files
        return existed
    data = documents.held(digest)
    with contextlib.suppress(ValueError):  # an anchored note that is not JSON names no files
        document = json.loads(data) if data[:1] == b"{" else None
        if anchor.is_metadata:
            documents.record_references(digest, document)
        else:  # evidence (an envelope for private evidence): only what it names privately counts
            documents.record_private_namings(digest, document)
    return existed


async def _upload(request: Request, context: ContextDep, claimed: str | None) -> Response:
    client = client_key(request.client.host if request.client else None)
    wait = _limiter(request).take(client)
    if wait > 0:
        return _refuse(
            429, f"too many uploads from {client}; try again in {math.ceil(wait)} s", **{"Retry-After": str(math.ceil(wait))}
        )
    documents = context.model.documents
    if documents is None:
        return _refuse(503, "this server keeps no documents")
    anchor, limit = None, MAX_DOCUMENT_BYTES
    if claimed is not None:  # the hash is known before the body: refuse without reading it
        named = bytes.fromhex(claimed.lower().removeprefix("0x"))
        anchor = await run_in_threadpool(find_anchor, context.model.store, documents, named)
        if anchor is None:
            return _not_anchored(context, named)
        limit = anchor.max_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        return _too_big(anchor)
    with documents.incoming() as (handle, path):
        try:
            received = await _receive(request, handle, limit)
        except _TooBig:
            return _too_big(anchor)
        if received is None:
            return _refuse(408, f"the document did not arrive within {UPLOAD_BODY_SECONDS:.0f} s")
        digest, size = received
        if size == 0:
            return _refuse(400, "the request body is empty: send the document's bytes")
        if claimed is not None and digest != named:
            return _refuse(400, f"the body's sha256 is {digest.hex()}, not the {named.hex()} named in the address")
        if anchor is None:
            anchor = await run_in_threadpool(find_anchor, context.model.store, documents, digest)
            if anchor is None:
                return _not_anchored(context, digest)
        if size > anchor.max_bytes:
            return _refuse(413, f"a {anchor.kind} document may have at most {anchor.max_bytes} bytes; this one has {size}")
        existed = await run_in_threadpool(_store, documents, path, digest, anchor, size)
    stored = DocumentStored(sha256=digest.hex(), cid=cid_of_digest(digest), anchored_as=anchor.kind, size=size)
    return JSONResponse(stored.model_dump(), status_code=200 if existed else 201)


def _closing_if_refused(response: Response) -> Response:
    """A refusal may leave the body unread: close the connection after it, or the server
    would go on reading (and discarding) whatever the client keeps sending."""
    if response.status_code >= 400:
        response.headers["Connection"] = "close"
    return response


#: The upload's body and answers, for the OpenAPI document (the body is read as a stream).
UPLOAD_BODY = {
    "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
}
UPLOAD_ANSWERS: Responses = {
    200: {"model": DocumentStored, "description": "Held already"},
    400: problem("The body is empty, or does not hash to the sha256 in the address"),
    408: problem(f"The body took longer than {UPLOAD_BODY_SECONDS:.0f} s to arrive"),
    413: problem("Larger than this kind of document may be"),
    422: problem("The hash is not anchored in this server's index (or the address is not a sha256)"),
    429: problem("Too many uploads from this client: see Retry-After"),
    503: problem("This server keeps no documents"),
}


@router.post(
    "/documents",
    status_code=201,
    response_model=DocumentStored,
    responses=UPLOAD_ANSWERS,
    openapi_extra=UPLOAD_BODY,
    summary="Upload a document anchored on the ledger",
)
async def upload(request: Request, context: ContextDep) -> Response:
    """Store the body if its sha256 is anchored on chain (see the module's refusals)."""
    return _closing_if_refused(await _upload(request, context, None))


@router.post(
    "/documents/{sha256_hex}",
    status_code=201,
    response_model=DocumentStored,
    responses=UPLOAD_ANSWERS,
    openapi_extra=UPLOAD_BODY,
    summary="Upload a document under its sha256",
)
async def upload_named(sha256_hex: Sha256Path, request: Request, context: ContextDep) -> Response:
    """As `POST /api/v1/documents`, and the body must hash to `sha256_hex` (400 otherwise)."""
    return _closing_if_refused(await _upload(request, context, sha256_hex))


def _document(context: ContextDep, documents: DocumentStore, digest: bytes) -> bytes | None:
    """The document held here, else fetched if (and only if) its hash is anchored."""
    try:
        return documents.held(digest)
    except FileNotFoundError:
        pass
    if find_anchor(context.model.store, documents, digest) is None:
        return None  # never ask the sources about a hash the ledger does not name
    try:
        return documents.get(digest)
    except FileNotFoundError:
        return None


#: Headers of every document served: anyone's bytes never run as a page of this site.
_DOCUMENT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "public, max-age=31536000, immutable",
}


@router.get(
    "/documents/{sha256_hex}",
    summary="Download a document by its sha256",
    response_class=Response,
    responses={
        200: {
            "description": "The document: JSON inline, anything else as an attachment",
            "content": {
                "application/json": {"schema": {"anyOf": [{"type": "object"}, {"type": "array"}]}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        404: problem("Not held here, private, or not anchored"),
        422: problem("The address is not a sha256"),
    },
)
async def download(sha256_hex: Sha256Path, context: ContextDep) -> Response:
    """The document, checked against its hash (from this server or its document sources)."""
    digest = bytes.fromhex(sha256_hex.lower().removeprefix("0x"))
    documents = context.model.documents
    data = (
        None
        if documents is None or documents.withheld(digest)  # private: 404 even for a copy held here
        else await run_in_threadpool(_document, context, documents, digest)
    )
    if data is None:
        return _refuse(404, f"no document with sha256 {digest.hex()} is available here")
    is_json = data[:1] in (b"{", b"[")
    headers = {**_DOCUMENT_HEADERS, "ETag": f'"{digest.hex()}"'}
    if not is_json:
        headers["Content-Disposition"] = f'attachment; filename="{digest.hex()}"'
    return Response(data, media_type="application/json" if is_json else "application/octet-stream", headers=headers)
