"""Split, merge and processing: quantities consumed, outputs created and linked."""

from __future__ import annotations

from contract_helpers import BAG_GTIN, COFFEE_GTIN, COOP_GTIN, ROASTED_GTIN, batch_id, batch_input, digest, reverts_with
from eth_utils import keccak

SPLIT, MERGE, PROCESSING = 0, 1, 2
NO_DATA = b"\0" * 32


def test_split_consumes_and_creates(ledger, farm, farm_batch):
    tx = ledger.transform(
        SPLIT,
        [(farm_batch, 40_000)],
        [batch_input("L-17-A", 25_000), batch_input("L-17-B", 15_000)],
        digest("split"),
        {"from": farm},
    )
    outputs = [batch_id(COFFEE_GTIN, "L-17-A"), batch_id(COFFEE_GTIN, "L-17-B")]
    transformation_id, output_ids = tx.return_value
    assert list(output_ids) == outputs
    assert transformation_id == "0x" + keccak(b"".join(bytes.fromhex(o[2:]) for o in outputs)).hex()
    event = tx.events["TransformationRecorded"]
    assert event["custodian"] == farm
    assert event["kind"] == SPLIT
    assert [tuple(i) for i in event["inputs"]] == [(farm_batch, 40_000)]
    assert list(event["outputs"]) == outputs
    assert event["dataHash"] == "0x" + digest("split").hex()
    assert len(tx.events["BatchRegistered"]) == 2
    assert tuple(ledger.getBatch(farm_batch))[3:6] == (60_000, 20_000, 1)
    assert tuple(ledger.getBatch(outputs[0]))[:2] == (farm, farm)


def test_consuming_everything_marks_consumed(ledger, farm, farm_batch):
    ledger.transform(SPLIT, [(farm_batch, 60_000)], [batch_input("L-17-A", 60_000)], NO_DATA, {"from": farm})
    assert tuple(ledger.getBatch(farm_batch))[4:6] == (0, 2)


def test_merge_of_lots_from_two_suppliers(ledger, farm, coop, farm_batch):
    other = ledger.registerBatch(batch_input("L-18", 30_000, gtin=COOP_GTIN), {"from": coop}).return_value
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    ledger.acceptCustody(farm_batch, {"from": coop})
    tx = ledger.transform(
        MERGE,
        [(farm_batch, 60_000), (other, 30_000)],
        [batch_input("COOP-1", 90_000, gtin=COOP_GTIN)],
        NO_DATA,
        {"from": coop},
    )
    merged = tx.return_value[1][0]
    assert merged == batch_id(COOP_GTIN, "COOP-1")
    assert tuple(ledger.getBatch(merged))[:5] == (coop, coop, "0x" + "00" * 20, 90_000, 90_000)
    assert tx.events["TransformationRecorded"]["kind"] == MERGE
    # The farm stays the supplier of its lot after the coop consumed it.
    assert ledger.getBatch(farm_batch)[0] == farm
    assert ledger.getBatch(farm_batch)[5] == 2 and ledger.getBatch(other)[5] == 2


def test_processing_n_to_m(ledger, farm, roaster, farm_batch):
    second = ledger.registerBatch(batch_input("L-19", 1_000), {"from": farm}).return_value
    for batch in (farm_batch, second):
        ledger.transferCustody(batch, roaster, {"from": farm})
        ledger.acceptCustody(batch, {"from": roaster})
    tx = ledger.transform(
        PROCESSING,
        [(farm_batch, 10_000), (second, 1_000)],
        [batch_input("R-1", 4_000, gtin=ROASTED_GTIN), batch_input("BAG-1", 16_000, gtin=BAG_GTIN, unit="H87")],
        digest("roast profile"),
        {"from": roaster},
    )
    outputs = [batch_id(ROASTED_GTIN, "R-1"), batch_id(BAG_GTIN, "BAG-1")]
    assert list(tx.return_value[1]) == outputs
    assert [tuple(ledger.getBatch(o))[:4] for o in outputs] == [
        (roaster, roaster, "0x" + "00" * 20, 4_000),
        (roaster, roaster, "0x" + "00" * 20, 16_000),
    ]
    assert tuple(ledger.getBatch(farm_batch))[4:6] == (50_000, 1)
    assert tuple(ledger.getBatch(second))[4:6] == (0, 2)


