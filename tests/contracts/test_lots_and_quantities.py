"""Lots on chain are GS1 CSET 82; quantities go up to 2^64 - 1 and never below zero."""

from __future__ import annotations

import string

import pytest
from contract_helpers import (
    BAG_GTIN,
    COFFEE_GTIN,
    MAX_UINT64,
    REGISTERED,
    REMAINING,
    ROASTED_GTIN,
    STATUS,
    STATUS_ACTIVE,
    STATUS_CONSUMED,
    STATUS_NONE,
    batch_id,
    batch_input,
    lot20,
    reverts_with,
)

SPLIT, MERGE, PROCESSING = 0, 1, 2
NO_DATA = b"\0" * 32
# GS1 General Specifications, figure 7.11-1.
CSET82 = "!\"%&'()*+,-./" + string.digits + ":;<=>?" + string.ascii_uppercase + "_" + string.ascii_lowercase


def test_cset82_has_82_characters():
    assert len(CSET82) == len(set(CSET82)) == 82


def test_all_82_characters_are_accepted(ledger, farm):
    # Five lots of (up to) 20 characters cover the whole set, each lot at full length.
    lots = [CSET82[i : i + 20] for i in range(0, 82, 20)]
    lots[-1] = (lots[-1] + CSET82)[:20]
    assert set("".join(lots)) == set(CSET82)
    tx = ledger.registerBatches([batch_input(lot) for lot in lots], {"from": farm})
    assert [bytes(e["lot"]) for e in tx.events["BatchRegistered"]] == [lot20(lot) for lot in lots]
    for lot in lots:
        assert ledger.getBatch(batch_id(COFFEE_GTIN, lot))[STATUS] == STATUS_ACTIVE


@pytest.mark.parametrize("lot", ["A", "Z" * 20, "ABCDEFGHIJ0123456789", "_"])
def test_lots_of_1_to_20_characters_are_accepted(ledger, farm, lot):
    tx = ledger.registerBatch(batch_input(lot), {"from": farm})
    assert bytes(tx.events["BatchRegistered"]["lot"]) == lot20(lot)
    assert ledger.getBatch(batch_id(COFFEE_GTIN, lot))[STATUS] == STATUS_ACTIVE


@pytest.mark.parametrize(
    "lot",
    [
        b"",  # empty
        b"A\x00B",  # NUL inside: would display as "AB", or as another lot
        b"\x00ABC",  # leading zero byte
        b"L-\x80",  # a byte >= 0x80 (not even UTF-8 on its own)
        "L-É".encode(),  # UTF-8 outside ASCII
        b"L-\xff",
        b"L-1\n2",  # newline
        b"L 17",  # space
        b"L#17",  # '#' (between '"' and '%', both allowed)
        b"L$17",
        b"L@17",  # just below 'A'
        b"L[17",  # just above 'Z'
        b"L`17",  # just below 'a'
        b"L{17",  # just above 'z'
        b"L~17",
        b"L\x7f",
        b"L\x01",
        b"\x21" * 19 + b"\x20",  # the 20th byte is checked too
    ],
)
def test_lots_outside_cset82_revert(ledger, farm, farm_batch, lot):
    with reverts_with("ProvenanceInvalidLot", str(lot20(lot))):
        ledger.registerBatch(batch_input(lot), {"from": farm})
    with reverts_with("ProvenanceInvalidLot", str(lot20(lot))):
        ledger.registerBatches([batch_input("GOOD-1"), batch_input(lot)], {"from": farm})
    with reverts_with("ProvenanceInvalidLot", str(lot20(lot))):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input(lot, 1)], NO_DATA, {"from": farm})
    assert ledger.getBatch(batch_id(COFFEE_GTIN, lot))[STATUS] == STATUS_NONE
    assert ledger.getBatch(batch_id(COFFEE_GTIN, "GOOD-1"))[STATUS] == STATUS_NONE


# ------------------------------------------------------------------ quantities


def test_max_quantity_through_register_and_split(ledger, farm):
    big = ledger.registerBatch(batch_input("BIG", MAX_UINT64), {"from": farm}).return_value
    assert tuple(ledger.getBatch(big))[REGISTERED : STATUS + 1] == (MAX_UINT64, MAX_UINT64, STATUS_ACTIVE)
    tx = ledger.transform(
        SPLIT,
        [(big, MAX_UINT64 - 1)],
        [batch_input("BIG-A", MAX_UINT64), batch_input("BIG-B", MAX_UINT64)],
        NO_DATA,
        {"from": farm},
    )
    assert [tuple(i) for i in tx.events["TransformationRecorded"]["inputs"]] == [(big, MAX_UINT64 - 1)]
    assert tuple(ledger.getBatch(big))[REMAINING : STATUS + 1] == (1, STATUS_ACTIVE)
    for output in tx.return_value[1]:
        assert tuple(ledger.getBatch(output))[REGISTERED : REMAINING + 1] == (MAX_UINT64, MAX_UINT64)
    ledger.transform(SPLIT, [(big, 1)], [batch_input("BIG-C", 1)], NO_DATA, {"from": farm})
    assert tuple(ledger.getBatch(big))[REMAINING : STATUS + 1] == (0, STATUS_CONSUMED)
    with reverts_with("ProvenanceBatchConsumed", big):
        ledger.transform(SPLIT, [(big, 1)], [batch_input("BIG-D", 1)], NO_DATA, {"from": farm})


