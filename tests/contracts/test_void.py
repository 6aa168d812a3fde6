"""Voiding a batch registered in error: admin only, with a reason, final, and the lot stays taken."""

from __future__ import annotations

from brownie import ZERO_ADDRESS
from contract_helpers import (
    COFFEE_GTIN,
    STATUS_VOIDED,
    b32,
    batch_id,
    batch_input,
    digest,
    now,
    reverts_with,
    sign_attestation,
)

SPLIT = 0
NO_DATA = b"\0" * 32
STEP = b32("shipping")


def test_admin_voids_with_reason(ledger, admin, farm, farm_batch):
    tx = ledger.voidBatch(farm_batch, "Registered under the wrong GTIN", {"from": admin})
    event = tx.events["BatchVoided"]
    assert (event["batchId"], event["by"], event["reason"]) == (farm_batch, admin, "Registered under the wrong GTIN")
    batch = ledger.getBatch(farm_batch)
    # Everything but the status is kept, so the page still says whose lot it was.
    assert tuple(batch)[:6] == (farm, farm, ZERO_ADDRESS, 60_000, 60_000, STATUS_VOIDED)


def test_voided_batch_cannot_be_used(ledger, admin, farm, coop, certifier, farm_batch):
    ledger.voidBatch(farm_batch, "Duplicate entry", {"from": admin})
    with reverts_with("ProvenanceBatchVoided", farm_batch):
        ledger.transferCustody(farm_batch, coop, {"from": farm})
    with reverts_with("ProvenanceBatchVoided", farm_batch):
        ledger.recordStep(farm_batch, STEP, "Pitalito", digest("x"), {"from": farm})
    with reverts_with("ProvenanceBatchVoided", farm_batch):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("L-17-A", 1)], NO_DATA, {"from": farm})
    with reverts_with("ProvenanceBatchVoided", farm_batch):
        ledger.recallBatch(farm_batch, "Mould", digest("r"), {"from": farm})
    with reverts_with("ProvenanceBatchVoided", farm_batch):
        ledger.recallBatch(farm_batch, "Mould", digest("r"), {"from": admin})
    request = (0, farm_batch, b32("FAIRTRADE"), 0, 0, digest("certificate"))
    with reverts_with("ProvenanceBatchVoided", farm_batch):
        ledger.attest(request, {"from": certifier})
    with reverts_with("ProvenanceBatchVoided", farm_batch):
        ledger.attestMany([request], {"from": certifier})
    signed_at, deadline = now(), now() + 3600
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, request, 0, deadline, signed_at)
    with reverts_with("ProvenanceBatchVoided", farm_batch):
        ledger.attestBySig(request, certifier, signed_at, deadline, signature, {"from": farm})
    with reverts_with("ProvenanceBatchVoided", farm_batch):
        ledger.voidBatch(farm_batch, "Again", {"from": admin})
    assert ledger.getBatch(farm_batch)[4] == 60_000


def test_voided_lot_stays_taken(ledger, admin, farm, farm_batch):
    ledger.voidBatch(farm_batch, "Duplicate entry", {"from": admin})
    with reverts_with("ProvenanceBatchAlreadyRegistered", farm_batch, farm.address):
        ledger.registerBatch(batch_input("L-17"), {"from": farm})
    with reverts_with("ProvenanceBatchAlreadyRegistered", farm_batch, farm.address):
        ledger.registerBatches([batch_input("L-17")], {"from": farm})
    other = ledger.registerBatch(batch_input("L-18"), {"from": farm}).return_value
    with reverts_with("ProvenanceBatchAlreadyRegistered", farm_batch, farm.address):
        ledger.transform(SPLIT, [(other, 1)], [batch_input("L-17", 1)], NO_DATA, {"from": farm})


def test_voiding_clears_a_pending_hand_over(ledger, admin, farm, coop, farm_batch):
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    ledger.voidBatch(farm_batch, "Duplicate entry", {"from": admin})
    assert tuple(ledger.getBatch(farm_batch))[1:3] == (farm, ZERO_ADDRESS)
    with reverts_with("ProvenanceNoTransferPending", farm_batch):
        ledger.acceptCustody(farm_batch, {"from": coop})
    with reverts_with("ProvenanceNoTransferPending", farm_batch):
        ledger.cancelCustodyTransfer(farm_batch, {"from": farm})


def test_non_admin_cannot_void(ledger, farm, coop, farm_batch):
    for caller in (farm, coop):
        with reverts_with("AccessControlUnauthorizedAccount", caller.address):
            ledger.voidBatch(farm_batch, "Mine now", {"from": caller})
    assert ledger.getBatch(farm_batch)[5] == 1


def test_void_needs_a_known_batch_and_a_reason(ledger, admin, farm_batch):
    with reverts_with("ProvenanceUnknownBatch", batch_id(COFFEE_GTIN, "NOPE")):
        ledger.voidBatch(batch_id(COFFEE_GTIN, "NOPE"), "Typo", {"from": admin})
    with reverts_with("ProvenanceInvalidReason", "0"):
        ledger.voidBatch(farm_batch, "", {"from": admin})
    with reverts_with("ProvenanceInvalidReason", "281"):
        ledger.voidBatch(farm_batch, "x" * 281, {"from": admin})
    assert ledger.getBatch(farm_batch)[5] == 1


def test_consumed_batch_can_be_voided(ledger, admin, farm, farm_batch):
    ledger.transform(SPLIT, [(farm_batch, 60_000)], [batch_input("L-17-A")], NO_DATA, {"from": farm})
    tx = ledger.voidBatch(farm_batch, "Registered twice", {"from": admin})
    assert tx.events["BatchVoided"]["batchId"] == farm_batch
    assert tuple(ledger.getBatch(farm_batch))[4:6] == (0, STATUS_VOIDED)
