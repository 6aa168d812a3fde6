"""`provenance index`, `history`, `lineage`, `claims`: the auditor's view, read from the index."""

from __future__ import annotations

import signal
import threading
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.tree import Tree

from ledger.cli.common import (
    OPTIONS,
    JsonOption,
    address_of,
    connection,
    console,
    emit,
    err_console,
    handles_errors,
    parse_time,
    safe,
    say,
    show_time,
)
from ledger.errors import ChainError, ConfigurationError, InvalidInputError

if TYPE_CHECKING:
    from ledger.indexer.follow import WriterLock
    from ledger.indexer.scanner import Scanner
    from ledger.indexer.store import IndexStore
    from ledger.queries import ReadModel
    from ledger.records import Batch, EventRecord, LineageNode

#: ledger.queries.DEFAULT_DEPTH, written out because the read model imports SQLAlchemy
#: and `--help` must not (tests/ledger/test_cli_startup.py checks the two agree).
DEFAULT_DEPTH = 32

BatchArgs = Annotated[list[str], typer.Argument(help="A batch id (0x...), or GTIN and LOT.")]


def _store() -> IndexStore:
    from ledger.indexer.store import IndexStore

    settings = OPTIONS.settings()
    return IndexStore.open(settings.database_url, settings.data_dir)


def _read_model() -> ReadModel:
    from ledger.documents import DocumentStore
    from ledger.queries import ReadModel

    settings = OPTIONS.settings()
    return ReadModel(_store(), DocumentStore(settings.documents_dir))


def _batch_id(args: list[str]) -> str:
    from ledger.identifiers import batch_id as derive_batch_id

    if len(args) == 1 and args[0].startswith("0x") and len(args[0]) == 66:
        return args[0].lower()
    if len(args) == 2:
        return "0x" + derive_batch_id(args[0], args[1]).hex()
    raise InvalidInputError("name a batch by its id (0x and 64 hex digits) or by GTIN and LOT")


def _require(model: ReadModel, batch_id: str) -> Batch:
    batch = model.batch(batch_id)
    if batch is None:
        raise InvalidInputError(
            f"batch {batch_id} is not in the index: check the GTIN and lot, or run `provenance index` to catch up"
        )
    return batch


@handles_errors
def index(
    follow: Annotated[bool, typer.Option(help="Keep following the chain until Ctrl-C.")] = False,
    rebuild: Annotated[bool, typer.Option(help="Drop the index and rebuild it from the chain.")] = False,
    max_blocks: Annotated[int, typer.Option(help="Most blocks per eth_getLogs request (providers cap it).")] = 50_000,
    as_json: JsonOption = False,
) -> None:
    """Bring the index up to date with the chain (catch up and exit, or --follow).

    One follower writes an index at a time (`provenance run` has one): a second waits and
    takes over when the first stops; a catch-up finding one at work leaves the index to it."""
    from sqlalchemy.exc import SQLAlchemyError

    from ledger.indexer.follow import acquire_within, database_label, writer_lock
    from ledger.indexer.scanner import Scanner
    from ledger.indexer.store import IndexStore

    conn = connection()
    store = IndexStore.open(conn.settings.database_url, conn.settings.data_dir)
    scanner = Scanner.for_settings(conn, store, max_range=max_blocks)
    lock = writer_lock(store)
    stop = threading.Event()
    if follow:  # Ctrl-C also ends a wait for the lock
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    try:
        leader = lock.try_acquire() if follow else acquire_within(lock, LOCK_WAIT_SECONDS)
        if rebuild and not leader:
            raise ConfigurationError(f"{ANOTHER_WRITER}: stop it before --rebuild")
        if leader:
            _catch_up(conn.settings.rpc_url, store, scanner, rebuild, conn.deploy_block, as_json)
        elif not follow:
            emit(
                as_json,
                {"skipped": ANOTHER_WRITER, "database": database_label(store)},
                lambda: console.print(f"{ANOTHER_WRITER} and keeps it up to date; nothing to do here"),
            )
            return
        if follow:
            _follow(conn.settings.rpc_url, scanner, lock, stop)
    except SQLAlchemyError as exc:  # asking for the lock; the follow loop itself waits outages out
        raise ConfigurationError(f"the index database {database_label(store)} does not answer ({_first_line(exc)})") from exc
    finally:
        lock.release()
        store.dispose()


#: How long a catch-up (`provenance index`) waits for a follower's lock before leaving the index to it.
LOCK_WAIT_SECONDS = 5.0
ANOTHER_WRITER = "another follower (`provenance run` or `provenance index --follow`) writes this index"


