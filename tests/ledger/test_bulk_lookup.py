"""The bulk path's look-up of what the ledger holds, and a re-run's row-by-row verdicts, on
a real chain.

- `RegistrationLookup.registered_at` (BatchLookup.sol run as creation code inside an
  eth_call) answers what the contract's `getBatch` answers, id for id, over several
  eth_calls; `find` returns the BatchRegistered logs of exactly the registered ids when
  they were registered in many blocks spread over days, reading only the blocks of their
  registration times (never the whole-history fallback).
- A re-run of `register_batches` reports the rows registered before as already registered
  (with the hash of the transaction that registered them), registers the rest, fails rows
  with the same lot but other content as conflicts, fails a lot another supplier holds
  with "already registered by" (sending nothing for it) and fails the later of two equal
  lots far apart in the input ("appears twice").
- Without `keep_results` the report keeps counts and failures only, and `on_settled` is
  told every settled row's metadata hash exactly once.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

import ledger.bulk as bulk
from ledger.bulk import LOOKUP_IDS, RegistrationLookup, prepare
from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.identifiers import batch_id, complete_gtin
from ledger.models import BatchCreate, LicenceScope
from ledger.signers import NodeAccountSigner
from ledger.writer import LedgerWriter

PREFIX = "950600013"  # a GS1 Company Prefix (9 digits) licensed to the farm
SHARED_GTIN = complete_gtin("0" + PREFIX + "435")  # sub-licensed by the farm to the mill too
FARM_GTIN = complete_gtin("0" + PREFIX + "436")


@dataclass
class World:
    connection: LedgerConnection
    farm: LedgerWriter
    mill: LedgerWriter

    def advance(self, seconds: int) -> None:
        w3 = self.connection.w3
        w3.provider.make_request("evm_increaseTime", [seconds])
        w3.provider.make_request("evm_mine", [])

    def logs_of(self, ids: list[bytes]) -> list:
        ledger = self.connection.w3.eth.contract(address=self.connection.address, abi=self.connection.contract.abi)
        found = []
        for start in range(0, len(ids), 200):
            found += ledger.events.BatchRegistered.get_logs(from_block=0, argument_filters={"batchId": ids[start : start + 200]})
        return found


@pytest.fixture(scope="module")
def world(local_ledger) -> World:
    connection = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    accounts = connection.w3.eth.accounts
    admin = LedgerWriter(connection, NodeAccountSigner(accounts[0]))
    farm = LedgerWriter(connection, NodeAccountSigner(accounts[1]))
    mill = LedgerWriter(connection, NodeAccountSigner(accounts[2]))
    admin.register_actor(accounts[1], "Finca Lookup", "CO")
    admin.register_actor(accounts[2], "Molino Rerun", "CO")
    admin.grant_supplier(accounts[1])
    admin.grant_supplier(accounts[2])
    # The farm holds the company prefix; it sub-licenses one of its GTINs to the mill, so
    # both may register lots of that GTIN (and a lot taken by one is refused to the other).
    admin.grant_licence(accounts[1], LicenceScope.company_prefix(PREFIX))
    farm.sub_license(accounts[2], LicenceScope.single_gtin(SHARED_GTIN))
    return World(connection, farm, mill)


def lot(prefix: str, i: int, quantity: int | None = None, gtin: str = FARM_GTIN) -> BatchCreate:
    return BatchCreate(
        gtin=gtin,
        lot=f"{prefix}-{i:05d}",
        quantity=quantity if quantity is not None else 1 + i % 700,
        unit="KGM",
        product="Green coffee",
        origin="Huila",
    )


def test_registered_at_answers_what_get_batch_answers_over_several_eth_calls(world, monkeypatch):
    rng = random.Random(4101)
    farm = world.farm
    registered = [lot("AT", i) for i in range(0, 2 * LOOKUP_IDS + 60, 2)]  # ~560 lots, in four runs
    block_of: dict[bytes, int] = {}
    for start in range(0, len(registered), 140):
        report = farm.register_batches(registered[start : start + 140], chunk_size=35)
        assert not report.failed and report.registered_count == len(registered[start : start + 140])
        block_of.update({bytes.fromhex(r.batch_id[2:]): r.block_number for _, r in report.registered})
        world.advance(rng.randint(600, 86_400))
    absent = [lot("AT", i) for i in range(1, 2 * LOOKUP_IDS + 60, 2)]
    ids = [b.batch_id for b in registered + absent]
    rng.shuffle(ids)
    assert len(ids) > 2 * LOOKUP_IDS  # three eth_calls

    lookup = RegistrationLookup(farm)
    times = lookup.registered_at(ids)
    # Every id: 0 when not registered, else the time of the block that registered it ...
    w3 = world.connection.w3
    block_time = {n: w3.eth.get_block(n)["timestamp"] for n in set(block_of.values())}
    expected = [block_time[block_of[batch]] if batch in block_of else 0 for batch in ids]
    assert times == expected
    assert len(set(block_time.values())) >= 4, "the lots were not registered at different times"
    # ... which is what getBatch says (asked of a sample: one call per id).
    getter = world.connection.contract.functions.getBatch
    for i in rng.sample(range(len(ids)), 120):
        state = getter(ids[i]).call()
        assert times[i] == (state[8] if state[5] else 0)

    # The same answer whatever the number of ids per eth_call (a part boundary anywhere).
    monkeypatch.setattr(bulk, "LOOKUP_IDS", 97)
    assert lookup.registered_at(ids) == expected
    assert lookup.registered_at([]) == []


def test_find_returns_exactly_the_registered_logs_from_blocks_spread_over_time(world, monkeypatch):
    rng = random.Random(4102)
    farm = world.farm
    registered: dict[bytes, str] = {}  # batch id -> the transaction that registered it
    for run in range(6):
        rows = [lot(f"FIND{run}", i) for i in range(rng.randint(20, 90))]
        report = farm.register_batches(rows, chunk_size=rng.randint(3, 12))
        assert not report.failed
        registered.update({bytes.fromhex(r.batch_id[2:]): r.tx_hash for _, r in report.registered})
        world.advance(rng.randint(1, 3 * 86_400))
    single = farm.register_batch(lot("FINDONE", 1))  # in the latest block of all
    registered[bytes.fromhex(single.batch_id[2:])] = single.tx_hash
    assert len({tx for tx in registered.values()}) > 30, "the lots were not registered in many blocks"

    absent = [batch_id(FARM_GTIN, f"FINDNOT-{i}") for i in range(300)]
    ids = list(registered) + absent
    rng.shuffle(ids)

    # The lots are found in the blocks of their registration times alone: the look-up
    # must never need to read the whole history (its fallback for a node's odd clock).
    def whole_history(_ids):
        raise AssertionError(f"find() missed {len(_ids)} logs in the blocks of their registration times")

    monkeypatch.setattr(farm, "_registrations", whole_history)
    found, unreadable = RegistrationLookup(farm).find(ids)
    assert set(found) == set(registered) and unreadable == set()
    for batch, log in found.items():
        assert bytes(log["args"]["batchId"]) == batch
        assert "0x" + bytes(log["transactionHash"]).hex() == registered[batch]

    # Only unregistered ids, or only the newest one: nothing, and exactly that one.
    assert RegistrationLookup(farm).find(absent) == ({}, set())
    newest = bytes.fromhex(single.batch_id[2:])
    assert list(RegistrationLookup(farm).find([absent[0], newest])[0]) == [newest]


def test_rerun_skips_registered_rows_fails_conflicts_foreign_lots_and_far_duplicates(world, monkeypatch):
    monkeypatch.setattr(bulk, "WINDOW_ROWS", 16)  # duplicates many windows apart
    w3 = world.connection.w3
    farm, mill = world.farm, world.mill
    rows = [lot("RERUN", i) for i in range(150)]
    first_part = rows[10:60] + rows[100:120]
    first = farm.register_batches(first_part, chunk_size=7)
    assert not first.failed and first.registered_count == len(first_part)
    original_tx = {r.lot: r.tx_hash for _, r in first.registered}

    # A lot of the shared GTIN the mill registered first, and the farm's input naming it.
    foreign = lot("FOREIGN", 1, gtin=SHARED_GTIN)
    taken = mill.register_batch(foreign)
    conflicts = {
        20: lot("RERUN", 20, quantity=9_999),  # registered above with another quantity
        110: BatchCreate(**{**rows[110].model_dump(), "origin": "Nariño"}),  # other metadata
    }
    rerun_rows = [conflicts.get(i, row) for i, row in enumerate(rows)]
    foreign_row = len(rerun_rows)
    rerun_rows.append(foreign)
    rerun_rows.append(lot("SHARED", 2, gtin=SHARED_GTIN))  # a free lot of the shared GTIN
    twice_of_fresh = len(rerun_rows)
    rerun_rows.append(rows[3])  # a fresh lot, 150 rows after its first appearance
    twice_of_registered = len(rerun_rows)
    rerun_rows.append(rows[40])  # a lot registered before, again
    nonce_before = w3.eth.get_transaction_count(farm.signer.address)

    report = farm.register_batches(rerun_rows, chunk_size=9)

    failed = dict(report.failed)
    assert set(failed) == {20, 110, foreign_row, twice_of_fresh, twice_of_registered}
    assert "with other content (quantity 21 KGM instead of 9999 KGM; different metadata" in failed[20]
    assert "with other content (different metadata" in failed[110]
    assert failed[foreign_row] == (
        f"lot FOREIGN-00001 of GTIN {SHARED_GTIN} is already registered by "
        f"{world.connection.names.actor(mill.signer.address)}; a lot is registered once - use a new lot number"
    )
    assert failed[twice_of_fresh] == f"lot RERUN-00003 of GTIN {FARM_GTIN} appears twice (row 4)"
    assert failed[twice_of_registered] == f"lot RERUN-00040 of GTIN {FARM_GTIN} appears twice (row 41)"

    before = {i for i, row in enumerate(rows) if row.lot in original_tx} - {20, 110}
    already = dict(report.already_registered)
    assert set(already) == before
    for i, result in already.items():
        assert result.status == "already_registered" and result.tx_hash == original_tx[rows[i].lot]
    registered = dict(report.registered)
    assert set(registered) == set(range(len(rerun_rows))) - before - set(failed)
    assert report.registered_count == len(registered) and report.already_registered_count == len(already)

    # Nothing was sent for the foreign lot (nor for any refused row): every transaction of
    # the re-run succeeded, and the mill's registration is the lot's only one.
    assert w3.eth.get_transaction_count(farm.signer.address) == nonce_before + report.transactions
    for tx in {r.tx_hash for r in registered.values()}:
        assert w3.eth.get_transaction_receipt(tx)["status"] == 1
    (only,) = world.logs_of([foreign.batch_id])
    assert only["args"]["supplier"] == mill.signer.address and "0x" + bytes(only["transactionHash"]).hex() == taken.tx_hash
    # Each lot once on chain, with the content of its first registration.
    logs = world.logs_of([row.batch_id for row in rows])
    assert Counter(bytes(log["args"]["batchId"]) for log in logs) == Counter(row.batch_id for row in rows)
    by_id = {bytes(log["args"]["batchId"]): log for log in logs}
    assert by_id[rows[20].batch_id]["args"]["quantity"] == rows[20].quantity


def test_without_kept_results_counts_and_failures_only_and_each_settled_hash_once(world):
    farm = world.farm
    rows = [lot("KEEP", i) for i in range(300)]
    before = farm.register_batches(rows[:120], chunk_size=25)
    assert before.registered_count == 120
    rerun_rows = rows + [lot("KEEP", 5, quantity=1)]  # a conflict (and a duplicate lot)
    settled: list[bytes] = []

    report = farm.register_batches(rerun_rows, chunk_size=25, keep_results=False, on_settled=settled.extend)

    assert report.registered == [] and report.already_registered == []
    assert (report.registered_count, report.already_registered_count) == (180, 120)
    assert report.failed == [(300, f"lot KEEP-00005 of GTIN {FARM_GTIN} appears twice (row 6)")]
    assert report.transactions == 180 // 25 + 1
    assert Counter(settled) == Counter(prepare(i, row).metadata_hash for i, row in enumerate(rows))
