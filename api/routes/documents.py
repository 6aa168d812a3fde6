"""Documents by the sha256 the chain anchors: upload (the API's only write) and download.

`POST /api/v1/documents` (or `/api/v1/documents/{sha256}`, which also names the hash the
body must have) stores a document if, and only if, its hash is anchored in this server's
index: then it can only be the document the ledger names, so no account is needed.
Refusals, each a JSON `{"detail": ...}`:

* 429 with Retry-After: more than UPLOAD_BURST uploads from one client address, refilled
  at UPLOAD_RATE_PER_SECOND (a token bucket in the memory of each worker process);
* 413: over MAX_DOCUMENT_BYTES, or over MAX_METADATA_BYTES for a JSON document anchored
  directly (batch metadata, profiles, notes);
* 400: the body does not hash to the sha256 in the path;
* 422: the hash is not anchored in this server's index (not a ledger document, or the
  index has not reached its block yet: retry later).

`GET /api/v1/documents/{sha256}` serves a document held here or fetched from
`document_sources` (checked by hash), so servers can be each other's sources. Documents
marked private by their owner are never served, even by the owner's own server.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ContextDep
from ledger.anchors import find_anchor
from ledger.cid import cid_of_digest
from ledger.documents import MAX_DOCUMENT_BYTES, sha256

router = APIRouter(prefix="/api/v1", tags=["documents"])

#: Uploads one client address may make at once, and how fast its allowance refills.
UPLOAD_BURST = 60
UPLOAD_RATE_PER_SECOND = 1.0

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
            tokens, seen = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - seen) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate if self.rate > 0 else 3600.0


def _limiter(request: Request) -> UploadLimiter:
    limiter = getattr(request.app.state, "upload_limiter", None)
    if limiter is None:
        limiter = request.app.state.upload_limiter = UploadLimiter()
    return limiter  # type: ignore[no-any-return]


def _refuse(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers or None)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds `limit` bytes (never read whole)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _upload(request: Request, context: ContextDep, claimed: str | None) -> Response:
    client = request.client.host if request.client else "unknown"
    wait = _limiter(request).take(client)
    if wait > 0:
        return _refuse(429, f"too many uploads from {client}; try again in {math.ceil(wait)} s", **{"Retry-After": str(math.ceil(wait))})
    too_big = f"the document is larger than this server accepts ({MAX_DOCUMENT_BYTES} bytes)"
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_DOCUMENT_BYTES:
        return _refuse(413, too_big)
    body = await _read_capped(request, MAX_DOCUMENT_BYTES)
    if body is None:
        return _refuse(413, too_big)
    if not body:
        return _refuse(400, "the request body is empty: send the document's bytes")
    digest = sha256(body)
    if claimed is not None and digest != bytes.fromhex(claimed.lower().removeprefix("0x")):
        return _refuse(400, f"the body's sha256 is {digest.hex()}, not the {claimed.lower().removeprefix('0x')} named in the address")
    documents = context.model.documents
    if documents is None:
        return _refuse(503, "this server keeps no documents")
    anchor = await run_in_threadpool(find_anchor, context.model.store, documents, digest)
    if anchor is None:
        freshness = context.freshness()
        at = f" (its index is at block {freshness.block_number})" if freshness else ""
        return _refuse(422, f"no document with sha256 {digest.hex()} is anchored on the ledger as this server's index knows it{at}; "
                            "only documents the chain anchors are accepted")  # fmt: skip
    if len(body) > anchor.max_bytes:
        return _refuse(413, f"a {anchor.kind} document may have at most {anchor.max_bytes} bytes; this one has {len(body)}")
    existed = documents.path_of(digest).is_file()
    documents.put_bytes(body)
    if anchor.is_metadata:
        try:
            documents.record_references(digest, json.loads(body))
        except ValueError:
            pass  # an anchored note that is not JSON names no files
    return JSONResponse({"sha256": digest.hex(), "cid": cid_of_digest(digest), "anchored_as": anchor.kind, "size": len(body)},
                        status_code=200 if existed else 201)  # fmt: skip


@router.post("/documents", status_code=201, summary="Upload a document anchored on the ledger")
async def upload(request: Request, context: ContextDep) -> Response:
    """Store the body if its sha256 is anchored on chain (see the module's refusals)."""
    return await _upload(request, context, None)


@router.post("/documents/{sha256_hex}", status_code=201, summary="Upload a document under its sha256")
async def upload_named(sha256_hex: Sha256Path, request: Request, context: ContextDep) -> Response:
    """As `POST /api/v1/documents`, and the body must hash to `sha256_hex` (400 otherwise)."""
    return await _upload(request, context, sha256_hex)


@router.get("/documents/{sha256_hex}", summary="Download a document by its sha256")
async def download(sha256_hex: Sha256Path, context: ContextDep) -> Response:
    """The document, checked against its hash (from this server or its document sources)."""
    digest = bytes.fromhex(sha256_hex.lower().removeprefix("0x"))
    documents = context.model.documents
    if documents is None or documents.is_private(digest):
        return _refuse(404, f"no document with sha256 {digest.hex()} is available here")
    try:
        data = await run_in_threadpool(documents.get, digest)
    except FileNotFoundError:
        return _refuse(404, f"no document with sha256 {digest.hex()} is available here")
    if sha256(data) != digest:  # a damaged file on disk is never served as the document
        return _refuse(404, f"the copy of {digest.hex()} held here is damaged")
    is_json = data[:1] in (b"{", b"[")
    headers = {
        "X-Content-Type-Options": "nosniff",
        # Anyone's bytes: never run as a page of this site.
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "public, max-age=31536000, immutable",
        "ETag": f'"{digest.hex()}"',
    }
    if not is_json:
        headers["Content-Disposition"] = f'attachment; filename="{digest.hex()}"'
    return Response(data, media_type="application/json" if is_json else "application/octet-stream", headers=headers)
