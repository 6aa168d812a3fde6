"""GS1 identifiers: GTIN (check digit via biip), lot (AI 10), batch ids and Digital Link URLs."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote, urlparse

from biip import ParseError
from biip.gtin import Gtin
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from ledger import units
from ledger.conversions import short_text
from ledger.errors import InvalidInputError
from ledger.hashing import keccak256

LOT_MAX_LENGTH = 20
REASON_MAX_BYTES = 280  # IProvenanceLedger: recall, review, void and revocation reasons
# GS1 AI (10) takes GS1 AI encodable character set 82: these printable ASCII characters.
_CSET82 = re.compile(r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@lru_cache(maxsize=65_536)  # pure, and bulk imports ask for the same GTIN thousands of times
def parse_gtin(text: str) -> str:
    """The GTIN-14 form of `text` (GTIN-8/12/13/14), or an error naming what is wrong."""
    cleaned = text.strip()
    if not cleaned.isdigit():
        raise InvalidInputError(f"GTIN {text!r} must contain digits only (8, 12, 13 or 14 of them)")
    try:
        return Gtin.parse(cleaned).as_gtin_14()
    except ParseError as exc:
        raise InvalidInputError(f"GTIN {text!r} is not valid: {exc}") from exc


def complete_gtin(body: str) -> str:
    """The GTIN-14 whose first 13 digits are `body` (zero-padded), with its check digit."""
    digits = body.zfill(13)
    if not digits.isdigit() or len(digits) != 13:
        raise InvalidInputError(f"{body!r} must be up to 13 digits")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return digits + str((10 - total % 10) % 10)


def check_lot(lot: str) -> str:
    """`lot` if it is a valid GS1 batch/lot number (AI 10), else an error saying why."""
    if not lot:
        raise InvalidInputError("the lot must not be empty")
    if len(lot) > LOT_MAX_LENGTH:
        raise InvalidInputError(f"lot {lot!r} has {len(lot)} characters; GS1 allows at most {LOT_MAX_LENGTH}")
    if not _CSET82.match(lot):
        bad = sorted({c for c in lot if not _CSET82.match(c)})
        raise InvalidInputError(
            f"lot {lot!r} contains {', '.join(repr(c) for c in bad)}: GS1 lots allow letters, digits "
            "and !\"%&'()*+,-./:;<=>?_ only (no spaces)"
        )
    return lot


def check_unit(unit: str) -> str:
    """`unit` (upper-cased) if it is a UN/ECE Recommendation 20 code (e.g. KGM, H87), else an
    error naming codes to use; the whole list ships with the package (:mod:`ledger.units`)."""
    return units.check_unit(unit)


def check_country(country: str) -> str:
    """`country` if it has the shape of an ISO 3166-1 alpha-2 code."""
    if not _COUNTRY.match(country):
        raise InvalidInputError(f"country {country!r} must be an ISO 3166-1 alpha-2 code such as CO, DE, ET")
    return country


def check_quantity(quantity: int) -> int:
    """`quantity` if it is a positive integer that fits the ledger's 64 bits."""
    if quantity <= 0:
        raise InvalidInputError(f"quantity must be greater than zero (got {quantity})")
    if quantity >= 2**64:
        raise InvalidInputError(f"quantity {quantity} is too large (at most {2**64 - 1} base units)")
    return quantity


def lot_bytes(lot: str) -> bytes:
    """The lot as the contract stores it: ASCII, left-aligned in 20 bytes."""
    return check_lot(lot).encode("ascii").ljust(LOT_MAX_LENGTH, b"\0")


def lot_from_bytes(raw: bytes) -> str:
    """Inverse of :func:`lot_bytes`."""
    return short_text(raw)


def batch_id(gtin: str, lot: str) -> bytes:
    """The ledger's batch id of GTIN + lot: keccak256(uint64 gtin ‖ bytes20 lot)."""
    return checked_batch_id(int(parse_gtin(gtin)), check_lot(lot).encode("ascii"))


def checked_batch_id(gtin: int, lot: bytes) -> bytes:
    """:func:`batch_id` of a GTIN and an ASCII lot already checked (a validated BatchCreate;
    the bulk path computes it once per row, so it skips checking again)."""
    return keccak256(gtin.to_bytes(8, "big") + lot.ljust(LOT_MAX_LENGTH, b"\0"))


def check_reason(reason: str, what: str = "reason") -> str:
    """`reason` if it is 1 to 280 bytes of UTF-8 text (what the ledger accepts), else why not."""
    size = len(reason.encode("utf-8"))
    if not reason.strip():
        raise InvalidInputError(f"the {what} must not be empty: say in a few words why (it is shown to customers)")
    if size > REASON_MAX_BYTES:
        raise InvalidInputError(
            f"the {what} is {size} bytes of UTF-8; the ledger keeps at most {REASON_MAX_BYTES}: shorten it "
            "and put the full text in a document (--notice/--doc)"
        )
    return reason