def test_max_quantity_through_merge_and_processing(ledger, farm, roaster):
    first, second = ledger.registerBatches(
        [batch_input("BIG-1", MAX_UINT64), batch_input("BIG-2", MAX_UINT64)], {"from": farm}
    ).return_value
    tx = ledger.transform(
        MERGE, [(first, MAX_UINT64), (second, MAX_UINT64)], [batch_input("BIG-M", MAX_UINT64)], NO_DATA, {"from": farm}
    )
    merged = tx.return_value[1][0]
    assert [tuple(i) for i in tx.events["TransformationRecorded"]["inputs"]] == [
        (first, MAX_UINT64),
        (second, MAX_UINT64),
    ]
    assert ledger.getBatch(first)[STATUS] == ledger.getBatch(second)[STATUS] == STATUS_CONSUMED
    ledger.transferCustody(merged, roaster, {"from": farm})
    ledger.acceptCustody(merged, {"from": roaster})
    tx = ledger.transform(
        PROCESSING,
        [(merged, MAX_UINT64)],
        [batch_input("R-BIG", MAX_UINT64, gtin=ROASTED_GTIN), batch_input("B-BIG", MAX_UINT64, gtin=BAG_GTIN)],
        NO_DATA,
        {"from": roaster},
    )
    assert tuple(ledger.getBatch(merged))[REMAINING : STATUS + 1] == (0, STATUS_CONSUMED)
    assert [e["quantity"] for e in tx.events["BatchRegistered"]] == [MAX_UINT64, MAX_UINT64]


def test_merge_listing_one_input_twice_consumes_it_twice(ledger, farm, farm_batch):
    other = ledger.registerBatch(batch_input("L-18", 1_000), {"from": farm}).return_value
    tx = ledger.transform(
        MERGE, [(farm_batch, 40_000), (farm_batch, 20_000)], [batch_input("M-1", 60_000)], NO_DATA, {"from": farm}
    )
    # Both entries count against the same batch, and the event lists both as given.
    assert [tuple(i) for i in tx.events["TransformationRecorded"]["inputs"]] == [
        (farm_batch, 40_000),
        (farm_batch, 20_000),
    ]
    assert tuple(ledger.getBatch(farm_batch))[REMAINING : STATUS + 1] == (0, STATUS_CONSUMED)
    assert ledger.getBatch(other)[REMAINING] == 1_000


def test_merge_listing_one_input_twice_cannot_go_below_zero(ledger, farm, farm_batch):
    # 40,000 + 30,000 of a 60,000 batch: the second entry finds 20,000 left.
    with reverts_with("ProvenanceInsufficientQuantity", farm_batch, "30000, 20000"):
        ledger.transform(MERGE, [(farm_batch, 40_000), (farm_batch, 30_000)], [batch_input("M-1", 1)], NO_DATA, {"from": farm})
    assert ledger.getBatch(farm_batch)[REMAINING] == 60_000
    # The same after a partial consumption, at the very edge.
    ledger.transform(SPLIT, [(farm_batch, 59_990)], [batch_input("S-1", 1)], NO_DATA, {"from": farm})
    with reverts_with("ProvenanceInsufficientQuantity", farm_batch, "6, 5"):
        ledger.transform(MERGE, [(farm_batch, 5), (farm_batch, 6)], [batch_input("M-2", 1)], NO_DATA, {"from": farm})
    ledger.transform(MERGE, [(farm_batch, 5), (farm_batch, 5)], [batch_input("M-2", 1)], NO_DATA, {"from": farm})
    assert tuple(ledger.getBatch(farm_batch))[REMAINING : STATUS + 1] == (0, STATUS_CONSUMED)


def test_over_consuming_a_max_quantity_batch_reverts(ledger, farm):
    big = ledger.registerBatch(batch_input("BIG", MAX_UINT64), {"from": farm}).return_value
    ledger.transform(SPLIT, [(big, MAX_UINT64 - 3)], [batch_input("BIG-A", 1)], NO_DATA, {"from": farm})
    with reverts_with("ProvenanceInsufficientQuantity", big, "4, 3"):
        ledger.transform(SPLIT, [(big, 4)], [batch_input("BIG-B", 1)], NO_DATA, {"from": farm})
    with reverts_with("ProvenanceInsufficientQuantity", big, f"{MAX_UINT64}, 3"):
        ledger.transform(SPLIT, [(big, MAX_UINT64)], [batch_input("BIG-B", 1)], NO_DATA, {"from": farm})
    assert ledger.getBatch(big)[REMAINING] == 3
