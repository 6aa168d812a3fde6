"""`provenance documents`: push the public documents you anchored to your `publish_to`
servers, see what is still queued, and hand a private document to an auditor."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.cli.common import OPTIONS, JsonOption, check_output_path, emit, err_console, handles_errors, print_fields, say
from ledger.errors import InvalidInputError

if TYPE_CHECKING:
    from ledger.config import Settings
    from ledger.publishing import Outbox

#: How long a bulk write keeps pushing to a server that asks to slow down (429) before
#: leaving the rest queued for `provenance documents push`.
BULK_PUSH_SECONDS = 120.0

app = typer.Typer(help="Documents anchored on the ledger: publish them, check the queue, export one.", no_args_is_help=True)

HashArgument = Annotated[str, typer.Argument(help="sha256 of the document (hex, with or without 0x).")]


def outbox(settings: Settings) -> Outbox:
    """The push queue of these settings' data directory."""
    from ledger.documents import DocumentStore
    from ledger.publishing import Outbox

    return Outbox(settings.data_dir, DocumentStore(settings.documents_dir), settings.publish_to)


def publish_after_write(settings: Settings, digests: Iterable[bytes], wait: float | None = None, mark: bool = True) -> None:
    """Queue the public documents a write just anchored (zero hashes, private documents
    and documents not held here are skipped) and push them to every `publish_to` server
    in one round, saying on stderr what was delivered and what stays queued. `wait`: how
    long to keep retrying a server that does not see them anchored yet or asks to slow
    down (default ledger.publishing.ANCHOR_WAIT_SECONDS). Never fails the command: the
    write is done, and the queue keeps what is pending. `mark=False`: the caller already
    remembered them as anchored (a bulk import, in the pack index)."""
    from ledger.documents import DocumentStore

    digests = list(digests)
    store = DocumentStore(settings.documents_dir)
    for digest in digests if mark else ():  # remembered even with no publish_to yet: `documents push --all`
        if digest != bytes(32) and not store.is_private(digest) and store.has(digest):
            store.mark_anchored(digest)
    if not settings.publish_to:  # most writes publish nowhere
        return
    from ledger.publishing import ANCHOR_WAIT_SECONDS
    from ledger.sources import redact

    box = outbox(settings)
    queued = box.enqueue(digests)
    if not queued:
        return
    report = box.push(only=queued, wait_for_anchor=ANCHOR_WAIT_SECONDS if wait is None else wait)
    for server in box.servers:
        pending = report.pending.get(server, 0)
        if pending:
            err_console.print(
                f"Queued {pending} document(s) for {redact(server)} ({report.errors.get(server, 'not delivered')}); "
                "`provenance documents push` retries.",
                markup=False,
                highlight=False,
            )
        else:
            err_console.print(f"Published {len(queued)} document(s) to {redact(server)}.", markup=False, highlight=False)


def parse_digest(text: str) -> bytes:
    """A sha256 digest from 64 hex digits (0x optional)."""
    body = text.lower().removeprefix("0x")
    if len(body) != 64 or any(c not in "0123456789abcdef" for c in body):
        raise InvalidInputError(f"{text!r} is not a sha256 hash (64 hexadecimal digits)")
    return bytes.fromhex(body)


