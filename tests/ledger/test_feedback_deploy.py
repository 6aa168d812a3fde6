"""Anchors is deployed beside the ledger and recorded with it: on the local chain by
`ensure_deployed` (records from before Anchors are completed), on a network by
`deploy_on_network`, whose interrupted Anchors deployment is finished, never repeated."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
from eth_account import Account

from ledger.chain import connect
from ledger.deploy import anchors_on_network, deploy_ledger, deploy_on_network, ensure_deployed, read_deployment
from ledger.fees import FeePolicy, Outbox, TransactionSender
from ledger.signers import LocalKeySigner


def test_the_local_deployment_records_anchors_and_completes_an_old_record(local_ledger, tmp_path):
    w3 = connect(local_ledger.rpc_url)
    record = local_ledger.data_dir / "deployment.json"
    deployment = read_deployment(record)
    assert deployment is not None and deployment.anchors and w3.eth.get_code(deployment.anchors)
    assert deployment.anchors_block is not None and deployment.anchors_block >= deployment.block_number

    # A record written before Anchors existed: the next start adds it, the ledger stays.
    old = tmp_path / "deployment.json"
    old.write_text(json.dumps({k: v for k, v in asdict(deployment).items() if k not in ("anchors", "anchors_block")}))
    again, created, warning = ensure_deployed(w3, old, 2 * 24 * 3600)
    assert not created and warning is None
    assert again.address == deployment.address and again.anchors and again.anchors != deployment.anchors
    assert read_deployment(old) == again
    # `provenance deploy` with a node account deploys both at once.
    both = deploy_ledger(w3, w3.eth.accounts[0], 2 * 24 * 3600)
    assert both.anchors and w3.eth.get_code(both.anchors) and both.anchors_block >= both.block_number


def sender_for(local_ledger, account) -> TransactionSender:
    w3 = connect(local_ledger.rpc_url)
    outbox = Outbox(local_ledger.data_dir, 31337, account.address)
    return TransactionSender(w3, LocalKeySigner(account), 31337, FeePolicy(), outbox, poll=0.02)


def test_a_network_deploy_stopped_after_sending_anchors_is_finished_not_repeated(local_ledger, tmp_path, monkeypatch):
    account = Account.create()  # the local chain has no base fee: an unfunded key deploys
    record = tmp_path / "deployments" / "31337.json"
    sender = sender_for(local_ledger, account)
    calls = {"n": 0}
    real_wait = TransactionSender.wait

    def crash_on_second(self, pending, timeout=None):  # the ledger's receipt comes; Anchors' never
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed while waiting for the Anchors deployment")
        return real_wait(self, pending, timeout)

    monkeypatch.setattr(TransactionSender, "wait", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        deploy_on_network(sender, record, 2 * 24 * 3600)
    monkeypatch.setattr(TransactionSender, "wait", real_wait)
    half = read_deployment(record)
    assert half is not None and half.anchors is None
    pending = json.loads(record.with_suffix(".anchors-pending").read_text())

    w3 = connect(local_ledger.rpc_url)
    nonce = w3.eth.get_transaction_count(account.address)
    finished = anchors_on_network(sender_for(local_ledger, account), record)
    assert finished.anchors == pending["address"] and w3.eth.get_code(finished.anchors)
    assert w3.eth.get_transaction_count(account.address) == nonce  # nothing sent again
    assert not record.with_suffix(".anchors-pending").exists()
    assert read_deployment(record) == finished == replace(half, anchors=finished.anchors, anchors_block=finished.anchors_block)


def test_a_network_deploy_records_both_contracts(local_ledger, tmp_path):
    record = tmp_path / "31337.json"
    deployment = deploy_on_network(sender_for(local_ledger, Account.create()), record, 2 * 24 * 3600)
    w3 = connect(local_ledger.rpc_url)
    assert w3.eth.get_code(deployment.address) and deployment.anchors and w3.eth.get_code(deployment.anchors)
    assert read_deployment(record) == deployment and not record.with_suffix(".anchors-pending").exists()
