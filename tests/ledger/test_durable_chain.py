"""The durable local chain: a write confirmed to a client survives kill -9 of the chain at
any moment (snapshots included), block hashes and the ledger's address stay the same,
saved state always loads, and the chain's clock is the wall clock after a restart."""

from __future__ import annotations

import os
import random
import resource
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account import Account
from test_index import dump
from web3 import Web3
from web3.exceptions import Web3RPCError

from ledger.artifacts import load_artifact
from ledger.chain import LocalChain, connect, free_loopback_port
from ledger.config import Settings
from ledger.deploy import ensure_deployed
from ledger.identifiers import complete_gtin, lot_bytes
from ledger.indexer.scanner import Scanner
from ledger.indexer.store import IndexStore
from ledger.localnode.journal import Entry, Journal

ZERO32 = b"\0" * 32
#: Each supplier holds its own GS1 company prefix (licences are exclusive).
PREFIXES = [(7, 9506000 + i) for i in range(3)]


def gtin_of(supplier: int) -> int:
    """A valid GTIN under supplier `supplier`'s prefix."""
    return int(complete_gtin(f"{9506000 + supplier}13435"))


@dataclass
class Confirmed:
    """A registration its writer saw confirmed: transaction, block number and block hash."""

    tx_hash: bytes
    block_number: int
    block_hash: bytes


@dataclass
class Writer:
    """One supplier registering batches as fast as the chain takes them, on its own thread."""

    name: str
    supplier: int
    account: str
    rpc_url: str
    address: str
    paused: threading.Event
    stopped: threading.Event
    confirmed: list[Confirmed] = field(default_factory=list)
    in_flight: bool = False
    errors: int = 0
    lots: int = 0

    def run(self) -> None:
        w3 = Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 5}))
        ledger = w3.eth.contract(address=self.address, abi=load_artifact().abi)
        while not self.stopped.is_set():
            if self.paused.is_set():
                time.sleep(0.01)
                continue
            self.lots += 1
            lot = f"{self.name}-{self.lots}"
            call = ledger.functions.registerBatch((gtin_of(self.supplier), lot_bytes(lot), 1000, b"KGM", ZERO32))
            try:
                self.in_flight = True
                tx_hash = call.transact({"from": self.account, "gas": 400_000})
                receipt = None
                deadline = time.monotonic() + 30
                while receipt is None and time.monotonic() < deadline:
                    try:
                        receipt = w3.eth.get_transaction_receipt(tx_hash)
                    except Exception:  # noqa: BLE001 - not mined yet, or the chain is down
                        time.sleep(0.005)
                if receipt is not None and receipt["status"] == 1:
                    self.confirmed.append(Confirmed(bytes(tx_hash), receipt["blockNumber"], bytes(receipt["blockHash"])))
            except Exception:  # noqa: BLE001 - the chain was killed under us: try again when it is back
                self.errors += 1
                time.sleep(0.02)
            finally:
                self.in_flight = False


def _setup(rpc_url: str, settings: Settings) -> tuple[str, list[str]]:
    """Deploy the ledger, make three licensed suppliers, and fill the state with 3,000
    batches so that a snapshot takes long enough to be caught in the middle."""
    w3 = connect(rpc_url)
    deployment, _, _ = ensure_deployed(w3, settings.deployment_file, settings.admin_transfer_delay)
    ledger = w3.eth.contract(address=deployment.address, abi=load_artifact().abi)
    admin, suppliers = w3.eth.accounts[0], w3.eth.accounts[1:4]

    def send(call, sender):
        assert w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))["status"] == 1

    for account, prefix in zip(suppliers, PREFIXES, strict=True):
        send(ledger.functions.registerActor(account, f"Supplier {account[-4:]}", b"CO", ZERO32), admin)
        send(ledger.functions.grantRole(ledger.functions.SUPPLIER_ROLE().call(), account), admin)
        send(ledger.functions.grantLicence(account, *prefix), admin)
    for chunk in range(15):
        inputs = [(gtin_of(0), lot_bytes(f"BULK-{chunk}-{i}"), 10, b"KGM", ZERO32) for i in range(200)]
        send(ledger.functions.registerBatches(inputs), suppliers[0])
    return deployment.address, suppliers