def attestation_uid(
    issuer: str,
    subject_kind: int,
    subject: bytes,
    claim: bytes,
    valid_from: int,
    valid_until: int,
    evidence_hash: bytes,
) -> bytes:
    """The ledger's uid of an attestation: keccak256(abi.encode(issuer, subjectKind, subject,
    claim, validFrom, validUntil, evidenceHash)), with `valid_from` as stored (a request's 0
    replaced by the block or signing time)."""
    return keccak(
        abi_encode(
            ["address", "uint8", "bytes32", "bytes32", "uint64", "uint64", "bytes32"],
            [issuer, subject_kind, subject, claim, valid_from, valid_until, evidence_hash],
        )
    )


@dataclass(frozen=True)
class DigitalLink:
    """A GS1 Digital Link to one lot (and optionally one serial) of a GTIN."""

    gtin: str
    lot: str
    serial: str | None = None

    def path(self) -> str:
        """`/01/{gtin}/10/{lot}[/21/{serial}]`, percent-encoded as GS1 requires."""
        path = f"/01/{self.gtin}/10/{quote(self.lot, safe='')}"
        if self.serial:
            path += f"/21/{quote(self.serial, safe='')}"
        return path

    def url(self, base_url: str) -> str:
        """The absolute URL under `base_url` (the resolver's public address)."""
        return base_url.rstrip("/") + self.path()


def digital_link(gtin: str, lot: str, serial: str | None = None) -> DigitalLink:
    """A validated Digital Link (GTIN normalised to 14 digits)."""
    return DigitalLink(parse_gtin(gtin), check_lot(lot), serial)


def parse_digital_link(url: str) -> DigitalLink:
    """Parse a Digital Link URL or path with AIs 01 and 10 (21 optional)."""
    parts = [unquote(p) for p in urlparse(url).path.split("/") if p]
    pairs = dict(zip(parts[0::2], parts[1::2], strict=False))  # a trailing AI without a value is dropped
    if "01" not in pairs or "10" not in pairs:
        raise InvalidInputError(f"{url!r} is not a GS1 Digital Link to a lot (needs /01/<gtin>/10/<lot>)")
    return digital_link(pairs["01"], pairs["10"], pairs.get("21"))


NAME_MAX_BYTES = 64  # IProvenanceLedger: an organisation's name
# Bidirectional controls reorder what a terminal or page shows ("Labs" can display as
# "sbaL"): never part of an honest organisation name.
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c")
# Letters of other scripts that look like Latin ones (after case folding), and a few Latin
# letters Unicode does not decompose. Not the whole of Unicode's confusables.txt: the ones
# an impersonator of a Latin-script name reaches for first.
_LOOKALIKES = str.maketrans(
    {
        # Cyrillic
        "а": "a",
        "в": "b",
        "е": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ԛ": "q",
        "ԝ": "w",
        "һ": "h",
        "ӏ": "l",
        "ь": "b",
        "г": "r",
        "п": "n",
        "з": "3",
        # Greek (capitals fold to these small letters)
        "α": "a",
        "β": "b",
        "ε": "e",
        "ζ": "z",
        "η": "h",
        "ι": "i",
        "κ": "k",
        "μ": "m",
        "ν": "n",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "y",
        "χ": "x",
        "ϲ": "c",
        "ϳ": "j",
        # Latin letters without a decomposition
        "ı": "i",
        "ł": "l",
        "ø": "o",
        "đ": "d",
        "ħ": "h",
        "ŀ": "l",
        "ɡ": "g",
        "ß": "ss",
        "ɑ": "a",
        "ɩ": "i",
        "ɛ": "e",
        "ʂ": "s",
        "ꜱ": "s",
        "ᴋ": "k",
        "ᴄ": "c",
        "ᴏ": "o",
        "ᴠ": "v",
        "ᴡ": "w",
        "ᴢ": "z",
        "ɪ": "i",
        "ʟ": "l",
        "ʀ": "r",
        "ᴀ": "a",
        "ʙ": "b",
        "ᴅ": "d",
        "ᴇ": "e",
        "ɢ": "g",
        "ʜ": "h",
        "ᴊ": "j",
        "ᴍ": "m",
        "ɴ": "n",
        "ᴘ": "p",
        "ᴛ": "t",
        "ᴜ": "u",
        "ʏ": "y",
        # Cherokee letters that imitate Latin capitals (and their small forms)
        "Ꮮ": "l",
        "ꮮ": "l",
        "Ꭺ": "a",
        "ꭺ": "a",
        "Ꭼ": "e",
        "ꭼ": "e",
        "Ꮯ": "c",
        "ꮯ": "c",
        "Ꮪ": "s",
        "ꮪ": "s",
        "Ꭲ": "t",
        "ꭲ": "t",
        "Ꮃ": "w",
        "ꮃ": "w",
        "Ꮋ": "h",
        "ꮋ": "h",
    }
)
# Latin letters and digits that look the same in most fonts: capital I, small l and the
# digit 1; capital O and the digit 0. Mapped before case folding (which would make I an i).
_ASCII_LOOKALIKES = str.maketrans({"I": "l", "1": "l", "|": "l", "0": "o"})
# Letters that render as blank space (Unicode's default-ignorable Hangul fillers, the
# braille blank): category Lo, so they pass for letters unless dropped by name.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Dropped from a skeleton: combining marks, format characters (zero-width ones, bidi
# controls), controls, every kind of space and separator, punctuation and symbols (™, ®).
_SKELETON_DROP = ("M", "C", "Z", "P", "S")


