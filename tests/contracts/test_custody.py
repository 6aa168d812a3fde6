"""Two-step custody hand-overs."""

from __future__ import annotations

from brownie import ZERO_ADDRESS, accounts
from contract_helpers import (
    COFFEE_GTIN,
    CUSTODIAN,
    PENDING,
    RECALL_RECALLED,
    RECALL_STATE,
    RECALLED,
    REMAINING,
    STATUS,
    STATUS_ACTIVE,
    batch_id,
    batch_input,
    reverts_with,
)


def holders(ledger, batch) -> tuple:
    """(custodian, pending custodian) of a batch as stored."""
    stored = ledger.getBatch(batch)
    return stored[CUSTODIAN], stored[PENDING]


def test_handover_proposed_then_accepted(ledger, farm, coop, farm_batch):
    tx = ledger.transferCustody(farm_batch, coop, {"from": farm})
    event = tx.events["CustodyTransferProposed"]
    assert (event["batchId"], event["from"], event["to"]) == (farm_batch, farm, coop)
    assert tuple(ledger.getBatch(farm_batch))[1:3] == (farm, coop)
    tx = ledger.acceptCustody(farm_batch, {"from": coop})
    event = tx.events["CustodyTransferAccepted"]
    assert (event["batchId"], event["from"], event["to"]) == (farm_batch, farm, coop)
    assert tuple(ledger.getBatch(farm_batch))[1:3] == (coop, ZERO_ADDRESS)


def test_transfer_unknown_batch_reverts(ledger, farm, coop):
    with reverts_with("ProvenanceUnknownBatch"):
        ledger.transferCustody(batch_id(COFFEE_GTIN, "NOPE"), coop, {"from": farm})


def test_transfer_by_non_custodian_reverts(ledger, coop, roaster, farm, farm_batch):
    with reverts_with("ProvenanceNotCustodian", coop.address, farm.address):
        ledger.transferCustody(farm_batch, roaster, {"from": coop})


def test_transfer_by_inactive_custodian_reverts(ledger, admin, farm, coop, farm_batch):
    ledger.deactivateActor(farm, {"from": admin})
    with reverts_with("ProvenanceActorInactive", farm.address):
        ledger.transferCustody(farm_batch, coop, {"from": farm})


def test_transfer_to_unregistered_reverts(ledger, farm, outsider, farm_batch):
    with reverts_with("ProvenanceUnknownActor", outsider.address):
        ledger.transferCustody(farm_batch, outsider, {"from": farm})


def test_transfer_to_inactive_reverts(ledger, admin, farm, coop, farm_batch):
    ledger.deactivateActor(coop, {"from": admin})
    with reverts_with("ProvenanceActorInactive", coop.address):
        ledger.transferCustody(farm_batch, coop, {"from": farm})


def test_transfer_to_self_reverts(ledger, farm, farm_batch):
    with reverts_with("ProvenanceSelfTransfer"):
        ledger.transferCustody(farm_batch, farm, {"from": farm})


def test_second_transfer_while_pending_reverts(ledger, farm, coop, roaster, farm_batch):
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    with reverts_with("ProvenanceTransferPending", coop.address):
        ledger.transferCustody(farm_batch, roaster, {"from": farm})
    assert holders(ledger, farm_batch) == (farm, coop)  # the first offer stands


def test_transfer_of_consumed_batch_reverts(ledger, farm, coop, farm_batch):
    ledger.transform(0, [(farm_batch, 60_000)], [batch_input("L-17-A")], b"\0" * 32, {"from": farm})
    with reverts_with("ProvenanceBatchConsumed"):
        ledger.transferCustody(farm_batch, coop, {"from": farm})


def test_recalled_batch_can_still_be_returned(ledger, farm, coop, farm_batch):
    ledger.recallBatch(farm_batch, "Mould", b"\1" * 32, {"from": farm})
    offer = ledger.transferCustody(farm_batch, coop, {"from": farm}).events["CustodyTransferProposed"]
    assert (offer["batchId"], offer["from"], offer["to"]) == (farm_batch, farm, coop)
    accepted = ledger.acceptCustody(farm_batch, {"from": coop}).events["CustodyTransferAccepted"]
    assert (accepted["batchId"], accepted["from"], accepted["to"]) == (farm_batch, farm, coop)
    stored = ledger.getBatch(farm_batch)
    assert holders(ledger, farm_batch) == (coop, ZERO_ADDRESS)
    # Returning it does not lift the recall, nor consume it.
    assert (stored[RECALLED], stored[RECALL_STATE], stored[STATUS], stored[REMAINING]) == (
        True,
        RECALL_RECALLED,
        STATUS_ACTIVE,
        60_000,
    )


def test_accept_errors(ledger, admin, farm, coop, roaster, farm_batch):
    with reverts_with("ProvenanceUnknownBatch"):
        ledger.acceptCustody(batch_id(COFFEE_GTIN, "NOPE"), {"from": coop})
    with reverts_with("ProvenanceNoTransferPending"):
        ledger.acceptCustody(farm_batch, {"from": coop})
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    with reverts_with("ProvenanceNotPendingCustodian", roaster.address, coop.address):
        ledger.acceptCustody(farm_batch, {"from": roaster})
    with reverts_with("ProvenanceNotPendingCustodian"):
        ledger.acceptCustody(farm_batch, {"from": accounts[6]})
    ledger.deactivateActor(coop, {"from": admin})
    with reverts_with("ProvenanceActorInactive", coop.address):
        ledger.acceptCustody(farm_batch, {"from": coop})
    assert holders(ledger, farm_batch) == (farm, coop)  # none of them took it


def test_custodian_cancels(ledger, farm, coop, farm_batch):
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    tx = ledger.cancelCustodyTransfer(farm_batch, {"from": farm})
    event = tx.events["CustodyTransferCancelled"]
    assert (event["batchId"], event["from"], event["to"]) == (farm_batch, farm, coop)
    assert tuple(ledger.getBatch(farm_batch))[1:3] == (farm, ZERO_ADDRESS)
    with reverts_with("ProvenanceNoTransferPending"):  # the withdrawn offer cannot be taken up
        ledger.acceptCustody(farm_batch, {"from": coop})


def test_recipient_declines(ledger, farm, coop, farm_batch):
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    tx = ledger.cancelCustodyTransfer(farm_batch, {"from": coop})
    event = tx.events["CustodyTransferCancelled"]
    assert (event["batchId"], event["from"], event["to"]) == (farm_batch, farm, coop)
    assert tuple(ledger.getBatch(farm_batch))[1:3] == (farm, ZERO_ADDRESS)
    with reverts_with("ProvenanceNoTransferPending"):
        ledger.acceptCustody(farm_batch, {"from": coop})


def test_cancel_errors(ledger, farm, coop, roaster, farm_batch):
    with reverts_with("ProvenanceUnknownBatch"):
        ledger.cancelCustodyTransfer(batch_id(COFFEE_GTIN, "NOPE"), {"from": farm})
    with reverts_with("ProvenanceNoTransferPending"):
        ledger.cancelCustodyTransfer(farm_batch, {"from": farm})
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    with reverts_with("ProvenanceNotTransferParty", roaster.address):
        ledger.cancelCustodyTransfer(farm_batch, {"from": roaster})
    with reverts_with("ProvenanceNotTransferParty"):
        ledger.cancelCustodyTransfer(farm_batch, {"from": accounts[6]})
    assert holders(ledger, farm_batch) == (farm, coop)  # the offer still waits for the coop
