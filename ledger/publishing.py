"""Pushing the public documents a writer anchors to the ledger servers in `publish_to`.

Right after each write the CLI queues the documents it anchored and pushes them. The
queue is durable: one JSON file per document in `<data dir>/outbox/<sha256 hex>.json`,
recording the servers that took it and the last error of each that did not, so nothing
is lost when a server is down; `provenance documents push` retries and
`provenance documents status` reports. A document marked private is never queued.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.documents import DocumentStore

#: Seconds one upload may take.
PUSH_TIMEOUT_SECONDS = 10.0
#: After a write, how long to keep retrying a server that does not yet see the document
#: as anchored (its index follower has not reached the write's block yet).
ANCHOR_WAIT_SECONDS = 10.0


@dataclass
class PushReport:
    """What one round of pushing did: delivered and still-pending counts per server."""

    delivered: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"delivered": self.delivered, "pending": self.pending, "errors": self.errors}


class _Retryable(Exception):
    """The server may take the document later (not anchored in its index yet)."""


class _ServerUnavailable(Exception):
    """The server is down, refuses to talk, or asks us to slow down: stop this round."""


class Outbox:
    """The durable queue of documents to push, and the pushing."""

    def __init__(self, data_dir: Path, documents: DocumentStore, servers: Sequence[str]) -> None:
        self.root = data_dir / "outbox"
        self.documents = documents
        self.servers = [s.rstrip("/") for s in servers]

    # ------------------------------------------------------------------ queue files

    def _path(self, digest: bytes) -> Path:
        return self.root / f"{digest.hex()}.json"

    def _read(self, digest: bytes) -> dict[str, Any]:
        try:
            return json.loads(self._path(digest).read_text())  # type: ignore[no-any-return]
        except (FileNotFoundError, ValueError):
            return {"sha256": digest.hex(), "queued_at": int(time.time()), "delivered": [], "errors": {}}

    def _write(self, digest: bytes, entry: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # Write then rename: a crash never leaves a half-written queue entry.
        fd, tmp = tempfile.mkstemp(dir=self.root)
        with os.fdopen(fd, "w") as handle:
            json.dump(entry, handle)
        os.replace(tmp, self._path(digest))

    def queued(self) -> list[bytes]:
        """Every document in the queue."""
        if not self.root.is_dir():
            return []
        return sorted(bytes.fromhex(p.stem) for p in self.root.glob("*.json") if len(p.stem) == 64)

    def enqueue(self, digests: Iterable[bytes]) -> list[bytes]:
        """Queue the public documents among `digests` for every server; returns those queued."""
        queued = []
        for digest in dict.fromkeys(digests):
            if digest == bytes(32) or self.documents.is_private(digest) or not self.documents.has(digest):
                continue
            if not self._path(digest).exists():
                self._write(digest, self._read(digest))
            queued.append(digest)
        return queued

    def pending(self) -> dict[str, list[bytes]]:
        """Per server, the queued documents it has not taken yet."""
        entries = {d: self._read(d) for d in self.queued()}
        return {s: [d for d, e in entries.items() if s not in e["delivered"]] for s in self.servers}

    def last_errors(self) -> dict[str, str]:
        """Per server, the most recent error recorded for a pending document."""
        errors: dict[str, tuple[int, str]] = {}
        for digest in self.queued():
            entry = self._read(digest)
            for server, (at, message) in entry.get("errors", {}).items():
                if server in self.servers and server not in entry["delivered"] and at >= errors.get(server, (0, ""))[0]:
                    errors[server] = (at, message)
        return {s: m for s, (_, m) in errors.items()}

    # ------------------------------------------------------------------ pushing

    def push(self, only: Sequence[bytes] | None = None, wait_for_anchor: float = 0.0) -> PushReport:
        """Push pending documents (all, or `only`) to every server; a server that is down
        is skipped for this round; a server whose index does not yet see a document as
        anchored is retried for up to `wait_for_anchor` seconds. Delivered entries leave
        the queue once every server has them."""
        report = PushReport()
        deadline = time.monotonic() + wait_for_anchor
        for server in self.servers:
            todo = [d for d in self.pending()[server] if only is None or d in only]
            # Metadata first: a server accepts a named file once it holds its metadata.
            todo.sort(key=lambda d: not self._is_json(d))
            delivered = 0
            while todo:
                retry: list[bytes] = []
                try:
                    for digest in todo:
                        try:
                            self._upload(server, digest)
                        except _Retryable as exc:
                            self._note_error(digest, server, str(exc))
                            retry.append(digest)
                        else:
                            self._note_delivered(digest, server)
                            delivered += 1
                except _ServerUnavailable as exc:
                    report.errors[server] = str(exc)
                    for digest in todo:
                        self._note_error(digest, server, str(exc))
                    break
                if not retry or time.monotonic() >= deadline:
                    if retry:
                        report.errors[server] = self._read(retry[0])["errors"].get(server, [0, ""])[1]
                    break
                time.sleep(0.5)
                todo = retry
            report.delivered[server] = delivered
        for server, digests in self.pending().items():
            report.pending[server] = len([d for d in digests if only is None or d in only])
        return report

    def _is_json(self, digest: bytes) -> bool:
        try:
            json.loads(self.documents.get(digest))
            return True
        except (FileNotFoundError, ValueError):
            return False

    def _upload(self, server: str, digest: bytes) -> None:
        """POST one document; raises _Retryable or _ServerUnavailable when not taken."""
        request = urllib.request.Request(
            f"{server}/api/v1/documents/{digest.hex()}", data=self.documents.get(digest), method="POST",
            headers={"Content-Type": "application/octet-stream"},
        )
        try:
            with urllib.request.urlopen(request, timeout=PUSH_TIMEOUT_SECONDS):  # noqa: S310 - http(s) URLs from settings
                return
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            if exc.code == 429:
                raise _ServerUnavailable(f"{server} asks to slow down (429): {detail}") from exc
            if exc.code == 422:
                raise _Retryable(f"{server} does not see it anchored yet: {detail}") from exc
            raise _Retryable(f"{server} refused it ({exc.code}): {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _ServerUnavailable(f"{server} cannot be reached: {reason}") from exc

    def _note_error(self, digest: bytes, server: str, message: str) -> None:
        entry = self._read(digest)
        entry.setdefault("errors", {})[server] = [int(time.time()), message]
        self._write(digest, entry)

    def _note_delivered(self, digest: bytes, server: str) -> None:
        entry = self._read(digest)
        if server not in entry["delivered"]:
            entry["delivered"].append(server)
        entry.get("errors", {}).pop(server, None)
        if all(s in entry["delivered"] for s in self.servers):
            self._path(digest).unlink(missing_ok=True)
        else:
            self._write(digest, entry)


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """The server's one-sentence error (the JSON `detail`), else the HTTP reason."""
    try:
        body = json.loads(exc.read() or b"{}")
        detail = body.get("detail") or body.get("error")
        if isinstance(detail, dict):
            detail = detail.get("message") or json.dumps(detail)
        return str(detail or exc.reason)
    except (ValueError, OSError):
        return str(exc.reason)
