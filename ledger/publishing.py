"""Pushing the public documents a writer anchors to the ledger servers in `publish_to`.

Right after each write the CLI queues the documents it anchored and pushes them. The
queue is durable: one JSON file per document in `<data dir>/outbox/<sha256 hex>.json`,
recording the servers that took it and the last error of each that did not, so nothing
is lost when a server is down; `provenance documents push` retries and
`provenance documents status` reports. A document marked private is never queued. Every
public document a write anchors is also remembered (`documents/anchored/<hex>`), and who
took it once it leaves the queue (`outbox/done/<hex>`): `provenance documents status`
names those never queued for a server (publish_to set later, or a write killed between
its transaction and the queue) and `provenance documents push --all` queues them.

A server that answers 429 is waited for (its Retry-After) while the round's time allows,
so a bulk import's documents go out in one round; otherwise the rest stays queued.
Credentials in a `publish_to` URL are sent as HTTP Basic authentication and never written
to the queue or printed: the queue and messages name servers by `ledger.sources.redact`.
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
from ledger.sources import authenticated_request, redact

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
    """The server is down or refuses to talk: stop this round."""


class _SlowDown(Exception):
    """The server asks us to wait `seconds` before the next upload (429)."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


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
            entry: dict[str, Any] = json.loads(self._path(digest).read_text())  # only _write writes these files
            return entry
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
        return {s: [d for d, e in entries.items() if redact(s) not in e["delivered"]] for s in self.servers}

    def last_errors(self) -> dict[str, str]:
        """Per server, the most recent error recorded for a pending document."""
        errors: dict[str, tuple[int, str]] = {}
        for digest in self.queued():
            entry = self._read(digest)
            for name, (at, message) in entry.get("errors", {}).items():
                if name not in entry["delivered"] and at >= errors.get(name, (0, ""))[0]:
                    errors[name] = (at, message)
        return {s: errors[redact(s)][1] for s in self.servers if redact(s) in errors}

    # ------------------------------------------------------------------ pushing

    def push(self, only: Iterable[bytes] | None = None, wait_for_anchor: float = 0.0) -> PushReport:
        """Push pending documents (all, or `only`) to every server; a server that is down
        is skipped for this round; a server whose index does not yet see a document as
        anchored, or asks to slow down (429), is retried for up to `wait_for_anchor`
        seconds. Delivered entries leave the queue once every server has them."""
        report = PushReport()
        deadline = time.monotonic() + wait_for_anchor
        only = None if only is None else set(only)
        for server in self.servers:
            todo = [d for d in self.pending()[server] if only is None or d in only]
            wanted = set(todo)
            # Metadata first: a server accepts a named file once it holds its metadata.
            todo.sort(key=lambda d: not self._is_json(d))
            try:
                while todo:
                    retry = self._push_round(server, todo, deadline)
                    if not retry or time.monotonic() >= deadline:
                        if retry:
                            report.errors[server] = self._read(retry[0])["errors"].get(redact(server), [0, ""])[1]
                        break
                    time.sleep(0.5)
                    todo = retry
            except _ServerUnavailable as exc:
                report.errors[server] = str(exc)
                for digest in self.pending()[server]:
                    if digest in wanted:
                        self._note_error(digest, server, str(exc))
            report.delivered[server] = len(wanted - set(self.pending()[server]))
        for server, digests in self.pending().items():
            report.pending[server] = len([d for d in digests if only is None or d in only])
        return report

    def _push_round(self, server: str, todo: list[bytes], deadline: float) -> list[bytes]:
        """Upload each of `todo` once (waiting out a 429 while `deadline` allows); returns
        those the server does not take yet. _ServerUnavailable stops the round."""
        retry: list[bytes] = []
        position = 0
        while position < len(todo):
            digest = todo[position]
            try:
                self._upload(server, digest)
            except _SlowDown as exc:
                if time.monotonic() + exc.seconds > deadline:
                    raise _ServerUnavailable(str(exc)) from exc
                time.sleep(exc.seconds)
                continue  # the same document again
            except _Retryable as exc:
                self._note_error(digest, server, str(exc))
                retry.append(digest)
            else:
                self._note_delivered(digest, server)
            position += 1
        return retry

    def _is_json(self, digest: bytes) -> bool:
        try:
            json.loads(self.documents.get(digest))
            return True
        except (FileNotFoundError, ValueError):
            return False

    def _upload(self, server: str, digest: bytes) -> None:
        """POST one document; raises _Retryable or _ServerUnavailable when not taken."""
        name = redact(server)
        request = authenticated_request(
            f"{server}/api/v1/documents/{digest.hex()}",
            data=self.documents.get(digest),
            method="POST",
            headers={"Content-Type": "application/octet-stream"},
        )
        try:
            with urllib.request.urlopen(request, timeout=PUSH_TIMEOUT_SECONDS):  # noqa: S310 - http(s) URLs from settings
                return
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            if exc.code == 429:
                raise _SlowDown(f"{name} asks to slow down (429): {detail}", _retry_after(exc)) from exc
            if exc.code == 422:
                raise _Retryable(f"{name} does not see it anchored yet: {detail}") from exc
            raise _Retryable(f"{name} refused it ({exc.code}): {detail}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _ServerUnavailable(
                f"{name} cannot be reached: {redact(str(reason)) if isinstance(reason, str) else reason}"
            ) from exc

    def _note_error(self, digest: bytes, server: str, message: str) -> None:
        entry = self._read(digest)
        entry.setdefault("errors", {})[redact(server)] = [int(time.time()), message]
        self._write(digest, entry)

    def _note_delivered(self, digest: bytes, server: str) -> None:
        entry = self._read(digest)
        if redact(server) not in entry["delivered"]:
            entry["delivered"].append(redact(server))
        entry.get("errors", {}).pop(redact(server), None)
        if all(redact(s) in entry["delivered"] for s in self.servers):
            self._remember_delivered(digest, entry["delivered"])
            self._path(digest).unlink(missing_ok=True)
        else:
            self._write(digest, entry)

    def _remember_delivered(self, digest: bytes, servers: list[str]) -> None:
        """Keep who took a document once it leaves the queue (`outbox/done/<hex>`, servers
        by `redact`, one a line): how `never_queued` tells delivered from never sent."""
        done = self.root / "done" / digest.hex()
        done.parent.mkdir(parents=True, exist_ok=True)
        before = self._delivered(digest)
        done.write_text("".join(f"{s}\n" for s in dict.fromkeys([*before, *servers])))

    def _delivered(self, digest: bytes) -> list[str]:
        try:
            return (self.root / "done" / digest.hex()).read_text().split()
        except FileNotFoundError:
            return []

    def never_queued(self) -> dict[str, list[bytes]]:
        """Per server, the public documents this data directory anchored (and holds) that
        are neither queued nor recorded as delivered to it: `provenance documents push
        --all` queues them."""
        queued = set(self.queued())
        held = [
            d
            for d in self.documents.anchored_here()
            if d not in queued and not self.documents.is_private(d) and self.documents.has(d)
        ]
        return {s: [d for d in held if redact(s) not in self._delivered(d)] for s in self.servers}


def _retry_after(exc: urllib.error.HTTPError) -> float:
    """The seconds a 429 asks us to wait (1 when it does not say)."""
    value = exc.headers.get("Retry-After", "") if exc.headers else ""
    return float(value) if value.isdigit() else 1.0


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
