"""The feedback log's hash chain: how an entry's content and its place in the log are hashed.

    content_hash = sha256(RFC 8785 canonical JSON of the entry's content)
    entry_hash   = sha256(canonical JSON of ["provenance-feedback/1", previous entry_hash, content_hash, sequence])

The first entry's previous hash is GENESIS. Anyone holding the public log
(GET /api/v1/feedback/log) recomputes every hash with any RFC 8785 library and sha256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ledger.documents import canonical_json

#: Names the scheme inside every entry hash, so no other log's hashes can be passed off as ours.
DOMAIN = "provenance-feedback/1"
#: The "previous hash" of the first entry.
GENESIS = "0x" + "00" * 32


def hex_sha256(data: bytes) -> str:
    """`0x` + the sha256 of `data` in hex."""
    return "0x" + hashlib.sha256(data).hexdigest()


def content_hash(content: dict[str, Any]) -> str:
    """The hash of an entry's content (its canonical JSON)."""
    return hex_sha256(canonical_json(content))


def entry_hash(previous: str, content: str, sequence: int) -> str:
    """The hash of entry number `sequence` (1-based), chained to the one before it."""
    return hex_sha256(canonical_json([DOMAIN, previous, content, sequence]))


@dataclass(frozen=True)
class ChainLink:
    """What the chain needs of one stored entry: its position and hashes (content may be erased)."""

    sequence: int
    content_hash: str
    entry_hash: str
    content: dict[str, Any] | None


@dataclass(frozen=True)
class ChainBreak:
    """Where a recomputed log stops agreeing with itself."""

    sequence: int
    problem: str


def recompute(links: Iterable[ChainLink]) -> tuple[list[str], list[ChainBreak]]:
    """Recompute the chain over `links` (in sequence order): the recomputed hash of every
    position (index 0 is entry 1), and every break found: a missing position, content
    that no longer hashes to its content hash, or a stored entry hash that is not the
    recomputed one. Recomputation goes on past a break (from the stored hashes as given),
    so an anchor later in the log is still checked."""
    hashes: list[str] = []
    breaks: list[ChainBreak] = []
    previous = GENESIS
    expected = 1
    for link in links:
        while expected < link.sequence:
            breaks.append(ChainBreak(expected, f"entry {expected} is missing from the log"))
            hashes.append("")  # nothing to hash: no anchor at or after this position can verify
            previous = ""
            expected += 1
        if link.content is not None and content_hash(link.content) != link.content_hash:
            breaks.append(
                ChainBreak(
                    link.sequence, f"entry {link.sequence}'s content was changed (it no longer hashes to its content hash)"
                )
            )
        computed = entry_hash(previous, link.content_hash, link.sequence) if previous else ""
        if computed and computed != link.entry_hash:
            breaks.append(
                ChainBreak(link.sequence, f"entry {link.sequence}'s hash is not the hash of its content and the entry before it")
            )
        hashes.append(computed)
        previous = computed
        expected = link.sequence + 1
    return hashes, breaks
