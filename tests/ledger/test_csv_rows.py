"""The batch CSV is read as a stream (ledger.cli.csv_rows) and says exactly what is wrong where.

check_utf8 reads the file in blocks (_BLOCK, 1 MiB; set to a few bytes here so that block
boundaries fall everywhere in small files) and must still name the line and byte of the
first byte that is not UTF-8, as a whole-file decode would (byte numbers count the file's
bytes, a byte-order mark included), and let through characters cut in two by a boundary.
CsvRows checks the header and counts the rows up front, then yields each valid row as a
BatchCreate, records the others with their CSV row number and reason, and maps each valid
row back to its row number. Iterating a 200,000-row file holds memory flat (tracemalloc).
Real files in a temporary directory.
"""

from __future__ import annotations

import codecs
import re
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ledger.cli.csv_rows as csv_rows
from ledger.cli.csv_rows import CsvRows, check_utf8
from ledger.errors import InvalidInputError
from ledger.models import BatchCreate

BOM = codecs.BOM_UTF8
GTIN = "09506000134352"
OTHER_GTIN = "00000000000017"
HEADER = "gtin,lot,quantity,unit,product,origin\n"


def expected_position(data: bytes) -> tuple[int, int, int] | None:
    """(line, byte of that line, byte value) of the first byte a whole-file UTF-8 decode
    refuses, counted in the file's bytes; None for valid UTF-8 (a BOM allowed)."""
    start = len(BOM) if data.startswith(BOM) else 0
    try:
        data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        line = data.count(b"\n", 0, offset) + 1
        return line, offset - (data.rfind(b"\n", 0, offset) + 1) + 1, data[offset]
    return None


