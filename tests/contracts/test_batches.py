"""Batch registration, one and many; recall."""

from __future__ import annotations

from brownie import accounts

from contract_helpers import COFFEE_GTIN, batch_id, batch_input, digest, lot20, reverts_with


def test_batch_id_is_derived_from_gtin_and_lot(ledger):
    assert ledger.batchIdOf(COFFEE_GTIN, lot20("L-17")) == batch_id(COFFEE_GTIN, "L-17")


def test_register_batch_stores_and_emits(ledger, farm):
    tx = ledger.registerBatch(batch_input("L-17", 60_000), {"from": farm})
    assert tx.return_value == batch_id(COFFEE_GTIN, "L-17")
    event = tx.events["BatchRegistered"]
    assert event["batchId"] == batch_id(COFFEE_GTIN, "L-17")
    assert event["supplier"] == farm
    assert event["gtin"] == COFFEE_GTIN
    assert bytes(event["lot"]) == lot20("L-17")
    assert event["quantity"] == 60_000
    assert bytes(event["unit"]) == b"KGM"
    assert event["metadataHash"] == "0x" + digest("metadata L-17").hex()
    assert tuple(ledger.getBatch(tx.return_value)) == (farm, farm, "0x" + "00" * 20, 60_000, 60_000, 1, False)


def test_unknown_batch_has_status_none(ledger):
    assert ledger.getBatch(batch_id(COFFEE_GTIN, "NOPE"))[5] == 0


def test_register_same_lot_twice_reverts_naming_supplier(ledger, farm, coop, farm_batch):
    with reverts_with("ProvenanceBatchAlreadyRegistered", farm.address):
        ledger.registerBatch(batch_input("L-17", 5), {"from": coop})


def test_same_lot_under_another_gtin_is_another_batch(ledger, farm, farm_batch):
    tx = ledger.registerBatch(batch_input("L-17", gtin=9506000134369), {"from": farm})
    assert tx.return_value != farm_batch


def test_register_by_unregistered_account_reverts(ledger, outsider):
    with reverts_with("ProvenanceUnknownActor", outsider.address):
        ledger.registerBatch(batch_input("L-1"), {"from": outsider})


def test_register_without_supplier_role_reverts(ledger, certifier):
    with reverts_with("AccessControlUnauthorizedAccount", certifier.address):
        ledger.registerBatch(batch_input("L-1"), {"from": certifier})


def test_register_with_bad_gtin_reverts(ledger, farm):
    for gtin in (9506000134353, 0, 100_000_000_000_000, 2**64 - 1):
        with reverts_with("ProvenanceInvalidGtin", str(gtin)):
            ledger.registerBatch(batch_input("L-1", gtin=gtin), {"from": farm})


def test_short_gtins_with_valid_check_digit_are_accepted(ledger, farm):
    # GTIN-8 and GTIN-13 are GTIN-14 with leading zeros.
    for gtin in (96385074, 4006381333931):
        ledger.registerBatch(batch_input("L-1", gtin=gtin), {"from": farm})


def test_register_with_empty_lot_reverts(ledger, farm):
    with reverts_with("ProvenanceInvalidLot"):
        ledger.registerBatch(batch_input(""), {"from": farm})


def test_register_zero_quantity_reverts(ledger, farm):
    with reverts_with("ProvenanceZeroQuantity"):
        ledger.registerBatch(batch_input("L-1", 0), {"from": farm})


def test_register_without_unit_reverts(ledger, farm):
    with reverts_with("ProvenanceInvalidUnit"):
        ledger.registerBatch(batch_input("L-1", unit=""), {"from": farm})


def test_register_many(ledger, farm):
    inputs = [batch_input(f"LOT-{i:03d}", 100 + i) for i in range(20)]
    tx = ledger.registerBatches(inputs, {"from": farm})
    assert list(tx.return_value) == [batch_id(COFFEE_GTIN, f"LOT-{i:03d}") for i in range(20)]
    assert len(tx.events["BatchRegistered"]) == 20
    assert ledger.getBatch(batch_id(COFFEE_GTIN, "LOT-019"))[3] == 119


def test_register_many_is_all_or_nothing(ledger, farm):
    inputs = [batch_input("A-1"), batch_input("A-2", 0), batch_input("A-3")]
    with reverts_with("ProvenanceZeroQuantity"):
        ledger.registerBatches(inputs, {"from": farm})
    assert ledger.getBatch(batch_id(COFFEE_GTIN, "A-1"))[5] == 0


