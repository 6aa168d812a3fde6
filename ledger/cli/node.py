"""`provenance run`: the local chain, deployed once, kept running until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from ledger.chain import LocalChain, connect
from ledger.cli.common import OPTIONS, console, err_console, fail
from ledger.config import Settings
from ledger.deploy import ensure_deployed
from ledger.errors import LedgerError
from ledger.artifacts import load_artifact
from ledger.connection import LedgerConnection
from ledger.demo import DEMO_BAG, demo_genesis_timestamp, is_seeded, seed_demo
from ledger.identifiers import digital_link
from ledger.indexer.scanner import Scanner
from ledger.indexer.store import IndexStore


def count_registered_batches(settings: Settings, address: str, from_block: int) -> int:
    """How many BatchRegistered events the ledger at `address` has emitted."""
    w3 = connect(settings.rpc_url)
    ledger = w3.eth.contract(address=address, abi=load_artifact().abi)
    return len(ledger.events.BatchRegistered.get_logs(from_block=from_block))


def start_index_follower(settings: Settings, stop: threading.Event) -> str:
    """Keep the index following the chain in a background thread; returns the database."""
    connection = LedgerConnection.open(settings)
    store = IndexStore.open(settings.database_url, settings.data_dir)
    scanner = Scanner(connection.w3, connection.address, connection.deploy_block, store, settings.confirmations)
    scanner.sync()  # catch up before saying the index is there

    def follow() -> None:
        while not stop.is_set():
            try:
                scanner.sync()
            except LedgerError as exc:  # keep serving; say why the index lags
                err_console.print(f"[yellow]index:[/] {exc}")
            stop.wait(1.0)

    threading.Thread(target=follow, name="index-follower", daemon=True).start()
    return store.url.split("@")[-1].removeprefix("sqlite:///")


def run(
    demo: Annotated[bool, typer.Option(help="Load the demo data on first start.")] = True,
) -> None:
    """Start the local chain with persisted state, deploy the ledger once, load the demo
    data on first start, and keep running.

    Ctrl-C stops the chain; its state (deployment and every batch) is saved and loaded
    again by the next run.
    """
    try:
        settings = OPTIONS.settings()
        chain = LocalChain(settings)
        # A new chain meant for the demo begins months ago, so the demo's history has real dates.
        chain.start(genesis_timestamp=demo_genesis_timestamp() if demo else None)
    except LedgerError as exc:
        fail(str(exc))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        w3 = connect(settings.rpc_url)
        deployment, created, warning = ensure_deployed(w3, settings.deployment_file, settings.admin_transfer_delay)
        if warning:
            err_console.print(f"[yellow]warning:[/] {warning}")
        if demo:
            connection = LedgerConnection.open(settings)
            if not is_seeded(connection):
                with console.status("Loading the demo data (coffee and bakery chains)..."):
                    seed_demo(connection)
                console.print("Demo data loaded.")
        batches = count_registered_batches(settings, deployment.address, deployment.block_number)
        follower = start_index_follower(settings, stop)
        how = "deployed now" if created else "deployed earlier"
        console.print(f"Local chain   {settings.rpc_url}  chain id {w3.eth.chain_id}")
        console.print(f"State         {chain.state_file}")
        console.print(f"Ledger        {deployment.address}  ({how}, block {deployment.block_number})")
        console.print(f"Batches       {batches} registered")
        if demo:
            bag = digital_link(*DEMO_BAG).url(settings.public_base_url)
            console.print(f"Demo bag      {DEMO_BAG[0]} lot {DEMO_BAG[1]}  {bag}")
        console.print(f"Index         {follower}  (following the chain)")
        console.print("Running. Press Ctrl-C to stop; the chain's state is saved on exit.", style="dim")
        while not stop.is_set():
            if chain.process is None or chain.process.poll() is not None:
                fail(f"the local chain stopped unexpectedly; see {chain.log_file}")
            stop.wait(0.5)
    except LedgerError as exc:
        fail(str(exc))
    finally:
        chain.stop()
        console.print("Stopped; state saved.", style="dim")
