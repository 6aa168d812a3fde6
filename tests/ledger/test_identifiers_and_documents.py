"""GS1 identifiers, Digital Links, canonical JSON and the document store."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from ledger import identifiers
from ledger.documents import DocumentStore, canonical_json, metadata_hash
from ledger.errors import InvalidInputError
from ledger.models import BatchCreate


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


def test_attestation_uid_is_the_contracts_formula():
    from eth_abi import encode

    issuer = "0x" + "11" * 20
    expected = keccak(encode(["address", "uint8", "bytes32", "bytes32", "uint64", "uint64", "bytes32"],
                             [issuer, 0, b"\1" * 32, b"ORGANIC".ljust(32, b"\0"), 100, 200, b"\2" * 32]))  # fmt: skip
    assert identifiers.attestation_uid(issuer, 0, b"\1" * 32, b"ORGANIC".ljust(32, b"\0"), 100, 200, b"\2" * 32) == expected


def test_reasons_are_1_to_280_bytes_of_utf8():
    assert identifiers.check_reason("é" * 140) == "é" * 140  # 280 bytes
    with pytest.raises(InvalidInputError, match="281 bytes of UTF-8; the ledger keeps at most 280"):
        identifiers.check_reason("é" * 140 + "x")
    with pytest.raises(InvalidInputError, match="must not be empty"):
        identifiers.check_reason("  ")


def test_licence_scopes():
    from ledger.models import LicenceScope

    prefix = LicenceScope.company_prefix("0614141")  # leading zeros are digits of the prefix
    assert (prefix.prefix_length, prefix.prefix, prefix.digits) == (7, 614141, "0614141")
    assert prefix.key == (614141 << 4) | 7 and LicenceScope.from_key(prefix.key) == prefix
    assert prefix.covers("00614141000036") and not prefix.covers("09506000134352")
    assert prefix.describe() == "GS1 Company Prefix 0614141"
    single = LicenceScope.single_gtin("9506000134376")
    assert (single.prefix_length, single.digits, single.describe()) == (14, "09506000134376", "GTIN 09506000134376")
    assert single.covers("09506000134376") and not single.covers("19506000134373")
    for bad in ("950", "9506000134376", "95O6000"):
        with pytest.raises(InvalidInputError, match="4 to 12 digits"):
            LicenceScope.company_prefix(bad)


def test_metadata_of_the_largest_quantity_canonicalises_as_decimal_text() -> None:
    # RFC 8785 refuses integers beyond 2^53 - 1; the ledger counts to 2^64 - 1.
    largest = BatchCreate(gtin="09506000135014", lot="L-1", quantity=2**64 - 1, unit="KGM", product="Coffee")
    assert largest.metadata_document()["quantity"] == "18446744073709551615"
    assert len(metadata_hash(largest.metadata_document())) == 32
    safe = BatchCreate(gtin="09506000135014", lot="L-1", quantity=2**53 - 1, unit="KGM", product="Coffee")
    assert safe.metadata_document()["quantity"] == 2**53 - 1
