"""The bulk path's look-up when the node does not cooperate (review of issue 14): a node
that refuses the one-call look-up is asked the old way (each lot's logs), and a lot the
ledger holds whose registration event the node does not return is failed, never sent."""

from __future__ import annotations

import pytest

from ledger.identifiers import complete_gtin

GTIN = complete_gtin("0950600018101")


@pytest.fixture()
def farm(local_ledger):
    from ledger.config import Settings
    from ledger.connection import LedgerConnection
    from ledger.models import LicenceScope
    from ledger.signers import NodeAccountSigner
    from ledger.writer import LedgerWriter

    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    admin = LedgerWriter(conn, NodeAccountSigner(conn.w3.eth.accounts[0]))
    account = conn.w3.eth.accounts[7]
    if admin.connection.names.actor(account) == account:  # not registered yet in this module
        admin.register_actor(account, "Fallback Farm", "CO")
        admin.grant_supplier(account)
        admin.grant_licence(account, LicenceScope.single_gtin(GTIN))
    return LedgerWriter(conn, NodeAccountSigner(account))


def lots(prefix: str, count: int):
    from ledger.models import BatchCreate

    return [BatchCreate(gtin=GTIN, lot=f"{prefix}-{i}", quantity=10 + i, unit="KGM", product="Coffee") for i in range(count)]


def test_a_node_refusing_the_look_up_is_asked_for_logs_and_reruns_stay_idempotent(farm, monkeypatch):
    from ledger.bulk import RegistrationLookup
    from ledger.errors import RpcError

    def refuse(self, batch_ids):
        raise RpcError("eth_call", "contract creation not allowed in eth_call", -32000)

    monkeypatch.setattr(RegistrationLookup, "registered_at", refuse)
    first = farm.register_batches(lots("FB", 30))
    assert first.registered_count == 30 and not first.failed
    again = farm.register_batches(lots("FB", 40))
    assert again.already_registered_count == 30 and again.registered_count == 10 and not again.failed


def test_a_held_lot_whose_event_the_node_does_not_return_is_failed_and_not_sent(farm, monkeypatch):
    from ledger.bulk import RegistrationLookup

    farm.register_batches(lots("LAG", 5))
    monkeypatch.setattr(RegistrationLookup, "_logs", lambda self, ids, first, last: [])
    monkeypatch.setattr(type(farm), "_registrations", lambda self, ids: {})
    nonce = farm.w3.eth.get_transaction_count(farm.signer.address)
    report = farm.register_batches(lots("LAG", 8))
    assert report.registered_count == 3 and report.transactions == 1
    assert sorted(i for i, _ in report.failed) == [0, 1, 2, 3, 4]
    assert all("did not return its registration event" in reason for _, reason in report.failed)
    assert farm.w3.eth.get_transaction_count(farm.signer.address) == nonce + 1


def test_the_look_up_answer_fits_eip_170():
    from ledger.bulk import LOOKUP_IDS

    assert 64 + 32 * LOOKUP_IDS <= 24_576  # returned as contract code: ABI head + one word an id
