"""`provenance account`: encrypted keystores for signing."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ledger.cli.common import OPTIONS, JsonOption, emit, handles_errors, say, warn

app = typer.Typer(help="Signing accounts (encrypted keystores in the data directory).", no_args_is_help=True)


@app.command("new")
@handles_errors
def new(
    name: Annotated[str, typer.Argument(help="A name for the account, e.g. finca-la-esperanza.")],
    as_json: JsonOption = False,
) -> None:
    """Create a new key, stored encrypted. The password comes from $PROVENANCE_KEYSTORE_PASSWORD
    or a prompt; the key itself is never shown."""
    from ledger.keys import PASSWORD_ENV, Keystore

    password = os.environ.get(PASSWORD_ENV) or typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    entry = Keystore(OPTIONS.settings().keystore_dir).create(name, password)

    def human() -> None:
        say(f"Created account {entry.name}: {entry.address}")
        say(f"Keystore {entry.path} (encrypted)")

    emit(as_json, {"name": entry.name, "address": entry.address, "keystore": str(entry.path)}, human)


@app.command("list")
@handles_errors
def list_accounts(as_json: JsonOption = False) -> None:
    """List the keystore accounts (names and addresses)."""
    from ledger.keys import Keystore

    keystore = Keystore(OPTIONS.settings().keystore_dir)
    entries = keystore.entries()
    for problem in keystore.damaged():
        warn(problem)

    def human() -> None:
        if not entries:
            say("No accounts yet: create one with `provenance account new NAME`.")
        for entry in entries:
            say(f"{entry.name:24}  {entry.address}")

    emit(as_json, {"accounts": [{"name": e.name, "address": e.address} for e in entries]}, human)
