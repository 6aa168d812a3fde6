"""`provenance batch`: register, hand over, record steps, transform and recall batches."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ledger.cli.common import (
    AccountOption,
    JsonOption,
    address_of,
    cell,
    check_output_path,
    connection,
    console,
    emit,
    handles_errors,
    parse_batch_id,
    print_fields,
    say,
    writer,
)
from ledger.cli.documents import BULK_PUSH_SECONDS, publish_after_write
from ledger.errors import InvalidInputError

if TYPE_CHECKING:
    from ledger.connection import LedgerConnection
    from ledger.documents import DocumentStore
    from ledger.models import BatchCreate, DocumentRef, RecallState, RegistrationResult, TransformationKind
    from ledger.writer import LedgerWriter

app = typer.Typer(
    help="Batches: register, hand over, record steps, split/merge/transform, recall, review, void.", no_args_is_help=True
)

GtinArgument = Annotated[str, typer.Argument(help="GTIN of the batch (or its 0x batch id).")]
LotArgument = Annotated[str, typer.Argument(help="Lot number of the batch.")]


def _store_documents(store: DocumentStore, paths: list[Path], private: bool = False) -> tuple[DocumentRef, ...]:
    from ledger.models import DocumentRef

    if not private:
        return tuple(DocumentRef(name=path.name, sha256=store.put_file(path).hex()) for path in paths)
    # Never pushed nor served: the owner hands it to an auditor itself. The public metadata
    # names it neutrally (a file name such as "Juan-Perez-passport.pdf" is personal data);
    # its real name stays in the owner's data directory, in the private marker.
    refs = []
    for number, path in enumerate(paths, start=1):
        digest = store.put_file(path)
        store.mark_private(digest, path.name)
        refs.append(DocumentRef(name=f"private document {number}", sha256=digest.hex(), private=True))
    return tuple(refs)


def _anchored_documents(metadata: bytes, refs: Iterable[DocumentRef]) -> list[bytes]:
    """What a registration publishes: its metadata document and the public files it names."""
    return [metadata, *(bytes.fromhex(r.sha256) for r in refs if not r.private)]


def _named(refs: Iterable[dict[str, Any]]) -> list[bytes]:
    """The files a note names (its `documents`), as digests."""
    return [bytes.fromhex(r["sha256"]) for r in refs]


def _note_hash(store: DocumentStore, document: dict[str, Any]) -> bytes:
    """Anchor a small JSON note (stored off chain, hash on chain); zero when empty."""
    from ledger.models import ZERO_HASH

    document = {k: v for k, v in document.items() if v}
    return store.put_json(document) if document else ZERO_HASH


def _print_registration(result: RegistrationResult) -> None:
    verb = "Registered" if result.status == "registered" else "Already registered (nothing sent)"
    print_fields(
        [
            (verb, f"lot {result.lot} of GTIN {result.gtin}"),
            ("Batch id", result.batch_id),
            ("Transaction", result.tx_hash),
            ("Block", result.block_number),
            ("Page", result.url),
        ]
    )


@app.command("register")
@handles_errors
def register(
    gtin: Annotated[str, typer.Option(help="GTIN-8/12/13/14 with a valid check digit.")],
    lot: Annotated[str, typer.Option(help="Lot number, up to 20 characters (GS1 AI 10).")],
    quantity: Annotated[int, typer.Option(help="Amount in the base unit, e.g. 60000 for 60,000 kg.")],
    unit: Annotated[
        str,
        typer.Option(help="UN/ECE Rec 20 unit code: KGM, GRM, LTR, H87 (piece)...; `provenance batch units WORD` finds others."),
    ],
    product: Annotated[str, typer.Option(help="What the product is, e.g. 'Green coffee, washed Caturra'.")],
    origin: Annotated[str | None, typer.Option(help="Where it comes from, e.g. 'Finca La Esperanza, Huila, CO'.")] = None,
    doc: Annotated[list[Path] | None, typer.Option(help="A document to anchor (certificate, photo); repeatable.")] = None,
    private_doc: Annotated[
        list[Path] | None,
        typer.Option(
            help="A document to anchor but keep private: never published; pages show that you hold it and its hash. Repeatable."
        ),
    ] = None,
    claim: Annotated[
        list[str] | None,
        typer.Option(
            help="A claim you make yourself, e.g. FAIRTRADE; shown as self-declared until a certifier attests it. Repeatable."
        ),
    ] = None,
    qr: Annotated[Path | None, typer.Option(help="Write the QR code of the batch's page to this .svg or .png.")] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a batch; prints its id, transaction, block and the Digital Link URL of its page."""
    from ledger.documents import metadata_hash
    from ledger.models import BatchCreate

    # Every local check that can fail comes before the registration: a bad --qr path must
    # not surface after the batch is already on the chain.
    if qr is not None:
        check_output_path(qr, "--qr", (".svg", ".png"))
    batch = BatchCreate(
        gtin=gtin,
        lot=lot,
        quantity=quantity,
        unit=unit,
        product=product,
        origin=origin,
        claims=tuple(c.upper() for c in claim or ()),
    )
    w = writer(account)
    refs = _store_documents(w.documents, doc or []) + _store_documents(w.documents, private_doc or [], private=True)
    batch = batch.model_copy(update={"documents": refs})
    result = w.register_batch(batch)
    publish_after_write(w.connection.settings, _anchored_documents(metadata_hash(batch.metadata_document()), refs))
    if qr is not None:
        from ledger.qr import write_qr  # qrcode only when a QR code is asked for

        try:
            write_qr(result.url, qr)
        except OSError as exc:
            raise InvalidInputError(
                f"lot {result.lot} is registered (batch {result.batch_id}), but its QR code could not be written to "
                f"{qr}: {exc.strerror or exc}; run the same command again to write it (nothing is registered twice)"
            ) from exc

    def human() -> None:
        _print_registration(result)
        if qr:
            say(f"QR code     {qr}")

    emit(as_json, {**result.model_dump(), "qr": str(qr) if qr else None}, human)


