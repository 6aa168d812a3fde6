"""`provenance export epcis|csv`: a lot's full history in the formats auditors use."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.cli.auditor import BatchArgs, _batch_id, _read_model, _require
from ledger.cli.common import OPTIONS, check_output_path, err_console, handles_errors, safe, write_output

if TYPE_CHECKING:
    from ledger.epcis import EpcisExporter
from ledger.errors import InvalidInputError

app = typer.Typer(help="Export a lot's history (and its ancestors') as EPCIS 2.0 or an FSMA 204 table.", no_args_is_help=True)

OutputOption = Annotated[Path | None, typer.Option("--output", "-o", help="Write here (default: standard output).")]


def _exporter_for(batch: list[str], output: Path | None) -> tuple[EpcisExporter, str]:
    """The exporter over the index, and the named batch's id (which must be indexed).
    A bad `--output` is refused first, before the index is read."""
    from ledger.epcis import EpcisExporter

    if output is not None:
        check_output_path(output, "--output")
    model = _read_model()
    freshness = model.freshness()
    if freshness is None:
        raise InvalidInputError("the index is empty: run `provenance index` first")
    batch_id = _batch_id(batch)
    _require(model, batch_id)
    return EpcisExporter(model, freshness.chain_id, freshness.contract, OPTIONS.settings().public_base_url), batch_id


def _write(text: str, output: Path | None, what: str) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        write_output(output, text, "--output")
        err_console.print(f"Wrote {safe(output)} ({what}).")


@app.command("epcis")
@handles_errors
def epcis(batch: BatchArgs, output: OutputOption = None) -> None:
    """An EPCIS 2.0 JSON-LD document (EPCISDocument, standard context, event hashes)."""
    exporter, batch_id = _exporter_for(batch, output)
    document = exporter.document(batch_id)
    _write(json.dumps(document, indent=2) + "\n", output, f"{len(document['epcisBody']['eventList'])} EPCIS events")


@app.command("csv")
@handles_errors
def fsma_csv(batch: BatchArgs, output: OutputOption = None) -> None:
    """Key data elements per tracking event, one row each (the sortable spreadsheet of FSMA 204)."""
    exporter, batch_id = _exporter_for(batch, output)
    text = exporter.fsma_csv(batch_id)
    _write(text, output, f"{text.count(chr(10)) - 1} tracking events")
