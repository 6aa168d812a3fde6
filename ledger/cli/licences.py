"""`provenance licence`: who may register lots of which GTINs (GS1 Company Prefixes, single GTINs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ledger.cli.common import (
    AccountOption,
    JsonOption,
    address_of,
    cell,
    connection,
    console,
    emit,
    handles_errors,
    say,
    writer,
)
from ledger.errors import InvalidInputError

if TYPE_CHECKING:
    from ledger.models import LicenceScope

app = typer.Typer(
    help="GS1 licences: the admin licenses Company Prefixes or GTINs; a holder sub-licenses inside its own.",
    no_args_is_help=True,
)

OrgArgument = Annotated[str, typer.Argument(help="The organisation: address, keystore account name, or node:N.")]
PrefixOption = Annotated[
    str | None,
    typer.Option(
        help="GS1 Company Prefix, 4 to 12 digits as GS1 issued it (the digits after a GTIN-14's indicator digit); its length is the number of digits."
    ),
]
GtinOption = Annotated[str | None, typer.Option(help="Exactly one GTIN (8, 12, 13 or 14 digits) instead of a prefix.")]


def _scope(prefix: str | None, gtin: str | None) -> LicenceScope:
    from ledger.models import LicenceScope

    if (prefix is None) == (gtin is None):
        raise InvalidInputError("say what is licensed: either --prefix DIGITS (a GS1 Company Prefix) or --gtin GTIN")
    return LicenceScope.company_prefix(prefix) if prefix is not None else LicenceScope.single_gtin(gtin or "")


def _scope_data(scope: LicenceScope) -> dict[str, object]:
    return {"scope": scope.describe(), "prefix_length": scope.prefix_length, "prefix": scope.digits, "key": scope.key}


@app.command("grant")
@handles_errors
def grant(
    org: OrgArgument,
    prefix: PrefixOption = None,
    gtin: GtinOption = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """License a GS1 Company Prefix (or one GTIN) to an organisation (admin): only it may
    then register lots of those GTINs."""
    _grant(org, prefix, gtin, account, as_json, sublicence=False)


@app.command("sublicense")
@handles_errors
def sublicense(
    org: OrgArgument,
    prefix: PrefixOption = None,
    gtin: GtinOption = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sub-license a longer prefix or one GTIN inside your own Company Prefix to another
    organisation (a co-packer, a member farm). It lapses if your licence is withdrawn."""
    _grant(org, prefix, gtin, account, as_json, sublicence=True)


def _grant(org: str, prefix: str | None, gtin: str | None, account: str | None, as_json: bool, sublicence: bool) -> None:
    """Grant a root licence (admin) or a sub-licence (a root licence's holder) and report it."""
    scope = _scope(prefix, gtin)
    w = writer(account)
    licensee = address_of(w.connection, org)
    receipt = w.sub_license(licensee, scope) if sublicence else w.grant_licence(licensee, scope)
    grantor = {"grantor": w.signer.address} if sublicence else {}
    verb, source = ("Sub-licensed", f" (from {w.connection.names.actor(w.signer.address)})") if sublicence else ("Licensed", "")
    emit(
        as_json,
        {"licensee": licensee, **grantor, **_scope_data(scope), "sublicence": sublicence, **receipt.model_dump()},
        lambda: say(
            f"{verb} {scope.describe()} to {w.connection.names.actor(licensee)}{source}; "
            f"tx {receipt.tx_hash}, block {receipt.block_number}"
        ),
    )


@app.command("withdraw")
@handles_errors
def withdraw(
    prefix: PrefixOption = None,
    gtin: GtinOption = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Withdraw a licence (its grantor or the admin). Sub-licences cut from it lapse; lots
    already registered stay as they are."""
    scope = _scope(prefix, gtin)
    w = writer(account)
    holders = [r for r in w.connection.licences() if r.key == scope.key]
    receipt = w.withdraw_licence(scope)
    holder = w.connection.names.actor(holders[0].licensee) if holders else None
    emit(
        as_json,
        {**_scope_data(scope), "licensee": holders[0].licensee if holders else None, **receipt.model_dump()},
        lambda: say(f"Withdrew {scope.describe()}" + (f" from {holder}" if holder else "") + f"; tx {receipt.tx_hash}"),
    )


@app.command("list")
@handles_errors
def list_licences(
    holder: Annotated[str | None, typer.Option(help="Only this organisation's licences.")] = None,
    gtin: Annotated[str | None, typer.Option(help="Only licences covering this GTIN.")] = None,
    lapsed: Annotated[bool, typer.Option("--lapsed", help="Also sub-licences whose root licence was withdrawn.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The licences in force, read from the ledger's events (root licences and sub-licences)."""
    from ledger.models import LicenceScope

    conn = connection()
    records = conn.licences(include_lapsed=lapsed)
    if holder:
        address = address_of(conn, holder)
        records = [r for r in records if r.licensee == address]
    if gtin:
        records = [r for r in records if LicenceScope(prefix_length=r.prefix_length, prefix=r.prefix).covers(gtin)]
    rows = [
        {
            "scope": r.scope,
            "prefix_length": r.prefix_length,
            "prefix": r.digits,
            "key": r.key,
            "licensee": r.licensee,
            "licensee_name": conn.names.actor_name(r.licensee),
            "grantor": r.grantor,
            "grantor_name": conn.names.actor_name(r.grantor),
            "kind": "sub-licence" if r.parent_key else "root",
            "in_force": r.in_force,
            "block_number": r.block_number,
            "tx_hash": r.tx_hash,
        }
        for r in records
    ]

    def human() -> None:
        if not rows:
            say("No licences" + (" match" if holder or gtin else " granted yet (`provenance licence grant`)"))
            return
        table = Table("licence", "held by", "kind", "granted by", "block")
        for row in rows:
            kind = str(row["kind"]) + ("" if row["in_force"] else ", lapsed")
            table.add_row(
                cell(row["scope"]),
                cell(row["licensee_name"] or row["licensee"]),
                kind,
                cell("the admin" if row["kind"] == "root" else (row["grantor_name"] or row["grantor"])),
                str(row["block_number"]),
            )
        console.print(table)

    emit(as_json, {"licences": rows}, human)
