"""`provenance run`: a persisted local chain, deployed once, never a stale one silently."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from web3 import Web3

from ledger.artifacts import load_artifact
from ledger.chain import find_anvil, pid_is_alive

GTIN = 9506000134352
LOT = b"L-17".ljust(20, b"\0")


def register_demo_batch(rpc_url: str, address: str) -> bytes:
    """Register an organisation and one batch through the node's unlocked dev accounts."""
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    admin, farm = w3.eth.accounts[0], w3.eth.accounts[1]
    ledger = w3.eth.contract(address=address, abi=load_artifact().abi)

    def send(call, sender):
        receipt = w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
        assert receipt["status"] == 1

    send(ledger.functions.registerActor(farm, "Finca La Esperanza", b"CO", b"\0" * 32), admin)
    send(ledger.functions.grantRole(ledger.functions.SUPPLIER_ROLE().call(), farm), admin)
    send(ledger.functions.registerBatch((GTIN, LOT, 60_000, b"KGM", b"\1" * 32)), farm)
    return ledger.functions.batchIdOf(GTIN, LOT).call()


def batch_remaining(rpc_url: str, address: str, batch_id: bytes) -> int:
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    ledger = w3.eth.contract(address=address, abi=load_artifact().abi)
    return ledger.functions.getBatch(batch_id).call()[4]


def test_run_deploys_once_and_keeps_batches_across_restarts(start_run, chain_env):
    rpc_url = chain_env["PROVENANCE_RPC_URL"]
    first = start_run("--no-demo")
    first.wait_for(r"chain id 31337")
    address = first.wait_for(r"Ledger\s+(0x[0-9a-fA-F]{40})\s+\(deployed now").group(1)
    first.wait_for(r"Batches\s+0 registered")
    batch_id = register_demo_batch(rpc_url, address)
    assert first.stop() == 0
    assert "Stopped; state saved." in "\n".join(first.lines)

    second = start_run("--no-demo")
    assert second.wait_for(r"Ledger\s+(0x[0-9a-fA-F]{40})\s+\(deployed earlier").group(1) == address
    second.wait_for(r"Batches\s+1 registered")
    assert batch_remaining(rpc_url, address, batch_id) == 60_000
    assert second.stop(signal.SIGTERM) == 0


def test_run_refuses_a_port_someone_else_listens_on(start_run, chain_env):
    port = chain_env["PROVENANCE_RPC_URL"].rsplit(":", 1)[1]
    foreign = subprocess.Popen(
        [str(find_anvil()), "--port", port, "--host", "127.0.0.1"], stdout=subprocess.DEVNULL
    )
    try:
        run = start_run()
        run.wait_for(r"another program already listens on 127\.0\.0\.1:" + port)
        assert run.stop(sig=None) == 1  # it exits by itself; a signal now would race its exit
    finally:
        foreign.terminate()
        foreign.wait()


def test_run_names_its_own_stale_chain(start_run, chain_env):
    first = start_run("--no-demo")
    first.wait_for(r"Ledger\s+0x")
    # Killing the runner without letting it clean up leaves its anvil running.
    first.process.kill()
    first.process.wait()
    record = json.loads((Path(chain_env["PROVENANCE_DATA_DIR"]) / "chain" / "anvil.pid").read_text())
    try:
        assert pid_is_alive(record["pid"])
        second = start_run("--no-demo")
        second.wait_for(rf"still running \(anvil pid {record['pid']}")
        assert second.stop(sig=None) == 1
    finally:
        os.kill(record["pid"], signal.SIGTERM)


def test_run_redeploys_when_the_chain_state_was_lost(start_run, chain_env):
    first = start_run("--no-demo")
    old = first.wait_for(r"Ledger\s+(0x[0-9a-fA-F]{40})").group(1)
    assert first.stop() == 0
    (Path(chain_env["PROVENANCE_DATA_DIR"]) / "chain" / "state.json").unlink()
    second = start_run("--no-demo")
    second.wait_for(r"is not on this chain; its state was reset")
    new = second.wait_for(r"Ledger\s+(0x[0-9a-fA-F]{40})\s+\(deployed now").group(1)
    assert new == old  # same deployer, same nonce: same address, on a fresh chain
    assert second.stop() == 0


def test_run_loads_the_demo_on_first_start_only(start_run, chain_env):
    first = start_run()
    first.wait_for(r"Demo data loaded\.", timeout=120)
    first.wait_for(r"Batches\s+9 registered")
    bag = first.wait_for(r"Demo bag\s+09506000134376 lot TP-B-1107-A\s+(http\S+)").group(1)
    assert bag == "http://127.0.0.1:8000/01/09506000134376/10/TP-B-1107-A"
    assert first.stop() == 0
    second = start_run()
    second.wait_for(r"Batches\s+9 registered")
    second.wait_for(r"Index\s+.*index\.sqlite\s+\(following the chain\)")
    assert not any("Demo data loaded" in line for line in second.lines)
    # The index follows: a batch registered now shows up in it within seconds.
    env = {**os.environ, **chain_env}
    register = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "batch", "register", "--account", "node:1", "--gtin", "09506000134352",
         "--lot", "LIVE-1", "--quantity", "5", "--unit", "KGM", "--product", "Green coffee"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert register.returncode == 0, register.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        history = subprocess.run([sys.executable, "-m", "ledger.cli", "history", "09506000134352", "LIVE-1", "--json"],
                                 env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        if history.returncode == 0:
            break
        time.sleep(0.5)
    assert history.returncode == 0, history.stderr
    assert second.stop() == 0
