"""Units of measure: the codes of UN/ECE Recommendation 20 (KGM, LTR, H87...).

The whole list (1,756 codes with their English names) ships as data in
`ledger/data/unece_rec20.csv`; its header says where it comes from and how it was checked.
Every writer refuses a unit outside it. Readers never do: anyone can put any three bytes on
chain around this client, so a unit already registered is shown as it is, with no name.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from functools import cache
from importlib.resources import files

from ledger.errors import InvalidInputError

_DATA = "unece_rec20.csv"
#: Codes a person is most likely to mean, named in the error when a unit is refused.
_COMMON = ("KGM (kilogram)", "GRM (gram)", "TNE (tonne)", "LTR (litre)", "H87 (piece)")


@cache
def rec20_units() -> Mapping[str, str]:
    """Every UN/ECE Recommendation 20 code with its name, e.g. {"KGM": "kilogram", ...}."""
    text = files("ledger").joinpath("data", _DATA).read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO("".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))))
    return {row["code"]: row["name"] for row in rows}


def unit_name(code: str) -> str | None:
    """The Recommendation 20 name of `code` ("kilogram" for KGM), or None for a code outside
    the list (a unit put on chain by another client is still shown, by its code)."""
    return rec20_units().get(code)


def _code_named(name: str) -> str | None:
    """The code whose Recommendation 20 name is `name` (any case), if exactly one is."""
    wanted = name.strip().casefold()
    matches = [code for code, known in rec20_units().items() if known.casefold() == wanted]
    return matches[0] if len(matches) == 1 else None


def find_units(word: str) -> dict[str, str]:
    """The codes whose code or name contains `word` (any case), e.g. "litre" or "LTR"."""
    wanted = word.strip().casefold()
    return {code: name for code, name in rec20_units().items() if wanted in code.casefold() or wanted in name.casefold()}


def check_unit(unit: str) -> str:
    """`unit` (upper-cased) if it is a UN/ECE Recommendation 20 code, else an error that says
    which code was probably meant."""
    code = unit.strip().upper()
    if code in rec20_units():
        return code
    named = _code_named(unit)
    hint = (
        f"that is the name of the unit; give its code, {named}"
        if named
        else (
            f"use a code such as {', '.join(_COMMON)}; `provenance batch units WORD` finds the code "
            f"of any unit among all {len(rec20_units()):,}"
        )
    )
    raise InvalidInputError(f"unit {unit!r} is not a UN/ECE Rec 20 unit code: {hint}")
