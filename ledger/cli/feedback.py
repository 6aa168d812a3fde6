"""`provenance feedback`: the maker answers and hides shoppers' comments; anyone anchors
and verifies the hash-chained feedback log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ledger.cli.common import OPTIONS, AccountOption, JsonOption, emit, fail, handles_errors, print_fields, say, show_time

if TYPE_CHECKING:
    from ledger.feedback.maker import MakerDesk
    from ledger.feedback.store import Entry, FeedbackStore
    from ledger.queries import ReadModel

app = typer.Typer(help="Shoppers' feedback: answer, hide behind a tombstone, anchor and verify the log.", no_args_is_help=True)

EntryArg = Annotated[int, typer.Argument(help="The comment's number (ENTRY_ID, as the page and the log show it).", min=1)]


def _store() -> FeedbackStore:
    from ledger.feedback.store import FeedbackStore

    settings = OPTIONS.settings()
    return FeedbackStore.open(settings.feedback_database_url, settings.data_dir)


def _read_model() -> ReadModel:
    from ledger.documents import DocumentStore
    from ledger.indexer.store import IndexStore
    from ledger.queries import ReadModel

    settings = OPTIONS.settings()
    return ReadModel(IndexStore.open(settings.database_url, settings.data_dir), DocumentStore(settings.documents_dir))


def _show_entry(as_json: bool, entry: Entry, what: str) -> None:
    def human() -> None:
        say(what)
        print_fields([("entry", entry.sequence), ("comment", entry.target), ("entry hash", entry.entry_hash)])

    data = {"sequence": entry.sequence, "kind": entry.kind, "target": entry.target, "entry_hash": entry.entry_hash}
    emit(as_json, {**data, "content": entry.content}, human)


def _desk(account: str | None) -> MakerDesk:
    from ledger.cli.common import connection
    from ledger.feedback.maker import MakerDesk
    from ledger.signers import resolve_signer

    conn = connection()
    return MakerDesk(_store(), _read_model(), resolve_signer(conn.settings, conn.w3, account), conn.w3, conn.settings.chain_id)


@app.command()
@handles_errors
def reply(
    entry_id: EntryArg,
    text: Annotated[str, typer.Argument(help="The answer, shown under the comment.")],
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a comment publicly, signed by your account (the lot's supplier or the ledger's admin)."""
    entry = _desk(account).reply(entry_id, text)
    _show_entry(as_json, entry, f"Answered comment {entry_id}.")


