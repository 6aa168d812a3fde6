"""The one place for each conversion between what the chain holds and what readers say.

A leaf module (standard library only), so the indexer, the read model, the pages, EPCIS,
the audit and the CLI can all use it without pulling each other in:

- attestation subjects: a lot's batch id as it is, an organisation's address left-padded
  to 32 bytes (`subject_of_address`, `subject_key`, and back: `address_of_subject`);
- transformation kinds: the contract's enum number <-> its name (`kind_name`);
- short text in a fixed-size `bytesN` (units, countries, claim types, business steps):
  `short_text`;
- "accredited at time t": `accredited_at`, the contract's rule, for the read model and
  the audit alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Key of an event's decoded arguments listing its `string` arguments whose bytes were not
#: valid UTF-8 (set by the indexer's decoder, read by every reader).
INVALID_TEXT = "invalidUtf8"

#: The contract's `TransformationKind` enum, in order (`split` is 0).
TRANSFORMATION_KINDS = ("split", "merge", "processing")
#: The contract's `SubjectKind` enum, in order (`batch` is 0).
SUBJECT_KINDS = ("batch", "actor")


def kind_name(kind: int | str) -> str:
    """A transformation kind's name from the contract's number (0 -> "split"); a name is
    returned as it is, and a number the contract does not define reads as "transformation"."""
    if isinstance(kind, str) and not kind.isdigit():
        return kind
    number = int(kind)
    return TRANSFORMATION_KINDS[number] if 0 <= number < len(TRANSFORMATION_KINDS) else "transformation"


def subject_of_address(address: str) -> str:
    """An organisation as an attestation subject: its 20-byte address left-padded to 32
    bytes, lower case, 0x-prefixed (as the contract's `bytes32(uint256(uint160(a)))`)."""
    return "0x" + address.lower().removeprefix("0x").rjust(64, "0")


def subject_key(subject: str) -> str:
    """Any subject as the index keys it: a batch id (32 bytes) lower-cased, an address padded."""
    return subject.lower() if len(subject) == 66 else subject_of_address(subject)


def address_of_subject(subject: str) -> str:
    """The address inside an organisation subject (lower case; the inverse of
    `subject_of_address`)."""
    return "0x" + subject.lower()[-40:]


def short_text(raw: bytes) -> str:
    """Text held in a fixed-size `bytesN` (unit, country, claim type, business step):
    ASCII, trailing NULs dropped. Anyone can put any bytes there around the client, so
    other bytes become U+FFFD (never an error), NULs inside too (PostgreSQL text cannot
    hold them)."""
    return bytes(raw).rstrip(b"\0").decode("ascii", errors="replace").replace("\x00", "\ufffd")


#: A point in the ledger's history: (block time, block number, log index). A moment known
#: only to the second is `end_of_second(t)`: after every event of that second.
Moment = tuple[int, int, int]
_LAST = 2**63 - 1


def end_of_second(timestamp: int) -> Moment:
    """The moment after every event of the second `timestamp` (what "at time t" means)."""
    return (timestamp, _LAST, _LAST)


@dataclass(frozen=True, slots=True)
class AccreditationPeriod:
    """One period a certifier held a claim type's accreditation: from the moment it was
    granted until the moment it was withdrawn (None: still held)."""

    granted: Moment
    revoked: Moment | None = None


def accredited_at(periods: Iterable[AccreditationPeriod], moment: Moment) -> bool:
    """Whether a certifier held the accreditation at `moment`: the contract checks the
    accreditation when an attestation executes, so a grant covers everything after it in
    chain order, its own second included (granted at g covers an attestation at g), and a
    withdrawal ends it at once (withdrawn at v does not cover what comes after it at v).
    Periods are half-open: granted <= moment < revoked."""
    return any(p.granted <= moment and (p.revoked is None or moment < p.revoked) for p in periods)
