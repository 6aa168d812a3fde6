"""Property-based: over random sequences of registration, hand-over (propose, accept,
cancel), transformation, recall and review, every batch's supplier, custodian, pending
custodian, quantities and recall state match a model after every step, quantities are
conserved, and nobody but the custodian moves or consumes a batch."""

from __future__ import annotations

from brownie import ZERO_ADDRESS, chain
from contract_helpers import COFFEE_GTIN, COOP_GTIN, MAX_UINT64, ROASTED_GTIN, b32, batch_input, reverts_with
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

SPLIT, MERGE, PROCESSING = 0, 1, 2
NO_DATA = b"\0" * 32
RECALL_NONE, RECALL_RECALLED, RECALL_UPHELD, RECALL_WITHDRAWN = range(4)
# The GTIN each supplier of the fixture is licensed for (farm, coop, roaster).
OWN_GTINS = [COFFEE_GTIN, COOP_GTIN, ROASTED_GTIN]


# hypothesis' own state machine: brownie 1.22's `state_machine` fixture cannot subclass
# its mypyc-compiled base class. Each run starts from the module's deployment by reverting
# brownie's snapshot.
who = st.integers(0, 2)
pick = st.integers(0, 2**16)
# Small amounts and amounts near the top of uint64, where overflows would show.
quantity = st.one_of(st.integers(1, 5_000), st.integers(2**63, MAX_UINT64))
share = st.integers(1, 100)


