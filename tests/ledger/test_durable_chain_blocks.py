"""The durable local chain mines a JSON-RPC batch of sends as one block: the block is
journalled as one entry, a replay rebuilds it with the same hash, a refused send in it is
answered alone, and what a client saw confirmed survives kill -9 at any moment."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from ledger.chain import LocalChain, connect, free_loopback_port
from ledger.config import Settings
from ledger.localnode.anvil import BLOCK_GAS_LIMIT
from ledger.localnode.node import BLOCK_OF_SENDS

CHAIN_ID = 31337


def signed_transfer(account: LocalAccount, nonce: int, value: int = 1) -> str:
    """A zero-fee transfer (the local chain's base fee is zero), signed, as 0x hex."""
    tx = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "to": "0x000000000000000000000000000000000000dEaD",
        "value": value,
        "gas": 21_000,
        "maxFeePerGas": 0,
        "maxPriorityFeePerGas": 0,
    }
    return "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()


def post(rpc_url: str, body: Any, timeout: float = 10) -> Any:
    """One JSON-RPC body (a request or a batch) posted as it is; the decoded answer."""
    response = requests.post(rpc_url, json=body, timeout=timeout)
    response.raise_for_status()
    return response.json()


def batch_of_sends(raws: list[str], first_id: int = 1) -> list[dict[str, Any]]:
    return [
        {"jsonrpc": "2.0", "id": first_id + i, "method": "eth_sendRawTransaction", "params": [raw]} for i, raw in enumerate(raws)
    ]


def funded_account(w3: Web3) -> LocalAccount:
    """A new local key with some ether from the node's first account (transfers move value)."""
    account = Account.create()
    tx_hash = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": account.address, "value": 10**21})
    w3.eth.wait_for_transaction_receipt(tx_hash)
    return account


@pytest.fixture
def journal_chain(tmp_path: Path) -> Iterator[tuple[LocalChain, Settings]]:
    """A durable local chain that takes no snapshot but the first: what it rebuilds after a
    kill comes back from the journal alone."""
    settings = Settings(data_dir=tmp_path, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings, snapshot_seconds=3600, snapshot_entries=10**6)
    chain.start()
    try:
        yield chain, settings
    finally:
        chain.stop()


def replayed(chain: LocalChain, settings: Settings) -> Web3:
    """Kill the chain, start it again, and check that every block came back with its hash."""
    w3 = connect(settings.rpc_url)
    before = [w3.eth.get_block(n)["hash"] for n in range(w3.eth.block_number + 1)]
    chain.kill()
    chain.start()
    w3 = connect(settings.rpc_url)
    assert [w3.eth.get_block(n)["hash"] for n in range(len(before))] == before, "the replay built other blocks"
    return w3


def test_a_batch_of_sends_is_one_block_under_a_raised_gas_limit_and_a_replay_rebuilds_it(
    journal_chain: tuple[LocalChain, Settings],
) -> None:
    chain, settings = journal_chain
    w3 = connect(settings.rpc_url)
    account = funded_account(w3)
    head = w3.eth.block_number
    raws = [signed_transfer(account, nonce) for nonce in range(5)]
    answers = post(settings.rpc_url, batch_of_sends(raws, first_id=7))
    assert [a["id"] for a in answers] == [7, 8, 9, 10, 11], "each answer keeps its request's id, in order"
    hashes = [a["result"] for a in answers]
    # Answered once mined: every receipt is there, all in the one new block.
    receipts = [w3.eth.get_transaction_receipt(h) for h in hashes]
    assert {r["blockNumber"] for r in receipts} == {head + 1} and w3.eth.block_number == head + 1
    assert all(r["status"] == 1 for r in receipts)
    block = w3.eth.get_block(head + 1)
    assert [Web3.to_hex(t) for t in block["transactions"]] == hashes, "one block, in nonce order"
    assert block["gasLimit"] == BLOCK_GAS_LIMIT * 5
    # The limit is set back: a transaction sent alone is mined under the usual one.
    alone = w3.eth.send_raw_transaction(signed_transfer(account, 5))
    assert w3.eth.wait_for_transaction_receipt(alone)["blockNumber"] == head + 2
    assert w3.eth.get_block(head + 2)["gasLimit"] == BLOCK_GAS_LIMIT
    w3 = replayed(chain, settings)
    assert chain.recovery["transactions"] == 1 + 5 + 1, "a block entry counts each of its sends"
    assert w3.eth.get_balance("0x000000000000000000000000000000000000dEaD") >= 6


