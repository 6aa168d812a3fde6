"""`provenance`: the command line of the provenance ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.cli import (
    accounts,
    actors,
    audit,
    auditor,
    batches,
    claims,
    deploy,
    documents,
    export,
    feedback,
    licences,
    node,
    verify,
)
from ledger.cli.common import OPTIONS

app = typer.Typer(
    help="Provenance ledger: record where goods come from, prove it to customers and auditors.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (default .provenance).")] = None,
    rpc_url: Annotated[str | None, typer.Option(help="Chain JSON-RPC URL (default: the local chain).")] = None,
    chain_id: Annotated[int | None, typer.Option(help="Expected chain id.")] = None,
    contract: Annotated[str | None, typer.Option(help="Ledger contract address.")] = None,
    base_url: Annotated[str | None, typer.Option(help="Public base URL of the pages (Digital Link).")] = None,
    network: Annotated[str | None, typer.Option(help="A [networks.NAME] table of the config file (PROVENANCE_NETWORK).")] = None,
) -> None:
    """Settings also come from PROVENANCE_* environment variables and a config.toml."""
    OPTIONS.overrides = {
        "data_dir": data_dir,
        "rpc_url": rpc_url,
        "chain_id": chain_id,
        "contract_address": contract,
        "public_base_url": base_url,
        "network": network,
    }


app.command("run")(node.run)
app.command("deploy")(deploy.deploy)
app.command("serve")(node.serve)
app.command("index")(auditor.index)
app.command("history")(auditor.history)
app.command("lineage")(auditor.lineage)
app.command("claims")(auditor.claims)
app.command("audit")(audit.audit)
app.command("verify")(verify.verify)
app.command("proof")(verify.proof)
app.add_typer(accounts.app, name="account")
app.add_typer(actors.actor_app, name="actor")
app.add_typer(actors.role_app, name="role")
app.add_typer(batches.app, name="batch")
app.add_typer(claims.app, name="claim")
app.add_typer(licences.app, name="licence")
app.add_typer(export.app, name="export")
app.add_typer(documents.app, name="documents")
app.add_typer(feedback.app, name="feedback")
