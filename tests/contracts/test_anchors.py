"""Anchors: publishing a log's head costs one event, names its sender, and stores nothing."""

from __future__ import annotations

import pytest
from brownie import Anchors, accounts, web3

HEAD = "0x" + "5b" * 32


@pytest.fixture(scope="module")
def anchors():
    return Anchors.deploy({"from": accounts[0]})


def test_an_anchor_is_one_event_naming_its_sender(anchors):
    tx = anchors.anchor(HEAD, 42, {"from": accounts[3]})
    assert len(tx.events) == 1
    event = tx.events["Anchored"]
    assert event["by"] == accounts[3] and event["head"] == HEAD and event["count"] == 42
    # `by` is indexed: a reader asks for one account's anchors only.
    topic = web3.keccak(text="Anchored(address,bytes32,uint64)").hex()
    logs = web3.eth.get_logs(
        {
            "address": anchors.address,
            "topics": ["0x" + topic.removeprefix("0x"), "0x" + "00" * 12 + accounts[3].address[2:].lower()],
        }
    )
    assert len(logs) == 1
    none = web3.eth.get_logs({"address": anchors.address, "topics": [None, "0x" + "00" * 12 + accounts[4].address[2:].lower()]})
    assert none == []


def test_an_anchor_is_cheap_and_stores_nothing(anchors):
    tx = anchors.anchor(HEAD, 1, {"from": accounts[1]})
    again = anchors.anchor("0x" + "01" * 32, 2**64 - 1, {"from": accounts[1]})
    print(f"gas per anchor: {tx.gas_used:,} (first), {again.gas_used:,} (second)")
    # 21,000 for the transaction, calldata, one LOG2: no storage write costs 20,000 here.
    assert tx.gas_used < 25_000 and again.gas_used < 25_000
    assert web3.eth.get_storage_at(anchors.address, 0) == b"\x00" * 32
