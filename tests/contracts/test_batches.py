"""Batch registration, one and many; recall."""

from __future__ import annotations

from brownie import accounts
from contract_helpers import (
    COFFEE_GTIN,
    CUSTODIAN,
    MEMBER_GTIN,
    RECALL_NONE,
    RECALL_RECALLED,
    RECALL_STATE,
    RECALLED,
    REMAINING,
    ROASTED_GTIN,
    STATUS,
    STATUS_ACTIVE,
    SUPPLIER,
    batch_id,
    batch_input,
    digest,
    hex32,
    lot20,
    reverts_with,
)
from eth_utils import keccak

ZERO_ADDRESS = "0x" + "00" * 20


def test_batch_id_is_derived_from_gtin_and_lot(ledger, admin, farm):
    # keccak256 of the GTIN as 8 big-endian bytes and the lot zero-padded to 20 bytes: a
    # GTIN-8 shows that the leading zeros are part of the encoding.
    ledger.grantLicence(farm, 14, 96385074, {"from": admin})
    tx = ledger.registerBatch(batch_input("L-17", gtin=96385074), {"from": farm})
    expected = "0x" + keccak(bytes(4) + (96385074).to_bytes(4, "big") + b"L-17" + bytes(16)).hex()
    assert tx.return_value == tx.events["BatchRegistered"]["batchId"] == expected == batch_id(96385074, "L-17")


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
    assert tuple(ledger.getBatch(tx.return_value)) == (
        farm,
        farm,
        ZERO_ADDRESS,
        60_000,
        60_000,
        1,
        False,
        RECALL_NONE,
        tx.timestamp,
    )


def test_unknown_batch_has_status_none(ledger):
    assert ledger.getBatch(batch_id(COFFEE_GTIN, "NOPE"))[5] == 0


def test_register_same_lot_twice_reverts_naming_supplier(ledger, farm, farm_batch):
    with reverts_with("ProvenanceBatchAlreadyRegistered", farm_batch, farm.address):
        ledger.registerBatch(batch_input("L-17", 5), {"from": farm})
    assert ledger.getBatch(farm_batch)[3] == 60_000


def test_same_lot_by_two_licensees_of_one_gtin_reverts(ledger, admin, coop, member):
    # The coop's root licence and its member's sub-licence both cover MEMBER_GTIN: the
    # first to register a lot owns it, and the other is told who did.
    ledger.registerActor(member, "Finca Miembro", b"CO", digest("member"), {"from": admin})
    ledger.grantRole(ledger.SUPPLIER_ROLE(), member, {"from": admin})
    ledger.grantLicence(member, 9, 950123401, {"from": coop})
    tx = ledger.registerBatch(batch_input("M-1", gtin=MEMBER_GTIN), {"from": member})
    assert (tx.events["BatchRegistered"]["batchId"], tx.events["BatchRegistered"]["supplier"]) == (
        batch_id(MEMBER_GTIN, "M-1"),
        member,
    )
    with reverts_with("ProvenanceBatchAlreadyRegistered", batch_id(MEMBER_GTIN, "M-1"), member.address):
        ledger.registerBatch(batch_input("M-1", gtin=MEMBER_GTIN), {"from": coop})
    stored = ledger.getBatch(batch_id(MEMBER_GTIN, "M-1"))
    assert (stored[SUPPLIER], stored[CUSTODIAN]) == (member, member)  # still the member's


def test_same_lot_under_another_gtin_is_another_batch(ledger, roaster, farm_batch):
    tx = ledger.registerBatch(batch_input("L-17", gtin=ROASTED_GTIN), {"from": roaster})
    assert tx.return_value == batch_id(ROASTED_GTIN, "L-17") != farm_batch
    event = tx.events["BatchRegistered"]
    assert (event["batchId"], event["supplier"], event["gtin"], bytes(event["lot"])) == (
        tx.return_value,
        roaster,
        ROASTED_GTIN,
        lot20("L-17"),
    )
    assert ledger.getBatch(tx.return_value)[SUPPLIER] == roaster
    assert ledger.getBatch(farm_batch)[SUPPLIER] == ledger.getBatch(farm_batch)[CUSTODIAN] != roaster  # the farm's is untouched


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