@app.command()
@handles_errors
def hide(
    entry_id: EntryArg,
    reason: Annotated[str, typer.Option("--reason", help="Why, shown to everyone in the comment's place.")],
    erase: Annotated[
        bool, typer.Option(help="Also erase the stored text (personal data, unlawful content); its hash stays.")
    ] = False,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hide a comment: the page shows "A comment was hidden by <maker> on <date>: <reason>" in its place."""
    entry = _desk(account).hide(entry_id, reason, erase=erase)
    _show_entry(as_json, entry, f"Hid comment {entry_id}; its tombstone is public.")


@app.command()
@handles_errors
def anchor(account: AccountOption = None, as_json: JsonOption = False) -> None:
    """Anchor the log's head on chain now (one event), whatever the server's schedule."""
    from ledger.cli.common import connection
    from ledger.feedback.anchoring import anchoring_signer, anchors_at, send_anchor
    from ledger.signers import resolve_signer

    conn = connection()
    store = _store()
    head = store.head()
    if head.count == 0:
        fail("the feedback log is empty: nothing to anchor")
    signer = resolve_signer(conn.settings, conn.w3, account) if account else anchoring_signer(conn.settings, conn.w3)
    record = send_anchor(conn.settings, conn.w3, signer, anchors_at(conn.settings, conn.settings.chain_id), head)
    store.record_anchor(record)

    def human() -> None:
        say(f"Anchored the feedback log's head (entry {record.count}).")
        print_fields(
            [("head", record.head), ("transaction", record.tx_hash), ("block", record.block_number), ("by", signer.address)]
        )

    emit(as_json, record.__dict__, human)


@app.command("deploy-anchors")
@handles_errors
def deploy_anchors(account: AccountOption = None, as_json: JsonOption = False) -> None:
    """Deploy the Anchors contract beside a ledger recorded without one (deployed before it
    existed, or a `provenance deploy` stopped in between; `provenance run` does this itself
    on the local chain). Finishes an interrupted deployment instead of starting a second."""
    from ledger.connection import web3_for
    from ledger.deploy import anchors_on_network, ensure_anchors, read_deployment
    from ledger.fees import FeePolicy, Outbox, TransactionSender
    from ledger.signers import LocalKeySigner, resolve_signer

    settings = OPTIONS.settings()
    w3 = web3_for(settings)
    record = settings.deployment_record(settings.chain_id)
    if read_deployment(record) is None:
        record = settings.deployment_file
    signer = resolve_signer(settings, w3, account)
    if isinstance(signer, LocalKeySigner):
        outbox = Outbox(settings.data_dir, settings.chain_id, signer.address)
        sender = TransactionSender(w3, signer, settings.chain_id, FeePolicy.from_settings(settings), outbox)
        deployment = anchors_on_network(sender, record)
    else:
        existing = read_deployment(record)
        if existing is None:
            fail(f"no ledger deployment recorded in {record}")
        deployment = ensure_anchors(w3, record, existing, signer.address)
    emit(
        as_json,
        {"anchors": deployment.anchors, "anchors_block": deployment.anchors_block, "record": str(record)},
        lambda: say(f"Anchors contract {deployment.anchors} (block {deployment.anchors_block}), recorded in {record}."),
    )


@app.command()
@handles_errors
def verify(
    anchorer: Annotated[
        str | None, typer.Option(help="Whose anchors to trust (address, node:N, keystore); default: feedback_anchor_account.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute the log's hash chain, check every head anchored on chain at its position and
    every maker's signature. Exit code 1 when anything was removed, changed or forged."""
    from ledger.cli.common import connection
    from ledger.feedback.anchoring import anchored_heads, anchoring_address, anchors_at
    from ledger.feedback.verify import check_log
    from ledger.signers import resolve_address

    conn = connection()
    store = _store()
    entries = store.log(limit=2**31)
    by = resolve_address(conn.settings, conn.w3, anchorer) if anchorer else anchoring_address(conn.settings, conn.w3)
    heads = anchored_heads(conn.w3, anchors_at(conn.settings, conn.settings.chain_id), by)
    report = check_log(entries, heads, _makers(entries))
    last = max((h.count for h in heads), default=0)
    # Entries after the last anchor are only as safe as the server's database: say how many,
    # so a log nobody anchored (or a wrong --anchorer) does not read as proven.
    unanchored = report.entries - last
    warning = (
        f"{unanchored} of {report.entries} entries are not covered by any anchor of {by}: "
        "their removal could not be shown (anchor with `provenance feedback anchor`, or check --anchorer)."
        if unanchored > 0
        else None
    )
    data = {
        "ok": report.ok,
        "entries": report.entries,
        "head": report.head,
        "anchors": len(heads),
        "anchored_by": by,
        "unanchored_entries": max(unanchored, 0),
        "warning": warning,
        "problems": report.problems(),
    }

    def human() -> None:
        say(f"{report.entries} entries; {len(heads)} anchors by {by} (latest covers entry {last}).")
        if warning:
            say(f"WARNING: {warning}")
        for problem in report.problems():
            say(f"PROBLEM: {problem}")
        say("The feedback log verifies." if report.ok else "The feedback log does NOT verify.")

    emit(as_json, data, human)
    if not report.ok:
        raise typer.Exit(1)


def _makers(entries: list[Entry]) -> dict[int, set[str]]:
    """Who may answer or hide each comment: its lot's supplier and the ledger's admins."""
    model = _read_model()
    admins = {a.lower() for a in model.admins()}
    suppliers: dict[str, str | None] = {}
    allowed: dict[int, set[str]] = {}
    for entry in entries:
        if entry.kind == "comment":
            if entry.batch_id not in suppliers:
                batch = model.batch(entry.batch_id)
                suppliers[entry.batch_id] = batch.supplier.lower() if batch else None
            supplier = suppliers[entry.batch_id]
            allowed[entry.sequence] = admins | ({supplier} if supplier else set())
    return allowed


@app.command("list")
@handles_errors
def list_(
    gtin: Annotated[str, typer.Argument(help="GTIN, or a batch id (0x...).")],
    lot: Annotated[str | None, typer.Argument(help="Lot (none: every lot of the GTIN).")] = None,
    as_json: JsonOption = False,
) -> None:
    """A lot's (or a product's) comments with their numbers, replies and tombstones."""
    from ledger.cli.common import parse_batch_id
    from ledger.feedback.summary import summarise, thread_view, threads

    store = _store()
    if lot is None and not gtin.startswith("0x"):
        found = threads(store.entries_of(gtin=gtin))
    else:
        found = threads(store.entries_of(["0x" + parse_batch_id(gtin, lot or "").hex()]))
    views = [thread_view(t, {}) for t in found]
    data = {"summary": summarise(found).as_dict(), "comments": views}

    def human() -> None:
        for view in views:
            if view["hidden"]:
                say(f"#{view['sequence']} {show_time(view['at'])}  hidden by {view['hidden']['by']}: {view['hidden']['reason']}")
            else:
                stars = f" {view['rating']}/5" if view["rating"] else ""
                say(
                    f"#{view['sequence']} {show_time(view['at'])}{stars}{' (question)' if view['question'] else ''}  {view['text'] or ''}"
                )
            for r in view["replies"]:
                say(f"    reply #{r['sequence']} by {r['by']}: {r['text']}")
        say(f"{len(views)} comments.")

    emit(as_json, data, human)
