"""`provenance run`: a persisted local chain, deployed once, never a stale one silently."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from web3 import Web3

from ledger.artifacts import load_artifact
from ledger.chain import find_anvil, pid_is_alive
from ledger.demo import GREEN_COFFEE
from ledger.identifiers import batch_id as batch_id_of

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
    send(ledger.functions.grantLicence(farm, 7, 9506000), admin)
    send(ledger.functions.registerBatch((GTIN, LOT, 60_000, b"KGM", b"\1" * 32)), farm)
    return batch_id_of(str(GTIN), "L-17")


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
    foreign = subprocess.Popen([str(find_anvil()), "--port", port, "--host", "127.0.0.1"], stdout=subprocess.DEVNULL)
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
    record = json.loads((Path(chain_env["PROVENANCE_DATA_DIR"]) / "chain" / "node.pid").read_text())
    try:
        assert pid_is_alive(record["pid"])
        second = start_run("--no-demo")
        second.wait_for(rf"still running \(chain pid {record['pid']}")
        assert second.stop(sig=None) == 1
        # Its web server, orphaned the same way, is named too.
        web_pid = int((Path(chain_env["PROVENANCE_DATA_DIR"]) / "web.pid").read_text())
        os.kill(record["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 30
        while pid_is_alive(record["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        third = start_run("--no-demo")
        third.wait_for(rf"web server of an earlier run is still running \(pid {web_pid}\)")
        assert third.stop(sig=None) == 1
    finally:
        if pid_is_alive(record["pid"]):
            os.kill(record["pid"], signal.SIGTERM)
        web_file = Path(chain_env["PROVENANCE_DATA_DIR"]) / "web.pid"
        if web_file.exists():
            os.kill(int(web_file.read_text()), signal.SIGTERM)


def test_run_redeploys_when_the_chain_state_was_lost(start_run, chain_env):
    first = start_run("--no-demo")
    old = first.wait_for(r"Ledger\s+(0x[0-9a-fA-F]{40})").group(1)
    assert first.stop() == 0
    shutil.rmtree(Path(chain_env["PROVENANCE_DATA_DIR"]) / "chain")  # journal and snapshots gone
    second = start_run("--no-demo")
    second.wait_for(r"is not on this chain; its state was reset")
    new = second.wait_for(r"Ledger\s+(0x[0-9a-fA-F]{40})\s+\(deployed now").group(1)
    assert new == old  # same deployer, same nonce: same address, on a fresh chain
    assert second.stop() == 0


def _record(chain_env: dict[str, str]) -> Path:
    return Path(chain_env["PROVENANCE_DATA_DIR"]) / "deployment.json"


def test_run_refuses_a_ledger_recorded_with_older_code_until_redeploy(start_run, chain_env):
    first = start_run("--no-demo")
    old = first.wait_for(r"Ledger\s+(0x[0-9a-fA-F]{40})\s+\(deployed now").group(1)
    assert first.stop() == 0
    record = json.loads(_record(chain_env).read_text())
    assert record["code_hash"].startswith("0x")
    # As if it had been deployed from an earlier version of the contract.
    record["code_hash"] = "0x" + "ab" * 32
    _record(chain_env).write_text(json.dumps(record))

    refused = start_run("--no-demo")
    refused.wait_for(
        rf"the ledger recorded in .*deployment\.json \({old}\) was deployed from older code "
        r"\(its record names other contract code than this version's\); pass --redeploy"
    )
    assert refused.stop(sig=None) == 1
    assert not any("Running." in line for line in refused.lines)

    redeployed = start_run("--no-demo", "--redeploy")
    redeployed.wait_for(rf"the ledger at {old} was deployed from older code")
    new = redeployed.wait_for(r"Ledger\s+(0x[0-9a-fA-F]{40})\s+\(deployed now").group(1)
    assert new != old
    redeployed.wait_for(r"Running\. Press Ctrl-C")
    assert redeployed.stop() == 0
    assert json.loads(_record(chain_env).read_text())["address"] == new


def test_run_refuses_a_recorded_address_holding_other_code_and_redeploys_with_a_fresh_demo(start_run, chain_env):
    from ledger.chain import LocalChain, connect
    from ledger.config import Settings
    from ledger.deploy import Deployment, artifact_code_hash, write_deployment

    settings = Settings(data_dir=Path(chain_env["PROVENANCE_DATA_DIR"]), rpc_url=chain_env["PROVENANCE_RPC_URL"])
    with LocalChain(settings):  # journalled, for `provenance run` to load
        w3 = connect(settings.rpc_url)
        deployer = w3.eth.accounts[0]
        # Some other contract (its runtime code only reverts), recorded as if it were the ledger.
        tx = w3.eth.send_transaction({"from": deployer, "data": "0x6005600c60003960056000f360006000fd"})
        receipt = w3.eth.wait_for_transaction_receipt(tx)
        other = receipt["contractAddress"]
        write_deployment(
            settings.deployment_file,
            Deployment(
                chain_id=31337,
                address=other,
                block_number=receipt["blockNumber"],
                tx_hash="0x" + bytes(tx).hex(),
                admin=deployer,
                code_hash=artifact_code_hash(),
            ),
        )

    refused = start_run()
    refused.wait_for(rf"\({other}\) was deployed from older code \(the code at its address is not this version's contract\)")
    assert refused.stop(sig=None) == 1
    assert not any("Demo data loaded" in line for line in refused.lines)

    redeployed = start_run("--redeploy")
    redeployed.wait_for(r"Demo data loaded\.", timeout=120)
    new = redeployed.wait_for(r"Ledger\s+(0x[0-9a-fA-F]{40})\s+\(deployed now").group(1)
    assert new != other
    redeployed.wait_for(r"Batches\s+9 registered")
    page = redeployed.wait_for(r"Demo page\s+(http\S+)").group(1)
    redeployed.wait_for(r"Running\. Press Ctrl-C")
    status, html = fetch(page)
    assert status == 200 and "Huila blend coffee beans, 250 g bag" in html
    assert redeployed.stop() == 0


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def terminal_qr_to_image(lines: list[str]):
    """The QR code `provenance run` drew with half-block characters, as a picture: each
    character is one module wide and two high; drawn (inverted for a dark terminal) cells
    are light."""
    from PIL import Image

    # rich prints the blank cells as no-break spaces.
    halves = {"█": (1, 1), "▀": (1, 0), "▄": (0, 1), " ": (0, 0), "\xa0": (0, 0)}
    rows = [line.rstrip("\n") for line in lines]
    width = max(len(r) for r in rows)
    image = Image.new("L", (width, 2 * len(rows)), 0)
    for y, row in enumerate(rows):
        for x, char in enumerate(row.ljust(width)):
            top, bottom = halves.get(char, (0, 0))
            image.putpixel((x, 2 * y), 255 if top else 0)
            image.putpixel((x, 2 * y + 1), 255 if bottom else 0)
    # Scale up and add a light margin so the decoder sees ordinary modules.
    image = image.resize((image.width * 8, image.height * 8), Image.NEAREST)
    framed = Image.new("L", (image.width + 64, image.height + 64), 255)
    framed.paste(image, (32, 32))
    return framed


#: How often `provenance run`'s index follower asks the chain for new blocks (ledger.indexer.follow.Follower's
#: default), written out here so that a slower follower fails the test instead of moving the bound.
FOLLOW_POLL_SECONDS = 1.0


def test_run_serves_the_demo_prints_its_qr_and_follows_new_batches(start_run, chain_env):
    import zxingcpp

    first = start_run()
    first.wait_for(r"Demo data loaded\.", timeout=120)
    first.wait_for(r"Batches\s+9 registered")
    web = first.wait_for(r"Web\s+(http://127\.0\.0\.1:\d+)/").group(1)
    assert web.endswith(":" + chain_env["PROVENANCE_WEB_PORT"])
    page = first.wait_for(r"Demo page\s+(http\S+)").group(1)
    assert page == f"{web}/01/09506000134376/10/TP-B-1107-A"
    first.wait_for(r"its QR code:")
    first.wait_for(r"Running\. Press Ctrl-C")
    qr_lines = [line for line in first.lines if line and set(line) <= set("█▀▄ \xa0")]
    decoded = zxingcpp.read_barcodes(terminal_qr_to_image(qr_lines))
    assert [d.text for d in decoded] == [page]
    status, html = fetch(page)
    assert status == 200 and "Huila blend coffee beans, 250 g bag" in html
    status, html = fetch(web + "/")
    assert status == 200 and "TP-B-1107-A" in html
    assert first.stop() == 0
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(web + "/healthz", timeout=2)

    second = start_run()
    second.wait_for(r"Batches\s+9 registered")
    second.wait_for(r"Index\s+.*index\.sqlite\s+\(following the chain\)")
    second.wait_for(r"Running\. Press Ctrl-C")
    assert not any("Demo data loaded" in line for line in second.lines)
    # A batch registered in another terminal shows up on its page promptly.
    env = {**os.environ, **chain_env}
    started = time.monotonic()
    register = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "batch",
            "register",
            "--account",
            "node:1",
            "--gtin",
            GREEN_COFFEE,
            "--lot",
            "LIVE-1",
            "--quantity",
            "5",
            "--unit",
            "KGM",
            "--product",
            "Green coffee, live lot",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert register.returncode == 0, register.stderr
    registered = time.monotonic()
    registration = registered - started  # this machine's yardstick, measured in the same run
    while time.monotonic() - registered < 60:  # a bound for a hung follower only, not the check
        status, html = fetch(f"{web}/01/{GREEN_COFFEE}/10/LIVE-1")
        if status == 200:
            break
        time.sleep(0.2)
    followed = time.monotonic() - registered
    assert status == 200 and "Green coffee, live lot" in html
    # The follower polls every FOLLOW_POLL_SECONDS; after that it indexes one block and the
    # page renders, less work than the registration command just did (a Python start, a
    # signed transaction and its receipt). So the page must show up within two polls plus
    # one registration's time on this machine, however fast or slow the machine is.
    assert followed < 2 * FOLLOW_POLL_SECONDS + registration, (
        f"the page followed the chain in {followed:.1f} s; a registration took {registration:.1f} s"
    )
    assert second.stop() == 0


def test_run_onto_an_older_backup_of_the_chain_rewinds_the_index_and_says_so(start_run, chain_env):
    """An operator restores an older copy of the chain's data: the index (built from the
    newer chain) is ahead of it; `provenance run` starts anyway, says what it rewound, and
    the lot the old chain never held is gone from the pages."""
    from test_index import dump

    from ledger.indexer.scanner import Scanner
    from ledger.indexer.store import IndexStore

    data_dir = Path(chain_env["PROVENANCE_DATA_DIR"])
    rpc_url, web = chain_env["PROVENANCE_RPC_URL"], f"http://127.0.0.1:{chain_env['PROVENANCE_WEB_PORT']}"
    first = start_run("--no-demo")
    address = first.wait_for(r"Ledger\s+(0x[0-9a-fA-F]{40})\s+\(deployed now").group(1)
    first.wait_for(r"Running\. Press Ctrl-C")
    assert first.stop() == 0
    shutil.copytree(data_dir / "chain", data_dir.parent / "chain-backup")

    second = start_run("--no-demo")
    second.wait_for(r"Running\. Press Ctrl-C")
    register_demo_batch(rpc_url, address)
    lot_page = f"{web}/01/0{GTIN}/10/L-17"
    deadline = time.monotonic() + 30
    while fetch(lot_page)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fetch(lot_page)[0] == 200  # indexed and served
    assert second.stop() == 0

    shutil.rmtree(data_dir / "chain")
    shutil.copytree(data_dir.parent / "chain-backup", data_dir / "chain")
    # Before anything rewinds, the index holds blocks the restored chain does not: a
    # server over it (as `provenance serve` runs) must say so, not "ok".
    from fastapi.testclient import TestClient

    from api.main import create_app
    from ledger.chain import LocalChain
    from ledger.config import Settings

    settings = Settings(data_dir=data_dir, rpc_url=rpc_url)
    with LocalChain(settings), TestClient(create_app(settings)) as client:
        response = client.get("/healthz")
        assert response.status_code == 503 and response.json()["index"]["position"] == "ahead", response.json()
    third = start_run("--no-demo")
    third.wait_for(r"Index rewound to block \d+: dropped [1-9]\d* event\(s\) the chain no longer holds")
    third.wait_for(r"State\s+.*restored to block \d+")
    third.wait_for(r"Batches\s+0 registered")
    third.wait_for(r"Running\. Press Ctrl-C")
    assert fetch(lot_page)[0] == 404
    status, body = fetch(f"{web}/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok", body
    assert third.stop() == 0

    index = IndexStore.open(None, data_dir)
    fresh = IndexStore.open(f"sqlite:///{data_dir.parent / 'rebuild.sqlite'}", data_dir.parent)
    third_chain = start_run("--no-demo")  # the chain again, to rebuild from
    third_chain.wait_for(r"Running\. Press Ctrl-C")
    try:
        Scanner(Web3(Web3.HTTPProvider(rpc_url)), address, 0, fresh).sync()
        assert dump(index) == dump(fresh)
    finally:
        index.dispose()
        fresh.dispose()
        assert third_chain.stop() == 0
