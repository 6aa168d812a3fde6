"""Property-based: over random sequences of register, hand-over, transform and recall,
quantities are conserved and only the custodian ever moves or consumes a batch."""

from __future__ import annotations

import brownie
from brownie import chain
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from contract_helpers import batch_input

SPLIT, MERGE, PROCESSING = 0, 1, 2
NO_DATA = b"\0" * 32


# hypothesis' own state machine: brownie 1.22's `state_machine` fixture cannot subclass
# its mypyc-compiled base class. Each run starts from the module's deployment by reverting
# brownie's snapshot.
who = st.integers(0, 2)
pick = st.integers(0, 2**16)
quantity = st.integers(1, 5_000)
share = st.integers(1, 100)


class LedgerMachine(RuleBasedStateMachine):
    """Keeps a model of every batch and checks the contract against it after each step."""

    ledger = None
    suppliers: list = []
    outsider = None

    def __init__(self):
        super().__init__()
        chain.revert()
        self.batches = {}  # id -> dict(registered, remaining, custodian, recalled)
        self.consumed = {}  # id -> total consumed by transformations
        self.serial = 0

    def _new_lot(self):
        self.serial += 1
        return f"P-{self.serial}"

    def _choose(self, pick, held_by=None, usable=False):
        ids = [
            i
            for i, b in self.batches.items()
            if (held_by is None or b["custodian"] == held_by)
            and (not usable or (b["remaining"] > 0 and not b["recalled"]))
        ]
        return ids[pick % len(ids)] if ids else None

    @rule(who=who, quantity=quantity)
    def register(self, who, quantity):
        supplier = self.suppliers[who]
        batch_id = str(self.ledger.registerBatch(batch_input(self._new_lot(), quantity), {"from": supplier}).return_value)
        self.batches[batch_id] = {"registered": quantity, "remaining": quantity, "custodian": supplier, "recalled": False}
        self.consumed[batch_id] = 0

    @rule(pick=pick, other=who)
    def hand_over(self, pick, other):
        batch_id = self._choose(pick)
        if batch_id is None:
            return
        batch = self.batches[batch_id]
        recipient = self.suppliers[other]
        if recipient == batch["custodian"] or batch["remaining"] == 0:
            return
        self.ledger.transferCustody(batch_id, recipient, {"from": batch["custodian"]})
        self.ledger.acceptCustody(batch_id, {"from": recipient})
        batch["custodian"] = recipient

    @rule(who=who, pick=pick, pick2=pick, share=share)
    def transform(self, who, pick, pick2, share):
        custodian = self.suppliers[who]
        first = self._choose(pick, held_by=custodian, usable=True)
        second = self._choose(pick2, held_by=custodian, usable=True)
        if first is None:
            return
        inputs = [first] if second in (None, first) else [first, second]
        amounts = [max(1, self.batches[i]["remaining"] * share // 100) for i in inputs]
        kind = MERGE if len(inputs) == 2 else SPLIT
        total = sum(amounts)
        tx = self.ledger.transform(
            kind, list(zip(inputs, amounts)), [batch_input(self._new_lot(), total)], NO_DATA, {"from": custodian}
        )
        for batch_id, amount in zip(inputs, amounts):
            self.batches[batch_id]["remaining"] -= amount
            self.consumed[batch_id] += amount
        output = str(tx.return_value[1][0])
        self.batches[output] = {"registered": total, "remaining": total, "custodian": custodian, "recalled": False}
        self.consumed[output] = 0

    @rule(who=who, pick=pick)
    def over_consume_reverts(self, who, pick):
        custodian = self.suppliers[who]
        batch_id = self._choose(pick, held_by=custodian, usable=True)
        if batch_id is None:
            return
        too_much = self.batches[batch_id]["remaining"] + 1
        with brownie.reverts():
            self.ledger.transform(SPLIT, [(batch_id, too_much)], [batch_input("NEVER")], NO_DATA, {"from": custodian})

    @rule(pick=pick, other=who)
    def non_custodian_cannot_move_or_consume(self, pick, other):
        batch_id = self._choose(pick)
        if batch_id is None:
            return
        intruder = self.suppliers[other]
        if intruder == self.batches[batch_id]["custodian"]:
            intruder = self.outsider
        with brownie.reverts():
            self.ledger.transferCustody(batch_id, intruder, {"from": intruder})
        with brownie.reverts():
            self.ledger.transform(SPLIT, [(batch_id, 1)], [batch_input("NEVER")], NO_DATA, {"from": intruder})

    @rule(pick=pick)
    def recall(self, pick):
        batch_id = self._choose(pick)
        if batch_id is None or self.batches[batch_id]["recalled"]:
            return
        supplier = self.ledger.getBatch(batch_id)[0]
        self.ledger.recallBatch(batch_id, NO_DATA, {"from": supplier})
        self.batches[batch_id]["recalled"] = True

    @invariant()
    def quantities_are_conserved(self):
        for batch_id, model in self.batches.items():
            supplier, custodian, pending, registered, remaining, status, recalled = self.ledger.getBatch(batch_id)
            assert registered == model["registered"]
            assert remaining == model["remaining"]
            assert registered - remaining == self.consumed[batch_id] <= registered
            assert status == (2 if remaining == 0 else 1)
            assert custodian == model["custodian"]
            assert recalled == model["recalled"]


def test_quantities_conserved_and_only_custodian_moves(ledger, farm, coop, roaster, outsider):
    LedgerMachine.ledger = ledger
    LedgerMachine.suppliers = [farm, coop, roaster]
    LedgerMachine.outsider = outsider
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