def _catch_up(rpc_url: str, store: IndexStore, scanner: Scanner, rebuild: bool, first: int, as_json: bool) -> None:
    """Rebuild (if asked) and catch up with a progress bar, then print what was done."""
    from requests.exceptions import RequestException
    from sqlalchemy.exc import SQLAlchemyError
    from web3.exceptions import Web3Exception

    from ledger.indexer.follow import database_label
    from ledger.indexer.scanner import ScanReport

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
    try:
        if rebuild:
            store.drop_all()
        with Progress(*columns, console=console, disable=as_json, transient=True) as progress:
            task = progress.add_task("Indexing", total=None)

            def show(report: ScanReport) -> None:
                progress.update(
                    task,
                    total=max(1, report.head - first + 1),
                    completed=max(0, report.cursor - first + 1),
                    description=f"Indexing blocks ({report.events_added:,} events)",
                )

            report = scanner.sync(show)
        set_aside, items = store.set_aside(20)
    except SQLAlchemyError as exc:
        raise ConfigurationError(f"the index database {database_label(store)} does not answer ({_first_line(exc)})") from exc
    except (RequestException, Web3Exception, OSError) as exc:
        raise ChainError(f"the chain at {rpc_url} stopped answering ({_first_line(exc)})") from exc
    summary = {
        "events_added": report.events_added,
        "cursor": report.cursor,
        "head": report.head,
        "reorgs": report.reorgs,
        "events_dropped": report.events_dropped,
        "rewound_to": report.rewound_to,
        "database": store.url.split("@")[-1],
        "set_aside": set_aside,
    }

    def human() -> None:
        notice = report.rewind_notice()
        if notice:
            err_console.print(f"[yellow]note:[/] {safe(notice)}")
        console.print(
            f"Indexed up to block {report.cursor:,} (head {report.head:,}): {report.events_added:,} new events"
            + (f"; {report.reorgs} reorganisation(s) rewound" if report.reorgs else "")
        )
        if set_aside:
            # Not fatal: the index went on without them; /healthz says "degraded" until they are dealt with.
            err_console.print(f"[yellow]{set_aside} event(s) set aside[/] (could not be decoded or applied); the newest:")
            for item in items:
                err_console.print(
                    safe(f"  block {item.block_number} {item.name} {item.tx_hash} log {item.log_index}: {item.reason}")
                )

    emit(as_json, summary, human)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def _follow(rpc_url: str, scanner: Scanner, lock: WriterLock, stop: threading.Event) -> None:
    """Follow until Ctrl-C: retrying through outages, waiting for or holding the lock."""
    from ledger.indexer.follow import Follower
    from ledger.indexer.scanner import ScanReport

    console.print("Following the chain; Ctrl-C stops.", style="dim")

    def changed(report: ScanReport) -> None:
        console.print(
            f"block {report.cursor:,}: {report.events_added} new events"
            + (f", {report.reorgs} reorg(s)" if report.reorgs else "")
        )

    def notice(line: str) -> None:
        err_console.print(f"[yellow]index:[/] {safe(line)}")

    Follower(scanner, lock, rpc_url, notice, changed).run(stop)


def _describe(event: EventRecord, names: dict[str, str]) -> str:
    from ledger.indexer.decoding import INVALID_TEXT_NOTE

    text = _describe_event(event, names)
    if event.invalid_text:
        # A raw transaction put bytes that are not UTF-8 into its text: say so next to it.
        text += f" ({INVALID_TEXT_NOTE})"
    return text


def _describe_event(event: EventRecord, names: dict[str, str]) -> str:
    from ledger import records as r

    def who(address: str) -> str:
        return names.get(address) or address

    match event.data:
        case r.BatchRegistered(quantity=quantity, unit=unit):
            return f"registered {quantity} {unit}"
        case r.CustodyTransferProposed(to=to):
            return f"offered to {who(to)}"
        case r.CustodyTransferAccepted(sender=sender, to=to):
            return f"handed over from {who(sender)} to {who(to)}"
        case r.CustodyTransferCancelled():
            return "hand-over cancelled"
        case r.StepRecorded(biz_step=step, location=location):
            return f"{step} at {location}"
        case r.TransformationRecorded(kind=kind, inputs=inputs, outputs=outputs):
            return f"{kind}: {len(inputs)} input(s) into {len(outputs)} output(s)"
        case r.BatchRecalled(reason=reason):
            return f"RECALLED: {reason}"
        case r.RecallReviewed(upheld=upheld, reason=reason):
            return f"recall {'UPHELD' if upheld else 'withdrawn'}: {reason}"
        case r.BatchVoided(reason=reason):
            return f"VOIDED: {reason}"
        case r.Attested(claim=claim):
            return f"claim {claim} attested"
        case r.AttestationRevoked(reason=reason):
            return f"claim revoked: {reason}"
    return event.name