class LedgerMachine(RuleBasedStateMachine):
    """Keeps a model of every batch and checks the contract against it after each step."""

    ledger = None
    admin = None
    suppliers: list = []

    def __init__(self) -> None:
        super().__init__()
        chain.revert()
        # id -> supplier, custodian, pending (None), registered, remaining, recall state
        self.batches: dict[str, dict] = {}
        self.consumed: dict[str, int] = {}  # id -> total consumed by transformations
        self.serial = 0

    def _new_lot(self) -> str:
        self.serial += 1
        return f"P-{self.serial}"

    def _gtin_of(self, account) -> int:
        return OWN_GTINS[self.suppliers.index(account)]

    def _choose(self, pick: int, held_by=None, usable: bool = False, pending: bool | None = None) -> str | None:
        ids = [
            i
            for i, b in self.batches.items()
            if (held_by is None or b["custodian"] == held_by)
            and (pending is None or (b["pending"] is not None) == pending)
            and (not usable or self._usable(b))
        ]
        return ids[pick % len(ids)] if ids else None

    @staticmethod
    def _usable(batch: dict) -> bool:
        """Free to consume: something left, not recalled, no hand-over pending."""
        return batch["remaining"] > 0 and batch["recall"] not in (RECALL_RECALLED, RECALL_UPHELD) and batch["pending"] is None

    def _add(self, batch_id: str, supplier, amount: int) -> None:
        self.batches[batch_id] = {
            "supplier": supplier,
            "custodian": supplier,
            "pending": None,
            "registered": amount,
            "remaining": amount,
            "recall": RECALL_NONE,
        }
        self.consumed[batch_id] = 0

    # -------------------------------------------------------------- rules

    @rule(who=who, quantity=quantity)
    def register(self, who: int, quantity: int) -> None:
        supplier = self.suppliers[who]
        lot = batch_input(self._new_lot(), quantity, gtin=self._gtin_of(supplier))
        batch_id = str(self.ledger.registerBatch(lot, {"from": supplier}).return_value)
        self._add(batch_id, supplier, quantity)

    @rule(who=who, other=who)
    def squatting_reverts(self, who: int, other: int) -> None:
        if who == other:
            return
        squatter = self.suppliers[who]
        gtin = OWN_GTINS[other]
        with reverts_with("ProvenanceNotLicensed", str(gtin), squatter.address):
            self.ledger.registerBatch(batch_input("SQUAT", 1, gtin=gtin), {"from": squatter})

    @rule(pick=pick, other=who)
    def propose(self, pick: int, other: int) -> None:
        batch_id = self._choose(pick, pending=False)
        if batch_id is None:
            return
        batch = self.batches[batch_id]
        recipient = self.suppliers[other]
        if recipient == batch["custodian"] or batch["remaining"] == 0:
            return
        tx = self.ledger.transferCustody(batch_id, recipient, {"from": batch["custodian"]})
        assert tx.events["CustodyTransferProposed"]["to"] == recipient
        batch["pending"] = recipient

    @rule(pick=pick)
    def accept(self, pick: int) -> None:
        batch_id = self._choose(pick, pending=True)
        if batch_id is None:
            return
        batch = self.batches[batch_id]
        self.ledger.acceptCustody(batch_id, {"from": batch["pending"]})
        batch["custodian"], batch["pending"] = batch["pending"], None

    @rule(pick=pick, by_recipient=st.booleans())
    def cancel(self, pick: int, by_recipient: bool) -> None:
        batch_id = self._choose(pick, pending=True)
        if batch_id is None:
            return
        batch = self.batches[batch_id]
        caller = batch["pending"] if by_recipient else batch["custodian"]
        self.ledger.cancelCustodyTransfer(batch_id, {"from": caller})
        batch["pending"] = None

    @rule(who=who, pick=pick, pick2=pick, share=share)
    def transform(self, who: int, pick: int, pick2: int, share: int) -> None:
        custodian = self.suppliers[who]
        first = self._choose(pick, held_by=custodian, usable=True)
        second = self._choose(pick2, held_by=custodian, usable=True)
        if first is None:
            return
        inputs = [first] if second in (None, first) else [first, second]
        amounts = [max(1, self.batches[i]["remaining"] * share // 100) for i in inputs]
        kind = MERGE if len(inputs) == 2 else SPLIT
        output_quantity = min(sum(amounts), MAX_UINT64)
        output = batch_input(self._new_lot(), output_quantity, gtin=self._gtin_of(custodian))
        tx = self.ledger.transform(kind, list(zip(inputs, amounts, strict=True)), [output], NO_DATA, {"from": custodian})
        for batch_id, amount in zip(inputs, amounts, strict=True):
            self.batches[batch_id]["remaining"] -= amount
            self.consumed[batch_id] += amount
        self._add(str(tx.return_value[1][0]), custodian, output_quantity)

    @rule(who=who, pick=pick)
    def over_consume_reverts(self, who: int, pick: int) -> None:
        custodian = self.suppliers[who]
        batch_id = self._choose(pick, held_by=custodian, usable=True)
        if batch_id is None:
            return
        remaining = self.batches[batch_id]["remaining"]
        if remaining == MAX_UINT64:
            return  # nothing above it to ask for
        with reverts_with("ProvenanceInsufficientQuantity", f"{remaining + 1}, {remaining}"):
            self.ledger.transform(
                SPLIT,
                [(batch_id, remaining + 1)],
                [batch_input("NEVER", 1, gtin=self._gtin_of(custodian))],
                NO_DATA,
                {"from": custodian},
            )

    @rule(pick=pick, choice=st.integers(0, 1))
    def intruder_cannot_move_or_consume(self, pick: int, choice: int) -> None:
        batch_id = self._choose(pick)
        if batch_id is None:
            return
        batch = self.batches[batch_id]
        # An intruder is neither the custodian nor the organisation a hand-over targets:
        # with three suppliers there is always at least one.
        intruders = [s for s in self.suppliers if s not in (batch["custodian"], batch["pending"])]
        intruder = intruders[choice % len(intruders)]
        custodian = batch["custodian"].address
        target = self.suppliers[(self.suppliers.index(intruder) + 1) % 3]
        with reverts_with("ProvenanceNotCustodian", intruder.address, custodian):
            self.ledger.transferCustody(batch_id, target, {"from": intruder})
        with reverts_with("ProvenanceNotCustodian", intruder.address, custodian):
            self.ledger.transform(
                SPLIT,
                [(batch_id, 1)],
                [batch_input("NEVER", 1, gtin=self._gtin_of(intruder))],
                NO_DATA,
                {"from": intruder},
            )
        with reverts_with("ProvenanceNotCustodian", intruder.address, custodian):
            self.ledger.recordStep(batch_id, b32("shipping"), "nowhere", NO_DATA, {"from": intruder})
        if batch["pending"] is None:
            with reverts_with("ProvenanceNoTransferPending"):
                self.ledger.acceptCustody(batch_id, {"from": intruder})
        else:
            with reverts_with("ProvenanceNotPendingCustodian", intruder.address, batch["pending"].address):
                self.ledger.acceptCustody(batch_id, {"from": intruder})
            with reverts_with("ProvenanceNotTransferParty", intruder.address):
                self.ledger.cancelCustodyTransfer(batch_id, {"from": intruder})

    @rule(pick=pick)
    def recall(self, pick: int) -> None:
        batch_id = self._choose(pick)
        if batch_id is None:
            return
        batch = self.batches[batch_id]
        if batch["recall"] in (RECALL_RECALLED, RECALL_UPHELD):
            with reverts_with("ProvenanceBatchRecalled"):
                self.ledger.recallBatch(batch_id, "again", NO_DATA, {"from": batch["supplier"]})
            return
        self.ledger.recallBatch(batch_id, "Found mould", NO_DATA, {"from": batch["supplier"]})
        batch["recall"] = RECALL_RECALLED

    @rule(pick=pick, upheld=st.booleans())
    def review(self, pick: int, upheld: bool) -> None:
        batch_id = self._choose(pick)
        if batch_id is None:
            return
        batch = self.batches[batch_id]
        if batch["recall"] != RECALL_RECALLED:
            with reverts_with("ProvenanceNoRecallToReview"):
                self.ledger.reviewRecall(batch_id, upheld, "Reviewed", {"from": self.admin})
            return
        self.ledger.reviewRecall(batch_id, upheld, "Reviewed", {"from": self.admin})
        batch["recall"] = RECALL_UPHELD if upheld else RECALL_WITHDRAWN

    # -------------------------------------------------------------- invariant

    @invariant()
    def chain_matches_model(self) -> None:
        for batch_id, model in self.batches.items():
            supplier, custodian, pending, registered, remaining, status, recalled, recall, _ = self.ledger.getBatch(batch_id)
            assert supplier == model["supplier"]
            assert custodian == model["custodian"]
            assert pending == (model["pending"] or ZERO_ADDRESS)
            assert registered == model["registered"]
            assert remaining == model["remaining"]
            assert registered - remaining == self.consumed[batch_id] <= registered
            assert status == (2 if remaining == 0 else 1)
            assert recall == model["recall"]
            assert recalled == (model["recall"] in (RECALL_RECALLED, RECALL_UPHELD))


def test_model_holds_and_only_custodian_moves(ledger, admin, farm, coop, roaster):
    LedgerMachine.ledger = ledger
    LedgerMachine.admin = admin
    LedgerMachine.suppliers = [farm, coop, roaster]
    chain.snapshot()
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