@app.command("push")
@handles_errors
def push(
    every: Annotated[
        bool,
        typer.Option(
            "--all",
            help="First queue again every public document your writes anchored that a server has not taken (publish_to set later, an interrupted write).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Push every queued document to the `publish_to` servers that do not have it yet."""
    from ledger.publishing import ANCHOR_WAIT_SECONDS
    from ledger.sources import redact

    settings = OPTIONS.settings()
    if not settings.publish_to:
        raise InvalidInputError("no servers to publish to: set publish_to in config.toml or PROVENANCE_PUBLISH_TO")
    box = outbox(settings)
    if every:
        box.enqueue(d for missing in box.never_queued().values() for d in missing)
    report = box.push(wait_for_anchor=ANCHOR_WAIT_SECONDS)

    def human() -> None:
        for server in settings.publish_to:
            line = f"{redact(server)}: delivered {report.delivered.get(server, 0)}, pending {report.pending.get(server, 0)}"
            say(line + (f" ({report.errors[server]})" if server in report.errors and report.pending.get(server) else ""))

    emit(as_json, {part: {redact(s): v for s, v in values.items()} for part, values in report.as_dict().items()}, human)
    if any(report.pending.values()):
        raise typer.Exit(1)


@app.command("status")
@handles_errors
def status(as_json: JsonOption = False) -> None:
    """How many documents are still to be pushed to each server, and the last error."""
    from ledger.sources import redact

    settings = OPTIONS.settings()
    box = outbox(settings)
    pending = box.pending()
    errors = box.last_errors()
    never = box.never_queued()
    data = {
        "servers": [
            {
                "url": redact(s),
                "pending": len(pending[s]),
                "pending_sha256": [d.hex() for d in pending[s]],
                "last_error": errors.get(s),
                "never_queued": len(never[s]),
            }
            for s in box.servers
        ]
    }

    def human() -> None:
        if not box.servers:
            say("No servers to publish to (publish_to is empty).")
        for server in data["servers"]:
            say(
                f"{server['url']}: {server['pending']} pending"
                + (f"; last error: {server['last_error']}" if server["last_error"] else "")
            )
            if server["never_queued"]:
                say(
                    f"{server['url']}: {server['never_queued']} public document(s) you anchored were never queued for it; "
                    "`provenance documents push --all` sends them"
                )

    emit(as_json, data, human)


@app.command("export")
@handles_errors
def export(
    digest: HashArgument,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the document (e.g. for an auditor).")],
    as_json: JsonOption = False,
) -> None:
    """Copy a document you hold (public or private) out of the data directory, e.g. to hand
    a private certificate to an auditor, who checks its sha256 against the chain with
    `provenance documents check FILE HASH`."""
    from ledger.cid import cid_of_digest
    from ledger.documents import DocumentStore

    check_output_path(output, "-o")
    wanted = parse_digest(digest)
    store = DocumentStore(OPTIONS.settings().documents_dir)
    if not store.verify(wanted):
        raise InvalidInputError(f"no intact document with sha256 {wanted.hex()} is in this data directory")
    store.export(wanted, output)
    emit(
        as_json,
        {"sha256": wanted.hex(), "cid": cid_of_digest(wanted), "output": str(output), "private": store.is_private(wanted)},
        lambda: say(f"Wrote {output} (sha256 {wanted.hex()})"),
    )


def _envelope(anchored: bytes, given: Path | None) -> bytes | None:
    """The document anchored as `anchored` that might be an evidence envelope: the file
    given with --envelope, else this data directory's copy or one fetched from its
    document_sources (checked by hash either way); None when there is none."""
    from ledger.documents import sha256
    from ledger.sources import document_store

    if given is not None:
        try:
            data = given.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {given}: {exc.strerror}") from exc
        return data if sha256(data) == anchored else None
    settings = OPTIONS.settings()
    try:
        return document_store(settings.documents_dir, settings.document_sources).get(anchored)
    except FileNotFoundError:
        return None


@app.command("check")
@handles_errors
def check(
    file: Annotated[Path, typer.Argument(help="The document you were given.")],
    digest: HashArgument,
    envelope: Annotated[
        Path | None,
        typer.Option(
            help="The evidence envelope anchored as HASH (default: this data directory's copy, or one from document_sources)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a document handed to you against the hash the chain anchors (from the page,
    `provenance history`, or a proof bundle): exit 0 when it is that document, or the
    private file that the evidence envelope anchored as HASH names (file -> envelope ->
    chain: private attestation evidence is anchored that way)."""
    from ledger.documents import enveloped_evidence, sha256

    wanted = parse_digest(digest)
    try:
        actual = sha256(file.read_bytes())
    except OSError as exc:
        raise InvalidInputError(f"cannot read {file}: {exc.strerror}") from exc
    via = None
    if actual != wanted:
        anchored = _envelope(wanted, envelope)
        if anchored is not None and enveloped_evidence(anchored) == actual:
            via = wanted.hex()
    same = actual == wanted or via is not None
    result = (
        "matches the anchored hash"
        if actual == wanted
        else (f"matches: it is the private file the evidence envelope {via} names" if via else f"does NOT match {wanted.hex()}")
    )
    emit(
        as_json,
        {"file": str(file), "sha256": actual.hex(), "expected": wanted.hex(), "matches": same, "envelope": via},
        lambda: print_fields([("Document", str(file)), ("sha256", actual.hex()), ("Result", result)]),
    )
    if not same:
        raise typer.Exit(1)
