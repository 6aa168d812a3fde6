"""The one place for each conversion (ledger.conversions): subjects, kinds, short text,
and the rule for "accredited at time t"."""

from __future__ import annotations

from ledger.conversions import (
    AccreditationPeriod,
    accredited_at,
    address_of_subject,
    end_of_second,
    kind_name,
    short_text,
    subject_key,
    subject_of_address,
)


def test_an_address_subject_is_the_address_left_padded_to_32_bytes():
    address = "0x00000000219ab540356cBB839Cbe05303d7705Fa"
    # Written out by hand: 12 zero bytes, then the 20-byte address in lower case.
    assert subject_of_address(address) == "0x" + "00" * 12 + "00000000219ab540356cbb839cbe05303d7705fa"
    assert subject_key(address) == subject_of_address(address)
    assert subject_key("0x" + "AB" * 32) == "0x" + "ab" * 32  # a batch id stays as it is
    assert address_of_subject(subject_of_address(address)) == address.lower()


def test_kinds_are_named_as_the_contract_numbers_them():
    assert [kind_name(n) for n in (0, 1, 2)] == ["split", "merge", "processing"]
    assert kind_name("merge") == "merge"
    assert kind_name(7) == "transformation"


def test_short_text_drops_trailing_nuls_and_replaces_what_is_not_ascii():
    assert short_text(b"KGM" + b"\0" * 29) == "KGM"
    assert short_text(b"K\xffM\0") == "K\ufffdM"
    assert short_text(b"K\0M\0") == "K\ufffdM"


def test_a_grant_covers_its_own_second_and_a_withdrawal_ends_it_at_once():
    held = [AccreditationPeriod(granted=(100, 10, 0), revoked=(200, 20, 3))]
    assert not accredited_at(held, end_of_second(99))
    assert accredited_at(held, end_of_second(100))  # granted at g covers time g
    assert accredited_at(held, (100, 10, 1))  # later in the grant's own block
    assert not accredited_at(held, (100, 9, 5))  # an earlier block of the same second
    assert accredited_at(held, end_of_second(199))
    assert accredited_at(held, (200, 20, 2))  # the same second, before the withdrawal
    assert not accredited_at(held, (200, 20, 4))  # after it
    assert not accredited_at(held, end_of_second(200))  # withdrawn at v: not at time v
    assert accredited_at([AccreditationPeriod(granted=(100, 10, 0))], end_of_second(10**9))
