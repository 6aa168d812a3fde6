"""Recalls say why, can be made by a deactivated supplier, and are reviewed by the admin."""

from __future__ import annotations

from brownie import ZERO_ADDRESS
from contract_helpers import (
    COFFEE_GTIN,
    COOP_GTIN,
    RECALL_NONE,
    RECALL_RECALLED,
    RECALL_STATE,
    RECALL_UPHELD,
    RECALL_WITHDRAWN,
    RECALLED,
    batch_id,
    batch_input,
    digest,
    hex32,
    reverts_with,
)

SPLIT = 0
NO_DATA = b"\0" * 32
REASON = "Ochratoxin A above the EU limit in sample 4"


def recall_state(ledger, batch) -> tuple:
    """(recalled, recallState) of a batch."""
    stored = ledger.getBatch(batch)
    return stored[RECALLED], stored[RECALL_STATE]


def test_recall_reason_text_is_in_the_event(ledger, farm, farm_batch):
    tx = ledger.recallBatch(farm_batch, REASON, digest("notice"), {"from": farm})
    event = tx.events["BatchRecalled"]
    assert (event["batchId"], event["by"], event["reason"]) == (farm_batch, farm, REASON)
    assert event["reasonHash"] == hex32(digest("notice"))
    assert recall_state(ledger, farm_batch) == (True, RECALL_RECALLED)


def test_recall_reason_must_be_1_to_280_bytes(ledger, farm, farm_batch):
    with reverts_with("ProvenanceInvalidReason", "0"):
        ledger.recallBatch(farm_batch, "", digest("notice"), {"from": farm})
    with reverts_with("ProvenanceInvalidReason", "281"):
        ledger.recallBatch(farm_batch, "x" * 281, digest("notice"), {"from": farm})
    # Bytes, not characters: 141 two-byte characters are 282 bytes.
    with reverts_with("ProvenanceInvalidReason", "282"):
        ledger.recallBatch(farm_batch, "é" * 141, digest("notice"), {"from": farm})
    assert recall_state(ledger, farm_batch) == (False, RECALL_NONE)
    tx = ledger.recallBatch(farm_batch, "x" * 280, NO_DATA, {"from": farm})
    assert tx.events["BatchRecalled"]["reason"] == "x" * 280


def test_deactivated_supplier_can_still_recall(ledger, admin, farm, coop, farm_batch):
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    ledger.acceptCustody(farm_batch, {"from": coop})
    ledger.deactivateActor(farm, {"from": admin})
    tx = ledger.recallBatch(farm_batch, REASON, NO_DATA, {"from": farm})
    assert tx.events["BatchRecalled"]["by"] == farm
    assert recall_state(ledger, farm_batch) == (True, RECALL_RECALLED)
    # The coop cannot use what was recalled.
    with reverts_with("ProvenanceBatchRecalled", farm_batch):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("X", 1)], NO_DATA, {"from": coop})


def test_upheld_recall_is_final(ledger, admin, farm, farm_batch):
    ledger.recallBatch(farm_batch, REASON, NO_DATA, {"from": farm})
    tx = ledger.reviewRecall(farm_batch, True, "Lab results confirmed", {"from": admin})
    event = tx.events["RecallReviewed"]
    assert (event["batchId"], event["by"], event["upheld"], event["reason"]) == (
        farm_batch, admin, True, "Lab results confirmed"
    )  # fmt: skip
    assert recall_state(ledger, farm_batch) == (True, RECALL_UPHELD)
    with reverts_with("ProvenanceNoRecallToReview", farm_batch):
        ledger.reviewRecall(farm_batch, False, "Changed my mind", {"from": admin})
    with reverts_with("ProvenanceBatchRecalled", farm_batch):
        ledger.recallBatch(farm_batch, REASON, NO_DATA, {"from": farm})
    with reverts_with("ProvenanceBatchRecalled", farm_batch):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("X", 1)], NO_DATA, {"from": farm})
    assert recall_state(ledger, farm_batch) == (True, RECALL_UPHELD)