def _assert_still_on_chain(w3: Web3, confirmed: list[Confirmed]) -> None:
    """Each confirmed registration's block is on the chain with the hash its writer saw
    (a block hash commits to its transactions and their receipts, so the transaction and
    its success are there too), asked in JSON-RPC batches to keep twenty rounds quick."""
    for start in range(0, len(confirmed), 500):
        chunk = confirmed[start : start + 500]
        answers = w3.provider.make_batch_request([("eth_getBlockByNumber", [hex(c.block_number), False]) for c in chunk])
        for seen, answer in zip(chunk, answers, strict=True):
            block = answer.get("result")
            assert block is not None, f"block {seen.block_number} of a confirmed registration is gone"
            assert bytes.fromhex(block["hash"][2:]) == seen.block_hash, f"block {seen.block_number} changed its hash"
            assert "0x" + seen.tx_hash.hex() in block["transactions"]


def _index_equals_rebuild(w3: Web3, address: str, store: IndexStore, tmp_path: Path, round_: int) -> None:
    Scanner(w3, address, 0, store).sync()
    fresh = IndexStore.open(f"sqlite:///{tmp_path / f'rebuild-{round_}.sqlite'}", tmp_path)
    try:
        Scanner(w3, address, 0, fresh).sync()
        assert dump(store) == dump(fresh), f"after kill {round_}, the index differs from a rebuild"
        assert store.cursor(address, w3.eth.chain_id) == fresh.cursor(address, w3.eth.chain_id)
    finally:
        fresh.dispose()


def test_confirmed_registrations_survive_twenty_sigkills_of_the_chain(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings, snapshot_seconds=0.2, snapshot_entries=40)
    chain.start()
    snapshots_dir = chain.state_dir / "snapshots"
    store = IndexStore.open(f"sqlite:///{tmp_path / 'index.sqlite'}", tmp_path)
    paused, stopped = threading.Event(), threading.Event()
    rng = random.Random(20261202)
    writers: list[Writer] = []
    threads: list[threading.Thread] = []
    try:
        address, suppliers = _setup(settings.rpc_url, settings)
        writers = [Writer(f"W{i}", i, account, settings.rpc_url, address, paused, stopped) for i, account in enumerate(suppliers)]
        threads = [threading.Thread(target=w.run, daemon=True) for w in writers]
        for thread in threads:
            thread.start()
        during_snapshot_rounds = set(rng.sample(range(20), 8))
        caught_mid_snapshot = 0
        print("\nkill  mode            in flight  confirmed so far  restart  restored")
        for round_ in range(20):
            mid_snapshot = False
            if round_ in during_snapshot_rounds:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not any(n.endswith(".tmp") for n in os.listdir(snapshots_dir)):
                    pass
                in_flight = sum(w.in_flight for w in writers)
                chain.kill()
                mid_snapshot = any(n.endswith(".tmp") for n in os.listdir(snapshots_dir))
                caught_mid_snapshot += mid_snapshot
            else:
                time.sleep(rng.uniform(0.1, 1.2))
                in_flight = sum(w.in_flight for w in writers)
                chain.kill()
            confirmed_before = [c for w in writers for c in w.confirmed]
            started = time.monotonic()
            chain.start()
            restart_seconds = time.monotonic() - started
            mode = "mid-snapshot" if mid_snapshot else ("snapshot-wait" if round_ in during_snapshot_rounds else "random")
            print(
                f"{round_ + 1:>4}  {mode:<14}  {in_flight:>9}  {len(confirmed_before):>16}  {restart_seconds:5.2f} s  {chain.recovery['sentence']}"
            )
            w3 = connect(settings.rpc_url)
            assert w3.eth.get_code(address), "the ledger's address must hold the ledger after a restart"
            _assert_still_on_chain(w3, confirmed_before)
            # Quiesce the writers for the index check (they stop between two registrations).
            paused.set()
            while any(w.in_flight for w in writers):
                time.sleep(0.01)
            started = time.monotonic()
            _index_equals_rebuild(w3, address, store, tmp_path, round_)
            print(f"      index equals a rebuild ({time.monotonic() - started:.2f} s)")
            paused.clear()
        total = sum(len(w.confirmed) for w in writers)
        print(f"{total} registrations confirmed; {caught_mid_snapshot} kills landed while a snapshot file was being written")
        assert total > 100
        assert caught_mid_snapshot >= 5, "the test must kill the chain while snapshots are written"
    finally:
        stopped.set()
        for thread in threads:
            thread.join(timeout=40)
        store.dispose()
        chain.stop()


