"""A network profile against a chain that behaves like a public one, behind a provider that
misbehaves like public ones do.

anvil runs on its own (not the local durable chain) with 1 s blocks, a 1 gwei starting base
fee and 8M-gas blocks, so a bulk import's 6.4M-gas transactions fill blocks and push the
base fee up 12.5% a block. Every client request goes through a fault-injecting JSON-RPC
proxy written here: eth_getLogs capped at 1,000 blocks and 10,000 results (with the error
messages of real providers), 5% of requests answered 429, 5% of replies dropped after the
request was forwarded (the node did the work; the client hears nothing), 1% answered only
after the client's timeout. Faults are drawn from a fixed seed and counted.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from test_index import dump  # pytest puts tests/ledger on the path (no packages there)

from ledger.chain import connect, find_anvil, free_loopback_port
from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.fees import Fees, Pending
from ledger.identifiers import batch_id
from ledger.indexer.scanner import Scanner
from ledger.indexer.store import IndexStore
from ledger.keys import Keystore
from ledger.models import BatchCreate, LicenceScope
from ledger.signers import LocalKeySigner
from ledger.writer import LedgerWriter

ROOT = Path(__file__).resolve().parents[2]
CHAIN_ID = 1_337_001
GTIN = "09506000134352"
LOTS = 2_000
PASSWORD = "correct horse battery"
CLIENT_TIMEOUT = 2.0  # rpc_timeout of the network profile; the proxy's delays exceed it


class FaultyProvider:
    """A JSON-RPC proxy in front of anvil that fails like public providers (see the module)."""

    def __init__(
        self,
        upstream: str,
        seed: int,
        max_blocks: int = 1_000,
        max_results: int = 10_000,
        p429: float = 0.05,
        pdrop: float = 0.05,
        pdelay: float = 0.01,
    ) -> None:
        self.upstream = upstream
        self.max_blocks, self.max_results = max_blocks, max_results
        self.p429, self.pdrop, self.pdelay = p429, pdrop, pdelay
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.faults: Counter[str] = Counter()
        #: Replies to this many eth_sendRawTransaction calls are dropped on purpose (after
        #: the node took the transaction), besides the random faults.
        self.drop_sends = 0
        self.session = requests.Session()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.handle(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_loopback_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _draw(self) -> str:
        with self.lock:
            roll = self.rng.random()
        if roll < self.p429:
            return "429"
        if roll < self.p429 + self.pdrop:
            return "drop"
        if roll < self.p429 + self.pdrop + self.pdelay:
            return "delay"
        return "ok"

    def _forward(self, payload: object) -> object:
        return self.session.post(self.upstream, json=payload, timeout=60).json()

    def _block(self, tag: str) -> int:
        if tag.startswith("0x"):
            return int(tag, 16)
        return int(
            self._forward({"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": [tag, False]})["result"][
                "number"
            ],
            16,
        )  # type: ignore[index]

    def _call(self, request: dict) -> dict:
        """One JSON-RPC call, with eth_getLogs held to the caps."""
        if request.get("method") == "eth_getLogs":
            query = request["params"][0]
            span = self._block(query.get("toBlock", "latest")) - self._block(query.get("fromBlock", "latest")) + 1
            if span > self.max_blocks:
                self.faults["getLogs block cap"] += 1
                return {
                    "jsonrpc": "2.0",
                    "id": request["id"],
                    "error": {"code": -32005, "message": f"exceed maximum block range: {self.max_blocks}"},
                }
            reply = self._forward(request)
            if len(reply.get("result") or []) > self.max_results:  # type: ignore[union-attr]
                self.faults["getLogs result cap"] += 1
                return {
                    "jsonrpc": "2.0",
                    "id": request["id"],
                    "error": {"code": -32005, "message": f"query returned more than {self.max_results} results"},
                }
            return reply  # type: ignore[return-value]
        return self._forward(request)  # type: ignore[return-value]

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        fault = self._draw()
        payload = json.loads(body)
        if isinstance(payload, dict) and payload.get("method") == "eth_sendRawTransaction" and self.drop_sends > 0:
            with self.lock:
                self.drop_sends -= 1
            self.faults["dropped reply to eth_sendRawTransaction"] += 1
            fault = "drop-send"
        if fault == "429":
            self.faults["429"] += 1
            handler.send_response(429)
            handler.send_header("Retry-After", "1" if self.faults["429"] % 10 == 0 else "0")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        reply = [self._call(r) for r in payload] if isinstance(payload, list) else self._call(payload)
        if fault in ("drop", "drop-send"):
            # Forwarded and done by the node; the client never hears back.
            self.faults["dropped reply"] += fault == "drop"
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "delay":
            self.faults["reply after the client's timeout"] += 1
            time.sleep(CLIENT_TIMEOUT + 0.5)
        data = json.dumps(reply).encode()
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client gave up waiting

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def plain_anvil(chain_id: int, *options: str):  # noqa: ANN201 - a generator of Web3
    """anvil alone (not the durable local chain): a 1 gwei starting base fee and 8M-gas
    blocks, so a bulk import's transactions fill blocks and push the base fee up."""
    port = free_loopback_port()
    process = subprocess.Popen(
        [str(find_anvil()), "--port", str(port), "--chain-id", str(chain_id), "--block-base-fee-per-gas", "1000000000"]
        + ["--gas-limit", "8000000", *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    w3 = connect(url)
    deadline = time.monotonic() + 30
    while True:
        try:
            _ = w3.eth.chain_id
            break
        except Exception:  # noqa: BLE001 - not up yet
            assert time.monotonic() < deadline, "anvil did not start"
            time.sleep(0.1)
    try:
        yield w3
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def anvil():
    """1 s blocks: the base fee rises when blocks are over half full."""
    yield from plain_anvil(CHAIN_ID, "--block-time", "1")


def fund(w3, address: str) -> None:
    """100 ETH from anvil's first account, straight to the node (no proxy)."""
    tx = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": address, "value": 100 * 10**18})
    w3.eth.wait_for_transaction_receipt(tx, timeout=30)


def index_into(store: IndexStore, scanner: Scanner) -> dict:
    scanner.sync()
    return dump(store)


def next_block_boundary(w3) -> None:
    """Return just after a new block was mined (a full second before the next one)."""
    start = w3.eth.block_number
    while w3.eth.block_number == start:
        time.sleep(0.02)


def test_network_profile_through_a_faulty_provider(anvil, tmp_path, monkeypatch):
    proxy = FaultyProvider(anvil.provider.endpoint_uri, seed=20261202)
    data_dir = tmp_path / "supplier-machine"
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[networks.faulty]
rpc_url = "{proxy.url}"
chain_id = {CHAIN_ID}
finality = "safe"
max_fee_per_gas = 500
max_priority_fee_per_gas = 2
requests_per_second = 200
rpc_timeout = {CLIENT_TIMEOUT}
"""
    )
    try:
        # Two organisations with keys of their own (keystores), funded like on a testnet.
        keystore = Keystore(data_dir / "keystore")
        admin_entry, farm_entry = keystore.create("admin", PASSWORD), keystore.create("farm", PASSWORD)
        for entry in (admin_entry, farm_entry):
            fund(anvil, entry.address)
        env = {
            **os.environ,
            "PROVENANCE_CONFIG": str(config),
            "PROVENANCE_DATA_DIR": str(data_dir),
            "PROVENANCE_KEYSTORE_PASSWORD": PASSWORD,
        }

        # provenance deploy --network faulty: one record per chain id.
        deployed = subprocess.run(
            [sys.executable, "-m", "ledger.cli", "deploy", "--network", "faulty", "--account", "admin", "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert deployed.returncode == 0, deployed.stderr
        record = json.loads(deployed.stdout)
        assert record["created"] and record["record"] == str(data_dir / "deployments" / f"{CHAIN_ID}.json")
        assert anvil.eth.get_code(record["address"])
        again = subprocess.run(
            [sys.executable, "-m", "ledger.cli", "deploy", "--network", "faulty", "--account", "admin", "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode == 0 and not json.loads(again.stdout)["created"], again.stderr

        settings = Settings.from_env({"PROVENANCE_CONFIG": str(config)}, data_dir=data_dir, network="faulty")
        assert settings.rpc_url == proxy.url and settings.finality == "safe"
        monkeypatch.setenv("PROVENANCE_KEYSTORE_PASSWORD", PASSWORD)
        conn = LedgerConnection.open(settings)
        assert conn.address == record["address"]
        admin = LedgerWriter(conn, LocalKeySigner(keystore.unlock("admin")))
        farm_account = keystore.unlock("farm")
        admin.register_actor(farm_account.address, "Finca Lejana", "CO")
        admin.grant_supplier(farm_account.address)
        admin.grant_licence(farm_account.address, LicenceScope.single_gtin(GTIN))

        # The bulk import: 2,000 lots, 200 a transaction, fees taken as the base fee rises.
        base_before = anvil.eth.get_block("latest")["baseFeePerGas"]
        farm = LedgerWriter(conn, LocalKeySigner(farm_account))
        proxy.drop_sends = 3  # the node takes them; the client must not send their lots again
        lots = [
            BatchCreate(gtin=GTIN, lot=f"NET-{i:05d}", quantity=1 + i % 500, unit="KGM", product="Green coffee", origin="Huila")
            for i in range(LOTS)
        ]
        report = farm.register_batches(lots)
        peak = max(
            anvil.eth.get_block(n)["baseFeePerGas"] for n in range(anvil.eth.block_number - 15, anvil.eth.block_number + 1)
        )
        assert peak > base_before, "the base fee never rose: the test chain does not behave like a busy network"
        assert not report.failed, report.failed[:3]
        assert len(report.registered) + len(report.already_registered) == LOTS
        ledger = anvil.eth.contract(address=conn.address, abi=conn.contract.abi)
        logs = ledger.events.BatchRegistered.get_logs(from_block=0, argument_filters={"supplier": farm_account.address})
        on_chain = Counter(bytes(log["args"]["batchId"]) for log in logs)
        assert len(on_chain) == LOTS and set(on_chain.values()) == {1}, "a lot is missing or on chain twice"
        assert {batch_id(GTIN, lot.lot) for lot in lots} == set(on_chain)
        # Not one transaction sent twice under another nonce: one nonce per bulk transaction.
        assert anvil.eth.get_transaction_count(farm_account.address) == report.transactions
        bulk_stats = dict(farm.sender.stats)

        # A transaction left below the base fee by a client that then crashed: signed, in the
        # outbox, sent; the next block's base fee is then raised above its maxFeePerGas.
        stuck_lot = BatchCreate(gtin=GTIN, lot="NET-STUCK", quantity=5, unit="KGM", product="Green coffee", origin="Huila")
        crashed = LedgerWriter(conn, LocalKeySigner(farm_account))
        call = crashed.contract.functions.registerBatch(stuck_lot.contract_input(crashed._store_metadata(stuck_lot)))
        next_block_boundary(anvil)
        base = anvil.eth.get_block("pending")["baseFeePerGas"]
        low = Fees(max_fee=base * 105 // 100, tip=10**9)
        nonce = anvil.eth.get_transaction_count(farm_account.address)
        left = Pending(nonce, {"to": conn.address, "data": call._encode_transaction_data(), "value": 0, "gas": 300_000}, low)
        crashed.sender._sign(left)  # recorded in the outbox first, as the client does
        anvil.provider.make_request("eth_sendRawTransaction", ["0x" + left.raws[-1].hex()])
        anvil.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(base * 4)])
        time.sleep(2.5)
        assert anvil.eth.get_transaction_count(farm_account.address) == nonce, "the low-fee transaction was mined: not stuck"

        restarted = LedgerWriter(conn, LocalKeySigner(farm_account))
        restarted.sender.timeout = 90  # a client that cannot replace it fails here, not in 10 minutes
        result = restarted.register_batch(stuck_lot)
        assert result.status == "already_registered"  # the recovered transaction registered it
        assert restarted.sender.stats["replaced"] >= 1
        mined = anvil.eth.get_transaction(result.tx_hash)
        assert bytes(mined["hash"]) != left.tx_hash and mined["nonce"] == nonce
        assert mined["maxFeePerGas"] >= low.max_fee * 11 // 10 and mined["maxPriorityFeePerGas"] >= low.tip * 11 // 10
        assert (
            len(ledger.events.BatchRegistered.get_logs(from_block=0, argument_filters={"batchId": batch_id(GTIN, "NET-STUCK")}))
            == 1
        )

        # Enough blocks that one eth_getLogs over the whole history exceeds the 1,000-block cap.
        anvil.provider.make_request("anvil_mine", [hex(1_200)])

        rebuild = IndexStore.open(None, tmp_path / "rebuild")
        direct = Scanner(anvil, conn.address, conn.deploy_block, rebuild)
        expected = index_into(rebuild, direct)
        assert len(expected["events"]) > LOTS

        # The index through the faulty provider, with the provider's caps learnt from its errors.
        through = IndexStore.open(None, tmp_path / "through-proxy")
        scanner = Scanner.for_settings(conn, through)
        assert index_into(through, scanner) == expected
        assert scanner.limits_hit["blocks"] >= 1

        # A provider with a 1,000-result cap: ranges split on "more than 1000 results".
        small = FaultyProvider(anvil.provider.endpoint_uri, seed=7, max_results=1_000)
        try:
            small_settings = settings.model_copy(update={"rpc_url": small.url})
            small_store = IndexStore.open(None, tmp_path / "small-results")
            small_scanner = Scanner.for_settings(LedgerConnection.open(small_settings), small_store)
            assert index_into(small_store, small_scanner) == expected
            assert small_scanner.limits_hit["results"] >= 1 and small.faults["getLogs result cap"] >= 1
        finally:
            small.close()

        # Configured limits are kept: no request the provider has to refuse.
        refused_before = proxy.faults["getLogs block cap"]
        kept_store = IndexStore.open(None, tmp_path / "configured")
        kept = Scanner.for_settings(
            LedgerConnection.open(settings.model_copy(update={"log_block_range": 400, "log_result_limit": 900})), kept_store
        )
        assert index_into(kept_store, kept) == expected
        assert proxy.faults["getLogs block cap"] == refused_before and kept.limits_hit["results"] >= 1

        print(f"\nfaults injected (seed 20261202): {dict(proxy.faults)}")
        print(f"client retries: {conn.w3.provider.stats}")
        print(f"bulk sender: {bulk_stats}; recovery sender: {restarted.sender.stats}")
        print(f"base fee: {base_before} wei at the start, {peak} wei at the peak of the import")
        for kind in (
            "429",
            "dropped reply",
            "dropped reply to eth_sendRawTransaction",
            "reply after the client's timeout",
            "getLogs block cap",
        ):
            assert proxy.faults[kind] > 0, f"no {kind} fault was injected: the test proves nothing about it"
    finally:
        proxy.close()


def test_named_network_settings(tmp_path):
    """[networks.NAME] applies over the file's top level, below the environment; a name or a
    setting the file does not define is refused with a sentence; nothing selected: local."""
    from ledger.errors import ConfigurationError

    config = tmp_path / "config.toml"
    config.write_text(
        'confirmations = 1\n[networks.base]\nrpc_url = "https://base.example"\nchain_id = 8453\n'
        'finality = "finalized"\nmax_fee_per_gas = 0.5\nlog_block_range = 2000\n'
    )
    env = {"PROVENANCE_CONFIG": str(config)}
    local = Settings.from_env(env)
    assert (local.network, local.rpc_url, local.chain_id, local.confirmations) == (None, "http://127.0.0.1:8546", 31337, 1)
    base = Settings.from_env({**env, "PROVENANCE_NETWORK": "base"})
    assert (base.rpc_url, base.chain_id, base.finality, base.max_fee_per_gas, base.log_block_range) == (
        "https://base.example",
        8453,
        "finalized",
        0.5,
        2000,
    )
    assert Settings.from_env({**env, "PROVENANCE_CHAIN_ID": "84532"}, network="base").chain_id == 84532
    assert base.deployment_record(8453) == base.data_dir / "deployments" / "8453.json"
    with pytest.raises(ConfigurationError, match="no network named 'sepolia'.*networks defined there: base"):
        Settings.from_env(env, network="sepolia")
    config.write_text('[networks.base]\nrpc_url = "https://base.example"\ndocument_sources = []\n')
    with pytest.raises(ConfigurationError, match=r"\[networks.base\] has settings a network cannot set: document_sources"):
        Settings.from_env(env)


@pytest.mark.parametrize("named", [True, False], ids=["a named network", "loopback with the local chain id"])
def test_a_bulk_import_on_a_fast_chain_signs_each_transaction_above_the_rising_base_fee(tmp_path, monkeypatch, named):
    """A chain mining a block per transaction as fast as they come (an L2 does several a
    second), each block pushing the base fee up ~9%: fees read once for several
    transactions signed some below the next block's base fee, and each of those waited a
    minute to be replaced (10,000 rows took 82 s instead of 1.6 s; found by a review). Fees
    are read for each transaction unless they are zero: nothing needs replacing, on a
    named network or on a plain anvil that looks like the local chain (loopback, chain id
    31337) but charges fees."""
    chain_id = CHAIN_ID + 1 if named else 31337
    for w3 in plain_anvil(chain_id):
        data_dir = tmp_path / "data"
        keystore = Keystore(data_dir / "keystore")
        admin_entry, farm_entry = keystore.create("admin", PASSWORD), keystore.create("farm", PASSWORD)
        for entry in (admin_entry, farm_entry):
            fund(w3, entry.address)
        env = {**os.environ, "PROVENANCE_DATA_DIR": str(data_dir), "PROVENANCE_KEYSTORE_PASSWORD": PASSWORD}
        if named:
            config = tmp_path / "config.toml"
            config.write_text(
                f'[networks.fast]\nrpc_url = "{w3.provider.endpoint_uri}"\nchain_id = {chain_id}\n'
                "max_fee_per_gas = 500\nmax_priority_fee_per_gas = 2\n"
            )
            env["PROVENANCE_CONFIG"] = str(config)
            settings = Settings.from_env({"PROVENANCE_CONFIG": str(config)}, data_dir=data_dir, network="fast")
            command = ["--network", "fast"]
        else:
            env["PROVENANCE_RPC_URL"] = w3.provider.endpoint_uri
            settings = Settings(data_dir=data_dir, rpc_url=w3.provider.endpoint_uri)
            assert settings.is_local_chain
            command = []
        command = [sys.executable, "-m", "ledger.cli", "deploy", *command, "--account", "admin", "--json"]
        deployed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert deployed.returncode == 0, deployed.stderr
        monkeypatch.setenv("PROVENANCE_KEYSTORE_PASSWORD", PASSWORD)
        conn = LedgerConnection.open(settings)
        admin = LedgerWriter(conn, LocalKeySigner(keystore.unlock("admin")))
        farm_account = keystore.unlock("farm")
        admin.register_actor(farm_account.address, "Finca Rapida", "CO")
        admin.grant_supplier(farm_account.address)
        admin.grant_licence(farm_account.address, LicenceScope.single_gtin(GTIN))
        farm = LedgerWriter(conn, LocalKeySigner(farm_account))
        assert farm.sender is not None
        farm.sender.stuck_after = 20.0  # a transaction left below the base fee fails the time check below
        first_block = w3.eth.block_number
        lots = [BatchCreate(gtin=GTIN, lot=f"FAST-{i:05d}", quantity=1 + i, unit="KGM", product="Coffee") for i in range(6_000)]

        started = time.monotonic()
        report = farm.register_batches(lots, chunk_size=200)
        took = time.monotonic() - started

        assert report.registered_count == 6_000 and not report.failed
        fees = [w3.eth.get_block(n)["baseFeePerGas"] for n in range(first_block, w3.eth.block_number + 1)]
        assert fees[-1] > 2 * fees[0], "the base fee did not rise: the test proves nothing"
        assert farm.sender.stats["replaced"] == 0, farm.sender.stats
        assert took < 15, f"{took:.0f}s for 30 transactions: some waited below the base fee"
