"""GS1 identifiers, Digital Links, canonical JSON and the document store."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from ledger import identifiers
from ledger.documents import DocumentStore, canonical_json, metadata_hash
from ledger.errors import InvalidInputError
from ledger.models import BatchCreate


@pytest.mark.parametrize(
    ("text", "gtin14"),
    [
        ("09506000134352", "09506000134352"),
        ("9506000134352", "09506000134352"),
        ("96385074", "00000096385074"),
        ("614141000036", "00614141000036"),
    ],
)
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


@pytest.mark.parametrize(
    ("lot", "reason"), [("", "empty"), ("A" * 21, "at most 20"), ("L 17", "' '"), ("LÖT", "'Ö'"), ("a#b", "'#'")]
)
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
    expected = keccak(
        encode(
            ["address", "uint8", "bytes32", "bytes32", "uint64", "uint64", "bytes32"],
            [issuer, 0, b"\1" * 32, b"ORGANIC".ljust(32, b"\0"), 100, 200, b"\2" * 32],
        )
    )
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


# --------------------------------------------------------------------------- organisation names

CERTIFIER_NAME = "EthicCert Labs"


@pytest.mark.parametrize(
    "impostor",
    [
        "\u0415thicCert Labs",  # Cyrillic capital Е
        "EthicCert Lab\u0455",  # Cyrillic small dze
        "\u0395THICCERT L\u0391BS",  # Greek capital epsilon and alpha
        "\uff25thicCert Labs",  # fullwidth Ｅ
        "Ethic\u200bCert Labs",  # zero-width space
        "EthicCert\u00a0Labs",  # no-break space
        "EthicCert\u2060Labs",  # word joiner
        "E\u0301thicCert Labs",  # combining acute accent
        "\u00c9thicCert Labs",  # precomposed É
        "EthicCert Labs\u2122",  # trade mark sign
        "ethiccert  LABS.",  # what the ledger itself already folds
    ],
)
def test_look_alike_names_share_a_skeleton(impostor):
    assert identifiers.names_look_alike("EthicCert Labs", impostor), identifiers.name_skeleton(impostor)
    assert identifiers.names_look_alike(impostor, CERTIFIER_NAME)


@pytest.mark.parametrize(
    "other",
    ["EthicCert Labs GmbH", "Ethic Cert Lab", "Finca La Esperanza", "EthicKert Labs", "\u0424thicCert Labs"],
)
def test_different_names_do_not_look_alike(other):
    assert not identifiers.names_look_alike(other, CERTIFIER_NAME)


def test_names_of_other_scripts_keep_their_letters():
    # Two different names written wholly in another script must not both fold to nothing.
    assert identifiers.name_skeleton("\u5496\u5561\u5408\u4f5c\u793e") == "\u5496\u5561\u5408\u4f5c\u793e"
    assert not identifiers.names_look_alike("\u5496\u5561", "\u8336\u53f6")
    assert not identifiers.names_look_alike("!!!", "???")  # empty skeletons never match


def test_reveal_name_shows_every_non_ascii_or_invisible_character():
    assert identifiers.reveal_name("EthicCert Lab\u0455") == "EthicCert Lab\\u0455"
    assert identifiers.reveal_name("Ethic\u200bCert\\") == "Ethic\\u200bCert\\\\"
    assert identifiers.unusual_characters("\u0415thic\u00a0\u0415") == [
        "U+0415 CYRILLIC CAPITAL LETTER IE",
        "U+00A0 NO-BREAK SPACE",
    ]
    assert identifiers.describe_name("Plain Name") == "'Plain Name'"
    assert "U+0455 CYRILLIC SMALL LETTER DZE" in identifiers.describe_name("EthicCert Lab\u0455")


@pytest.mark.parametrize(
    "bad", ["Finca\nLa Esperanza", "Finca\x1b[2J", "Labs\u202eCert", "A\u2066B\u2069", "Finca\u200f", "a\u2028b"]
)
def test_control_and_bidi_characters_are_refused_in_names(bad):
    with pytest.raises(InvalidInputError, match="not allowed in names"):
        identifiers.check_name(bad)


def test_plain_and_accented_names_are_accepted():
    for name in ["Finca La Esperanza", "Caf\u00e9 Ñand\u00fa", "\u5496\u5561\u5408\u4f5c\u793e", "x" * 64]:
        assert identifiers.check_name(name) == name
    with pytest.raises(InvalidInputError, match="1 to 64 bytes"):
        identifiers.check_name("\u00e9" * 33)


@pytest.mark.parametrize(
    "impostor",
    [
        "EthicCert Iabs",  # capital I for small l: plain ASCII
        "EthicCert Labs\u3164",  # a Hangul filler, which renders as blank
        "EthicCert L\u0251bs",  # Latin alpha
        "EthicCert Lab\ua731",  # small capital s
        "\u0190thicCert Labs",  # Latin open E
        "EthicCert \u13deabs",  # Cherokee L
        "EthicCert L\u1d00bs",  # small capital A
        "EthicCert Lab\u0455",  # Cyrillic dze
    ],
)
def test_look_alike_names_found_by_the_second_review_share_a_skeleton(impostor: str) -> None:
    assert identifiers.names_look_alike("EthicCert Labs", impostor), identifiers.name_skeleton(impostor)


def test_names_the_second_review_kept_apart_do_not_look_alike() -> None:
    for other in ["Finca La Esperanza", "Cooperativa Alto Huila", "EthicCert Lab 5", "EthicCert"]:
        assert not identifiers.names_look_alike("EthicCert Labs", other)
