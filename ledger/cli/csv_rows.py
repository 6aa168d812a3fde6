"""A batch CSV (`provenance batch import`), read as a stream: a million rows never sit in
memory at once.

Two passes over the file. The first checks the whole file before anything is registered:
UTF-8 (with or without a byte-order mark) and readable as CSV, with the columns a batch
needs; it counts the rows for the progress bar. The second yields the rows as
BatchCreate, one at a time, and records the rows that are not valid (their CSV row
number and why) without stopping: the valid rows are registered, the others reported.
"""

from __future__ import annotations

import codecs
import csv
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ledger.errors import InvalidInputError, LedgerError

if TYPE_CHECKING:
    from ledger.models import BatchCreate

REQUIRED_COLUMNS = frozenset({"gtin", "lot", "quantity", "unit", "product"})
_BLOCK = 1 << 20


@dataclass
class CsvRows:
    """The rows of one batch CSV: iterate for the valid ones (each once); `errors` and
    `line_of` say which rows were refused and where each valid row came from."""

    path: Path
    #: (row number, reason) of each row that is not a valid batch, in file order.
    errors: list[tuple[int, str]] = field(default_factory=list)
    #: The CSV row number of the n-th valid row (4 bytes a row).
    lines: array[int] = field(default_factory=lambda: array("I"))
    #: Data rows in the file (valid or not), counted by the first pass.
    count: int = 0

    @classmethod
    def open(cls, path: Path) -> CsvRows:
        """Check the whole file (see the module) and count its rows; nothing is kept."""
        check_utf8(path)
        rows = cls(path)
        try:
            with open(path, encoding="utf-8-sig", newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader, [])
                missing = REQUIRED_COLUMNS - set(header)
                if missing:
                    raise InvalidInputError(
                        f"{path} lacks the column(s) {', '.join(sorted(missing))}; "
                        "expected a header like gtin,lot,quantity,unit,product,origin"
                    )
                rows.count = sum(1 for row in reader if row)  # blank lines are no rows (DictReader skips them)
        except csv.Error as exc:  # e.g. a field beyond the reader's size limit (a damaged file)
            raise InvalidInputError(f"{path} is not a readable CSV file: {exc}; check it in a text editor") from exc
        return rows

    def line_of(self, index: int) -> int:
        """The CSV row number of the `index`-th valid row."""
        return self.lines[index]

    def __iter__(self) -> Iterator[BatchCreate]:
        with open(self.path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            for raw in reader:
                line = first_line(reader.line_num, raw)
                try:
                    batch = parse_row(reader.fieldnames or [], raw)
                except LedgerError as exc:
                    self.errors.append((line, str(exc)))
                    continue
                except ValidationError as exc:
                    self.errors.append((line, validation_message(exc)))
                    continue
                self.lines.append(line)
                yield batch


def first_line(line_num: int, raw: dict[str | None, str | list[str] | None]) -> int:
    """The file line a record starts on: the reader's line after it, less the line breaks
    inside its quoted fields (blank lines before it are not counted against it)."""
    breaks = 0
    for value in raw.values():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                breaks += text.count("\n") + text.count("\r") - text.count("\r\n")
    return line_num - breaks


def validation_message(exc: ValidationError) -> str:
    """A pydantic refusal as a sentence per field ("product: String should have at least 1
    character"), without pydantic's link lines."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def parse_row(columns: Sequence[str], raw: dict[str | None, str | list[str] | None]) -> BatchCreate:
    """One CSV row as a batch, or the error saying what to fix."""
    from ledger.models import BatchCreate

    # A short row leaves its last columns None (not a crash below, but a sentence).
    row = {key: value if isinstance(value, str) else "" for key, value in raw.items() if isinstance(key, str)}
    absent = [name for name in columns if raw.get(name) is None and name in REQUIRED_COLUMNS]
    if absent:
        raise InvalidInputError(f"the row ends early: it has no {', '.join(absent)} (check for a missing comma)")
    quantity_text = row["quantity"].strip()
    # ASCII digits only: Python's int() also reads Arabic-Indic and other digits.
    if not (quantity_text.lstrip("-").isascii() and quantity_text.lstrip("-").isdigit()):
        raise InvalidInputError(f"quantity {quantity_text!r} is not a whole number in digits 0-9")
    if row["lot"] != row["lot"].strip():
        # A lot is an identifier printed on the pack: never guess which one was meant.
        raise InvalidInputError(f"lot {row['lot']!r} has spaces or line breaks around it; remove them")
    return BatchCreate(
        gtin=row["gtin"].strip(),
        lot=row["lot"].strip(),
        quantity=int(quantity_text),
        unit=row["unit"].strip(),
        product=row["product"].strip(),
        origin=row.get("origin", "").strip() or None,
    )


def check_utf8(path: Path) -> None:
    """Refuse a file that is not UTF-8 text as a whole, naming the first offending line and
    byte, before any row is read (and so before anything is registered). Read in blocks."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    lines_before = 0  # newlines in the blocks already decoded
    last_line_start = 0  # offset (in the file) of the byte after the last newline seen
    offset = 0
    try:
        with open(path, "rb") as handle:
            while block := handle.read(_BLOCK):
                if offset == 0 and block.startswith((b"\xff\xfe", b"\xfe\xff")):
                    raise InvalidInputError(
                        f"{path} is UTF-16 text, not UTF-8: save it again as UTF-8 "
                        "(in Excel: Save As, 'CSV UTF-8 (Comma delimited)')"
                    )
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    # exc.object is what the decoder held back of earlier blocks (a partial
                    # character, up to 3 bytes) and this block (less a BOM it skipped).
                    start = offset + len(block) - len(exc.object) + exc.start
                    _refuse(path, block, offset, start, lines_before, last_line_start, exc.object[exc.start : exc.start + 1])
                lines_before += block.count(b"\n")
                newline = block.rfind(b"\n")
                if newline >= 0:
                    last_line_start = offset + newline + 1
                offset += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:  # the file ends inside a character
        start = offset - len(exc.object) + exc.start
        _refuse(path, b"", offset, start, lines_before, last_line_start, exc.object[exc.start : exc.start + 1])
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from exc


def _refuse(path: Path, block: bytes, offset: int, bad: int, lines_before: int, line_start: int, byte: bytes) -> None:
    """The error for an invalid byte at file offset `bad`; `block` starts at `offset`,
    `lines_before` newlines come before it and the last of them ends at `line_start`
    (a byte before the block belongs to a character cut by the block's start, on the
    line that was open there)."""
    within = bad - offset
    if within > 0:
        line = lines_before + block.count(b"\n", 0, within) + 1
        newline = block.rfind(b"\n", 0, within)
        column = within - newline if newline >= 0 else bad - line_start + 1
    else:
        line, column = lines_before + 1, bad - line_start + 1
    raise InvalidInputError(
        f"{path} is not UTF-8 text: line {line}, byte {column} of that line is 0x{byte[0]:02x}"
        f"{_as_windows_1252(byte)}, which UTF-8 does not allow there (the file is probably "
        "Latin-1 or Windows-1252); save it again as UTF-8 (in Excel: "
        "Save As, 'CSV UTF-8 (Comma delimited)'; or run: iconv -f WINDOWS-1252 -t UTF-8 in.csv > out.csv)"
    )


def _as_windows_1252(byte: bytes) -> str:
    """' (é in Windows-1252)' for a byte that is a printable character there, else ''."""
    try:
        char = byte.decode("cp1252")
    except UnicodeDecodeError:
        return ""
    return f" ({char} in Windows-1252)" if char.isprintable() else ""
