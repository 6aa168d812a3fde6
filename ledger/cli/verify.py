"""`provenance verify` and `provenance proof`: check the index and the documents against
the chain, and hand out proofs anyone can check against any node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ledger.cli.auditor import _batch_id, _read_model
from ledger.cli.common import (
    OPTIONS,
    JsonOption,
    check_output_path,
    connection,
    console,
    emit,
    err_console,
    handles_errors,
    write_output,
)
from ledger.errors import InvalidInputError

if TYPE_CHECKING:
    from ledger.verify import VerificationReport

EXIT_MISMATCH = 4


def _print(report: VerificationReport, what: str) -> None:
    # Checks and notes quote chain text (reasons, places): text, never console markup.
    for check in report.checks:
        mark = "[green]ok[/]      " if check.ok else "[bold red]MISMATCH[/]"
        console.print(f"{mark} " + escape(check.what + (f": {check.detail}" if check.detail else "")))
    for note in report.notes:
        console.print(f"[dim]note     {escape(note)}[/]")
    if report.ok:
        console.print(f"[green]Verified:[/] {len(report.checks)} checks on {what} match the chain.")
    else:
        console.print(f"[bold red]{len(report.mismatches)} of {len(report.checks)} checks failed[/] on {what}.")


def _label(batch: list[str], batch_id: str) -> str:
    """How the user named the lot: 'lot L-1 of GTIN 0950...' or 'batch 0x...'."""
    return f"lot {batch[1]} of GTIN {batch[0]}" if len(batch) == 2 else f"batch {batch_id}"


@handles_errors
def verify(
    batch: Annotated[list[str] | None, typer.Argument(help="A batch id (0x...), or GTIN and LOT (not with --bundle).")] = None,
    bundle: Annotated[Path | None, typer.Option(help="Check this proof bundle instead (needs only --rpc).")] = None,
    rpc: Annotated[str | None, typer.Option(help="Node to check against (default: the settings' RPC URL).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-read a lot's events and its ancestors' from the chain (not the index), compare
    them with the index, and check the stored documents against their anchored hashes.
    Exit code 4 names a mismatch."""
    from ledger.chain import connect
    from ledger.connection import LedgerConnection
    from ledger.documents import DocumentStore
    from ledger.verify import ChainLineage, require_known_lot, verify_against_index, verify_bundle

    if bundle is not None:
        if batch:
            raise InvalidInputError("give either a batch or --bundle, not both")
        try:
            data = json.loads(bundle.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"cannot read the proof bundle {bundle}: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidInputError(f"{bundle} is not a proof bundle (a JSON object made by `provenance proof`)")
        w3 = connect(rpc or OPTIONS.settings().rpc_url)
        try:
            report = verify_bundle(w3, data)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"the proof bundle {bundle} is damaged or incomplete ({type(exc).__name__}: {exc}); ask for a new one"
            ) from exc
        what = f"the proof bundle of lot {data.get('lot')} ({len(data.get('events', []))} events)"
    else:
        if not batch:
            raise InvalidInputError("name a batch (its id, or GTIN and LOT), or pass --bundle FILE")
        settings = OPTIONS.settings()
        if rpc is not None:
            settings = settings.model_copy(update={"rpc_url": rpc})
        conn = LedgerConnection.open(settings)
        batch_id = _batch_id(batch)
        model = _read_model()
        freshness = model.freshness()
        if freshness is None:
            raise InvalidInputError("the index is empty: run `provenance index` first, then verify again")
        chain = ChainLineage(conn.w3, conn.address, conn.deploy_block, freshness.block_number)
        require_known_lot(chain, model, batch_id, _label(batch, batch_id))
        report = verify_against_index(chain, model, DocumentStore(settings.documents_dir), batch_id)
        what = f"batch {batch_id} and its lineage (up to block {chain.to_block}, where the index stands)"
    emit(as_json, report.as_dict(), lambda: _print(report, what))
    if not report.ok:
        raise typer.Exit(EXIT_MISMATCH)


@handles_errors
def proof(
    batch: Annotated[list[str], typer.Argument(help="A batch id (0x...), or GTIN and LOT.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the bundle (JSON).")],
) -> None:
    """Write a self-contained proof of a lot's history (events with transactions, blocks
    and raw logs, contract, chain id, document hashes), read from the chain. Anyone can
    check it with `provenance verify --bundle FILE --rpc URL`."""
    from ledger.verify import ChainLineage, proof_bundle

    check_output_path(output, "--output")
    conn = connection()
    batch_id = _batch_id(batch)
    chain = ChainLineage(conn.w3, conn.address, conn.deploy_block)
    registered = next(
        (e for e in chain.events(batch_id)[1] if e.name == "BatchRegistered" and e.args["batchId"] == batch_id), None
    )
    if registered is None:
        raise InvalidInputError(f"batch {batch_id} is not registered on this ledger")
    data = proof_bundle(chain, conn.w3.eth.chain_id, batch_id, f"{registered.args['gtin']:014d}", registered.args["lot"])
    write_output(output, json.dumps(data, indent=2) + "\n", "--output")
    err_console.print(
        f"Wrote {output}: {len(data['events'])} events of lot {data['lot']} and its lineage, up to block {data['as_of_block']}."
    )
