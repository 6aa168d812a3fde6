"""A long bulk import does not leave the outbox holding every transaction it sent: it is
trimmed as transactions are settled (each record holds a ~300 KB transaction, and the next
command reads the file whole), while appends from the signing thread are never lost."""

from __future__ import annotations

from ledger.identifiers import complete_gtin

GTIN = complete_gtin("0950600018001")


def local_key_farm(local_ledger, name: str, gtin: str):  # noqa: ANN001, ANN201 - fixture object; (connection, writer, key)
    """A supplier signing with a key of its own (its transactions go through the outbox),
    licensed for `gtin`."""
    from eth_account import Account

    from ledger.config import Settings
    from ledger.connection import LedgerConnection
    from ledger.models import LicenceScope
    from ledger.signers import LocalKeySigner, NodeAccountSigner
    from ledger.writer import LedgerWriter

    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    admin = LedgerWriter(conn, NodeAccountSigner(conn.w3.eth.accounts[0]))
    key = Account.create()
    admin.register_actor(key.address, name, "CO")
    admin.grant_supplier(key.address)
    admin.grant_licence(key.address, LicenceScope.single_gtin(gtin))
    return conn, LedgerWriter(conn, LocalKeySigner(key)), key


def test_the_outbox_is_trimmed_while_a_bulk_import_runs(local_ledger, monkeypatch):
    import ledger.bulk as bulk
    from ledger.models import BatchCreate

    monkeypatch.setattr(bulk, "OUTBOX_TRIM", 3)
    conn, farm, key = local_key_farm(local_ledger, "Outbox Farm", GTIN)
    assert farm.sender is not None and farm.sender.outbox is not None
    rows = (BatchCreate(gtin=GTIN, lot=f"OB-{i:05d}", quantity=1 + i, unit="KGM", product="Coffee") for i in range(600))
    report = farm.register_batches(rows, chunk_size=20)
    assert report.registered_count == 600 and report.transactions == 30
    nonces = [record["nonce"] for record in farm.sender.outbox.read()]
    assert len(nonces) < 30, f"the outbox kept {len(nonces)} of 30 transactions"
    # What is left is the tail, in order, and every trimmed transaction was mined.
    mined = conn.w3.eth.get_transaction_count(key.address, "latest")
    assert mined == 30 and nonces == sorted(nonces) and all(n >= 30 - len(set(nonces)) - 3 for n in nonces)


def test_a_trim_copies_whole_records_as_they_are_and_drops_a_torn_one(tmp_path):
    """The trim reads only each line's nonce (decoding 300 KB records cost ~60 ms a trim):
    it must still keep every whole record byte for byte, in any key order an earlier
    version wrote, and drop the torn line a crash leaves."""
    import json

    from ledger.fees import Fees, Outbox, Pending

    outbox = Outbox(tmp_path, 31337, "0x000000000000000000000000000000000000dEaD")
    tx = {"to": "0x000000000000000000000000000000000000dEaD", "data": "0x" + "ab" * 5_000, "value": 0, "gas": 21_000}
    for nonce in range(6):
        outbox.record(Pending(nonce, dict(tx), Fees(7, 1), [bytes([nonce]) * 100]))
    lines = outbox.path.read_bytes().split(b"\n")[:-1]
    # A record written with its keys in another order (decoded in full), and a torn last line.
    reordered = json.dumps({"tip": 1, "nonce": 6, "raw": "0x06", "tx": tx, "max_fee": 7}).encode()
    outbox.path.write_bytes(b"\n".join([*lines, reordered, lines[5][: len(lines[5]) // 2]]) + b"\n")

    outbox.keep_from(2)
    kept = outbox.path.read_bytes().split(b"\n")[:-1]
    assert kept == [*lines[2:], reordered], "whole records kept byte for byte, the torn one dropped"
    assert [r["nonce"] for r in outbox.read()] == [2, 3, 4, 5, 6]
    outbox.drop_from(5)
    assert [r["nonce"] for r in outbox.read()] == [2, 3, 4]
    outbox.drop(3)
    assert [r["nonce"] for r in outbox.read()] == [2, 4]
    assert outbox.read()[0]["raw"] == "0x" + bytes([2]).hex() * 100 and outbox.read()[0]["tx"] == tx


def test_the_bulk_path_reads_fees_again_once_a_reading_is_old_not_for_each_transaction(local_ledger, monkeypatch):
    """A fee reading is a round trip: read for each of an import's transactions it held up
    the signing. Zero fees (the local chain's) are read again once FEE_READING_AGE old;
    other fees are read for each transaction (tests/ledger/test_network_profile.py)."""
    import time

    import ledger.bulk as bulk
    from ledger.fees import FeePolicy
    from ledger.models import BatchCreate

    gtin = complete_gtin("0950600018002")
    monkeypatch.setattr(bulk, "FEE_READING_AGE", 0.1)
    readings: list[float] = []
    initial = FeePolicy.initial

    def reading(policy: FeePolicy, w3):  # noqa: ANN001, ANN202 - FeePolicy.initial's own signature
        readings.append(time.monotonic())
        return initial(policy, w3)

    monkeypatch.setattr(FeePolicy, "initial", reading)
    _, farm, _ = local_key_farm(local_ledger, "Fee Farm", gtin)
    rows = (BatchCreate(gtin=gtin, lot=f"FEE-{i:05d}", quantity=1 + i, unit="KGM", product="Coffee") for i in range(1_200))
    readings.clear()
    started = time.monotonic()
    report = farm.register_batches(rows, chunk_size=10)
    took = time.monotonic() - started
    assert report.registered_count == 1_200 and report.transactions == 120
    assert 1 <= len(readings) < report.transactions / 4, f"{len(readings)} fee readings for {report.transactions} transactions"
    assert all(later - earlier >= 0.1 for earlier, later in zip(readings, readings[1:], strict=False))
    if took > 0.5:
        assert len(readings) >= 2, f"fees read once in a {took:.1f}s import"
