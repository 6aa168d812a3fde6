"""The maker's side: answer a comment publicly, or hide it behind a public tombstone.

Only the lot's supplier (the organisation that registered it) or the ledger's admin may
do either; the entry carries that account's EIP-712 signature (ledger.feedback.signing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from web3 import Web3

from ledger.errors import InvalidInputError, LedgerError
from ledger.feedback.entries import MAX_REASON, MAX_REPLY, maker_content, text_problem
from ledger.feedback.signing import sign
from ledger.feedback.store import Entry, FeedbackStore
from ledger.queries import ReadModel
from ledger.signers import Signer


class NotTheMaker(LedgerError):
    """The signing account is neither the lot's supplier nor the ledger's admin."""


@dataclass(frozen=True)
class MakerDesk:
    """Writes a maker's replies and hides into the log, as `signer`."""

    store: FeedbackStore
    model: ReadModel
    signer: Signer
    w3: Web3
    chain_id: int

    def _comment(self, sequence: int) -> Entry:
        entry = self.store.entry(sequence)
        if entry is None or entry.kind != "comment":
            raise InvalidInputError(f"there is no comment number {sequence} in the feedback log")
        batch = self.model.batch(entry.batch_id)
        supplier = batch.supplier if batch is not None else None
        allowed = {a.lower() for a in self.model.admins(current=True)} | ({supplier.lower()} if supplier else set())
        if self.signer.address.lower() not in allowed:
            raise NotTheMaker(
                f"{self.signer.address} may not answer or hide comment {sequence}: only the lot's supplier"
                f"{f' ({supplier})' if supplier else ''} or the ledger's admin may"
            )
        return entry

    def _append(self, kind: str, comment: Entry, erase: bool = False, **fields: object) -> Entry:
        content = maker_content(
            kind, comment.sequence, comment.batch_id, self.signer.address, int(time.time()), chain_id=self.chain_id, **fields
        )
        signed = sign(self.signer, self.w3, content)
        return self.store.append(
            signed,
            batch_id=comment.batch_id,
            gtin=comment.gtin,
            target=comment.sequence,
            erase=comment.sequence if erase else None,
        )

    def reply(self, sequence: int, text: str) -> Entry:
        """Answer comment `sequence` publicly."""
        text = text.strip()
        if not text:
            raise InvalidInputError("The reply is empty.")
        problem = text_problem(text, MAX_REPLY)
        if problem:
            raise InvalidInputError(problem.english("reply"))
        return self._append("reply", self._comment(sequence), text=text)

    def hide(self, sequence: int, reason: str, erase: bool = False) -> Entry:
        """Hide comment `sequence`: the page shows a tombstone with `reason` in its place.
        `erase` also blanks the comment's stored text (its hash stays, so the chain still
        verifies): for text that must not be kept at all (personal data, unlawful content)."""
        reason = reason.strip()
        if not reason:
            raise InvalidInputError("Give the reason the page will show.")
        problem = text_problem(reason, MAX_REASON)
        if problem:
            raise InvalidInputError(problem.english("reason"))
        comment = self._comment(sequence)
        hidden = any(e.kind == "hide" and e.target == sequence for e in self.store.entries_of([comment.batch_id]))
        # A hidden comment may still need erasing later (personal data found, an erasure request).
        if hidden and not (erase and comment.content is not None):
            raise InvalidInputError(
                f"comment {sequence} is already hidden" + ("" if erase else " (--erase also blanks its text)")
            )
        return self._append("hide", comment, erase=erase, reason=reason, erased=erase)
