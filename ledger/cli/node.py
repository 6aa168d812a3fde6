"""`provenance run`: the local chain, deployed once, kept running until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.cli.common import OPTIONS, console, err_console, fail, safe
from ledger.errors import ConfigurationError, LedgerError

if TYPE_CHECKING:
    from web3 import Web3

    from ledger.cli.web import WebServer
    from ledger.config import Settings

PortOption = Annotated[int, typer.Option(help="Port of the web pages and API.", min=1, max=65535, envvar="PROVENANCE_WEB_PORT")]
HostOption = Annotated[str, typer.Option(help="Address to serve on; 0.0.0.0 serves the local network too.")]
WorkersOption = Annotated[int, typer.Option(help="Web server worker processes.", min=1, max=64)]


def _with_served_base_url(settings: Settings, host: str, port: int) -> Settings:
    """Point Digital Links at where we serve, unless a public base URL was configured."""
    from ledger.config import Settings

    if settings.public_base_url != Settings.model_fields["public_base_url"].default:
        return settings
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return settings.model_copy(update={"public_base_url": f"http://{shown}:{port}"})


def count_registered_batches(settings: Settings, address: str, from_block: int) -> int:
    """How many BatchRegistered events the ledger at `address` has emitted."""
    from ledger.artifacts import load_artifact
    from ledger.chain import connect

    w3 = connect(settings.rpc_url)
    ledger = w3.eth.contract(address=w3.to_checksum_address(address), abi=load_artifact().abi)
    return len(ledger.events.BatchRegistered.get_logs(from_block=from_block))


def start_index_follower(settings: Settings, stop: threading.Event) -> str:
    """Catch the index up with the chain (rewinding what the chain no longer holds, and
    saying so), then keep it following in a background thread that retries through
    outages and writes only while it holds the index's writer lock. Returns the database."""
    from sqlalchemy.exc import SQLAlchemyError

    from ledger.connection import LedgerConnection
    from ledger.indexer.follow import Follower, database_label, writer_lock
    from ledger.indexer.scanner import Scanner
    from ledger.indexer.store import IndexStore

    connection = LedgerConnection.open(settings)
    store = IndexStore.open(settings.database_url, settings.data_dir)
    scanner = Scanner.for_settings(connection, store)
    lock = writer_lock(store)

    def notice(line: str) -> None:
        err_console.print(f"[yellow]index:[/] {safe(line)}")

    follower = Follower(scanner, lock, settings.rpc_url, notice)
    try:
        # The writer catches up before the index is announced; one waiting for another follower's lock does not.
        rewound = scanner.sync().rewind_notice() if follower.take_lock() else None
    except SQLAlchemyError as exc:
        raise ConfigurationError(f"the index database {database_label(store)} does not answer ({type(exc).__name__})") from exc
    if rewound:
        console.print(safe(rewound[0].upper() + rewound[1:]))  # "Index rewound to block N: dropped K ..."
    threading.Thread(target=follower.run, args=(stop,), name="index-follower", daemon=True).start()
    return database_label(store)


def start_feedback_anchoring(settings: Settings, w3: Web3, stop: threading.Event) -> str:
    """Anchor the shoppers' feedback log's head on chain at intervals, in a background thread
    (ledger.feedback.anchoring); what it does, or why it does not (a warning, not a failure)."""
    from ledger.feedback.anchoring import start_anchoring

    def notice(line: str) -> None:
        err_console.print(f"[yellow]feedback:[/] {safe(line)}")

    try:
        return start_anchoring(settings, w3, stop, notice)
    except Exception as exc:  # noqa: BLE001 - no key, no Anchors contract, no chain: the server runs without
        notice(f"not anchoring the feedback log: {exc}")
        return "nothing (see the warning above)"


def keep_running(stop: threading.Event, watched: list[tuple[Callable[[], bool], str]]) -> None:
    """Wait for Ctrl-C (`stop`), failing with the message of the first process that died."""
    while not stop.is_set():
        for alive, message in watched:
            if not alive():
                fail(message)
        stop.wait(0.5)