def test_block_hashes_time_and_address_are_the_same_after_a_replay_from_the_journal(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    # No snapshot but the first one: every write after it must come back from the journal.
    chain = LocalChain(settings, snapshot_seconds=3600, snapshot_entries=10**6)
    chain.start()
    try:
        address, _ = _setup(settings.rpc_url, settings)
        w3 = connect(settings.rpc_url)
        before = [w3.eth.get_block(n)["hash"] for n in range(w3.eth.block_number + 1)]
        chain.kill()
        chain.start()
        assert chain.recovery["snapshot_block"] == 0 and chain.recovery["transactions"] == len(before) - 1
        assert f"replayed {len(before) - 1} transaction(s)" in chain.recovery["sentence"]
        w3 = connect(settings.rpc_url)
        assert [w3.eth.get_block(n)["hash"] for n in range(len(before))] == before
        assert w3.eth.get_code(address)
        # The clock: a new block is dated now, not where the replayed history stopped.
        time.sleep(2)
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
        )
        assert abs(w3.eth.get_block("latest")["timestamp"] - time.time()) <= 2
    finally:
        chain.stop()


def test_the_chain_clock_is_the_wall_clock_after_a_restart_long_after_the_last_block(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings)
    # A chain whose history ends in the past (like the demo's, or one stopped for hours).
    chain.start(genesis_timestamp=int(time.time()) - 7200)
    try:
        w3 = connect(settings.rpc_url)
        w3.provider.make_request("evm_setNextBlockTimestamp", [int(time.time()) - 3600])
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
        )
        chain.stop()
        chain.start()
        w3 = connect(settings.rpc_url)
        # What a transaction's gas estimate and a call on the pending block see as the time
        # (TIMESTAMP; MSTORE; RETURN), and the next block's time.
        probe = w3.eth.call({"to": None, "data": "0x4260005260206000f3"}, "pending")
        assert abs(int.from_bytes(probe, "big") - time.time()) <= 2
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
        )
        assert abs(w3.eth.get_block("latest")["timestamp"] - time.time()) <= 2
    finally:
        chain.stop()


def test_a_damaged_newest_snapshot_falls_back_to_the_previous_one_and_the_journal(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings, snapshot_seconds=3600, snapshot_entries=5)
    chain.start()
    try:
        _setup(settings.rpc_url, settings)
        w3 = connect(settings.rpc_url)
        head, head_hash = w3.eth.block_number, w3.eth.get_block("latest")["hash"]
        chain.stop()
        newest = sorted((chain.state_dir / "snapshots").glob("snapshot-*.json.gz"))[-1]
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a disk that lied
        chain.start()
        assert chain.recovery["damaged_snapshots"] and newest.name in chain.recovery["damaged_snapshots"][0]
        assert "skipped 1 damaged snapshot" in chain.recovery["sentence"]
        w3 = connect(settings.rpc_url)
        assert w3.eth.block_number == head and w3.eth.get_block("latest")["hash"] == head_hash
    finally:
        chain.stop()


def test_a_journal_gap_is_refused_rather_than_starting_a_chain_without_those_writes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings, snapshot_seconds=3600, snapshot_entries=5)
    chain.start()
    try:
        _setup(settings.rpc_url, settings)
    finally:
        chain.stop()
    # Every snapshot lost, and the journal no longer reaches back to genesis.
    for path in (chain.state_dir / "snapshots").glob("snapshot-*"):
        path.unlink()
    with pytest.raises(Exception, match=r"journal .* jumps from entry 0 to \d+"):
        chain.start()