def test_withdrawn_recall_frees_the_batch_and_only_the_admin_recalls_it_again(ledger, admin, farm, farm_batch):
    ledger.recallBatch(farm_batch, REASON, NO_DATA, {"from": farm})
    tx = ledger.reviewRecall(farm_batch, False, "Sample was mislabelled", {"from": admin})
    event = tx.events["RecallReviewed"]
    assert (event["upheld"], event["reason"]) == (False, "Sample was mislabelled")
    assert recall_state(ledger, farm_batch) == (False, RECALL_WITHDRAWN)
    tx = ledger.transform(SPLIT, [(farm_batch, 100)], [batch_input("L-17-A", 100)], NO_DATA, {"from": farm})
    assert ledger.getBatch(farm_batch)[4] == 59_900
    with reverts_with("ProvenanceNoRecallToReview", farm_batch):
        ledger.reviewRecall(farm_batch, True, "Again", {"from": admin})
    # The supplier's recall was found groundless once: a new one goes through the admin.
    with reverts_with("ProvenanceNotRecaller", farm_batch, farm.address):
        ledger.recallBatch(farm_batch, "Second sample failed too", NO_DATA, {"from": farm})
    assert recall_state(ledger, farm_batch) == (False, RECALL_WITHDRAWN)
    tx = ledger.recallBatch(farm_batch, "Second sample failed too", NO_DATA, {"from": admin})
    assert (tx.events["BatchRecalled"]["by"], tx.events["BatchRecalled"]["reason"]) == (admin, "Second sample failed too")
    assert recall_state(ledger, farm_batch) == (True, RECALL_RECALLED)
    ledger.reviewRecall(farm_batch, True, "Confirmed", {"from": admin})
    assert recall_state(ledger, farm_batch) == (True, RECALL_UPHELD)


def _sold_and_recalled_then_withdrawn(ledger, admin, farm, coop, farm_batch) -> None:
    """The farm sells its batch to the coop, recalls it, and the admin withdraws the recall."""
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    ledger.acceptCustody(farm_batch, {"from": coop})
    ledger.recallBatch(farm_batch, "bogus recall #0", NO_DATA, {"from": farm})
    ledger.reviewRecall(farm_batch, False, "No grounds", {"from": admin})
    assert recall_state(ledger, farm_batch) == (False, RECALL_WITHDRAWN)


def test_expelled_supplier_cannot_refreeze_sold_goods_after_a_withdrawn_recall(ledger, admin, farm, coop, farm_batch):
    # The attack (review 09): a supplier the admin expelled recalls the goods it sold over
    # and over; each bogus recall freezes the buyer's goods until the admin reviews it.
    _sold_and_recalled_then_withdrawn(ledger, admin, farm, coop, farm_batch)
    ledger.deactivateActor(farm, {"from": admin})
    with reverts_with("ProvenanceNotRecaller", farm_batch, farm.address):
        ledger.recallBatch(farm_batch, "bogus recall #1", NO_DATA, {"from": farm})
    assert recall_state(ledger, farm_batch) == (False, RECALL_WITHDRAWN)
    # The buyer uses its goods.
    tx = ledger.transform(SPLIT, [(farm_batch, 10)], [batch_input("X-1", 10, gtin=COOP_GTIN)], NO_DATA, {"from": coop})
    assert tx.events["TransformationRecorded"]["custodian"] == coop
    assert ledger.getBatch(farm_batch)[4] == 59_990


def test_active_supplier_cannot_rerecall_after_a_withdrawn_recall(ledger, admin, farm, coop, farm_batch):
    _sold_and_recalled_then_withdrawn(ledger, admin, farm, coop, farm_batch)
    with reverts_with("ProvenanceNotRecaller", farm_batch, farm.address):
        ledger.recallBatch(farm_batch, "bogus recall #1", digest("notice"), {"from": farm})
    # Nor the custodian, which was never the supplier.
    with reverts_with("ProvenanceNotRecaller", farm_batch, coop.address):
        ledger.recallBatch(farm_batch, "bogus recall #1", digest("notice"), {"from": coop})
    tx = ledger.transform(SPLIT, [(farm_batch, 10)], [batch_input("X-1", 10, gtin=COOP_GTIN)], NO_DATA, {"from": coop})
    assert ledger.getBatch(farm_batch)[4] == 59_990
    # The admin still can, when there are new grounds; the batch is frozen again.
    tx = ledger.recallBatch(farm_batch, "New lab results", digest("notice 2"), {"from": admin})
    event = tx.events["BatchRecalled"]
    assert (event["batchId"], event["by"], event["reason"]) == (farm_batch, admin, "New lab results")
    assert recall_state(ledger, farm_batch) == (True, RECALL_RECALLED)
    with reverts_with("ProvenanceBatchRecalled", farm_batch):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("X-2", 1, gtin=COOP_GTIN)], NO_DATA, {"from": coop})
    # Withdrawn again by the admin, the supplier is still shut out.
    ledger.reviewRecall(farm_batch, False, "Lab error", {"from": admin})
    with reverts_with("ProvenanceNotRecaller", farm_batch, farm.address):
        ledger.recallBatch(farm_batch, "bogus recall #2", NO_DATA, {"from": farm})


