"""A full bulk transaction of the costliest shape fits its gas budget: a sub-licensee's rows,
each of another GTIN than the row before, with 20-character lots (the review measured
33,488 gas a row for it, against the 32,000 once budgeted: the whole chunk ran out of gas
on every re-run)."""

from __future__ import annotations

from ledger.identifiers import complete_gtin

PREFIX = "950600017"  # a company prefix of this module's own


def test_a_full_chunk_of_a_sub_licensees_changing_gtins_and_long_lots_is_registered(local_ledger):
    from ledger.bulk import DEFAULT_CHUNK
    from ledger.config import Settings
    from ledger.connection import LedgerConnection
    from ledger.models import BatchCreate, LicenceScope
    from ledger.signers import NodeAccountSigner
    from ledger.writer import LedgerWriter

    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    accounts = conn.w3.eth.accounts
    admin = LedgerWriter(conn, NodeAccountSigner(accounts[0]))
    brand, packer = accounts[5], accounts[6]
    admin.register_actor(brand, "Gas Brand", "CO")
    admin.register_actor(packer, "Gas Packer", "CO")
    admin.grant_supplier(brand)
    admin.grant_supplier(packer)
    admin.grant_licence(brand, LicenceScope.company_prefix(PREFIX))
    LedgerWriter(conn, NodeAccountSigner(brand)).sub_license(packer, LicenceScope.company_prefix(PREFIX + "4"))
    rows = [
        BatchCreate(
            gtin=complete_gtin(f"0{PREFIX}4{i % 100:02d}"),
            lot=f"HARVEST-2026-12-{i:04d}".ljust(20, "A")[:20],
            quantity=5,
            unit="KGM",
            product="Green coffee",
        )
        for i in range(DEFAULT_CHUNK)
    ]
    report = LedgerWriter(conn, NodeAccountSigner(packer)).register_batches(rows)
    assert report.failed == [] and report.registered_count == DEFAULT_CHUNK and report.transactions == 1