def test_register_many_with_duplicate_inside_reverts(ledger, farm):
    with reverts_with("ProvenanceBatchAlreadyRegistered"):
        ledger.registerBatches([batch_input("D-1"), batch_input("D-1")], {"from": farm})


def test_register_many_empty_reverts(ledger, farm):
    with reverts_with("ProvenanceEmptyList"):
        ledger.registerBatches([], {"from": farm})


def test_register_many_checks_caller_once(ledger, outsider):
    with reverts_with("ProvenanceUnknownActor"):
        ledger.registerBatches([batch_input("X-1")], {"from": outsider})


def test_supplier_recalls(ledger, farm, farm_batch):
    tx = ledger.recallBatch(farm_batch, digest("salmonella notice"), {"from": farm})
    event = tx.events["BatchRecalled"]
    assert (event["batchId"], event["by"]) == (farm_batch, farm)
    assert event["reasonHash"] == "0x" + digest("salmonella notice").hex()
    assert ledger.getBatch(farm_batch)[6] is True


def test_admin_recalls(ledger, admin, farm_batch):
    ledger.recallBatch(farm_batch, digest("r"), {"from": admin})
    assert ledger.getBatch(farm_batch)[6] is True


def test_supplier_still_recalls_after_handing_over(ledger, farm, coop, farm_batch):
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    ledger.acceptCustody(farm_batch, {"from": coop})
    ledger.recallBatch(farm_batch, digest("r"), {"from": farm})


def test_deactivated_supplier_still_recalls(ledger, admin, farm, farm_batch):
    ledger.deactivateActor(farm, {"from": admin})
    ledger.recallBatch(farm_batch, digest("r"), {"from": farm})


def test_recall_by_custodian_who_is_not_supplier_reverts(ledger, farm, coop, farm_batch):
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    ledger.acceptCustody(farm_batch, {"from": coop})
    with reverts_with("ProvenanceNotRecaller", coop.address):
        ledger.recallBatch(farm_batch, digest("r"), {"from": coop})


def test_recall_by_outsider_reverts(ledger, outsider, farm_batch):
    with reverts_with("ProvenanceNotRecaller", outsider.address):
        ledger.recallBatch(farm_batch, digest("r"), {"from": outsider})


def test_recall_unknown_batch_reverts(ledger, admin):
    with reverts_with("ProvenanceUnknownBatch"):
        ledger.recallBatch(batch_id(COFFEE_GTIN, "NOPE"), digest("r"), {"from": admin})


def test_recall_twice_reverts(ledger, farm, farm_batch):
    ledger.recallBatch(farm_batch, digest("r"), {"from": farm})
    with reverts_with("ProvenanceBatchRecalled"):
        ledger.recallBatch(farm_batch, digest("r"), {"from": farm})


def test_steps_are_recorded_by_the_custodian(ledger, farm, farm_batch):
    tx = ledger.recordStep(farm_batch, b"inspecting".ljust(32, b"\0"), "Pitalito, Huila", digest("qc"), {"from": farm})
    event = tx.events["StepRecorded"]
    assert (event["batchId"], event["actor"], event["location"]) == (farm_batch, farm, "Pitalito, Huila")
    assert bytes(event["bizStep"]).rstrip(b"\0") == b"inspecting"


def test_step_errors(ledger, admin, farm, coop, farm_batch):
    step = b"shipping".ljust(32, b"\0")
    with reverts_with("ProvenanceUnknownBatch"):
        ledger.recordStep(batch_id(COFFEE_GTIN, "NOPE"), step, "x", digest("x"), {"from": farm})
    with reverts_with("ProvenanceNotCustodian", coop.address, farm.address):
        ledger.recordStep(farm_batch, step, "x", digest("x"), {"from": coop})
    with reverts_with("ProvenanceInvalidBusinessStep"):
        ledger.recordStep(farm_batch, b"\0" * 32, "x", digest("x"), {"from": farm})
    ledger.deactivateActor(farm, {"from": admin})
    with reverts_with("ProvenanceActorInactive"):
        ledger.recordStep(farm_batch, step, "x", digest("x"), {"from": farm})


def test_step_by_unregistered_account_reverts(ledger, farm_batch):
    with reverts_with("ProvenanceNotCustodian"):
        ledger.recordStep(farm_batch, b"shipping".ljust(32, b"\0"), "x", digest("x"), {"from": accounts[6]})
