"""Checking the feedback log: recompute its hash chain from the store, check every head
anchored on chain at its position, and check the makers' signatures.

A comment deleted or edited in the database behind the app's back shows as a missing
position or a content that no longer hashes to its hash; a log rewritten consistently
(every later hash recomputed) still disagrees with the heads anchored on chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ledger.feedback.anchoring import OnChainAnchor
from ledger.feedback.chain import ChainBreak, recompute
from ledger.feedback.signing import signed_by
from ledger.feedback.store import Entry


@dataclass(frozen=True)
class AnchorCheck:
    """One anchored head and whether the stored log reproduces it."""

    anchor: OnChainAnchor
    problem: str | None


@dataclass
class LogReport:
    """What `provenance feedback verify` found."""

    entries: int
    head: str
    anchors: list[AnchorCheck] = field(default_factory=list)
    breaks: list[ChainBreak] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No break, no anchor the log fails, no bad signature."""
        return not self.breaks and not self.signatures and all(check.problem is None for check in self.anchors)

    def problems(self) -> list[str]:
        """Every problem as a sentence."""
        found = [b.problem for b in self.breaks]
        found += [
            f"anchor of entry {c.anchor.count} in transaction {c.anchor.tx_hash} (block {c.anchor.block_number}): {c.problem}"
            for c in self.anchors
            if c.problem
        ]
        return found + self.signatures


def _anchor_problem(anchor: OnChainAnchor, hashes: list[str], breaks: list[ChainBreak], since: int) -> str | None:
    if anchor.count > len(hashes):
        return f"the log holds {len(hashes)} entries, but {anchor.count} were anchored: entries {len(hashes) + 1} to {anchor.count} were removed"
    if anchor.count == 0 or hashes[anchor.count - 1] == anchor.head:
        return None
    inside = [b.sequence for b in breaks if b.sequence <= anchor.count]
    where = (
        f"first at entry {inside[0]}"
        if inside
        else f"somewhere in entries {since + 1} to {anchor.count}, rewritten with new hashes"
    )
    return f"the stored log does not reproduce the anchored head: it was changed after it was anchored ({where})"


def check_log(entries: list[Entry], anchors: list[OnChainAnchor], makers: Mapping[int, set[str]] | None = None) -> LogReport:
    """Check `entries` (the whole log, in order) against `anchors` (the trusted account's,
    oldest first). `makers` maps each comment's position to the addresses allowed to answer
    or hide it (lower case); without it, signatures are checked against their `by` only."""
    hashes, breaks = recompute(entry.link() for entry in entries)
    report = LogReport(entries=len(hashes), head=hashes[-1] if hashes else "", breaks=breaks)
    verified = 0
    for anchor in anchors:
        problem = _anchor_problem(anchor, hashes, breaks, verified)
        report.anchors.append(AnchorCheck(anchor, problem))
        if problem is None:
            verified = max(verified, anchor.count)
    for entry in entries:
        report.signatures += _signature_problems(entry, makers)
    report.breaks += _stored_columns_problems(entries) + _erasure_problems(entries)
    return report


def _expected_columns(entry: Entry, comments: Mapping[int, Entry]) -> dict[str, object]:
    """What the row's unhashed columns must hold, from its hashed content (the pages group
    and show entries by these columns, so they must say what the content says)."""
    content = entry.content or {}
    expected: dict[str, object] = {
        "kind": content.get("kind"),
        "batch_id": content.get("batch_id"),
        "created_at": content.get("at"),
        "target": content.get("target"),
    }
    if content.get("kind") == "comment":
        expected["gtin"] = content.get("gtin")
    elif content.get("target") in comments:
        expected["gtin"] = comments[int(content["target"])].gtin
    return expected


def _stored_columns_problems(entries: list[Entry]) -> list[ChainBreak]:
    """Rows whose columns (lot, product, kind, time, target) disagree with their hashed
    content: a comment moved to another lot, or a hide moved onto another comment, in the
    database behind the app's back."""
    comments = {e.sequence: e for e in entries if e.kind == "comment"}
    found = []
    for entry in entries:
        if entry.content is None:
            continue
        wrong = [name for name, value in _expected_columns(entry, comments).items() if getattr(entry, name) != value]
        if wrong:
            found.append(
                ChainBreak(entry.sequence, f"entry {entry.sequence}'s stored {', '.join(wrong)} disagree with its hashed content")
            )
    return found


def _erasure_problems(entries: list[Entry]) -> list[ChainBreak]:
    """Entries without content that no later hide erased (`erased: true`, same lot): the
    text was removed behind the app's back."""
    erased = {
        int(e.content["target"]): e
        for e in entries
        if e.content
        and e.content.get("kind") == "hide"
        and e.content.get("erased") is True
        and isinstance(e.content.get("target"), int)
    }
    found = []
    for entry in entries:
        if entry.content is not None:
            continue
        hide = erased.get(entry.sequence)
        hide_lot = (hide.content or {}).get("batch_id") if hide else None
        if hide is None or hide.sequence <= entry.sequence or hide_lot != entry.batch_id or entry.kind != "comment":
            found.append(ChainBreak(entry.sequence, f"entry {entry.sequence}'s content was removed, but no hide erased it"))
    return found


def _signature_problems(entry: Entry, makers: Mapping[int, set[str]] | None) -> list[str]:
    if entry.kind not in ("reply", "hide") or entry.content is None:
        return []
    by = str(entry.content.get("by", ""))
    signer = signed_by(entry.content)
    if signer is None or signer.lower() != by.lower():
        return [f"entry {entry.sequence} ({entry.kind}) is not signed by {by or 'anyone'}, the account it names"]
    if makers is not None and entry.target is not None and by.lower() not in makers.get(entry.target, set()):
        return [
            f"entry {entry.sequence} ({entry.kind}) is signed by {by}, who is neither the lot's supplier nor the ledger's admin"
        ]
    return []