def reported_position(path: Path) -> tuple[int, int, int] | None:
    """What check_utf8 says: (line, byte, byte value), or None when it lets the file through."""
    try:
        check_utf8(path)
    except InvalidInputError as exc:
        match = re.search(r"line (\d+), byte (\d+) of that line is 0x([0-9a-f]{2})", str(exc))
        assert match is not None, str(exc)
        assert str(path) in str(exc)
        return int(match[1]), int(match[2]), int(match[3], 16)
    return None


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Blocks of 7 bytes: every few bytes of a file is a block boundary."""
    monkeypatch.setattr(csv_rows, "_BLOCK", 7)
    return 7


EURO = "\u20ac".encode()  # 3 bytes
FACE = "\U0001f600".encode()  # 4 bytes
CASES = {
    # name: (file bytes, expected (line, byte, value) or None when valid)
    "invalid byte on the first line": (b"gt\xffin,lot\nA,B\n", (1, 3, 0xFF)),
    "invalid byte on a later line, beyond several blocks": (b"gtin,lot\nabc,def\nghi,j\xe9k\nx,y\n", (3, 6, 0xE9)),
    "invalid byte right after a block boundary": (b"abcdefg\xffh\n", (1, 8, 0xFF)),
    "invalid byte as the first byte of a block and of its line": (b"abcdef\n\xfeh\n", (2, 1, 0xFE)),
    "invalid byte as the last byte of a block": (b"abcdef\xff\nh\n", (1, 7, 0xFF)),
    "continuation byte without a lead byte, later block": (b"a,b\nc,d\ne,f\ng\x80h\n", (4, 2, 0x80)),
    "overlong encoding": (b"abc\n\xc0\xafx\n", (2, 1, 0xC0)),
    "truncated character inside one block": (b"a\xe2\x82cd\n", (1, 2, 0xE2)),
    "three-byte character split across blocks": (b"abcde" + EURO + b"\nx\n", None),
    "four-byte character split across blocks": (b"abcdef" + FACE + b"," + FACE * 5 + b"\n", None),
    "characters split across every boundary, then an invalid byte": ((EURO + b"\n") * 9 + b"ok\xff(\n", (10, 3, 0xFF)),
}


@pytest.mark.parametrize("bom", [False, True], ids=["no BOM", "BOM"])
@pytest.mark.parametrize("name", list(CASES))
def test_check_utf8_names_the_line_and_byte_of_the_first_invalid_byte_across_blocks(
    small_blocks: int, tmp_path: Path, name: str, bom: bool
) -> None:
    data, expected = CASES[name]
    if bom:
        data = BOM + data
    path = tmp_path / "rows.csv"
    path.write_bytes(data)
    assert expected_position(data) == (
        None if expected is None else (expected[0], expected[1] + 3 * (bom and expected[0] == 1), expected[2])
    )
    assert reported_position(path) == expected_position(data)


def test_check_utf8_finds_an_invalid_byte_beyond_the_first_mebibyte_with_the_real_block(tmp_path: Path) -> None:
    assert csv_rows._BLOCK == 1 << 20
    line = "\u00e9t\u00e9," * 20 + "x\n"  # 2-byte characters: one sits across the boundary
    count = (1 << 20) // len(line.encode()) + 100
    data = HEADER.encode() + line.encode() * count + b"last,\x96bad\n"
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    assert reported_position(path) == expected_position(data) == (count + 2, 6, 0x96)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(st.characters(blacklist_categories=("Cs",)) | st.sampled_from(["\n", ",", "\u20ac", "\U0001f600"]), max_size=60),
    where=st.floats(0, 1),
    bad=st.sampled_from([0x80, 0xBF, 0xC0, 0xC1, 0xF5, 0xF8, 0xFE, 0xFF]),
    bom=st.booleans(),
    block=st.integers(1, 16),
    valid=st.booleans(),
)
def test_check_utf8_agrees_with_a_whole_file_decode_for_any_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, where: float, bad: int, bom: bool, block: int, valid: bool
) -> None:
    monkeypatch.setattr(csv_rows, "_BLOCK", block)
    cut = int(len(text) * where)  # a character boundary
    data = (BOM if bom else b"") + text[:cut].encode() + (b"" if valid else bytes([bad])) + text[cut:].encode()
    path = tmp_path / "generated.csv"
    path.write_bytes(data)
    assert reported_position(path) == expected_position(data)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_files_are_refused_as_utf16(tmp_path: Path, encoding: str) -> None:
    text = HEADER + f"{GTIN},L-1,5,KGM,Caf\u00e9,Huila\n"
    data = text.encode(encoding)
    if encoding != "utf-16":  # the BOM Excel writes, in either byte order
        data = ("\ufeff" + text).encode(encoding)
    path = tmp_path / "utf16.csv"
    path.write_bytes(data)
    with pytest.raises(InvalidInputError, match="UTF-16 text, not UTF-8"):
        check_utf8(path)
    with pytest.raises(InvalidInputError, match="UTF-16"):
        CsvRows.open(path)


@pytest.mark.parametrize("ending", [b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98"])
def test_a_file_ending_inside_a_character_is_refused(small_blocks: int, tmp_path: Path, ending: bytes) -> None:
    data = HEADER.encode() + f"{GTIN},L-1,5,KGM,Caf".encode() + ending
    path = tmp_path / "cut.csv"
    path.write_bytes(data)
    reported = reported_position(path)
    assert reported is not None and reported[0] == 2 and reported[2] == ending[0]


@pytest.mark.parametrize(
    "data",
    [
        b"abcdef\xc3A,b\n",  # a 2-byte lead at the end of block 1, then no continuation
        b"abcde\xe2\x82A,b\n",  # 2 of 3 bytes at the end of block 1
        b"a,b\nc\xc3",  # the file ends inside a character
    ],
)
def test_check_utf8_names_a_truncated_character_cut_by_a_block_boundary_at_its_first_byte(
    small_blocks: int, tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "truncated.csv"
    path.write_bytes(data)
    assert reported_position(path) == expected_position(data)


def test_a_valid_file_passes_and_a_missing_file_is_refused_in_words(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_bytes(BOM + (HEADER + f"{GTIN},L-1,5,KGM,Caf\u00e9 \U0001f600,Huila\n").encode())
    check_utf8(path)
    with pytest.raises(InvalidInputError, match="cannot read"):
        check_utf8(tmp_path / "absent.csv")


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("gtin,lot,quantity,unit,origin", "product"),
        ("lot,quantity,origin", "gtin, product, unit"),
        ("", "gtin, lot, product, quantity, unit"),
        ("GTIN,LOT,QUANTITY,UNIT,PRODUCT", "gtin, lot, product, quantity, unit"),
    ],
)
def test_open_refuses_a_file_without_the_columns_a_batch_needs(tmp_path: Path, header: str, missing: str) -> None:
    path = tmp_path / "columns.csv"
    path.write_text(header + "\n" + f"{GTIN},L-1,5,KGM\n" if header else "")
    with pytest.raises(InvalidInputError, match=f"lacks the column\\(s\\) {missing};"):
        CsvRows.open(path)


@pytest.mark.parametrize("bom", [b"", BOM], ids=["no BOM", "BOM"])
def test_open_counts_the_data_rows_valid_or_not(tmp_path: Path, bom: bytes) -> None:
    path = tmp_path / "count.csv"
    body = HEADER + f"{GTIN},L-1,5,KGM,Coffee,\n{GTIN},L 2,5,KGM,Coffee,\n" + '1,2,3,4,"multi\nline",x\n'
    path.write_bytes(bom + body.encode())
    rows = CsvRows.open(path)
    assert rows.count == 3 and rows.errors == [] and len(rows.lines) == 0  # nothing parsed yet


def test_iterating_yields_the_valid_rows_and_records_the_others_with_their_row_numbers(tmp_path: Path) -> None:
    rows_text = [
        (f"{GTIN},L-1,5,kgm,Green coffee,Huila", None),
        ("09506000134353,L-2,5,KGM,Green coffee,Huila", "not valid"),  # wrong check digit
        (f"{GTIN},L-3,0,KGM,Green coffee,", "greater than zero"),
        (f"{OTHER_GTIN},L-4,18446744073709551615,H87,Sacks,", None),
        (f"{GTIN},L-5,1.5,KGM,Green coffee,", "not a whole number"),
        (f"{GTIN},L-6,\u0661\u0662,KGM,Green coffee,", "not a whole number"),
        (f'{GTIN}," L-7",5,KGM,Green coffee,', "spaces or line breaks"),
        (f"{GTIN},L-8,5", "the row ends early: it has no unit, product"),
        (f"{GTIN},L-9,5,KILO,Green coffee,", "not a UN/ECE Rec 20 unit"),
        (f"{GTIN},L-10,5,KGM,,Huila", "product: String should have at least 1 character"),
        (f'{GTIN},L-11,7,KGM,"Caf\u00e9, ""roasted""\nsecond line",  Nari\u00f1o ', None),
        (f"{GTIN},{'X' * 21},5,KGM,Green coffee,", "at most 20"),
        (f"{OTHER_GTIN},Z,1,AB,A,", None),
    ]
    path = tmp_path / "mixed.csv"
    path.write_text(HEADER + "\n".join(text for text, _ in rows_text) + "\n", encoding="utf-8")
    rows = CsvRows.open(path)
    assert rows.count == len(rows_text)
    batches = list(rows)
    assert all(isinstance(b, BatchCreate) for b in batches)
    assert [(b.gtin, b.lot, b.quantity, b.unit) for b in batches] == [
        (GTIN, "L-1", 5, "KGM"),
        (OTHER_GTIN, "L-4", 2**64 - 1, "H87"),
        (GTIN, "L-11", 7, "KGM"),
        (OTHER_GTIN, "Z", 1, "AB"),
    ]
    assert batches[0].origin == "Huila" and batches[1].origin is None
    assert batches[2].product == 'Caf\u00e9, "roasted"\nsecond line' and batches[2].origin == "Nari\u00f1o"
    # File line numbers (what an editor shows): the header is line 1, the first data row
    # line 2, and a row after the two-line L-11 row starts one line further.
    starts = [2 + sum(text.count("\n") + 1 for text, _ in rows_text[:k]) for k in range(len(rows_text))]
    expected_errors = [(start, reason) for start, (_, reason) in zip(starts, rows_text, strict=True) if reason is not None]
    assert [number for number, _ in rows.errors] == [number for number, _ in expected_errors]
    for (_, reason), (_, expected) in zip(rows.errors, expected_errors, strict=True):
        assert expected in reason and "\n" not in reason
    valid_numbers = [start for start, (_, reason) in zip(starts, rows_text, strict=True) if reason is None]
    assert [rows.line_of(i) for i in range(len(batches))] == valid_numbers == [2, 5, 12, 15]


def test_the_row_count_matches_the_rows_iteration_accounts_for_when_the_file_has_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text(HEADER + f"{GTIN},L-1,5,KGM,Coffee,\n\n{GTIN},L-2,0,KGM,Coffee,\n\n")
    rows = CsvRows.open(path)
    batches = list(rows)
    assert rows.count == len(batches) + len(rows.errors)


def test_a_bad_row_after_a_blank_line_is_reported_at_its_own_row_number(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text(HEADER + f"{GTIN},L-1,5,KGM,Coffee,\n\n{GTIN},L-2,0,KGM,Coffee,\n")
    rows = CsvRows.open(path)
    list(rows)
    assert [number for number, _ in rows.errors] == [4]


@pytest.mark.parametrize(
    ("row", "wanted"),
    [
        (f"{GTIN},L-10,5,KGM,,Huila", "at least 1 character"),
        (f"{GTIN},L-10,5,KGM,{'p' * 201},Huila", "at most 200 characters"),
        (f"{GTIN},L-10,5,KGM,Coffee,{'o' * 201}", "at most 200 characters"),
    ],
)
def test_a_row_pydantic_refuses_is_recorded_with_what_is_wrong(tmp_path: Path, row: str, wanted: str) -> None:
    path = tmp_path / "pydantic.csv"
    path.write_text(HEADER + row + "\n")
    rows = CsvRows.open(path)
    assert list(rows) == []
    ((number, reason),) = rows.errors
    assert number == 2 and wanted in reason


def test_iterating_a_200000_row_file_keeps_memory_flat(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    count = 200_000
    gtins = [GTIN, OTHER_GTIN, "09506000134376"]  # a few products, many lots: as in a real harvest
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for i in range(count):
            handle.write(f"{gtins[i % 3]},H-{i:07d},{1 + i % 900},KGM,Green coffee \u00e9 {i},Huila\n")
    rows = CsvRows.open(path)
    assert rows.count == count
    seen = 0
    started = time.monotonic()
    tracemalloc.start()
    try:
        for _batch in rows:
            seen += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == count and rows.errors == [] and rows.line_of(count - 1) == count + 1
    # Measured: ~0.9 MB, most of it the row-number array (4 bytes a row, 0.8 MB here).
    # Keeping the rows would take hundreds of MB.
    assert peak < 4_000_000, f"peak {peak:,} bytes while iterating ({time.monotonic() - started:.1f} s)"
