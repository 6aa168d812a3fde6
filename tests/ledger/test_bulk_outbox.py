"""A long bulk import does not leave the outbox holding every transaction it sent: it is
trimmed as transactions are settled (each record holds a ~300 KB transaction, and the next
command reads the file whole), while appends from the signing thread are never lost."""

from __future__ import annotations

from ledger.identifiers import complete_gtin

GTIN = complete_gtin("0950600018001")


def test_the_outbox_is_trimmed_while_a_bulk_import_runs(local_ledger, monkeypatch):
    from eth_account import Account

    import ledger.bulk as bulk
    from ledger.config import Settings
    from ledger.connection import LedgerConnection
    from ledger.models import BatchCreate, LicenceScope
    from ledger.signers import LocalKeySigner, NodeAccountSigner
    from ledger.writer import LedgerWriter

    monkeypatch.setattr(bulk, "OUTBOX_TRIM", 3)
    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    admin = LedgerWriter(conn, NodeAccountSigner(conn.w3.eth.accounts[0]))
    key = Account.create()
    admin.register_actor(key.address, "Outbox Farm", "CO")
    admin.grant_supplier(key.address)
    admin.grant_licence(key.address, LicenceScope.single_gtin(GTIN))
    farm = LedgerWriter(conn, LocalKeySigner(key))
    assert farm.sender is not None and farm.sender.outbox is not None
    rows = (BatchCreate(gtin=GTIN, lot=f"OB-{i:05d}", quantity=1 + i, unit="KGM", product="Coffee") for i in range(600))
    report = farm.register_batches(rows, chunk_size=20)
    assert report.registered_count == 600 and report.transactions == 30
    nonces = [record["nonce"] for record in farm.sender.outbox.read()]
    assert len(nonces) < 30, f"the outbox kept {len(nonces)} of 30 transactions"
    # What is left is the tail, in order, and every trimmed transaction was mined.
    mined = conn.w3.eth.get_transaction_count(key.address, "latest")
    assert mined == 30 and nonces == sorted(nonces) and all(n >= 30 - len(set(nonces)) - 3 for n in nonces)
