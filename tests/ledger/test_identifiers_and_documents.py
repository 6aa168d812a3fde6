"""GS1 identifiers, Digital Links, canonical JSON and the document store."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from ledger import identifiers
from ledger.documents import DocumentStore, canonical_json, metadata_hash
from ledger.errors import InvalidInputError


@pytest.mark.parametrize(("text", "gtin14"), [("09506000134352", "09506000134352"), ("9506000134352", "09506000134352"),
                                              ("96385074", "00000096385074"), ("614141000036", "00614141000036")])  # fmt: skip
def test_gtins_normalise_to_14_digits(text, gtin14):
    assert identifiers.parse_gtin(text) == gtin14


@pytest.mark.parametrize("bad", ["09506000134353", "12345", "0950600013435x", ""])
def test_bad_gtins_are_refused_with_reason(bad):
    with pytest.raises(InvalidInputError, match="GTIN"):
        identifiers.parse_gtin(bad)


def test_complete_gtin_computes_the_check_digit():
    assert identifiers.complete_gtin("0950600013435") == "09506000134352"


@pytest.mark.parametrize("lot", ["L-17", "A" * 20, "!%&()*+,-./:;<=>?_'\""])
def test_valid_lots(lot):
    assert identifiers.check_lot(lot) == lot


@pytest.mark.parametrize(("lot", "reason"), [("", "empty"), ("A" * 21, "at most 20"), ("L 17", "' '"), ("LÖT", "'Ö'"), ("a#b", "'#'")])
def test_invalid_lots(lot, reason):
    with pytest.raises(InvalidInputError, match=reason):
        identifiers.check_lot(lot)


def test_batch_id_matches_the_contract_formula():
    expected = keccak((9506000134352).to_bytes(8, "big") + b"L-17".ljust(20, b"\0"))
    assert identifiers.batch_id("09506000134352", "L-17") == expected
    assert identifiers.batch_id("9506000134352", "L-17") == expected  # GTIN-13 and -14 are one product


def test_digital_link_round_trip_with_encoding():
    link = identifiers.digital_link("9506000134352", "A/B%1", "S 1")
    url = link.url("https://id.example.org/")
    assert url == "https://id.example.org/01/09506000134352/10/A%2FB%251/21/S%201"
    assert identifiers.parse_digital_link(url) == link


def test_digital_link_without_lot_is_refused():
    with pytest.raises(InvalidInputError, match="/01/<gtin>/10/<lot>"):
        identifiers.parse_digital_link("https://id.example.org/01/09506000134352")


@pytest.mark.parametrize(("unit", "ok"), [("KGM", True), ("H87", True), ("kg", False), ("KILO", False)])
def test_units(unit, ok):
    if ok:
        assert identifiers.check_unit(unit) == unit
    else:
        with pytest.raises(InvalidInputError, match="UN/ECE"):
            identifiers.check_unit(unit)


def test_canonical_json_is_key_order_and_number_form_independent():
    assert canonical_json({"b": 1.0, "a": "é"}) == canonical_json({"a": "é", "b": 1}) == '{"a":"é","b":1}'.encode()
    assert metadata_hash({"x": [1, 2]}) == metadata_hash({"x": [1.0, 2.0]})


def test_document_store_is_content_addressed(tmp_path):
    store = DocumentStore(tmp_path)
    digest = store.put_bytes(b"certificate")
    assert store.put_bytes(b"certificate") == digest
    assert store.get(digest) == b"certificate"
    assert store.verify(digest)
    store.path_of(digest).write_bytes(b"tampered")
    assert not store.verify(digest)


def test_missing_document_file_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidInputError, match="cannot read document"):
        DocumentStore(tmp_path).put_file(tmp_path / "nope.pdf")