def test_same_input_twice_is_limited_by_remaining(ledger, farm, farm_batch):
    with reverts_with("ProvenanceInsufficientQuantity", "30000", "20000"):
        ledger.transform(PROCESSING, [(farm_batch, 40_000), (farm_batch, 30_000)], [batch_input("X")], NO_DATA, {"from": farm})


def test_consuming_beyond_remaining_reverts(ledger, farm, farm_batch):
    with reverts_with("ProvenanceInsufficientQuantity", "60001", "60000"):
        ledger.transform(SPLIT, [(farm_batch, 60_001)], [batch_input("X")], NO_DATA, {"from": farm})


def test_consuming_zero_reverts(ledger, farm, farm_batch):
    with reverts_with("ProvenanceZeroQuantity"):
        ledger.transform(SPLIT, [(farm_batch, 0)], [batch_input("X")], NO_DATA, {"from": farm})


def test_consumed_input_reverts(ledger, farm, farm_batch):
    ledger.transform(SPLIT, [(farm_batch, 60_000)], [batch_input("A")], NO_DATA, {"from": farm})
    with reverts_with("ProvenanceBatchConsumed", farm_batch):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("B")], NO_DATA, {"from": farm})


def test_non_custodian_cannot_consume(ledger, farm, coop, farm_batch):
    with reverts_with("ProvenanceNotCustodian", coop.address, farm.address):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("X")], NO_DATA, {"from": coop})


def test_recalled_input_reverts(ledger, farm, farm_batch):
    ledger.recallBatch(farm_batch, "Mould", digest("r"), {"from": farm})
    with reverts_with("ProvenanceBatchRecalled", farm_batch):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("X")], NO_DATA, {"from": farm})


def test_input_with_pending_handover_reverts(ledger, farm, coop, farm_batch):
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    with reverts_with("ProvenanceTransferPending", coop.address):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("X")], NO_DATA, {"from": farm})


def test_unknown_input_reverts(ledger, farm):
    with reverts_with("ProvenanceUnknownBatch", batch_id(COFFEE_GTIN, "NOPE")):
        ledger.transform(SPLIT, [(batch_id(COFFEE_GTIN, "NOPE"), 1)], [batch_input("X")], NO_DATA, {"from": farm})


def test_output_that_exists_reverts(ledger, farm, farm_batch):
    with reverts_with("ProvenanceBatchAlreadyRegistered", farm_batch, farm.address):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("L-17")], NO_DATA, {"from": farm})
    assert ledger.getBatch(farm_batch)[4] == 60_000


def test_invalid_output_reverts(ledger, farm, farm_batch):
    with reverts_with("ProvenanceInvalidGtin", "124"):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("X", gtin=124)], NO_DATA, {"from": farm})


def test_shape_must_fit_kind(ledger, farm, farm_batch):
    second = ledger.registerBatch(batch_input("L-19", 1_000), {"from": farm}).return_value
    two_inputs = [(farm_batch, 1), (second, 1)]
    cases = [
        (SPLIT, two_inputs, [batch_input("X")]),
        (SPLIT, [(farm_batch, 1)], []),
        (MERGE, [(farm_batch, 1)], [batch_input("X")]),
        (MERGE, two_inputs, [batch_input("X"), batch_input("Y")]),
        (PROCESSING, [], [batch_input("X")]),
        (PROCESSING, [(farm_batch, 1)], []),
    ]
    for kind, inputs, outputs in cases:
        with reverts_with("ProvenanceInvalidTransformation", f"{kind}, {len(inputs)}, {len(outputs)}"):
            ledger.transform(kind, inputs, outputs, NO_DATA, {"from": farm})


def test_custodian_without_supplier_role_cannot_transform(ledger, admin, farm, coop, farm_batch):
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    ledger.acceptCustody(farm_batch, {"from": coop})
    ledger.revokeRole(ledger.SUPPLIER_ROLE(), coop, {"from": admin})
    with reverts_with("AccessControlUnauthorizedAccount", coop.address):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("X")], NO_DATA, {"from": coop})


def test_deactivated_custodian_cannot_transform(ledger, admin, farm, farm_batch):
    ledger.deactivateActor(farm, {"from": admin})
    with reverts_with("ProvenanceActorInactive", farm.address):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("X")], NO_DATA, {"from": farm})