def name_skeleton(name: str, ascii_lookalikes: bool = True) -> str:
    """What a name looks like, for spotting impersonation: compatibility-decomposed
    (fullwidth Ｅ is E, ™ is dropped), accents, invisible characters, spaces, punctuation and
    symbols dropped, case folded, and common Cyrillic/Greek look-alikes mapped to the Latin
    letter they imitate. Two names with the same non-empty skeleton look alike to a reader.

    Letters of other scripts that imitate nothing are kept (not dropped), so two different
    names written wholly in, say, Chinese or Amharic do not both come out empty.
    """
    kept = "".join(c for c in name if not unicodedata.category(c).startswith(("S", "C", "Z")) and c not in _BLANK_LETTERS)
    text = unicodedata.normalize("NFKD", kept)
    text = "".join(c for c in text if not unicodedata.category(c).startswith(_SKELETON_DROP))
    if ascii_lookalikes:
        text = text.translate(_ASCII_LOOKALIKES)
    text = unicodedata.normalize("NFKC", text.casefold()).translate(_LOOKALIKES)
    return "".join(c for c in text if c.isalnum())


def names_look_alike(first: str, second: str) -> bool:
    """Whether two organisation names have the same (non-empty) :func:`name_skeleton`, with
    or without mapping I, l and 1 (and O and 0) together: "EthicCert Iabs" looks like
    "EthicCert Labs", and "ETHICCERT LABS" is the same name in capitals."""
    for ascii_lookalikes in (True, False):
        skeleton = name_skeleton(first, ascii_lookalikes)
        if skeleton and skeleton == name_skeleton(second, ascii_lookalikes):
            return True
    return False


def _unusual(char: str) -> bool:
    """Characters a reader cannot take at face value: non-ASCII, invisible or control."""
    return not (" " <= char <= "~") or char == "\\"


def reveal_name(name: str) -> str:
    """`name` in plain ASCII with every other character as an escape a person can check:
    'EthicCert Lab\u0455' for a Cyrillic ѕ, '\u00a0' for a no-break space, '\\' for a backslash."""
    out = []
    for char in name:
        if char == "\\":
            out.append("\\\\")
        elif _unusual(char):
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def unusual_characters(name: str) -> list[str]:
    """'U+0455 CYRILLIC SMALL LETTER DZE' for each distinct non-ASCII or invisible character."""
    seen: dict[str, None] = {}
    for char in name:
        if char != "\\" and _unusual(char):
            seen.setdefault(char, None)
    return [f"U+{ord(c):04X} {unicodedata.name(c, unicodedata.category(c) + ' character')}" for c in seen]


def describe_name(name: str) -> str:
    """`name` quoted, followed by what it really contains when it is not plain ASCII."""
    unusual = unusual_characters(name)
    if not unusual:
        return repr(name) if "'" not in name else f'"{name}"'
    return f"'{reveal_name(name)}' ({'; '.join(unusual)})"


def check_name(name: str) -> str:
    """`name` if the client sends it as an organisation's name: 1 to 64 bytes of UTF-8, not
    blank, with no control characters (line breaks, escape codes) nor bidirectional controls."""
    size = len(name.encode("utf-8"))
    if not name.strip() or size > NAME_MAX_BYTES:
        raise InvalidInputError(f"the organisation name must be 1 to {NAME_MAX_BYTES} bytes long (got {size})")
    bad = [c for c in dict.fromkeys(name) if c in _BIDI_CONTROLS or unicodedata.category(c) in ("Cc", "Zl", "Zp")]
    if bad:
        raise InvalidInputError(
            f"the organisation name '{reveal_name(name)}' contains {', '.join(unusual_characters(''.join(bad)))}: "
            "control and text-direction characters are not allowed in names (they hide or reorder what readers see)"
        )
    return name