def test_a_torn_journal_tail_is_cut_and_later_entries_follow_intact_ones(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.open_for_append(0)
    journal.append("eth_sendRawTransaction", ["0x01"], 100)
    journal.append("eth_sendRawTransaction", ["0x02"], 101)
    journal.close()
    segment = journal.segments()[-1][1]
    segment.write_bytes(segment.read_bytes() + b'0badc0de {"seq":3,"meth')  # a crash mid-append
    assert [e.seq for e in Journal(tmp_path).entries_after(0)] == [1, 2]
    reopened = Journal(tmp_path)
    reopened.open_for_append(2)
    reopened.append("evm_mine", [], 102)
    reopened.close()
    assert [(e.seq, e.params, e.timestamp) for e in Journal(tmp_path).entries_after(0)] == [
        (1, ["0x01"], 100),
        (2, ["0x02"], 101),
        (3, [], 102),
    ]
    assert Entry.parse(b"00000000 {}\n") is None  # a line whose checksum does not match


def test_the_state_file_of_an_earlier_version_is_imported_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings)
    chain.start()
    try:
        address, _ = _setup(settings.rpc_url, settings)
        w3 = connect(settings.rpc_url)
        head_hash = w3.eth.get_block("latest")["hash"]
        legacy = w3.provider.make_request("anvil_dumpState", [])["result"]
    finally:
        chain.stop()
    # An earlier version kept only anvil's --state file (plain JSON).
    import gzip
    import shutil

    shutil.rmtree(chain.state_dir)
    chain.state_dir.mkdir()
    (chain.state_dir / "state.json").write_bytes(gzip.decompress(bytes.fromhex(legacy[2:])))
    chain.start()
    try:
        assert chain.recovery["imported_legacy_state"]
        assert connect(settings.rpc_url).eth.get_block("latest")["hash"] == head_hash
        assert connect(settings.rpc_url).eth.get_code(address)
        assert (chain.state_dir / "state.json.imported").exists() and not (chain.state_dir / "state.json").exists()
    finally:
        chain.stop()
    # A broken one (the old in-place rewrite killed midway) is named, not silently replaced.
    shutil.rmtree(chain.state_dir)
    chain.state_dir.mkdir()
    (chain.state_dir / "state.json").write_text('{"block": {"number": "0x1", "coinbase"')
    with pytest.raises(Exception, match=r"state\.json .* cannot be loaded .* move it aside"):
        chain.start()


def test_an_entry_refused_for_a_full_disk_is_never_written_later_ahead_of_the_next_one(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.open_for_append(0)
    journal.append("eth_sendRawTransaction", ["0x" + "11" * 100], 100)
    full = journal.segments()[-1][1].stat().st_size + 50  # the disk fills mid-line
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    # A write past the file size limit fails with EFBIG (as a full disk fails with ENOSPC)
    # once SIGXFSZ, which would kill the process, is ignored.
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (full, limits[1]))
    try:
        with pytest.raises(OSError):
            journal.append("eth_sendRawTransaction", ["0x" + "22" * 100], 101)  # the client hears "nothing was sent"
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    journal.append("eth_sendRawTransaction", ["0x" + "33" * 100], 102)  # space again
    journal.close()
    replayed = [(e.seq, e.params[0][:4]) for e in Journal(tmp_path).entries_after(0)]
    assert replayed == [(1, "0x11"), (2, "0x33")], "the refused entry came back, or the next one did not"


def test_mining_on_anvils_own_clock_is_refused_so_a_replay_rebuilds_the_same_blocks(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings, snapshot_seconds=3600, snapshot_entries=10**6)
    chain.start()
    try:
        w3 = connect(settings.rpc_url)
        time.sleep(2)  # anvil's clock is now ahead of where a replay from genesis starts
        for method, params in [
            ("anvil_mine", [3]),
            ("hardhat_mine", ["0x2"]),
            ("evm_mine", [{"blocks": 2}]),
            ("anvil_setIntervalMining", [1]),
            ("anvil_reset", []),
        ]:
            answer = w3.provider.make_request(method, params)
            assert "not available on the durable local chain" in answer.get("error", {}).get("message", ""), (method, answer)
        assert w3.provider.make_request("evm_mine", [])["result"] is not None
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
        )
        before = [w3.eth.get_block(n)["hash"] for n in range(w3.eth.block_number + 1)]
        chain.kill()
        chain.start()
        w3 = connect(settings.rpc_url)
        assert [w3.eth.get_block(n)["hash"] for n in range(len(before))] == before
    finally:
        chain.stop()


