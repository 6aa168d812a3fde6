"""`provenance audit`: what looks wrong in the ledger, most severe first."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn
from rich.table import Table

from ledger.cli.auditor import _batch_id, _read_model, _require
from ledger.cli.common import OPTIONS, JsonOption, console, emit, err_console, handles_errors, safe
from ledger.errors import InvalidInputError

#: Colours by severity name (ledger.audit.Severity, imported by the command itself).
COLOURS = {"CRITICAL": "bold red", "HIGH": "red", "MEDIUM": "yellow", "LOW": "cyan", "INFO": "dim"}


@handles_errors
def audit(
    batch: Annotated[list[str] | None, typer.Argument(help="A batch id (0x...), or GTIN and LOT; or --all.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Scan the whole ledger.")] = False,
    fail_on: Annotated[
        str,
        typer.Option(
            help="Exit with code 3 when a finding at or above this severity exists "
            "(critical, high, medium, low, info; 'never' to always exit 0)."
        ),
    ] = "high",
    max_custody_days: Annotated[
        int | None, typer.Option(help="Flag lots held longer by one custodian (default: audit policy, 180).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the automatic checks (recalls and their reach, claims, mass balance, custody,
    step order) on a batch and its lineage, or on the whole ledger with --all.

    The audit policy (yield limits per process, custody bound) is read from
    <data dir>/audit.toml when it exists.
    """
    from ledger.audit import CHECKS, Auditor, AuditPolicy, Severity, worst

    if bool(batch) == all_:
        raise InvalidInputError("name a batch (its id, or GTIN and LOT) or pass --all, not both")
    threshold = None if fail_on.strip().lower() == "never" else Severity.parse(fail_on)
    settings = OPTIONS.settings()
    policy = AuditPolicy.load(settings.data_dir / "audit.toml")
    if max_custody_days is not None:
        policy.max_custody_days = max_custody_days
    model = _read_model()
    auditor = Auditor(model, policy)
    if all_:
        columns = (SpinnerColumn(), TextColumn("Auditing: {task.description}"), BarColumn(), TaskProgressColumn())
        with Progress(*columns, console=err_console, disable=as_json, transient=True) as progress:
            task = progress.add_task("loading the index", total=len(CHECKS))

            def step(name: str) -> None:
                progress.update(task, description=name, completed=CHECKS.index(name))

            findings = auditor.audit_all(step)
        scope = "the whole ledger"
    else:
        batch_id = _batch_id(batch or [])
        found = _require(model, batch_id)
        findings = auditor.audit_batch(batch_id)
        scope = f"lot {found.lot} of {found.gtin} and its lineage"

    def human() -> None:
        if not findings:
            console.print(f"No findings for {scope}.")
            return
        table = Table(title=f"{len(findings)} finding(s) for {scope}", show_lines=True)
        for column in ("severity", "check", "finding", "proof"):
            table.add_column(column)
        for f in findings:
            proof = "\n".join(f"{e.name} {e.tx_hash[:10]}… block {e.block_number}" for e in f.events)
            # Titles and explanations quote chain text (names, reasons): text, never console markup.
            table.add_row(
                f"[{COLOURS[f.severity.name]}]{f.severity.name.lower()}[/]",
                f.check,
                f"[bold]{safe(f.title)}[/]\n{safe(f.explanation)}",
                proof,
            )
        console.print(table)

    top = worst(findings)
    emit(
        as_json,
        {"scope": scope, "findings": [f.as_dict() for f in findings], "worst": top.name.lower() if top is not None else None},
        human,
    )
    if threshold is not None and top is not None and top >= threshold:
        err_console.print(f"audit: worst finding is {top.name.lower()} (fails at {threshold.name.lower()} and above)")
        raise typer.Exit(3)