#: Rows of the human "Rows not registered" table (the JSON summary lists every one).
SHOWN_ERRORS = 1_000


@app.command("import")
@handles_errors
def import_csv(
    path: Annotated[Path, typer.Argument(help="CSV with columns gtin,lot,quantity,unit,product[,origin].")],
    chunk_size: Annotated[
        int, typer.Option(help="Registrations per transaction (fewer where the chain's gas limits require).")
    ] = 480,  # ledger.bulk.DEFAULT_CHUNK, written out: importing it would load web3 for --help
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register every row of a CSV in bulk. Safe to re-run after a crash: rows already
    registered are skipped (never duplicated), the rest are registered (never skipped).
    The file is streamed: its size is bounded by the disk, not by memory."""
    from ledger.cli.csv_rows import CsvRows

    rows = CsvRows.open(path)  # the whole file checked before anything is sent
    w = writer(account)
    settings = w.connection.settings
    documents = w.documents
    published: list[bytes] = []  # only when documents are pushed to a server (publish_to)

    def anchored(digests: list[bytes]) -> None:
        # Remembered for `documents push --all` as they land, in bulk (not a file each).
        documents.mark_anchored_many(digests)
        if settings.publish_to:
            published.extend(digests)

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=as_json,
        transient=False,
    ) as progress:
        task = progress.add_task("Registering", total=rows.count)
        report = w.register_batches(
            rows,
            progress=lambda n: progress.advance(task, n),
            chunk_size=chunk_size,
            keep_results=False,
            on_settled=anchored,
            row_label=lambda index: f"line {rows.line_of(index)}",
        )
    if published:  # already marked anchored in bulk, above: not again as a file each
        publish_after_write(settings, published, wait=BULK_PUSH_SECONDS, mark=False)
    errors = rows.errors + [(rows.line_of(i), message) for i, message in report.failed]
    errors.sort()
    summary = {
        "rows": rows.count,
        "registered": report.registered_count,
        "already_registered": report.already_registered_count,
        "failed": len(errors),
        "transactions": report.transactions,
        "errors": [{"line": line, "error": message} for line, message in errors],
    }

    def human() -> None:
        say(
            f"{summary['registered']} registered, {summary['already_registered']} already registered "
            f"(skipped), {summary['failed']} failed; {summary['transactions']} transaction(s)"
        )
        if errors:
            # A table of a million rows is read by nobody and costs gigabytes to render.
            table = Table("line", "error", title="Rows not registered")
            for line, message in errors[:SHOWN_ERRORS]:
                table.add_row(str(line), cell(message))
            console.print(table)
            if len(errors) > SHOWN_ERRORS:
                say(f"... and {len(errors) - SHOWN_ERRORS:,} more rows not registered (--json lists every one)")

    emit(as_json, summary, human)
    if errors:
        raise typer.Exit(1)


@app.command("units")
@handles_errors
def units(
    word: Annotated[str, typer.Argument(help="Part of a unit's name or code, e.g. litre, pound, KG.")],
    as_json: JsonOption = False,
) -> None:
    """Find UN/ECE Recommendation 20 unit codes (the only units a batch may have) by name."""
    from ledger.units import find_units

    found = find_units(word)
    if not found:
        raise InvalidInputError(f"no UN/ECE Rec 20 unit has {word!r} in its code or name; try a shorter word (e.g. 'gram')")

    def human() -> None:
        table = Table("code", "name")
        for code, name in found.items():
            table.add_row(code, cell(name))
        console.print(table)

    emit(as_json, {"units": [{"code": c, "name": n} for c, n in found.items()]}, human)


def _registration_args(conn: LedgerConnection, batch_id: bytes) -> dict[str, Any]:
    logs = conn.logs("BatchRegistered", batchId=batch_id)
    if not logs:
        raise InvalidInputError(f"batch 0x{batch_id.hex()} is not registered on this ledger: check the GTIN and lot")
    return dict(logs[0]["args"])


def _unit(args: dict[str, Any]) -> str:
    """The unit of a registration as text: anyone may put any 3 bytes on chain (the contract
    only refuses an empty unit), so bytes that are not ASCII are shown replaced (as pages
    show them), not a crash."""
    from ledger.conversions import short_text

    return short_text(args["unit"])


def _metadata(conn: LedgerConnection, metadata_hash: bytes) -> dict[str, Any]:
    """A lot's metadata document: from this data directory, else from the document sources
    (another organisation's lot, e.g. one the roaster received), checked by hash."""
    from ledger.sources import document_store

    try:
        document = json.loads(document_store(conn.settings.documents_dir, conn.settings.document_sources).get(metadata_hash))
    except (FileNotFoundError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


@app.command("show")
@handles_errors
def show(gtin: GtinArgument, lot: LotArgument = "", as_json: JsonOption = False) -> None:
    """Show a batch as the contract sees it now (custodian, quantities, status)."""
    from ledger.identifiers import digital_link, lot_from_bytes
    from ledger.indexer.decoding import INVALID_TEXT, INVALID_TEXT_NOTE
    from ledger.models import BatchStatus, RecallState, metadata_mismatch
    from ledger.writer import hex0x

    conn = connection()
    batch_id = parse_batch_id(gtin, lot)
    args = _registration_args(conn, batch_id)
    (supplier, custodian, pending, registered, remaining, status, recalled, recall_state, registered_at) = (
        conn.contract.functions.getBatch(batch_id).call()
    )
    meta = _metadata(conn, bytes(args["metadataHash"]))
    unit = _unit(args)
    lot_text = lot_from_bytes(args["lot"])
    # Details count only from a document that names this GTIN and lot: anyone can anchor
    # another lot's hash.
    details_problem = metadata_mismatch(meta, f"{args['gtin']:014d}", lot_text) if meta else None
    if details_problem:
        meta = {}
    # Why it was voided or recalled, and how the admin reviewed it: the latest word of each.
    said = {
        event: max(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))["args"] if logs else None
        for event in ("BatchVoided", "BatchRecalled", "RecallReviewed")
        for logs in [conn.logs(event, batchId=batch_id)]
    }
    data = {
        "batch_id": hex0x(batch_id),
        "gtin": f"{args['gtin']:014d}",
        "lot": lot_text,
        "product": meta.get("product"),
        "origin": meta.get("origin"),
        "supplier": supplier,
        "custodian": custodian,
        "pending_custodian": None if int(pending, 16) == 0 else pending,
        "registered_quantity": registered,
        "remaining_quantity": remaining,
        "unit": unit,
        "status": {s.value: s.name.lower() for s in BatchStatus}.get(status, "unknown"),
        "recalled": recalled,
        "recall_state": RecallState(recall_state).name.lower(),
        "recall_reason": said["BatchRecalled"]["reason"] if said["BatchRecalled"] else None,
        "review_reason": said["RecallReviewed"]["reason"]
        if said["RecallReviewed"] and recall_state >= RecallState.UPHELD
        else None,
        "void_reason": said["BatchVoided"]["reason"] if said["BatchVoided"] else None,
        "registered_at": registered_at,
        "details_problem": details_problem,
        "invalid_utf8": sorted(
            f"{event}.{field}" for event, said_args in said.items() if said_args for field in said_args.get(INVALID_TEXT, [])
        ),
        "url": digital_link(f"{args['gtin']:014d}", lot_text).url(conn.settings.public_base_url),
    }
    emit(
        as_json,
        data,
        lambda: print_fields(
            [
                ("Batch", f"lot {lot_text} of GTIN {data['gtin']}"),
                ("Product", data["product"]),
                ("Details", details_problem and f"do not match this lot ({details_problem}); not shown"),
                ("Origin", data["origin"]),
                ("Supplier", conn.names.actor(supplier)),
                ("Custodian", conn.names.actor(custodian)),
                ("Offered to", data["pending_custodian"] and conn.names.actor(pending)),
                ("Quantity", f"{remaining} of {registered} {unit} left"),
                ("Status", data["status"] + _recall_words(RecallState(recall_state))),
                (
                    "Voided",
                    data["void_reason"] and f"{data['void_reason']} (by {conn.names.actor((said['BatchVoided'] or {})['by'])})",
                ),
                ("Recall", data["recall_reason"]),
                ("Review", data["review_reason"]),
                ("Note", f"{', '.join(data['invalid_utf8'])}: {INVALID_TEXT_NOTE}" if data["invalid_utf8"] else None),
                ("Page", data["url"]),
            ]
        ),
    )


def _recall_words(state: RecallState) -> str:
    from ledger.models import RecallState

    return {
        RecallState.NONE: "",
        RecallState.RECALLED: ", RECALLED (awaiting the admin's review)",
        RecallState.UPHELD: ", RECALLED (upheld by the admin)",
        RecallState.WITHDRAWN: ", recall withdrawn by the admin",
    }[state]


def _tx_output(as_json: bool, what: str, receipt: Any, **extra: Any) -> None:
    emit(as_json, {**extra, **receipt.model_dump()}, lambda: say(f"{what}; tx {receipt.tx_hash}, block {receipt.block_number}"))


@app.command("transfer")
@handles_errors
def transfer(
    gtin: GtinArgument,
    lot: LotArgument,
    to: Annotated[str, typer.Option(help="Next custodian: address, keystore name or node:N.")],
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Offer a batch you hold to another organisation; it moves when they accept."""
    from ledger.writer import hex0x

    w = writer(account)
    batch_id = parse_batch_id(gtin, lot)
    recipient = address_of(w.connection, to)
    receipt = w.transfer_custody(batch_id, recipient)
    _tx_output(
        as_json,
        f"Offered {w.connection.names.batch(batch_id)} to {w.connection.names.actor(recipient)}",
        receipt,
        batch_id=hex0x(batch_id),
        to=recipient,
    )


@app.command("accept")
@handles_errors
def accept(gtin: GtinArgument, lot: LotArgument, account: AccountOption = None, as_json: JsonOption = False) -> None:
    """Accept a batch offered to you: you become its custodian."""
    from ledger.writer import hex0x

    w = writer(account)
    batch_id = parse_batch_id(gtin, lot)
    receipt = w.accept_custody(batch_id)
    _tx_output(as_json, f"Accepted {w.connection.names.batch(batch_id)}", receipt, batch_id=hex0x(batch_id))


@app.command("cancel")
@handles_errors
def cancel(gtin: GtinArgument, lot: LotArgument, account: AccountOption = None, as_json: JsonOption = False) -> None:
    """Withdraw a hand-over you offered, or decline one offered to you."""
    from ledger.writer import hex0x

    w = writer(account)
    batch_id = parse_batch_id(gtin, lot)
    receipt = w.cancel_custody_transfer(batch_id)
    _tx_output(as_json, f"Cancelled the hand-over of {w.connection.names.batch(batch_id)}", receipt, batch_id=hex0x(batch_id))


@app.command("step")
@handles_errors
def step(
    gtin: GtinArgument,
    lot: LotArgument,
    step_name: Annotated[str, typer.Option("--step", help="CBV business step: shipping, receiving, inspecting...")],
    location: Annotated[str, typer.Option(help="Where: a place (business, town, country) or a GLN.")],
    note: Annotated[str | None, typer.Option(help="A note kept off chain, anchored by hash.")] = None,
    doc: Annotated[list[Path] | None, typer.Option(help="A document to anchor; repeatable.")] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a business step (CBV vocabulary) for a batch you hold."""
    from ledger.cbv import check_business_step
    from ledger.writer import hex0x

    biz_step = check_business_step(step_name)
    w = writer(account)
    batch_id = parse_batch_id(gtin, lot)
    documents = [d.as_json() for d in _store_documents(w.documents, doc or [])]
    data_hash = _note_hash(w.documents, {"note": note, "documents": documents})
    receipt = w.record_step(batch_id, biz_step, location, data_hash)
    publish_after_write(w.connection.settings, [data_hash, *_named(documents)])
    _tx_output(
        as_json,
        f"Recorded {biz_step} at {location} for {w.connection.names.batch(batch_id)}",
        receipt,
        batch_id=hex0x(batch_id),
        step=biz_step,
        location=location,
    )


def _parse_input(spec: str, conn: LedgerConnection) -> tuple[bytes, int, dict[str, Any]]:
    """GTIN:LOT[:QUANTITY] -> (batch id, quantity (default: all that remains), registration args)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise InvalidInputError(f"input {spec!r} must be GTIN:LOT or GTIN:LOT:QUANTITY")
    batch_id = parse_batch_id(parts[0], parts[1])
    args = _registration_args(conn, batch_id)
    remaining = conn.contract.functions.getBatch(batch_id).call()[4]
    quantity = int(parts[2]) if len(parts) == 3 and parts[2].isdigit() else remaining
    if len(parts) == 3 and not parts[2].isdigit():
        raise InvalidInputError(f"quantity in {spec!r} must be a whole number")
    return batch_id, quantity, args


def _parse_output(spec: str) -> BatchCreate:
    """GTIN:LOT:QUANTITY:UNIT:PRODUCT -> BatchCreate."""
    from ledger.models import BatchCreate

    parts = spec.split(":", 4)
    if len(parts) != 5 or not parts[2].isdigit():
        raise InvalidInputError(f"output {spec!r} must be GTIN:LOT:QUANTITY:UNIT:PRODUCT")
    return BatchCreate(gtin=parts[0], lot=parts[1], quantity=int(parts[2]), unit=parts[3], product=parts[4])


def _print_transformation(what: str, transformation_id: str, results: list[RegistrationResult], receipt: Any) -> None:
    say(f"{what}; transformation {transformation_id}, tx {receipt.tx_hash}, block {receipt.block_number}")
    for result in results:
        say(f"  created lot {result.lot} of GTIN {result.gtin}  {result.url}")


def _run_transformation(
    w: LedgerWriter,
    kind: TransformationKind,
    inputs: list[tuple[bytes, int]],
    outputs: list[BatchCreate],
    process: str | None,
    as_json: bool,
    what: str,
) -> None:
    from ledger.writer import hex0x

    data_hash = _note_hash(w.documents, {"process": process, "kind": kind.name.lower()} if process else {})
    transformation_id, results, receipt = w.transform(kind, inputs, outputs, data_hash)
    # The new lots' metadata (their names on every page) and the note, pushed like a registration.
    publish_after_write(
        w.connection.settings,
        [
            data_hash,
            *(bytes.fromhex(r.metadata_hash[2:]) for r in results),
            *(bytes.fromhex(d.sha256) for o in outputs for d in o.documents),
        ],
    )
    emit(
        as_json,
        {
            "transformation_id": transformation_id,
            "kind": kind.name.lower(),
            "inputs": [{"batch_id": hex0x(b), "quantity": q} for b, q in inputs],
            "outputs": [r.model_dump() for r in results],
            **receipt.model_dump(),
        },
        lambda: _print_transformation(what, transformation_id, results, receipt),
    )


@app.command("split")
@handles_errors
def split(
    gtin: GtinArgument,
    lot: LotArgument,
    into: Annotated[list[str], typer.Option(help="NEW_LOT=QUANTITY; repeatable. Same GTIN, unit and product.")],
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Split a batch you hold into new lots (what is not split off stays in the original)."""
    from ledger.identifiers import lot_from_bytes
    from ledger.models import BatchCreate, TransformationKind

    w = writer(account)
    batch_id = parse_batch_id(gtin, lot)
    args = _registration_args(w.connection, batch_id)
    meta = _metadata(w.connection, bytes(args["metadataHash"]))
    unit = _unit(args)
    outputs = []
    for spec in into:
        new_lot, _, quantity = spec.partition("=")
        if not quantity.isdigit():
            raise InvalidInputError(f"--into {spec!r} must be NEW_LOT=QUANTITY")
        outputs.append(
            BatchCreate(
                gtin=f"{args['gtin']:014d}",
                lot=new_lot,
                quantity=int(quantity),
                unit=unit,
                product=meta.get("product") or f"Part of lot {lot_from_bytes(args['lot'])}",
                origin=meta.get("origin"),
            )
        )
    total = sum(o.quantity for o in outputs)
    _run_transformation(
        w,
        TransformationKind.SPLIT,
        [(batch_id, total)],
        outputs,
        None,
        as_json,
        f"Split {total} {unit} off {w.connection.names.batch(batch_id)}",
    )


@app.command("merge")
@handles_errors
def merge(
    input_specs: Annotated[list[str], typer.Option("--input", help="GTIN:LOT[:QUANTITY]; repeatable (2 or more).")],
    gtin: Annotated[str, typer.Option(help="GTIN of the merged batch.")],
    lot: Annotated[str, typer.Option(help="Lot of the merged batch.")],
    product: Annotated[str | None, typer.Option(help="Product (default: that of the first input).")] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Merge batches you hold into one new lot (its quantity is the sum of the inputs)."""
    from ledger.identifiers import parse_gtin
    from ledger.models import BatchCreate, TransformationKind

    w = writer(account)
    parsed = [_parse_input(spec, w.connection) for spec in input_specs]
    units = {_unit(args) for _, _, args in parsed}
    if len(units) > 1:
        raise InvalidInputError(f"merged inputs must share one unit, got {', '.join(sorted(units))}; use `batch transform`")
    first_meta = _metadata(w.connection, bytes(parsed[0][2]["metadataHash"]))
    output = BatchCreate(
        gtin=parse_gtin(gtin),
        lot=lot,
        quantity=sum(q for _, q, _ in parsed),
        unit=units.pop(),
        product=product or first_meta.get("product") or "Merged lot",
    )
    _run_transformation(
        w,
        TransformationKind.MERGE,
        [(b, q) for b, q, _ in parsed],
        [output],
        None,
        as_json,
        f"Merged {len(parsed)} batches into lot {lot}",
    )


@app.command("transform")
@handles_errors
def transform(
    input_specs: Annotated[list[str], typer.Option("--input", help="GTIN:LOT[:QUANTITY] consumed; repeatable.")],
    output_specs: Annotated[list[str], typer.Option("--output", help="GTIN:LOT:QUANTITY:UNIT:PRODUCT created; repeatable.")],
    process: Annotated[str | None, typer.Option(help="What was done, e.g. 'roasting'.")] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Process inputs you hold into new products (e.g. green coffee into roasted coffee)."""
    from ledger.models import TransformationKind

    w = writer(account)
    parsed = [_parse_input(spec, w.connection) for spec in input_specs]
    outputs = [_parse_output(spec) for spec in output_specs]
    _run_transformation(
        w,
        TransformationKind.PROCESSING,
        [(b, q) for b, q, _ in parsed],
        outputs,
        process,
        as_json,
        f"Processed {len(parsed)} input(s) into {len(outputs)} output(s)",
    )


ReasonOption = Annotated[str, typer.Option(help="Why, in a short text shown to customers (1 to 280 bytes).")]


@app.command("recall")
@handles_errors
def recall(
    gtin: GtinArgument,
    lot: LotArgument,
    reason: ReasonOption,
    notice: Annotated[Path | None, typer.Option(help="The full recall notice (stored off chain, its hash on chain).")] = None,
    doc: Annotated[list[Path] | None, typer.Option(help="Another document to anchor with the notice; repeatable.")] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recall a batch (its supplier, even deactivated, or the admin); the admin reviews it."""
    from ledger.identifiers import check_reason
    from ledger.models import ZERO_HASH
    from ledger.writer import hex0x

    check_reason(reason, "recall reason")
    w = writer(account)
    batch_id = parse_batch_id(gtin, lot)
    documents = [d.as_json() for d in _store_documents(w.documents, ([notice] if notice else []) + (doc or []))]
    reason_hash = _note_hash(w.documents, {"reason": reason, "documents": documents}) if documents else ZERO_HASH
    receipt = w.recall_batch(batch_id, reason, reason_hash)
    publish_after_write(w.connection.settings, [reason_hash, *_named(documents)])
    _tx_output(
        as_json,
        f"Recalled {w.connection.names.batch(batch_id)}: {reason}",
        receipt,
        batch_id=hex0x(batch_id),
        reason=reason,
        reason_hash=hex0x(reason_hash),
    )


@app.command("review-recall")
@handles_errors
def review_recall(
    gtin: GtinArgument,
    lot: LotArgument,
    reason: ReasonOption,
    uphold: Annotated[
        bool | None,
        typer.Option(
            "--uphold/--withdraw",
            help="Uphold the recall (final) or withdraw it (the batch may be used again).",
            show_default=False,
        ),
    ] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Review a recall awaiting review (admin): --uphold or --withdraw, with a reason."""
    from ledger.identifiers import check_reason
    from ledger.writer import hex0x

    if uphold is None:
        raise InvalidInputError("say how the recall is reviewed: --uphold (final) or --withdraw (the batch may be used again)")
    check_reason(reason, "review reason")
    w = writer(account)
    batch_id = parse_batch_id(gtin, lot)
    receipt = w.review_recall(batch_id, uphold, reason)
    verdict = "Upheld" if uphold else "Withdrew"
    _tx_output(
        as_json,
        f"{verdict} the recall of {w.connection.names.batch(batch_id)}: {reason}",
        receipt,
        batch_id=hex0x(batch_id),
        upheld=uphold,
        reason=reason,
    )


@app.command("void")
@handles_errors
def void(
    gtin: GtinArgument,
    lot: LotArgument,
    reason: ReasonOption,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Void a batch registered in error (admin). Final: nothing can happen to it any more,
    the lot stays taken, and its page says it was voided, by whom and why."""
    from ledger.identifiers import check_reason
    from ledger.writer import hex0x

    check_reason(reason, "reason for voiding")
    w = writer(account)
    batch_id = parse_batch_id(gtin, lot)
    receipt = w.void_batch(batch_id, reason)
    _tx_output(
        as_json, f"Voided {w.connection.names.batch(batch_id)}: {reason}", receipt, batch_id=hex0x(batch_id), reason=reason
    )