def test_short_gtins_with_valid_check_digit_are_accepted(ledger, admin, farm):
    # GTIN-8 and GTIN-13 are GTIN-14 with leading zeros.
    for gtin in (96385074, 4006381333931):
        ledger.grantLicence(farm, 14, gtin, {"from": admin})
        tx = ledger.registerBatch(batch_input("L-1", gtin=gtin), {"from": farm})
        assert tx.events["BatchRegistered"]["gtin"] == gtin
        assert ledger.getBatch(batch_id(gtin, "L-1"))[0] == farm


def test_register_with_empty_lot_reverts(ledger, farm):
    with reverts_with("ProvenanceInvalidLot", str(lot20(""))):
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
    ids = [batch_id(COFFEE_GTIN, f"LOT-{i:03d}") for i in range(20)]
    assert list(tx.return_value) == ids
    # One event per batch, in order, each with its own lot and quantity.
    events = [
        (e["batchId"], e["supplier"], e["gtin"], bytes(e["lot"]), e["quantity"], bytes(e["unit"]))
        for e in tx.events["BatchRegistered"]
    ]
    assert events == [(ids[i], farm, COFFEE_GTIN, lot20(f"LOT-{i:03d}"), 100 + i, b"KGM") for i in range(20)]
    for i, batch in enumerate(ids):
        assert tuple(ledger.getBatch(batch)) == (
            farm,
            farm,
            ZERO_ADDRESS,
            100 + i,
            100 + i,
            STATUS_ACTIVE,
            False,
            RECALL_NONE,
            tx.timestamp,
        )


def test_register_many_is_all_or_nothing(ledger, farm):
    inputs = [batch_input("A-1"), batch_input("A-2", 0), batch_input("A-3")]
    with reverts_with("ProvenanceZeroQuantity"):
        ledger.registerBatches(inputs, {"from": farm})
    assert ledger.getBatch(batch_id(COFFEE_GTIN, "A-1"))[5] == 0
    assert ledger.getBatch(batch_id(COFFEE_GTIN, "A-3"))[5] == 0


def test_register_many_with_duplicate_inside_reverts(ledger, farm):
    with reverts_with("ProvenanceBatchAlreadyRegistered", batch_id(COFFEE_GTIN, "D-1"), farm.address):
        ledger.registerBatches([batch_input("D-1"), batch_input("D-1")], {"from": farm})
    assert ledger.getBatch(batch_id(COFFEE_GTIN, "D-1"))[5] == 0


def test_register_many_empty_reverts(ledger, farm):
    with reverts_with("ProvenanceEmptyList"):
        ledger.registerBatches([], {"from": farm})


def test_register_many_checks_caller_once(ledger, outsider):
    with reverts_with("ProvenanceUnknownActor", outsider.address):
        ledger.registerBatches([batch_input("X-1")], {"from": outsider})


def test_supplier_recalls(ledger, farm, farm_batch):
    tx = ledger.recallBatch(farm_batch, "Salmonella found in sample 4", digest("salmonella notice"), {"from": farm})
    event = tx.events["BatchRecalled"]
    assert (event["batchId"], event["by"], event["reason"]) == (farm_batch, farm, "Salmonella found in sample 4")
    assert event["reasonHash"] == hex32(digest("salmonella notice"))
    batch = ledger.getBatch(farm_batch)
    assert (batch[6], batch[7]) == (True, RECALL_RECALLED)


def test_admin_recalls(ledger, admin, farm_batch):
    tx = ledger.recallBatch(farm_batch, "Operator recall", b"\0" * 32, {"from": admin})
    event = tx.events["BatchRecalled"]
    assert (event["batchId"], event["by"], event["reason"], event["reasonHash"]) == (
        farm_batch,
        admin,
        "Operator recall",
        hex32(b"\0" * 32),
    )
    batch = ledger.getBatch(farm_batch)
    assert (batch[RECALLED], batch[RECALL_STATE], batch[STATUS]) == (True, RECALL_RECALLED, STATUS_ACTIVE)