def test_a_refused_send_in_a_batch_is_answered_alone_and_the_others_are_mined(journal_chain: tuple[LocalChain, Settings]) -> None:
    chain, settings = journal_chain
    w3 = connect(settings.rpc_url)
    account = funded_account(w3)
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed_transfer(account, 0)))
    # Nonce 0 again (used), between two good ones; and a body that is no transaction.
    raws = [signed_transfer(account, 1), signed_transfer(account, 0, value=2), signed_transfer(account, 2), "0x1234"]
    answers = post(settings.rpc_url, batch_of_sends(raws))
    assert "result" in answers[0] and "result" in answers[2]
    assert "error" in answers[1] and "nonce" in answers[1]["error"]["message"].lower()
    assert "error" in answers[3]
    assert w3.eth.get_transaction_receipt(answers[2]["result"])["status"] == 1
    assert w3.eth.get_transaction_count(account.address) == 3
    w3 = replayed(chain, settings)
    assert w3.eth.get_transaction_count(account.address) == 3


def test_the_journal_record_of_a_block_is_no_method_a_client_may_call(journal_chain: tuple[LocalChain, Settings]) -> None:
    chain, settings = journal_chain
    w3 = connect(settings.rpc_url)
    account = funded_account(w3)
    head = w3.eth.block_number
    forged = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": BLOCK_OF_SENDS,
        "params": [["eth_sendRawTransaction", [signed_transfer(account, 0)]]],
    }
    answer = post(settings.rpc_url, forged)
    assert "error" in answer and "not a method" in answer["error"]["message"]
    # A batch mixing a send with anything else is not grouped: each request as usual.
    mixed = [
        batch_of_sends([signed_transfer(account, 0)])[0],
        {"jsonrpc": "2.0", "id": 2, "method": "evm_mine", "params": []},
    ]
    answers = post(settings.rpc_url, mixed)
    assert all("result" in a for a in answers)
    assert w3.eth.block_number == head + 2, "a send and an evm_mine: two blocks"
    assert w3.eth.get_transaction_count(account.address) == 1


@dataclass
class GroupWriter:
    """Sends groups of four signed transfers as one batch, again and again, and keeps what
    it saw confirmed (each answer comes once the group's block is mined)."""

    rpc_url: str
    account: LocalAccount
    stopped: threading.Event
    paused: threading.Event
    confirmed: list[tuple[str, int, bytes]] = field(default_factory=list)
    in_flight: bool = False
    errors: int = 0

    def run(self) -> None:
        w3 = Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 5}))
        nonce: int | None = None
        while not self.stopped.is_set():
            if self.paused.is_set():
                time.sleep(0.01)
                continue
            self.in_flight = True
            time.sleep(0.005)  # a pause between groups: thousands of blocks would only slow the checks
            try:
                if nonce is None:
                    nonce = w3.eth.get_transaction_count(self.account.address, "pending")
                answers = post(
                    self.rpc_url, batch_of_sends([signed_transfer(self.account, nonce + i) for i in range(4)]), timeout=5
                )
                if not all("result" in a for a in answers):
                    nonce = None  # a group the journal had already taken before a kill: ask again
                    continue
                nonce += 4
                for answer in answers:
                    receipt = w3.eth.get_transaction_receipt(answer["result"])
                    self.confirmed.append((answer["result"], receipt["blockNumber"], bytes(receipt["blockHash"])))
            except Exception:  # noqa: BLE001 - the chain was killed under us: try again when it is back
                self.errors += 1
                nonce = None
                time.sleep(0.02)
            finally:
                self.in_flight = False


def test_groups_a_client_saw_confirmed_survive_sigkills_of_the_chain(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings, snapshot_seconds=0.3, snapshot_entries=15)
    chain.start()
    rng = random.Random(20261203)
    stopped, paused = threading.Event(), threading.Event()
    writers: list[GroupWriter] = []
    threads: list[threading.Thread] = []
    try:
        w3 = connect(settings.rpc_url)
        writers = [GroupWriter(settings.rpc_url, funded_account(w3), stopped, paused) for _ in range(2)]
        threads = [threading.Thread(target=w.run, daemon=True) for w in writers]
        for thread in threads:
            thread.start()
        print("\nkill  in flight  confirmed so far  restored")
        for round_ in range(8):
            time.sleep(rng.uniform(0.2, 1.0))
            in_flight = sum(w.in_flight for w in writers)
            chain.kill()
            seen = [c for w in writers for c in w.confirmed]
            chain.start()
            print(f"{round_ + 1:>4}  {in_flight:>9}  {len(seen):>16}  {chain.recovery['sentence']}")
            w3 = connect(settings.rpc_url)
            blocks = sorted({(number, block_hash) for _, number, block_hash in seen})
            for start in range(0, len(blocks), 500):
                part = blocks[start : start + 500]
                answers = w3.provider.make_batch_request([("eth_getBlockByNumber", [hex(n), False]) for n, _ in part])
                for (number, block_hash), answer in zip(part, answers, strict=True):
                    found = answer.get("result")
                    assert found is not None, f"block {number} of a confirmed group is gone"
                    assert bytes.fromhex(found["hash"][2:]) == block_hash, f"block {number} of a confirmed group changed"
            paused.set()
            while any(w.in_flight for w in writers):
                time.sleep(0.01)
            for writer in writers:
                # Every nonce taken exactly once: the count of mined transfers is the nonce.
                mined = w3.eth.get_transaction_count(writer.account.address)
                assert mined >= len(writer.confirmed)
                assert len({h for h, _, _ in writer.confirmed}) == len(writer.confirmed)
            paused.clear()
        total = sum(len(w.confirmed) for w in writers)
        print(f"{total} transfers confirmed in groups of four")
        assert total >= 80, "too few groups were confirmed for the kills to prove anything"
        blocks = {number for w in writers for _, number, _ in w.confirmed}
        assert len(blocks) * 2 <= total, "groups were not mined as blocks of several transactions"
    finally:
        stopped.set()
        for thread in threads:
            thread.join(timeout=20)
        chain.stop()


