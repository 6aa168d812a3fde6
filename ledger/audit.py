"""Automatic checks over the indexed history: what an auditor should look at first.

Each finding has a severity, a plain-language explanation and the events behind it (with
their transactions). The checks read the index only (never the chain); they replay the
stored events in chain order, so what they say is reproducible from the chain.

Checks:
- recall reach: every recalled lot, and every downstream lot that contains it;
- events after a recall: hand-overs and transformations of a lot after its recall;
- claims: revoked, expired, certifier no longer accredited, certifier not accredited
  when attesting, and validity windows that do not cover the lot's production date;
- mass balance: a transformation's output above its inputs x the maximum yield of the
  process (a configurable table); claimed output above the claim-bearing input;
- custody: hand-overs to deactivated organisations, lots held by a deactivated
  organisation, lots held by one custodian longer than a bound;
- steps out of order: receiving without shipping, commissioning after other steps;
- lots: details (metadata document) naming another GTIN or lot, voided lots;
- recall reviews: recalls awaiting the admin's review, withdrawn recalls;
- contract rules an index should never show broken (a faulty or foreign indexer): a
  certifier attesting about itself or goods it supplied, held or was being handed, and
  validity starting before the lot existed or further back than the claim type allows.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from fractions import Fraction
from pathlib import Path
from typing import Any

from ledger.conversions import AccreditationPeriod, accredited_at, address_of_subject, end_of_second
from ledger.errors import ConfigurationError, InvalidInputError
from ledger.queries import ReadModel
from ledger.records import (
    ActorDeactivated,
    ActorReactivated,
    Attestation,
    AttestationRevoked,
    Attested,
    BatchRecalled,
    BatchRegistered,
    BatchVoided,
    Claim,
    CustodyTransferAccepted,
    CustodyTransferCancelled,
    CustodyTransferProposed,
    EventRecord,
    LineageNode,
    MaxBackdatingSet,
    RecallReviewed,
    StepRecorded,
    TransformationRecorded,
)

DAY = 24 * 3600
#: Every claim type's maximum backdating until the admin sets another (the contract's default).
DEFAULT_MAX_BACKDATING = 90 * DAY
#: The groups of checks, in the order `Auditor.audit_all` runs them (for progress bars).
# Events whose text decides what customers see or whom they trust.
_SERIOUS_TEXT_EVENTS = {
    "BatchRecalled",
    "RecallReviewed",
    "AttestationRevoked",
    "BatchVoided",
    "ActorRegistered",
    "ActorProfileUpdated",
    "ActorProfileUpdateRequested",
}

CHECKS = ("recalls", "claims", "mass balance", "custody", "step order", "lots", "text")


class Severity(IntEnum):
    """How urgently a finding needs a person (ordered: a threshold keeps this and above)."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        """`high` -> Severity.HIGH, or an error listing the levels."""
        try:
            return cls[text.strip().upper()]
        except KeyError as exc:
            raise InvalidInputError(f"severity {text!r} is not one of {', '.join(s.name.lower() for s in cls)}") from exc


@dataclass(frozen=True)
class EventRef:
    """An event behind a finding, with its proof."""

    name: str
    tx_hash: str
    block_number: int
    log_index: int
    timestamp: int


@dataclass
class Finding:
    """One thing that looks wrong."""

    check: str
    severity: Severity
    title: str
    explanation: str
    batch_id: str | None = None
    lot: str | None = None
    gtin: str | None = None
    related_batches: list[str] = field(default_factory=list)
    events: list[EventRef] = field(default_factory=list)
    actor: str | None = None  # the organisation a finding is about, when not a lot

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        data = asdict(self)
        data["severity"] = self.severity.name.lower()
        return data


@dataclass(frozen=True)
class YieldRule:
    """The most output a process may give per unit of input (output unit per input unit).

    Matched on the output's GTIN and, when given, the inputs' GTIN; e.g. roasting green
    coffee gives at most 0.9 kg of roasted coffee per kg."""

    name: str
    output_gtin: str
    max_yield: float
    input_gtin: str | None = None


@dataclass
class AuditPolicy:
    """The configurable part of the checks (`<data dir>/audit.toml`)."""

    yields: list[YieldRule] = field(default_factory=list)
    max_custody_days: int = 180

    @classmethod
    def load(cls, path: Path) -> AuditPolicy:
        """The policy in `path` (TOML: `max_custody_days`, `[[yield]]` tables), or the defaults."""
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text())
            rules = [
                YieldRule(r["name"], str(r["output_gtin"]), float(r["max_yield"]), r.get("input_gtin"))
                for r in data.get("yield", [])
            ]
        except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"audit policy {path} is not valid ({exc}): expected max_custody_days = N and "
                "[[yield]] tables with name, output_gtin, max_yield (and optional input_gtin)"
            ) from exc
        return cls(yields=rules, max_custody_days=int(data.get("max_custody_days", 180)))

    def to_toml(self) -> str:
        """The policy as TOML, for `audit.toml`."""
        lines = [f"max_custody_days = {self.max_custody_days}", ""]
        for rule in self.yields:
            lines += [
                "[[yield]]",
                f'name = "{rule.name}"',
                f'output_gtin = "{rule.output_gtin}"',
                f"max_yield = {rule.max_yield}",
            ]
            if rule.input_gtin:
                lines.append(f'input_gtin = "{rule.input_gtin}"')
            lines.append("")
        return "\n".join(lines)

    def rule_for(self, output_gtin: str, input_gtins: set[str]) -> YieldRule | None:
        """The most specific rule for a transformation (input GTIN given beats any input)."""
        candidates = [
            r for r in self.yields if r.output_gtin == output_gtin and (r.input_gtin is None or {r.input_gtin} == input_gtins)
        ]
        return max(candidates, key=lambda r: r.input_gtin is not None, default=None)


@dataclass(frozen=True)
class _AuditedClaim:
    """One attestation as the claim checks word it: the indexed row, its status now, who
    and what it is about, and the events behind it."""

    row: Attestation
    status: str
    subject: str  # the lot or organisation, as people read it
    issuer: str  # the certifier's name, else its address
    batch_id: str | None  # the lot it is about (None: about an organisation)
    actor: str | None  # the organisation it is about (None: about a lot)
    attested: EventRecord | None  # the Attested event, when the index holds it
    revocation: EventRecord | None  # the AttestationRevoked event, when the index holds it
    accredited_then: bool  # the certifier held the claim type's accreditation when attesting

    @property
    def evidence(self) -> list[EventRecord]:
        """The events a finding about the claim cites."""
        return [self.attested] if self.attested is not None else []


def _ref(e: EventRecord) -> EventRef:
    return EventRef(e.name, e.tx_hash, e.block_number, e.log_index, e.timestamp)


def _date(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


class Auditor:
    """Runs every check over the index."""

    def __init__(self, model: ReadModel, policy: AuditPolicy | None = None, now: int | None = None) -> None:
        self.model = model
        self.policy = policy or AuditPolicy()
        self.now = int(time.time()) if now is None else now

    # ------------------------------------------------------------------ loading

    def _load(self) -> None:
        self.batches = self.model.batch_rows()
        self.events = self.model.journal()
        self.names = self.model.who(
            {e.actor for e in self.events if e.actor}
            | {v for e in self.events for v in e.args.values() if isinstance(v, str) and len(v) == 42}
        )
        # Each batch's details are read and checked against its lot once, here.
        self.details = {bid: self.model.details(b) for bid, b in self.batches.items()}
        self.product = {bid: document for bid, (_, document, _) in self.details.items()}
        self.by_batch: dict[str, list[EventRecord]] = {}
        for e in self.events:
            if e.batch_id:
                self.by_batch.setdefault(e.batch_id, []).append(e)
        self.backdating_events = [e for e in self.events if isinstance(e.data, MaxBackdatingSet)]

    def _label(self, batch_id: str) -> str:
        b = self.batches.get(batch_id)
        if b is None:
            return batch_id
        product = self.product.get(batch_id, {}).get("product")
        return f"lot {b.lot} ({product})" if product else f"lot {b.lot} of {b.gtin}"

    def _finding(
        self,
        check: str,
        severity: Severity,
        title: str,
        explanation: str,
        batch_id: str | None,
        events: Iterable[EventRecord] = (),
        related: Iterable[str] = (),
        actor: str | None = None,
    ) -> Finding:
        b = self.batches.get(batch_id or "")
        return Finding(
            check,
            severity,
            title,
            explanation,
            batch_id,
            b.lot if b else None,
            b.gtin if b else None,
            sorted(set(related)),
            [_ref(e) for e in events],
            actor,
        )

    # ------------------------------------------------------------------ running

    def audit_all(self, progress: Callable[[str], None] | None = None) -> list[Finding]:
        """Every finding in the whole ledger, most severe first."""
        self._load()
        findings: list[Finding] = []
        checks = (self._recalls, self._claims, self._mass_balance, self._custody, self._step_order, self._lots, self._text)
        for name, check in zip(CHECKS, checks, strict=True):
            if progress:
                progress(name)
            findings.extend(check())
        findings.sort(key=lambda f: (-f.severity, f.check, f.lot or "", f.title))
        return findings

    def audit_batch(self, batch_id: str) -> list[Finding]:
        """The findings about a lot, its inputs (recursively) and what was made from it."""
        lineage = {batch_id} | self._ancestors(batch_id) | self._descendants(batch_id)
        findings = self.audit_all()
        actors = {self.batches[b].supplier for b in lineage if b in self.batches}
        return [f for f in findings if f.batch_id in lineage or set(f.related_batches) & lineage or f.actor in actors]

    def _ancestors(self, batch_id: str) -> set[str]:
        return {p for _, (_, inputs) in self.model.ancestors(batch_id).items() for p, _ in inputs}

    def _descendants(self, batch_id: str) -> set[str]:
        found: set[str] = set()

        def walk(node: LineageNode) -> None:
            for child in node.outputs or ():
                found.add(child.batch_id)
                walk(child)

        walk(self.model.lineage_down(batch_id))
        return found

    # ------------------------------------------------------------------ checks

    def _review_of(self, recall: EventRecord) -> EventRecord | None:
        """The admin's review of a recall: the first RecallReviewed of the lot after it."""
        return next(
            (
                x
                for x in self.by_batch.get(recall.batch_id or "", [])
                if isinstance(x.data, RecallReviewed) and x.position > recall.position
            ),
            None,
        )

    def _inactive_at(self, account: str, position: tuple[int, int]) -> bool:
        """Whether the organisation was deactivated at (block, log index)."""
        inactive = False
        for x in self.events:
            if x.position > position:
                break
            if isinstance(x.data, ActorDeactivated | ActorReactivated) and x.data.account == account:
                inactive = isinstance(x.data, ActorDeactivated)
        return inactive

    def _recalls(self) -> list[Finding]:
        """Each recall: awaiting review or withdrawn, else its reach downstream and what
        happened to the lot after it."""
        findings = []
        for e in self.events:
            if not isinstance(e.data, BatchRecalled):
                continue
            recall, review = e.data, self._review_of(e)
            if review is None:
                findings.append(self._recall_awaiting_review(e, recall))
            elif isinstance(review.data, RecallReviewed) and not review.data.upheld:
                findings.append(self._recall_withdrawn(e, recall, review, review.data))
                continue  # a withdrawn recall has no reach and nothing after it is wrong
            findings.append(self._recall_reach(e, recall))
            findings.extend(self._event_after_recall(e, x) for x in self._events_after_recall(e))
        return findings

    def _recall_awaiting_review(self, e: EventRecord, recall: BatchRecalled) -> Finding:
        """A recall the admin has not reviewed yet (urgent when its author was deactivated)."""
        recalled = recall.batch_id
        by = self.names.get(recall.by, recall.by)
        deactivated = self._inactive_at(recall.by, e.position)
        return self._finding(
            "recall_awaiting_review",
            Severity.MEDIUM if deactivated else Severity.INFO,
            f"Recall of {self._label(recalled)} awaits the admin's review",
            f"{by} recalled {self._label(recalled)} on {_date(e.timestamp)} ({recall.reason!r})"
            + (
                ", while deactivated: the admin should uphold or withdraw it soon."
                if deactivated
                else "; the admin has not reviewed it yet."
            ),
            recalled,
            [e],
        )

    def _recall_withdrawn(self, e: EventRecord, recall: BatchRecalled, review: EventRecord, verdict: RecallReviewed) -> Finding:
        """A recall the admin withdrew on review: the lot may be used again."""
        recalled = recall.batch_id
        by = self.names.get(recall.by, recall.by)
        return self._finding(
            "recall_withdrawn",
            Severity.INFO,
            f"Recall of {self._label(recalled)} withdrawn on review",
            f"{by} recalled {self._label(recalled)} on {_date(e.timestamp)} ({recall.reason!r}); "
            f"{self.names.get(verdict.by, verdict.by)} withdrew the recall on "
            f"{_date(review.timestamp)} ({verdict.reason!r}), so the lot may be used again.",
            recalled,
            [e, review],
        )

    def _recall_reach(self, e: EventRecord, recall: BatchRecalled) -> Finding:
        """A recall in force, with every lot made from the recalled one (critical when any)."""
        recalled = recall.batch_id
        downstream = sorted(self._descendants(recalled))
        if not downstream:
            return self._finding(
                "recall_reach",
                Severity.HIGH,
                f"Recalled {self._label(recalled)}",
                f"{self._label(recalled)} was recalled on {_date(e.timestamp)}; nothing recorded on the ledger was made from it.",
                recalled,
                [e],
            )
        lots = "; ".join(self._label(d) for d in downstream)
        return self._finding(
            "recall_reach",
            Severity.CRITICAL,
            f"Recalled {self._label(recalled)} reached {len(downstream)} downstream lot(s)",
            f"{self._label(recalled)} was recalled on {_date(e.timestamp)} by {self.names.get(recall.by, recall.by)}. "
            f"These lots contain it and need the same action: {lots}.",
            recalled,
            [e],
            downstream,
        )

    def _events_after_recall(self, e: EventRecord) -> list[EventRecord]:
        """Hand-overs of the recalled lot, and transformations using it, after the recall."""
        recalled = e.batch_id or ""  # a recall is always about a lot
        position = e.position

        def uses_recalled(x: EventRecord) -> bool:
            match x.data:
                case CustodyTransferProposed() | CustodyTransferAccepted():
                    return x.batch_id == recalled
                case TransformationRecorded(inputs=inputs):
                    return any(b == recalled for b, _ in inputs)
            return False

        return [x for x in self.events if x.position > position and uses_recalled(x)]

    def _event_after_recall(self, e: EventRecord, x: EventRecord) -> Finding:
        """A hand-over (was it returned or destroyed?) or a transformation (recalled goods
        in new lots) of a lot after its recall."""
        recalled = e.batch_id or ""  # a recall is always about a lot
        moved = isinstance(x.data, CustodyTransferProposed | CustodyTransferAccepted)
        to = x.data.to if isinstance(x.data, CustodyTransferProposed | CustodyTransferAccepted) else ""
        return self._finding(
            "event_after_recall",
            Severity.MEDIUM if moved else Severity.HIGH,
            f"{'Hand-over' if moved else 'Transformation'} of {self._label(recalled)} after its recall",
            f"{self._label(recalled)} was recalled on {_date(e.timestamp)}, then "
            + (
                f"handed over to {self.names.get(to, to)} on {_date(x.timestamp)}; check it was returned or destroyed, not sold."
                if moved
                else f"used in a transformation on {_date(x.timestamp)}: recalled goods went into new lots."
            ),
            recalled,
            [e, x],
        )

    def _custody_at(self, batch_id: str, position: tuple[int, int]) -> set[str]:
        """Who supplied, held or was being handed the lot at (block, log index)."""
        parties: set[str] = set()
        custodian = pending = None
        for x in self.by_batch.get(batch_id, []):
            if x.position > position:
                break
            match x.data:
                case BatchRegistered(supplier=supplier):
                    parties.add(supplier)
                    custodian = supplier
                case CustodyTransferProposed(to=to):
                    pending = to
                case CustodyTransferCancelled() | BatchVoided():
                    pending = None
                case CustodyTransferAccepted(to=to):
                    custodian, pending = to, None
        return parties | {p for p in (custodian, pending) if p}

    def _max_backdating_at(self, claim: str, position: tuple[int, int]) -> int:
        period = DEFAULT_MAX_BACKDATING
        for x in self.backdating_events:
            if x.position > position:
                break
            if isinstance(x.data, MaxBackdatingSet) and x.data.claim == claim:
                period = x.data.period
        return period

    def _rule_breaches(
        self, r: Attestation, event: EventRecord | None, subject: str, issuer: str, batch_id: str | None, actor: str | None
    ) -> list[Finding]:
        """What the contract forbids and an index must never show: separation of duties and
        backdating. Only a faulty or foreign indexer (or a doctored index) can hold these."""
        if event is None:
            return []
        position = event.position
        findings = []
        if batch_id:
            conflicted = r.issuer in self._custody_at(batch_id, position)
        else:
            conflicted = actor is not None and actor.lower() == r.issuer.lower()
        if conflicted:
            findings.append(
                self._finding(
                    "claim_conflict_of_interest",
                    Severity.CRITICAL,
                    f"{r.claim} attested by an interested party",
                    f"{issuer} attested {r.claim} about {subject} on {_date(r.attested_at)}, but it "
                    + ("supplied, held or was being handed that lot at the time." if batch_id else "is that organisation."),
                    batch_id,
                    [event],
                    actor=actor,
                )
            )
        earliest = r.attested_at - self._max_backdating_at(r.claim, position)
        registered = self.batches[batch_id].registered_at if batch_id and batch_id in self.batches else None
        if r.valid_from < earliest or (registered is not None and r.valid_from < registered):
            findings.append(
                self._finding(
                    "claim_backdated",
                    Severity.CRITICAL,
                    f"{r.claim} validity starts too early",
                    f"{issuer}'s {r.claim} attestation about {subject} starts on {_date(r.valid_from)}, before "
                    + (
                        f"the lot was registered ({_date(registered)})"
                        if registered is not None and r.valid_from < registered
                        else f"the earliest start the claim type allowed ({_date(earliest)})"
                    )
                    + ".",
                    batch_id,
                    [event],
                    actor=actor,
                )
            )
        return findings

    def _claims(self) -> list[Finding]:
        """Each attestation's findings: contract rules an index must never show broken, a
        certifier not accredited when attesting, the claim's status now (revoked, expired,
        certifier no longer accredited) and a validity window missing the lot's production."""
        rows = self.model.attestation_rows()
        periods = self.model.accreditation_periods()
        subjects = list({r.subject for r in rows})
        now = self.claims_now = self.model.claims_of(subjects, self.now)
        by_uid = {c.uid: c for cs in now.values() for c in cs}
        attested_events = {e.data.uid: e for e in self.events if isinstance(e.data, Attested)}
        revoked_events = {e.data.uid: e for e in self.events if isinstance(e.data, AttestationRevoked)}
        # One finding (or none) per status a claim can have now; other statuses say nothing wrong.
        by_status: dict[str, Callable[[_AuditedClaim], Finding | None]] = {
            "revoked": self._claim_revoked, "expired": self._claim_expired,
            "issuer_not_accredited": self._claim_issuer_no_longer_accredited,
        }  # fmt: skip
        findings = []
        for r in rows:
            claim = by_uid.get(r.uid)
            if claim is None:
                continue
            c = self._audited_claim(r, claim, periods, attested_events.get(r.uid), revoked_events.get(r.uid))
            findings.extend(self._rule_breaches(r, c.attested, c.subject, c.issuer, c.batch_id, c.actor))
            if not c.accredited_then:
                findings.append(self._claim_unaccredited_issuer(c))
            status_check = by_status.get(c.status)
            found = status_check(c) if status_check else None
            if found is not None:
                findings.append(found)
            missed = self._claim_window_misses_production(c)
            if missed is not None:
                findings.append(missed)
        return findings

    def _audited_claim(
        self,
        r: Attestation,
        claim: Claim,
        periods: dict[tuple[str, str], list[AccreditationPeriod]],
        attested: EventRecord | None,
        revoked: EventRecord | None,
    ) -> _AuditedClaim:
        """The attestation `r` with what its findings say about it."""
        batch_id = r.subject if r.subject_kind == "batch" else None
        # The attestation's own chain moment, so that a grant or a withdrawal in the same
        # second is ordered as the contract saw it (the same rule as the read model's).
        when = (attested.timestamp, *attested.position) if attested else end_of_second(r.attested_at)
        accredited_then = accredited_at(periods.get((r.issuer, r.claim), []), when)
        return _AuditedClaim(
            row=r,
            status=claim.status,
            subject=self._subject_label(r),
            issuer=claim.issuer_name or r.issuer,
            batch_id=batch_id,
            actor=None if batch_id else self._subject_address(r),
            attested=attested,
            revocation=revoked,
            accredited_then=accredited_then,
        )

    def _claim_unaccredited_issuer(self, c: _AuditedClaim) -> Finding:
        """The certifier did not hold the claim type's accreditation when it attested."""
        r = c.row
        return self._finding(
            "claim_unaccredited_issuer",
            Severity.CRITICAL,
            f"{r.claim} attested by a certifier not accredited for it",
            f"{c.issuer} attested {r.claim} about {c.subject} on {_date(r.attested_at)} without holding the "
            f"{r.claim} accreditation at that time.",
            c.batch_id,
            c.evidence,
            actor=c.actor,
        )

    def _claim_revoked(self, c: _AuditedClaim) -> Finding:
        """A revoked claim: products made from the lot cannot carry it on its account."""
        r = c.row
        revoker = self.names.get(r.revoked_by, r.revoked_by) if r.revoked_by else c.issuer
        return self._finding(
            "claim_revoked",
            Severity.HIGH,
            f"{r.claim} claim revoked for {c.subject}",
            f"{revoker} revoked {c.issuer}'s {r.claim} attestation about {c.subject} on {_date(r.revoked_at or 0)}"
            + (f" ({r.revocation_reason!r})" if r.revocation_reason else "")
            + "; products made from it cannot carry the claim on its account.",
            c.batch_id,
            c.evidence + ([c.revocation] if c.revocation else []),
            actor=c.actor,
        )

    def _claim_expired(self, c: _AuditedClaim) -> Finding:
        """A claim whose validity ran out without a renewal."""
        r = c.row
        return self._finding(
            "claim_expired",
            Severity.MEDIUM,
            f"{r.claim} claim expired for {c.subject}",
            f"{c.issuer}'s {r.claim} attestation about {c.subject} ran out on {_date(r.valid_until)} and has not been renewed.",
            c.batch_id,
            c.evidence,
            actor=c.actor,
        )

    def _claim_issuer_no_longer_accredited(self, c: _AuditedClaim) -> Finding | None:
        """A certifier accredited when it attested that no longer is (one that never was
        is `claim_unaccredited_issuer` already)."""
        if not c.accredited_then:
            return None
        r = c.row
        return self._finding(
            "claim_issuer_no_longer_accredited",
            Severity.MEDIUM,
            f"{r.claim} certifier no longer accredited",
            f"{c.issuer}, which attested {r.claim} about {c.subject}, is no longer accredited for it (or was deactivated).",
            c.batch_id,
            c.evidence,
            actor=c.actor,
        )

    def _claim_window_misses_production(self, c: _AuditedClaim) -> Finding | None:
        """A claim about a lot whose validity does not cover the lot's registration."""
        r, batch_id = c.row, c.batch_id
        if not batch_id or batch_id not in self.batches:
            return None
        produced = self.batches[batch_id].registered_at
        if not (produced < r.valid_from or (r.valid_until and produced >= r.valid_until)):
            return None
        return self._finding(
            "claim_window_misses_production",
            Severity.MEDIUM,
            f"{r.claim} validity does not cover the production of {self._label(batch_id)}",
            f"{self._label(batch_id)} was registered on {_date(produced)}, outside the attestation's validity "
            f"({_date(r.valid_from)} to {_date(r.valid_until) if r.valid_until else 'open'}).",
            batch_id,
            c.evidence,
        )

    def _subject_address(self, r: Attestation) -> str:
        """The organisation an actor-subject attestation is about (checksummed as indexed)."""
        address = address_of_subject(r.subject)
        return next((a for a in self.names if a.lower() == address), address)

    def _subject_label(self, r: Attestation) -> str:
        if r.subject_kind == "batch":
            return self._label(r.subject)
        address = self._subject_address(r)
        return self.names.get(address, address)

    def _mass_balance(self) -> list[Finding]:
        """Every transformation: no output above its inputs times the process's yield, and
        no more claimed output than claim-bearing input."""
        findings = []
        for e in self.events:
            if isinstance(e.data, TransformationRecorded):
                findings.extend(self._transformation_balance(e, e.data))
        return findings

    def _transformation_balance(self, e: EventRecord, t: TransformationRecorded) -> list[Finding]:
        """The mass balance of one transformation, output by output (the first output over
        its inputs is reported and ends the comparison)."""
        inputs = list(t.inputs)
        outputs = [b for b in t.outputs if b in self.batches]
        in_units = {self.batches[b].unit for b, _ in inputs if b in self.batches}
        in_gtins = {self.batches[b].gtin for b, _ in inputs if b in self.batches}
        findings = []
        for out in outputs:
            batch = self.batches[out]
            rule = self.policy.rule_for(batch.gtin, in_gtins)
            if rule is None and in_units != {batch.unit}:
                continue  # different units and no rule: nothing to compare
            max_yield = rule.max_yield if rule else 1.0
            excess = self._output_exceeds_inputs(e, out, outputs, inputs, in_units, rule)
            if excess is not None:
                findings.append(excess)
                break
            findings.extend(self._claimed_output(e, out, inputs, max_yield))
        return findings

    def _output_exceeds_inputs(
        self,
        e: EventRecord,
        out: str,
        outputs: list[str],
        inputs: list[tuple[str, int]],
        in_units: set[str],
        rule: YieldRule | None,
    ) -> Finding | None:
        """The transformation's output in `out`'s unit above its inputs times the yield
        limit (the rule's, else 1: no process creates mass)."""
        batch = self.batches[out]
        max_yield = rule.max_yield if rule else 1.0
        in_total = sum(q for _, q in inputs)
        out_total = sum(int(self.batches[o].registered_quantity) for o in outputs if self.batches[o].unit == batch.unit)
        # Exact: quantities go up to 2^64 - 1, where floats lose units.
        if out_total <= in_total * Fraction(str(max_yield)):
            return None
        process = (
            f"the {rule.name} yield limit ({max_yield:g} per input unit)" if rule else "the inputs (no process creates mass)"
        )
        return self._finding(
            "mass_balance",
            Severity.HIGH,
            f"Output of {self._label(out)} exceeds its inputs",
            f"{out_total:,} {batch.unit} came out of {in_total:,} {'/'.join(sorted(in_units))} of input on "
            f"{_date(e.timestamp)}, more than {process} allows ({in_total * max_yield:,.0f} {batch.unit}).",
            out,
            [e],
            [b for b, _ in inputs],
        )

    def _claimed_output(self, e: EventRecord, out: str, inputs: list[tuple[str, int]], max_yield: float) -> list[Finding]:
        """A claim carried by an output needs as much claim-bearing input (times the yield)."""
        claims = set(self.product.get(out, {}).get("claims", []))
        direct = self.model.claims(out, self.now)
        claims |= {c.claim for c in direct if c.status == "valid"}
        findings = []
        quantity = int(self.batches[out].registered_quantity)
        for claim in sorted(claims):
            bearing = sum(q * self.model.coverage(b, e.timestamp).get(claim, 0.0) for b, q in inputs)
            if quantity > bearing * max_yield + 1e-9:
                findings.append(
                    self._finding(
                        "claimed_output_exceeds_claimed_input",
                        Severity.HIGH,
                        f"More {claim} output than {claim} input in {self._label(out)}",
                        f"{self._label(out)} carries {claim} for {quantity:,} {self.batches[out].unit}, but only {bearing:,.0f} of the "
                        f"input carried {claim} when it was made (at most {bearing * max_yield:,.0f} after the process).",
                        out,
                        [e],
                        [b for b, _ in inputs],
                    )
                )
        return findings

    def _custody(self) -> list[Finding]:
        findings = []
        inactive_since: dict[str, int] = {}
        held_since: dict[str, tuple[int, EventRecord | None]] = {}
        for e in self.events:
            match e.data:
                case ActorDeactivated(account=account):
                    inactive_since[account] = e.timestamp
                case ActorReactivated(account=account):
                    inactive_since.pop(account, None)
                case BatchRegistered(batch_id=batch_id):
                    held_since[batch_id] = (e.timestamp, e)
                case CustodyTransferAccepted(batch_id=batch_id, to=to):
                    held_since[batch_id] = (e.timestamp, e)
                    if to in inactive_since:
                        findings.append(
                            self._finding(
                                "handover_to_deactivated",
                                Severity.HIGH,
                                f"{self._label(batch_id)} handed over to a deactivated organisation",
                                f"{self.names.get(to, to)} accepted {self._label(batch_id)} on {_date(e.timestamp)}, "
                                f"after it was deactivated on {_date(inactive_since[to])}.",
                                batch_id,
                                [e],
                            )
                        )
        for batch_id, b in self.batches.items():
            if b.status != "active" or int(b.remaining_quantity) == 0:
                continue
            since, event = held_since.get(batch_id, (b.registered_at, None))
            if b.custodian in inactive_since:
                findings.append(
                    self._finding(
                        "held_by_deactivated",
                        Severity.MEDIUM,
                        f"{self._label(batch_id)} is held by a deactivated organisation",
                        f"{self.names.get(b.custodian, b.custodian)} was deactivated on {_date(inactive_since[b.custodian])} "
                        f"and still holds {int(b.remaining_quantity):,} {b.unit} of it.",
                        batch_id,
                        [event] if event else [],
                    )
                )
            days = (self.now - since) / DAY
            if days > self.policy.max_custody_days:
                findings.append(
                    self._finding(
                        "custody_too_long",
                        Severity.LOW,
                        f"{self._label(batch_id)} held {days:.0f} days by one custodian",
                        f"{self.names.get(b.custodian, b.custodian)} has held it since {_date(since)}, longer than the "
                        f"{self.policy.max_custody_days} days the audit policy allows; is it still there?",
                        batch_id,
                        [event] if event else [],
                    )
                )
        return findings

    def _lots(self) -> list[Finding]:
        """Details that are not the lot's own, and voided lots."""
        findings = []
        registered = {e.batch_id: e for e in self.events if isinstance(e.data, BatchRegistered)}
        for batch_id, b in self.batches.items():
            evidence = [registered[batch_id]] if batch_id in registered else []
            problem = self.details[batch_id][2]
            if problem:
                findings.append(self._metadata_mismatch(batch_id, problem, evidence))
            if b.status == "voided":
                findings.append(self._batch_voided(batch_id, evidence))
        return findings

    def _metadata_mismatch(self, batch_id: str, problem: str, evidence: list[EventRecord]) -> Finding:
        """The lot's metadata document names another lot: pages show no details for it."""
        b = self.batches[batch_id]
        return self._finding(
            "metadata_mismatch",
            Severity.HIGH,
            f"Details of lot {b.lot} of {b.gtin} belong to another lot",
            f"{self.names.get(b.supplier, b.supplier)} registered lot {b.lot} of {b.gtin} with the metadata "
            f"hash {b.metadata_hash[:10]}…, but {problem}. Pages show no product details for it.",
            batch_id,
            evidence,
        )

    def _batch_voided(self, batch_id: str, evidence: list[EventRecord]) -> Finding:
        """A lot voided as registered in error (serious when lots were made from it before)."""
        b = self.batches[batch_id]
        voided = next((e for e in self.events if isinstance(e.data, BatchVoided) and e.batch_id == batch_id), None)
        downstream = sorted(self._descendants(batch_id))
        by = self.names.get(b.voided_by, b.voided_by) if b.voided_by else "the admin"
        return self._finding(
            "batch_voided",
            Severity.HIGH if downstream else Severity.LOW,
            f"{self._label(batch_id)} was voided" + (f" after going into {len(downstream)} lot(s)" if downstream else ""),
            f"{by} voided {self._label(batch_id)} on {_date(b.voided_at or 0)} as registered in error "
            f"({b.void_reason!r})."
            + (
                " These lots were made from it before: " + "; ".join(self._label(d) for d in downstream) + "."
                if downstream
                else ""
            ),
            batch_id,
            evidence + ([voided] if voided else []),
            downstream,
        )

    def _step_order(self) -> list[Finding]:
        findings = []
        history: dict[str, list[tuple[EventRecord, StepRecorded]]] = {}
        for e in self.events:
            if isinstance(e.data, StepRecorded):
                history.setdefault(e.data.batch_id, []).append((e, e.data))
        for batch_id, steps in history.items():
            shipped: EventRecord | None = None
            for i, (e, step) in enumerate(steps):
                if step.biz_step == "commissioning" and i > 0:
                    findings.append(
                        self._finding(
                            "step_out_of_order",
                            Severity.LOW,
                            f"{self._label(batch_id)} commissioned after other steps",
                            f"'commissioning' was recorded on {_date(e.timestamp)} after {steps[0][1].biz_step!r}: "
                            "a lot is commissioned first.",
                            batch_id,
                            [steps[0][0], e],
                        )
                    )
                elif step.biz_step == "shipping":
                    shipped = e
                elif step.biz_step == "receiving":
                    if shipped is None:
                        findings.append(
                            self._finding(
                                "step_out_of_order",
                                Severity.LOW,
                                f"{self._label(batch_id)} received without being shipped",
                                f"{self.names.get(step.actor, step.actor)} recorded 'receiving' on {_date(e.timestamp)} "
                                "with no 'shipping' step before it.",
                                batch_id,
                                [e],
                            )
                        )
                    shipped = None
        return findings

    def _text(self) -> list[Finding]:
        """Events whose text arguments were not valid UTF-8 (a raw transaction can put any
        bytes into a Solidity string): the index applied them with U+FFFD in place of the
        bad bytes, and people should know the text they read is not what was written.
        Names, recall and revocation reasons are MEDIUM (they decide what customers see
        and whom they trust); other text (step locations...) is LOW."""
        # A revocation is about the attestation's subject: a lot's audit must show it.
        attested_lots = {
            e.data.uid: e.data.subject for e in self.events if isinstance(e.data, Attested) and e.data.subject_kind == 0
        }
        return [self._text_not_utf8(e, attested_lots) for e in self.events if e.invalid_text]

    def _text_not_utf8(self, e: EventRecord, attested_lots: dict[str, str]) -> Finding:
        """One event whose text fields (listed under INVALID_TEXT) were not valid UTF-8."""
        fields = e.invalid_text
        serious = e.name in _SERIOUS_TEXT_EVENTS
        who = e.actor or getattr(e.data, "by", "") or ""
        texts = ", ".join(f"{f} {e.args.get(f)!r}" for f in fields)
        lot = e.batch_id or (attested_lots.get(e.data.uid) if isinstance(e.data, AttestationRevoked) else None)
        subject = self._label(lot) if lot else self.names.get(who, who) or "the ledger"
        return self._finding(
            "text_not_utf8",
            Severity.MEDIUM if serious else Severity.LOW,
            f"{e.name} of {subject} carries text that is not valid UTF-8",
            f"The {e.name} event of {_date(e.timestamp)} (transaction {e.tx_hash}) holds bytes that are not "
            f"valid UTF-8 in its {', '.join(fields)}: it was sent around the client. The index applied the event; "
            f"readers show the text with \ufffd in place of the bad bytes: {texts}.",
            lot,
            [e],
            actor=None if lot else (e.actor or None),
        )


def worst(findings: list[Finding]) -> Severity | None:
    """The highest severity among `findings`."""
    return max((f.severity for f in findings), default=None)