def test_supplier_still_recalls_after_handing_over(ledger, farm, coop, farm_batch):
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    ledger.acceptCustody(farm_batch, {"from": coop})
    tx = ledger.recallBatch(farm_batch, "Mould", digest("r"), {"from": farm})
    event = tx.events["BatchRecalled"]
    assert (event["batchId"], event["by"], event["reason"]) == (farm_batch, farm, "Mould")
    batch = ledger.getBatch(farm_batch)
    assert (batch[RECALLED], batch[RECALL_STATE], batch[CUSTODIAN]) == (True, RECALL_RECALLED, coop)  # the coop keeps it


def test_recall_by_custodian_who_is_not_supplier_reverts(ledger, farm, coop, farm_batch):
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    ledger.acceptCustody(farm_batch, {"from": coop})
    with reverts_with("ProvenanceNotRecaller", coop.address):
        ledger.recallBatch(farm_batch, "Mould", digest("r"), {"from": coop})
    assert ledger.getBatch(farm_batch)[RECALL_STATE] == RECALL_NONE


def test_recall_by_outsider_reverts(ledger, outsider, farm_batch):
    with reverts_with("ProvenanceNotRecaller", outsider.address):
        ledger.recallBatch(farm_batch, "Mould", digest("r"), {"from": outsider})
    assert ledger.getBatch(farm_batch)[6] is False


def test_recall_unknown_batch_reverts(ledger, admin):
    with reverts_with("ProvenanceUnknownBatch", batch_id(COFFEE_GTIN, "NOPE")):
        ledger.recallBatch(batch_id(COFFEE_GTIN, "NOPE"), "Mould", digest("r"), {"from": admin})


def test_recall_twice_reverts(ledger, farm, farm_batch):
    first = ledger.recallBatch(farm_batch, "Mould", digest("r"), {"from": farm})
    assert first.events["BatchRecalled"]["batchId"] == farm_batch
    with reverts_with("ProvenanceBatchRecalled", farm_batch):
        ledger.recallBatch(farm_batch, "Mould", digest("r"), {"from": farm})


def test_steps_are_recorded_by_the_custodian(ledger, farm, farm_batch):
    tx = ledger.recordStep(farm_batch, b"inspecting".ljust(32, b"\0"), "Pitalito, Huila", digest("qc"), {"from": farm})
    event = tx.events["StepRecorded"]
    assert (event["batchId"], event["actor"], event["location"]) == (farm_batch, farm, "Pitalito, Huila")
    assert bytes(event["bizStep"]) == b"inspecting".ljust(32, b"\0") and event["dataHash"] == hex32(digest("qc"))
    # A step is a record only: who holds the batch and how much is left do not change.
    batch = ledger.getBatch(farm_batch)
    assert (batch[CUSTODIAN], batch[REMAINING], batch[STATUS]) == (farm, 60_000, STATUS_ACTIVE)


def test_step_errors(ledger, admin, farm, coop, farm_batch):
    step = b"shipping".ljust(32, b"\0")
    with reverts_with("ProvenanceUnknownBatch", batch_id(COFFEE_GTIN, "NOPE")):
        ledger.recordStep(batch_id(COFFEE_GTIN, "NOPE"), step, "x", digest("x"), {"from": farm})
    with reverts_with("ProvenanceNotCustodian", coop.address, farm.address):
        ledger.recordStep(farm_batch, step, "x", digest("x"), {"from": coop})
    with reverts_with("ProvenanceInvalidBusinessStep"):
        ledger.recordStep(farm_batch, b"\0" * 32, "x", digest("x"), {"from": farm})
    ledger.deactivateActor(farm, {"from": admin})
    with reverts_with("ProvenanceActorInactive", farm.address):
        ledger.recordStep(farm_batch, step, "x", digest("x"), {"from": farm})


def test_step_by_unregistered_account_reverts(ledger, farm_batch):
    with reverts_with("ProvenanceNotCustodian", accounts[6].address):
        ledger.recordStep(farm_batch, b"shipping".ljust(32, b"\0"), "x", digest("x"), {"from": accounts[6]})