def test_a_transaction_behind_a_missing_nonce_is_refused_and_kept_nowhere(tmp_path: Path) -> None:
    """anvil would queue it and mine it once the gap is filled, sometimes in a block of its
    own dated by its own clock, which a replay cannot rebuild (a review found block hashes
    changing after a restart). The durable chain refuses it instead, and keeps it nowhere:
    the sender sends the missing nonce, then this one again."""
    settings = Settings(data_dir=tmp_path, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings, snapshot_seconds=3600, snapshot_entries=3)
    chain.start()
    try:
        w3 = connect(settings.rpc_url)
        sender = Account.create()
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": sender.address, "value": 10**18})
        )

        def signed(nonce: int) -> bytes:
            tx = {"to": w3.eth.accounts[5], "value": 1, "nonce": nonce, "gas": 21000, "gasPrice": 1, "chainId": w3.eth.chain_id}
            return bytes(sender.sign_transaction(tx).raw_transaction)

        head = w3.eth.block_number
        with pytest.raises(Web3RPCError, match="nonce is ahead of the sender.s next one"):
            w3.eth.send_raw_transaction(signed(1))
        assert w3.eth.block_number == head, "nothing was mined"
        status = w3.provider.make_request("txpool_status", [])["result"]
        assert int(status["pending"], 16) == 0 and int(status["queued"], 16) == 0, "nothing waits in the pool"
        w3.provider.make_request("evm_mine", [])  # the third entry: time for a snapshot, taken at once
        first = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed(0)), timeout=10)
        second = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed(1)), timeout=10)
        assert second["blockNumber"] == first["blockNumber"] + 1
        before = [w3.eth.get_block(n)["hash"] for n in range(w3.eth.block_number + 1)]
        chain.kill()
        chain.start()
        w3 = connect(settings.rpc_url)
        assert [w3.eth.get_block(n)["hash"] for n in range(len(before))] == before
        assert w3.eth.get_transaction_count(sender.address) == 2
    finally:
        chain.stop()


def test_evm_snapshot_and_revert_are_rebuilt_identically_after_a_crash(tmp_path: Path) -> None:
    """Tests and tools revert the chain with evm_snapshot/evm_revert; anvil's snapshot ids
    live in its memory only. The node hands out ids of its own and keeps a snapshot of its
    own from covering an outstanding one, so a replay reverts exactly as the live chain did."""
    settings = Settings(data_dir=tmp_path, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings, snapshot_seconds=0.1, snapshot_entries=1)  # snapshot whenever allowed
    chain.start()
    try:
        w3 = connect(settings.rpc_url)
        a, b = w3.eth.accounts[:2]

        def pay(value: int) -> bytes:
            tx = w3.eth.send_transaction({"from": a, "to": b, "value": value})
            w3.eth.wait_for_transaction_receipt(tx)
            return bytes(tx)

        pay(1)
        for _ in range(3):  # ids from an anvil process that will not exist after the crash
            w3.provider.make_request("evm_revert", [w3.provider.make_request("evm_snapshot", [])["result"]])
        kept = w3.provider.make_request("evm_snapshot", [])["result"]
        reverted = pay(2)
        time.sleep(0.5)  # the node would snapshot now, were the evm snapshot not outstanding
        assert w3.provider.make_request("evm_revert", [kept])["result"] is True
        confirmed = pay(3)
        head, head_hash = w3.eth.block_number, w3.eth.get_block("latest")["hash"]
        chain.kill()
        chain.start()
        w3 = connect(settings.rpc_url)
        assert (w3.eth.block_number, w3.eth.get_block("latest")["hash"]) == (head, head_hash)
        assert w3.eth.get_transaction_receipt(confirmed)["blockHash"] == head_hash
        with pytest.raises(Exception, match="not found"):
            w3.eth.get_transaction_receipt(reverted)
        assert w3.provider.make_request("evm_revert", [kept])["result"] is False  # used up, as in anvil
    finally:
        chain.stop()


def test_a_chain_dated_by_its_client_keeps_counting_from_that_time(tmp_path: Path) -> None:
    """As anvil does: after a block at a time the client chose (the demo dates its history
    months back), the next blocks follow from that time, not from the wall clock."""
    settings = Settings(data_dir=tmp_path, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings)
    chain.start(genesis_timestamp=int(time.time()) - 90 * 86400)
    try:
        w3 = connect(settings.rpc_url)
        a, b = w3.eth.accounts[:2]
        back_then = int(time.time()) - 60 * 86400
        w3.provider.make_request("evm_setNextBlockTimestamp", [back_then])
        for value in (1, 2):
            w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": a, "to": b, "value": value}))
        assert back_then <= w3.eth.get_block("latest")["timestamp"] <= back_then + 5
    finally:
        chain.stop()