@handles_errors
def history(
    batch: BatchArgs,
    ancestors: Annotated[bool, typer.Option(help="Include the inputs' history.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Every event of a batch and of everything it was made from, with transaction hashes."""
    model = _read_model()
    bid = _batch_id(batch)
    head = _require(model, bid)
    events = model.history(bid, include_ancestors=ancestors)

    def human() -> None:
        console.print(f"[bold]{head.product or 'Batch'}[/], lot {head.lot} of GTIN {head.gtin}")
        names = model.who(
            {e.actor for e in events if e.actor}
            | {e.args.get("from", "") for e in events}
            | {e.args.get("to", "") for e in events}
        )
        table = Table(box=None)
        for column in ("when (UTC)", "lot", "what", "who"):
            table.add_column(column)
        # Chain strings (reasons, places, names) are printed as text, never as console markup.
        table.add_column("transaction", overflow="fold", min_width=66)  # whole: it is the proof
        table.add_column("block", justify="right")
        for e in events:
            who = e.actor_name or names.get(e.actor or "", e.actor or "")  # an admin acting: "the ledger's admin"
            if e.actor_name_then and e.actor_name_then != e.actor_name:
                who = f"{e.actor_name_then} (now {e.actor_name})"  # the name it acted under, as approved then
            table.add_row(
                show_time(e.timestamp)[:16],
                safe(e.lot or ""),
                safe(_describe(e, names)),
                safe(who),
                e.tx_hash,
                str(e.block_number),
            )
        console.print(table)

    emit(as_json, {"batch": head.as_dict(), "events": [e.as_dict() for e in events]}, human)


def _tree(node: LineageNode, tree: Tree, key: str) -> None:
    for child in (node.inputs if key == "inputs" else node.outputs) or ():
        lot = child.summary
        if lot is None:  # a lot the index does not hold
            label = safe(f"batch {child.batch_id} (not in the index)")
        else:
            label = safe(f"lot {lot.lot} of {lot.gtin}: {lot.product or ''} ({lot.supplier_name or lot.supplier})")
        if child.quantity_used is not None:
            label = f"{child.quantity_used} {lot.unit if lot else ''} of " + label
        if lot is not None and lot.recalled:
            label += " [bold red]RECALLED[/]"
        _tree(child, tree.add(label), key)


@handles_errors
def lineage(
    batch: BatchArgs,
    depth: Annotated[int, typer.Option(help="How many transformations to follow.")] = DEFAULT_DEPTH,
    as_json: JsonOption = False,
) -> None:
    """Where a batch came from (inputs, recursively) and where it went (descendants)."""
    model = _read_model()
    bid = _batch_id(batch)
    head = _require(model, bid)
    up, down = model.lineage_up(bid, depth), model.lineage_down(bid, depth)

    def human() -> None:
        title = safe(f"lot {head.lot} of {head.gtin}: {head.product or ''}") + (" [red]RECALLED[/]" if head.recalled else "")
        if head.status == "voided":
            title += " [red]VOIDED[/]"
        made_of = Tree(f"[bold]{title}[/] is made from")
        _tree(up, made_of, "inputs")
        console.print(made_of if up.inputs else f"{title} was not made from other batches")
        went = Tree(f"[bold]{title}[/] went into")
        _tree(down, went, "outputs")
        console.print(went if down.outputs else f"{title} has not gone into other batches")

    emit(as_json, {"up": up.as_dict(), "down": down.as_dict()}, human)


@handles_errors
def claims(
    subject: Annotated[
        list[str], typer.Argument(help="A batch (id, or GTIN LOT) or an organisation (address, node:N, keystore name).")
    ],
    at: Annotated[str | None, typer.Option(help="Status at this time (YYYY-MM-DD...); default now.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Ethical-sourcing claims about a batch or an organisation, with their status."""
    from ledger.indexer.decoding import INVALID_TEXT_NOTE

    model = _read_model()
    moment = parse_time(at) or int(time.time())
    coverage: dict[str, float] = {}
    if len(subject) == 2 or (subject[0].startswith("0x") and len(subject[0]) == 66):
        key = _batch_id(subject)
        _require(model, key)
        coverage = model.coverage(key, moment)
    else:
        key = address_of(connection(), subject[0]) if not subject[0].startswith("0x") else subject[0]
    found = model.claims(key, moment)

    def human() -> None:
        if not found:
            console.print("No claims are attested about this subject.")
        table = Table(box=None)
        for column in ("claim", "status", "issuer", "valid from", "valid until"):
            table.add_column(column)
        table.add_column("attestation", overflow="fold", min_width=66)
        for c in found:
            colour = "green" if c.status == "valid" else "red"
            status = c.status.replace("_", " ") + (
                f": {c.revocation_reason}" if c.status == "revoked" and c.revocation_reason else ""
            )
            if c.status == "revoked" and c.revocation_reason_invalid_utf8:
                status += f" ({INVALID_TEXT_NOTE})"
            table.add_row(
                safe(c.claim),
                f"[{colour}]{safe(status)}[/]",
                safe(c.issuer_name or c.issuer),
                show_time(c.valid_from)[:10],
                show_time(c.valid_until)[:10],
                c.uid,
            )
        if found:
            console.print(table)
        for claim, share in coverage.items():
            say(f"{claim}: {share:.0%} of the raw-material input quantity")

    emit(as_json, {"subject": key, "at": moment, "claims": [c.as_dict() for c in found], "coverage": coverage}, human)