def run(
    demo: Annotated[bool, typer.Option(help="Load the demo data on first start.")] = True,
    redeploy: Annotated[
        bool,
        typer.Option(
            help="If the recorded ledger was deployed from older code, deploy the current version at a new address (fresh index and demo)."
        ),
    ] = False,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: WorkersOption = 2,
) -> None:
    """The product in one command: start the local chain with persisted state, deploy the
    ledger once, load the demo data on first start, keep the index following the chain,
    and serve the pages and the auditor API on http://127.0.0.1:8000.

    Ctrl-C stops everything it started; the chain's state (deployment and every batch) is
    saved and loaded again by the next run. A ledger deployed from older code is refused
    (never mixed with this version); --redeploy replaces it at a new address.
    """
    from ledger.chain import LocalChain, connect
    from ledger.cli.web import WebServer
    from ledger.connection import LedgerConnection
    from ledger.demo import (
        CHOCOLATE_LOAF,
        COFFEE_BAG,
        DEMO_AUDIT_POLICY,
        DEMO_BAG,
        demo_genesis_timestamp,
        is_seeded,
        seed_demo,
    )
    from ledger.deploy import ensure_deployed
    from ledger.identifiers import digital_link
    from ledger.indexer.store import IndexStore
    from ledger.qr import qr_text

    web: WebServer | None = None
    try:
        settings = _with_served_base_url(OPTIONS.settings(), host, port)
        if demo and not settings.featured_products:
            # The landing page lists only featured products; a demo run shows its own two.
            settings = settings.model_copy(update={"featured_products": [COFFEE_BAG, CHOCOLATE_LOAF]})
        web = WebServer(settings, host, port, workers)
        chain = LocalChain(settings)
        # A new chain meant for the demo begins months ago, so the demo's history has real dates.
        chain.start(genesis_timestamp=demo_genesis_timestamp() if demo else None)
    except LedgerError as exc:
        fail(str(exc))
    try:
        web.refuse_occupied_port()  # before minutes of demo loading, not after
    except LedgerError as exc:
        chain.stop()
        fail(str(exc))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        w3 = connect(settings.rpc_url)
        deployment, created, warning = ensure_deployed(
            w3, settings.deployment_file, settings.admin_transfer_delay, redeploy=redeploy
        )
        if warning:
            err_console.print(f"[yellow]warning:[/] {safe(warning)}")
        if created:
            # A new ledger: nothing the index holds (another contract's events) still holds.
            store = IndexStore.open(settings.database_url, settings.data_dir)
            try:
                store.drop_all()
            finally:
                store.dispose()
        if demo:
            connection = LedgerConnection.open(settings)
            if not is_seeded(connection):
                with console.status("Loading the demo data (coffee and bakery chains)..."):
                    seed_demo(connection)
                console.print("Demo data loaded.")
            policy_file = settings.data_dir / "audit.toml"
            policy = DEMO_AUDIT_POLICY.to_toml()
            if not policy_file.exists():  # the demo's yield limits, for `provenance audit`
                policy_file.write_text(policy)
            elif created and policy_file.read_text() != policy:
                # The fresh demo's GTINs may differ from the old ledger's: keep the old policy aside.
                policy_file.replace(policy_file.with_suffix(".toml.old"))
                policy_file.write_text(policy)
                err_console.print(
                    f"[yellow]note:[/] wrote the demo's {safe(policy_file)}; the previous one is {safe(policy_file)}.old"
                )
        batches = count_registered_batches(settings, deployment.address, deployment.block_number)
        follower = start_index_follower(settings, stop)
        anchoring = start_feedback_anchoring(settings, w3, stop)
        with console.status(f"Starting the web server on {web.url}..."):
            web.start()
        how = "deployed now" if created else "deployed earlier"
        console.print(f"Local chain   {settings.rpc_url}  chain id {w3.eth.chain_id}")
        console.print(f"State         {chain.state_dir}  ({chain.recovery.get('sentence', 'recovered')})")
        console.print(f"Ledger        {deployment.address}  ({how}, block {deployment.block_number})")
        console.print(f"Batches       {batches} registered")
        console.print(f"Index         {follower}  (following the chain)")
        console.print(f"Feedback      anchored on {anchoring}")
        console.print(f"Web           {settings.public_base_url}/  (landing page; auditor API at /docs)")
        if demo:
            bag = digital_link(*DEMO_BAG).url(settings.public_base_url)
            console.print(f"Demo page     {bag}")
            console.print(f"              the {DEMO_BAG[0]} coffee bag, lot {DEMO_BAG[1]}; its QR code:")
            console.print(qr_text(bag), markup=False, highlight=False)
        console.print("Running. Press Ctrl-C to stop; every confirmed write is already saved.", style="dim")
        keep_running(
            stop,
            [
                (
                    lambda: chain.process is not None and chain.process.poll() is None,
                    f"the local chain stopped unexpectedly; see {chain.log_file}",
                ),
                (web.running, f"the web server stopped unexpectedly; see {web.log_file}"),
            ],
        )
    except LedgerError as exc:
        fail(str(exc))
    finally:
        if web is not None:
            web.stop()
        if "chain" in locals():
            chain.stop()
            console.print("Stopped; state saved.", style="dim")


def serve(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: WorkersOption = 2,
) -> None:
    """Serve the pages and the auditor API from the index, without starting a chain
    (pair it with `provenance index --follow` against any network). Ctrl-C stops it."""
    from ledger.cli.web import WebServer
    from ledger.indexer.store import IndexStore

    stop = threading.Event()
    web: WebServer | None = None
    try:
        settings = OPTIONS.settings()
        # Open (and migrate) the index once here, not concurrently in every worker.
        IndexStore.open(settings.database_url, settings.data_dir).dispose()
        web = WebServer(settings, host, port, workers)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        web.start()
        from ledger.connection import web3_for

        anchoring = start_feedback_anchoring(settings, web3_for(settings), stop)
        console.print(
            f"Serving {web.url}/ (pages; auditor API at /docs); feedback anchored on {anchoring}. Press Ctrl-C to stop."
        )
        keep_running(stop, [(web.running, f"the web server stopped unexpectedly; see {web.log_file}")])
    except LedgerError as exc:
        fail(str(exc))
    finally:
        if web is not None:
            web.stop()