def test_supplier_recalls_other_batches_after_one_recall_was_withdrawn(ledger, admin, farm, farm_batch):
    # The lock is per batch: the supplier's other lots stay its to recall.
    ledger.recallBatch(farm_batch, REASON, NO_DATA, {"from": farm})
    ledger.reviewRecall(farm_batch, False, "No grounds", {"from": admin})
    other = ledger.registerBatch(batch_input("L-18"), {"from": farm}).return_value
    tx = ledger.recallBatch(other, REASON, NO_DATA, {"from": farm})
    assert tx.events["BatchRecalled"]["batchId"] == other
    assert recall_state(ledger, other) == (True, RECALL_RECALLED)


def test_review_errors(ledger, admin, farm, farm_batch):
    with reverts_with("ProvenanceNoRecallToReview", farm_batch):
        ledger.reviewRecall(farm_batch, True, "Nothing to review", {"from": admin})
    with reverts_with("ProvenanceUnknownBatch", batch_id(COFFEE_GTIN, "NOPE")):
        ledger.reviewRecall(batch_id(COFFEE_GTIN, "NOPE"), True, "Unknown", {"from": admin})
    ledger.recallBatch(farm_batch, REASON, NO_DATA, {"from": farm})
    # Neither the supplier that recalled nor anybody else reviews its own recall.
    with reverts_with("AccessControlUnauthorizedAccount", farm.address):
        ledger.reviewRecall(farm_batch, False, "Nothing wrong", {"from": farm})
    with reverts_with("ProvenanceInvalidReason", "0"):
        ledger.reviewRecall(farm_batch, False, "", {"from": admin})
    with reverts_with("ProvenanceInvalidReason", "281"):
        ledger.reviewRecall(farm_batch, False, "x" * 281, {"from": admin})
    assert recall_state(ledger, farm_batch) == (True, RECALL_RECALLED)


def test_admin_recall_is_reviewed_like_any_other(ledger, admin, farm_batch):
    tx = ledger.recallBatch(farm_batch, "Operator recall", NO_DATA, {"from": admin})
    assert tx.events["BatchRecalled"]["by"] == admin
    ledger.reviewRecall(farm_batch, False, "Operator error", {"from": admin})
    assert recall_state(ledger, farm_batch) == (False, RECALL_WITHDRAWN)


def test_recall_during_a_pending_hand_over(ledger, farm, coop, farm_batch):
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    tx = ledger.recallBatch(farm_batch, REASON, NO_DATA, {"from": farm})
    assert tx.events["BatchRecalled"]["batchId"] == farm_batch
    # The recall leaves the hand-over as it was: the goods may still travel (back to a
    # place where they are destroyed), but nobody can consume them.
    assert tuple(ledger.getBatch(farm_batch))[1:3] == (farm, coop)
    assert recall_state(ledger, farm_batch) == (True, RECALL_RECALLED)
    with reverts_with("ProvenanceBatchRecalled", farm_batch):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("X", 1)], NO_DATA, {"from": farm})
    tx = ledger.acceptCustody(farm_batch, {"from": coop})
    assert tx.events["CustodyTransferAccepted"]["to"] == coop
    assert tuple(ledger.getBatch(farm_batch))[1:3] == (coop, ZERO_ADDRESS)
    assert recall_state(ledger, farm_batch) == (True, RECALL_RECALLED)
    with reverts_with("ProvenanceBatchRecalled", farm_batch):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("X", 1)], NO_DATA, {"from": coop})


def test_recall_during_a_pending_hand_over_can_be_declined(ledger, farm, coop, farm_batch):
    ledger.transferCustody(farm_batch, coop, {"from": farm})
    ledger.recallBatch(farm_batch, REASON, NO_DATA, {"from": farm})
    tx = ledger.cancelCustodyTransfer(farm_batch, {"from": coop})
    assert tx.events["CustodyTransferCancelled"]["to"] == coop
    assert tuple(ledger.getBatch(farm_batch))[1:3] == (farm, ZERO_ADDRESS)
