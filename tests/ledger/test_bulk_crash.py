"""Bulk registration interrupted, by a crash or an exception, then resumed: every row on
chain exactly once, every nonce used by one transaction, every anchored document kept.

- `provenance batch import` signing with a local key (its transactions go through the
  TransactionSender and its outbox) is SIGKILLed at random moments (the seed is printed:
  PROVENANCE_TEST_KILL_SEED=<seed> replays it), one of them surely mid-way, and re-run:
  the re-run's report adds up, the chain holds each row once, the account's nonce is the
  number of its transactions (each of which registered rows), and the metadata document
  of every row is readable from the document store, with the hash anchored on chain.
- An exception in the main thread mid-run (the input breaks) leaves no nonce stuck: what
  was signed before it is mined, nothing is lost or sent twice, and the next
  `register_batches` of the same writer completes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

import ledger.bulk as bulk
from ledger.artifacts import load_artifact
from ledger.bulk import prepare
from ledger.cli.csv_rows import CsvRows
from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.documents import DocumentStore
from ledger.errors import ChainError
from ledger.fees import Outbox
from ledger.identifiers import complete_gtin
from ledger.keys import Keystore
from ledger.models import BatchCreate, LicenceScope
from ledger.signers import LocalKeySigner, NodeAccountSigner
from ledger.writer import LedgerWriter

ROOT = Path(__file__).resolve().parents[2]
ROWS = 3_000
CHUNK = 50
PASSWORD = "correct horse battery"  # the local_ledger fixture's PROVENANCE_KEYSTORE_PASSWORD
NAMES = ("Finca Aurora", "Hacienda Borealis", "Cooperativa Cumbre")


@pytest.fixture(scope="module")
def setup(local_ledger):
    settings = Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url)
    connection = LedgerConnection.open(settings)
    admin = LedgerWriter(connection, NodeAccountSigner(connection.w3.eth.accounts[0]))
    return settings, connection, admin


def supplier(admin: LedgerWriter, address: str, name: str, gtin: str) -> None:
    admin.register_actor(address, name, "CO")
    admin.grant_supplier(address)
    admin.grant_licence(address, LicenceScope.single_gtin(gtin))


def registrations(connection: LedgerConnection, address: str) -> list:
    ledger = connection.w3.eth.contract(address=connection.address, abi=load_artifact().abi)
    return ledger.events.BatchRegistered.get_logs(from_block=0, argument_filters={"supplier": address})


def transactions_from(connection: LedgerConnection, address: str, first_block: int) -> list[bytes]:
    """Hashes of every transaction `address` sent since `first_block` (every block read)."""
    w3 = connection.w3
    sent = []
    for number in range(first_block, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] == address:
                sent.append(bytes(tx["hash"]))
    return sent


def kill_at_random(
    command: list[str], env: dict[str, str], rng: random.Random, landed, window: tuple[float, float] | None
) -> tuple[str, tuple[float, float]]:
    """Run `command` and SIGKILL it: at a random delay within `window` (seconds after the
    start), or (no window) once a random share of the rows landed, and a random instant
    later. Returns what was done and (mid-way) from when to when to kill next: from half the
    time the first row took to land to the import's estimated end."""
    start = time.monotonic()
    first_landed = end = 0.0
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if window is None:
            # At most half the rows: the rest, several blocks of sends, cannot all land
            # within the instant before the kill.
            target = rng.randint(ROWS // 10, ROWS // 2)
            deadline = time.monotonic() + 60
            while (now := landed()) < target and process.poll() is None and time.monotonic() < deadline:
                if now and not first_landed:
                    first_landed = time.monotonic() - start
                time.sleep(0.01)
            delay = rng.uniform(0, 0.05)
            time.sleep(delay)
            how = f"after {target} rows landed + {delay:.3f}s"
            # For the later kills: when the import would have ended, from its pace so far.
            pace = (time.monotonic() - start - first_landed) / max(landed(), 1)
            end = first_landed + pace * ROWS
        else:
            delay = rng.uniform(*window)
            time.sleep(delay)
            how = f"{delay:.3f}s after the start (of ~{window[1]:.1f}s)"
        finished = process.poll()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert finished is None or finished == 0, process.stderr.read().decode() if process.stderr else finished
    return how + (" (the import had finished)" if finished == 0 else ""), (first_landed / 2, end)


def test_import_with_a_local_key_killed_at_random_moments_then_rerun_holds_every_row_once(setup, local_ledger, tmp_path):
    settings, connection, admin = setup
    w3 = connection.w3
    seed = int(os.environ.get("PROVENANCE_TEST_KILL_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"kill seed: {seed} (replay with PROVENANCE_TEST_KILL_SEED={seed})")
    rng = random.Random(seed)
    env = {**os.environ, **local_ledger.env, "PYTHONUNBUFFERED": "1"}
    documents = DocumentStore(settings.documents_dir)
    started = time.monotonic()
    window: tuple[float, float] | None = None  # the first kill lands mid-way, surely
    for round_ in range(3):
        if round_ and time.monotonic() - started > 60:
            break  # within the time budget: at least the mid-way round ran
        name = f"crash-{round_}-{rng.randrange(1 << 20):05x}"
        address = Keystore(settings.keystore_dir).create(name, PASSWORD).address
        gtin = complete_gtin(f"950600013{440 + round_}")
        supplier(admin, address, NAMES[round_], gtin)
        first_block = w3.eth.block_number + 1

        csv_path = tmp_path / f"{name}.csv"
        lines = ["gtin,lot,quantity,unit,product,origin"]
        lines += [f"{gtin},K{round_}-{i:05d},{1 + i % 900},KGM,Green coffee,Huila" for i in range(ROWS)]
        csv_path.write_text("\n".join(lines) + "\n")
        command = [sys.executable, "-m", "ledger.cli", "batch", "import", str(csv_path)]
        command += ["--account", name, "--json", "--chunk-size", str(CHUNK)]

        # The mid-way round sends 4 transactions per block, not 16 (3,000 rows are 60 of
        # them): with 16, the last 800 rows may land as one block in the instant before
        # the kill. Later rounds send as a user's import does.
        run_env = {**env, "PROVENANCE_SEND_BATCH_SIZE": "4"} if window is None else env
        how, estimate = kill_at_random(command, run_env, rng, lambda a=address: w3.eth.get_transaction_count(a) * CHUNK, window)
        landed = len(registrations(connection, address))
        print(f"round {round_}: killed {how}; {landed} rows on chain")
        if round_ == 0:
            assert 0 < landed < ROWS, f"the import was not caught mid-way ({landed} of {ROWS} landed)"

        rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        # Later kills: anywhere from the start-up (key, recovery, first look-up) to the end.
        window = window or estimate
        report = json.loads(rerun.stdout)
        assert (report["rows"], report["failed"], report["errors"]) == (ROWS, 0, [])
        assert report["registered"] + report["already_registered"] == ROWS
        assert report["already_registered"] >= landed  # and more when the outbox held a transaction
        print(f"  re-run: {report['already_registered'] - landed} more rows found registered (the outbox's recovery)")

        logs = registrations(connection, address)
        on_chain = Counter(bytes(log["args"]["batchId"]) for log in logs)
        assert len(logs) == ROWS and len(on_chain) == ROWS, "a row is missing or registered twice"
        sent = transactions_from(connection, address, first_block)
        assert w3.eth.get_transaction_count(address) == len(sent) == len(set(sent))
        assert {bytes(log["transactionHash"]) for log in logs} == set(sent), "a transaction registered nothing"

        anchored = {bytes(log["args"]["batchId"]): bytes(log["args"]["metadataHash"]) for log in logs}
        for index, batch in enumerate(CsvRows.open(csv_path)):
            row = prepare(index, batch)
            assert anchored[row.batch_id] == row.metadata_hash
            assert documents.held(row.metadata_hash) == row.document
    print(f"{time.monotonic() - started:.1f}s for the kills and re-runs")


class Breaking:
    """Yields the rows, then raises after `after` of them (an input that breaks mid-run)."""

    def __init__(self, rows: list[BatchCreate], after: int) -> None:
        self.rows, self.after = rows, after

    def __iter__(self) -> Iterator[BatchCreate]:
        for index, row in enumerate(self.rows):
            if index == self.after:
                raise OSError("the input broke")
            yield row


@pytest.mark.parametrize("failure", ["the input", "a look-up"])
@pytest.mark.parametrize("account", ["local key", "node account"])
def test_an_exception_in_the_main_thread_leaves_no_stuck_nonce_and_loses_nothing(setup, account, failure, monkeypatch):
    """The input breaks mid-run, or a look-up (which runs in its own thread, a window
    ahead) fails: the error reaches the caller, and what was signed is sent and settled."""
    settings, connection, admin = setup
    w3 = connection.w3
    monkeypatch.setattr(bulk, "WINDOW_ROWS", 150)  # windows, and chunks queued, when the input breaks
    if account == "local key":
        key = Account.create()
        writer = LedgerWriter(connection, LocalKeySigner(key))
        assert writer.sender is not None
        writer.sender.timeout = 20  # a stuck nonce fails the test here, not after ten minutes
        gtin, name = complete_gtin("95060001345" + ("0" if failure == "the input" else "2")), f"Tostadora Delta ({failure})"
    else:
        writer = LedgerWriter(connection, NodeAccountSigner(w3.eth.accounts[5 if failure == "the input" else 6]))
        gtin, name = complete_gtin("95060001345" + ("1" if failure == "the input" else "3")), f"Beneficio Epsilon ({failure})"
    address = writer.signer.address
    supplier(admin, address, name, gtin)
    first_block = w3.eth.block_number + 1
    rows = [
        BatchCreate(gtin=gtin, lot=f"B-{i:05d}", quantity=1 + i % 500, unit="KGM", product="Green coffee", origin="Huila")
        for i in range(2_000)
    ]

    if failure == "the input":
        with pytest.raises(OSError, match="the input broke"):
            writer.register_batches(Breaking(rows, 1_234), chunk_size=20)
    else:
        find, calls = bulk.RegistrationLookup.find, []

        def failing(lookup: bulk.RegistrationLookup, ids: list[bytes]):  # noqa: ANN202 - find's own answer
            calls.append(len(ids))
            if len(calls) == 9:  # rows 1,040 to 1,189 (windows of 20, 40, 80, then 150)
                raise ChainError("eth_call failed: the node went away")
            return find(lookup, ids)

        with monkeypatch.context() as patch:
            patch.setattr(bulk.RegistrationLookup, "find", failing)
            with pytest.raises(ChainError, match="the node went away"):
                writer.register_batches(rows, chunk_size=20)

    # Everything signed before the failure was sent and mined: no nonce left waiting.
    mined = w3.eth.get_transaction_count(address, "latest")
    assert w3.eth.get_transaction_count(address, "pending") == mined
    assert mined > 0, "nothing was sent before the input broke: the test proves nothing"
    if writer.sender is not None:
        # The outbox is trimmed as transactions settle: what it still holds is its tail, and
        # the last transaction signed is the last one mined.
        signed = {record["nonce"] for record in Outbox(settings.data_dir, settings.chain_id, address).read()}
        # (Empty when the last trim fell on the last transaction: every record was mined.)
        assert all(nonce < mined for nonce in signed), "a signed transaction was not sent"
        assert not signed or signed == set(range(min(signed), mined)), "the outbox lost a record"
        assert writer.sender._nonce in (None, mined), "the next nonce skips one"
    else:
        assert writer._nonce in (None, mined), "the next nonce skips one (signed at the node, never sent)"
    landed = Counter(bytes(log["args"]["batchId"]) for log in registrations(connection, address))
    assert set(landed.values()) == {1} and set(landed) <= {row.batch_id for row in rows[:1_234]}

    report = writer.register_batches(rows, chunk_size=20)

    assert not report.failed
    assert report.already_registered_count == len(landed)
    assert report.registered_count == len(rows) - len(landed)
    logs = registrations(connection, address)
    assert Counter(bytes(log["args"]["batchId"]) for log in logs) == Counter(row.batch_id for row in rows)
    sent = transactions_from(connection, address, first_block)
    assert w3.eth.get_transaction_count(address) == len(sent) == mined + report.transactions
    assert {bytes(log["transactionHash"]) for log in logs} == set(sent)


def test_ctrl_c_while_a_look_up_waits_on_a_slow_node_stops_the_import_at_once(setup, monkeypatch):
    """Ctrl-C (a real SIGINT) while the look-up thread waits on the node (on a network a
    provider's retries can take minutes; here one look-up is held 5 s): the import stops
    at once, without waiting for that look-up, and leaves no nonce pending; the re-run
    registers the rest. (A found review: it waited for the look-up.)"""
    import threading

    _, connection, admin = setup
    w3 = connection.w3
    account = w3.eth.accounts[7]
    gtin = complete_gtin("950600013454")
    supplier(admin, account, "Sigint Farm", gtin)
    farm = LedgerWriter(connection, NodeAccountSigner(account))
    monkeypatch.setattr(bulk, "WINDOW_ROWS", 100)
    registered_at, calls = bulk.RegistrationLookup.registered_at, []
    held = threading.Event()

    def slow(lookup: bulk.RegistrationLookup, ids: list[bytes]) -> list[int]:
        calls.append(len(ids))
        if len(calls) == 4:
            held.set()
            time.sleep(5)  # a node taking its time
        return registered_at(lookup, ids)

    monkeypatch.setattr(bulk.RegistrationLookup, "registered_at", slow)
    rows = [BatchCreate(gtin=gtin, lot=f"SIG-{i}", quantity=1 + i, unit="KGM", product="Coffee") for i in range(1_000)]
    interrupted: list[float] = []

    def interrupt() -> None:
        held.wait(30)
        time.sleep(0.3)
        interrupted.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        farm.register_batches(rows, chunk_size=20)
    latency = time.monotonic() - interrupted[0]

    assert latency < 2, f"Ctrl-C took {latency:.1f}s to stop the import: it waited for the look-up"
    assert w3.eth.get_transaction_count(account, "latest") == w3.eth.get_transaction_count(account, "pending")
    monkeypatch.undo()
    again = farm.register_batches(rows, chunk_size=20)
    assert again.registered_count + again.already_registered_count == 1_000 and not again.failed
