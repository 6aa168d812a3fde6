"""How the bulk path learns that its transactions registered their rows, on the local chain.

A transaction there is settled from one event, its last row's BatchRegistered, rather than
from its ~300 KB receipt: a transaction registers all its rows or none, so that event,
emitted by that very transaction, shows them all. The event must come from that
transaction: a lot registered by another transaction between the look-up and the send
(another import of the same organisation, on another machine) makes this one revert, and
its rows must then be reported failed, with the contract's reason, not registered.
"""

from __future__ import annotations

import pytest
from eth_account import Account

import ledger.bulk as bulk
from ledger.bulk import RegistrationLookup, prepare
from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.identifiers import complete_gtin
from ledger.models import BatchCreate, LicenceScope
from ledger.signers import LocalKeySigner, NodeAccountSigner
from ledger.writer import LedgerWriter

GTINS = {"local key": complete_gtin("0950600019001"), "node account": complete_gtin("0950600019002")}


def lots(gtin: str, prefix: str, count: int) -> list[BatchCreate]:
    return [BatchCreate(gtin=gtin, lot=f"{prefix}-{i:03d}", quantity=10 + i, unit="KGM", product="Cacao") for i in range(count)]


@pytest.mark.parametrize("account", ["local key", "node account"])
def test_a_transaction_is_settled_registered_only_from_its_own_event(local_ledger, monkeypatch, account):
    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    w3 = conn.w3
    admin = LedgerWriter(conn, NodeAccountSigner(w3.eth.accounts[0]))
    if account == "local key":
        key = Account.create()
        address, farm = key.address, LedgerWriter(conn, LocalKeySigner(key))
    else:
        address = w3.eth.accounts[3]
        farm = LedgerWriter(conn, NodeAccountSigner(address))
    gtin = GTINS[account]
    admin.register_actor(address, f"Cacao Farm ({account})", "CO")
    admin.grant_supplier(address)
    admin.grant_licence(address, LicenceScope.single_gtin(gtin))

    batches = lots(gtin, "RACE", 15)
    # Another machine of the same farm registers lot 9, the last of the second chunk, after
    # this import's look-up found it free (the look-up is made to answer "free" here).
    farm.register_batch(batches[9])
    taken = conn.logs("BatchRegistered", batchId=prepare(9, batches[9]).batch_id)[0]
    monkeypatch.setattr(RegistrationLookup, "find", lambda self, ids: ({}, set()))
    receipts_read: list[bytes] = []
    mined_receipts = bulk.mined_receipts

    def reading(w3, tx_hashes):  # noqa: ANN001, ANN202 - mined_receipts' own signature
        receipts_read.extend(tx_hashes)
        return mined_receipts(w3, tx_hashes)

    monkeypatch.setattr(bulk, "mined_receipts", reading)

    report = farm.register_batches(batches, chunk_size=5)

    assert report.transactions == 3
    failed = dict(report.failed)
    assert sorted(failed) == list(range(5, 10)), "the chunk whose last lot was taken reverted: its five rows failed"
    assert all("already registered" in reason.lower() for reason in failed.values()), failed
    # Only the reverted transaction's receipt was read (the others' events showed them).
    assert len(receipts_read) == 1 and "0x" + receipts_read[0].hex() not in {r.tx_hash for _, r in report.registered}
    registered = dict(report.registered)
    assert sorted(registered) == [*range(5), *range(10, 15)]
    # Each registered row's transaction and block are those of its own event on chain.
    for index, result in registered.items():
        event = conn.logs("BatchRegistered", batchId=prepare(index, batches[index]).batch_id)
        assert len(event) == 1
        assert result.tx_hash == "0x" + bytes(event[0]["transactionHash"]).hex()
        assert result.block_number == event[0]["blockNumber"]
        assert result.tx_hash != "0x" + bytes(taken["transactionHash"]).hex()


def test_the_transactions_a_node_took_before_it_refused_one_of_a_group_are_settled(local_ledger, monkeypatch):
    """A group of sends is refused part way: the run fails, but the group's first
    transaction was taken and mined, and its rows are settled and reported (on_settled:
    the CLI marks their documents anchored) before the error reaches the caller.

    The local chain refuses a group part way only when another program took a nonce in
    the same instant, which a test cannot time; the refusal is made here the way the
    sender makes it (the first transaction really sent, the refused nonce and the later
    ones dropped from the outbox)."""
    from ledger.fees import SendRefused, TransactionSender

    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    admin = LedgerWriter(conn, NodeAccountSigner(conn.w3.eth.accounts[0]))
    key = Account.create()
    gtin = complete_gtin("0950600019003")
    admin.register_actor(key.address, "Cacao Farm (refused group)", "CO")
    admin.grant_supplier(key.address)
    admin.grant_licence(key.address, LicenceScope.single_gtin(gtin))
    farm = LedgerWriter(conn, LocalKeySigner(key))
    monkeypatch.setattr(bulk, "GROUP_WAIT", 5.0)  # the four transactions go as one group
    send_many = TransactionSender.send_prepared_many
    groups: list[int] = []

    def refused_at_the_second(sender: TransactionSender, pendings: list) -> None:
        groups.append(len(pendings))
        send_many(sender, pendings[:1])
        assert sender.outbox is not None
        sender.outbox.drop_from(pendings[1].nonce)
        sender.forget_nonce()
        raise SendRefused(f"nonce {pendings[1].nonce} refused: nonce too low", pendings[1].nonce)

    monkeypatch.setattr(TransactionSender, "send_prepared_many", refused_at_the_second)
    settled: list[bytes] = []
    batches = lots(gtin, "REFUSED", 80)
    with pytest.raises(SendRefused):
        farm.register_batches(batches, chunk_size=20, on_settled=settled.extend)

    assert groups == [4]
    first = [prepare(i, batches[i]) for i in range(20)]
    assert len(conn.logs("BatchRegistered", batchId=[row.batch_id for row in first])) == 20, "the first was taken"
    assert sorted(settled) == sorted(row.metadata_hash for row in first), "its rows were settled before the run failed"
    assert not conn.logs("BatchRegistered", batchId=[prepare(i, batches[i]).batch_id for i in range(20, 80)])
    monkeypatch.undo()
    report = farm.register_batches(batches, chunk_size=20)
    assert (report.already_registered_count, report.registered_count, report.failed) == (20, 60, [])