def test_a_send_the_block_does_not_hold_is_answered_as_refused_never_as_a_hash(
    journal_chain: tuple[LocalChain, Settings],
) -> None:
    """Found by review: in one batch, a second transfer the funds no longer cover, and a
    nonce sent twice, were each answered with a hash that would never be mined. The node
    now checks the mined block and refuses what it does not hold; the replay agrees."""
    chain, settings = journal_chain
    w3 = connect(settings.rpc_url)
    poor = Account.create()
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": poor.address, "value": 10**18})
    )
    spend = [signed_transfer(poor, 0, value=6 * 10**17), signed_transfer(poor, 1, value=6 * 10**17)]
    answers = post(settings.rpc_url, batch_of_sends(spend))
    assert "result" in answers[0] and w3.eth.get_transaction_receipt(answers[0]["result"])["status"] == 1
    assert "error" in answers[1] and "not mined and was not kept" in answers[1]["error"]["message"]
    rich = funded_account(w3)
    twice = [signed_transfer(rich, 0, value=1), signed_transfer(rich, 0, value=2)]
    answers = post(settings.rpc_url, batch_of_sends(twice))
    held = [a for a in answers if "result" in a]
    assert len(held) == 1 and w3.eth.get_transaction_receipt(held[0]["result"])["status"] == 1
    assert sum("error" in a for a in answers) == 1, "the nonce's other transaction is refused, not answered"
    status = w3.provider.make_request("txpool_status", [])["result"]
    assert status == {"pending": "0x0", "queued": "0x0"}
    w3 = replayed(chain, settings)


def test_a_block_of_sends_leaves_the_clients_automine_and_gas_limit_as_it_set_them(
    journal_chain: tuple[LocalChain, Settings],
) -> None:
    chain, settings = journal_chain
    w3 = connect(settings.rpc_url)
    account = funded_account(w3)
    post(settings.rpc_url, {"jsonrpc": "2.0", "id": 1, "method": "evm_setBlockGasLimit", "params": [hex(50_000_000)]})
    # A send whose params are not a list is taken as a single request's would be.
    bare = [
        {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": signed_transfer(account, i)} for i in range(2)
    ]
    assert all("result" in a for a in post(settings.rpc_url, bare))
    post(settings.rpc_url, {"jsonrpc": "2.0", "id": 1, "method": "evm_setAutomine", "params": [False]})
    assert all("result" in a for a in post(settings.rpc_url, batch_of_sends([signed_transfer(account, n) for n in (2, 3)])))
    assert post(settings.rpc_url, {"jsonrpc": "2.0", "id": 1, "method": "anvil_getAutomine", "params": []})["result"] is False
    head = w3.eth.block_number
    post(settings.rpc_url, {"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": []})
    assert w3.eth.get_block(head + 1)["gasLimit"] == 50_000_000, "the client's gas limit, not the node's default"


def test_an_unsigned_send_of_an_impersonated_account_is_journalled(journal_chain: tuple[LocalChain, Settings]) -> None:
    """Found by review: anvil's eth_sendUnsignedTransaction went to anvil unjournalled, so
    its transaction, answered with a hash, was gone after a restart."""
    chain, settings = journal_chain
    w3 = connect(settings.rpc_url)
    someone = Account.create().address
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": someone, "value": 10**18}))
    post(settings.rpc_url, {"jsonrpc": "2.0", "id": 1, "method": "anvil_impersonateAccount", "params": [someone]})
    tx = {"from": someone, "to": "0x000000000000000000000000000000000000dEaD", "value": hex(7)}
    answer = post(settings.rpc_url, {"jsonrpc": "2.0", "id": 1, "method": "eth_sendUnsignedTransaction", "params": [tx]})
    mined = w3.eth.wait_for_transaction_receipt(answer["result"], timeout=10)
    w3 = replayed(chain, settings)
    assert w3.eth.get_transaction_receipt(answer["result"])["blockHash"] == mined["blockHash"]
