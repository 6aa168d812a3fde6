"""`provenance actor` and `provenance role`: organisations and what they may do (admin)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from ledger.cli.common import (
    AccountOption,
    JsonOption,
    address_of,
    connection,
    console,
    emit,
    handles_errors,
    print_fields,
    writer,
)
from ledger.documents import metadata_hash
from ledger.errors import InvalidInputError
from ledger.identifiers import check_country
from ledger.models import ZERO_HASH

actor_app = typer.Typer(help="Organisations on the ledger (never persons).", no_args_is_help=True)
role_app = typer.Typer(help="Supplier role and certifier accreditation per claim (admin).", no_args_is_help=True)

WhoArgument = Annotated[str, typer.Argument(help="Address, keystore account name, or node:N.")]


def _profile_hash(website: str | None) -> bytes:
    return metadata_hash({"website": website}) if website else ZERO_HASH


def _check_name(name: str) -> str:
    if not 1 <= len(name.encode()) <= 64:
        raise InvalidInputError(f"the organisation name must be 1 to 64 bytes long (got {len(name.encode())})")
    return name


@actor_app.command("register")
@handles_errors
def register(
    who: WhoArgument,
    name: Annotated[str, typer.Option(help="Display name of the organisation.")],
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 code, e.g. CO.")],
    website: Annotated[str | None, typer.Option(help="Public website (goes into the profile document).")] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an organisation (admin)."""
    _check_name(name)
    check_country(country)
    w = writer(account)
    address = address_of(w.connection, who)
    receipt = w.register_actor(address, name, country, _profile_hash(website))
    emit(
        as_json,
        {"address": address, "name": name, "country": country, **receipt.model_dump()},
        lambda: console.print(f"Registered {name} ({address}) in {country}; tx {receipt.tx_hash}, block {receipt.block_number}"),
    )


@actor_app.command("update")
@handles_errors
def update(
    name: Annotated[str, typer.Option(help="New display name.")],
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 code.")],
    website: Annotated[str | None, typer.Option(help="Public website.")] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Update the signing organisation's own profile."""
    _check_name(name)
    check_country(country)
    w = writer(account)
    receipt = w.update_actor_profile(name, country, _profile_hash(website))
    emit(
        as_json,
        {"address": w.signer.address, "name": name, "country": country, **receipt.model_dump()},
        lambda: console.print(f"Updated {w.signer.address}: {name}, {country}; tx {receipt.tx_hash}"),
    )


@actor_app.command("show")
@handles_errors
def show(who: WhoArgument, as_json: JsonOption = False) -> None:
    """Show an organisation: name, country, status and roles."""
    conn = connection()
    address = address_of(conn, who)
    actor_id, active, supplier = conn.contract.functions.getActor(address).call()
    if actor_id == 0:
        raise InvalidInputError(f"{address} is not a registered organisation")
    logs = conn.logs("ActorRegistered", account=address) + conn.logs("ActorProfileUpdated", account=address)
    latest = max(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))["args"]
    claims = [
        log["args"]["claim"].rstrip(b"\0").decode()
        for log in conn.logs("ClaimTypeDefined")
        if conn.contract.functions.isAccredited(address, log["args"]["claim"]).call()
    ]
    data = {
        "address": address,
        "actor_id": actor_id,
        "name": latest["name"],
        "country": latest["country"].decode(),
        "active": active,
        "supplier": supplier,
        "accredited_claims": claims,
    }
    emit(
        as_json,
        data,
        lambda: print_fields(
            [
                ("Organisation", f"{data['name']} ({data['country']})"),
                ("Address", address),
                ("Status", "active" if active else "deactivated"),
                ("Supplier", "yes" if supplier else "no"),
                ("Accredited", ", ".join(claims) or "none"),
            ]
        ),
    )


@actor_app.command("deactivate")
@handles_errors
def deactivate(who: WhoArgument, account: AccountOption = None, as_json: JsonOption = False) -> None:
    """Deactivate an organisation (admin)."""
    w = writer(account)
    address = address_of(w.connection, who)
    receipt = w.deactivate_actor(address)
    emit(as_json, {"address": address, **receipt.model_dump()}, lambda: console.print(f"Deactivated {address}; tx {receipt.tx_hash}"))


@actor_app.command("reactivate")
@handles_errors
def reactivate(who: WhoArgument, account: AccountOption = None, as_json: JsonOption = False) -> None:
    """Reactivate an organisation (admin)."""
    w = writer(account)
    address = address_of(w.connection, who)
    receipt = w.reactivate_actor(address)
    emit(as_json, {"address": address, **receipt.model_dump()}, lambda: console.print(f"Reactivated {address}; tx {receipt.tx_hash}"))


class Role(str, Enum):
    """Roles the admin hands out."""

    supplier = "supplier"
    certifier = "certifier"


def _role_change(grant: bool, role: Role, who: str, claim: str | None, account: str | None, as_json: bool) -> None:
    w = writer(account)
    address = address_of(w.connection, who)
    if role is Role.certifier:
        if not claim:
            raise InvalidInputError("a certifier is accredited per claim: add --claim, e.g. --claim FAIRTRADE")
        receipt = w.accredit(address, claim.upper()) if grant else w.withdraw_accreditation(address, claim.upper())
        what = f"certifier for {claim.upper()}"
    else:
        receipt = w.grant_supplier(address) if grant else w.revoke_supplier(address)
        what = "supplier"
    verb = "Granted" if grant else "Revoked"
    emit(
        as_json,
        {"address": address, "role": role.value, "claim": claim.upper() if claim else None, "granted": grant, **receipt.model_dump()},
        lambda: console.print(f"{verb} {what}: {w.connection.names.actor(address)}; tx {receipt.tx_hash}"),
    )


@role_app.command("grant")
@handles_errors
def grant(
    role: Role,
    who: WhoArgument,
    claim: Annotated[str | None, typer.Option(help="Claim type, for certifiers (FAIRTRADE, ORGANIC, ...).")] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make an organisation a supplier, or accredit a certifier for a claim (admin)."""
    _role_change(True, role, who, claim, account, as_json)


@role_app.command("revoke")
@handles_errors
def revoke(
    role: Role,
    who: WhoArgument,
    claim: Annotated[str | None, typer.Option(help="Claim type, for certifiers.")] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take the supplier role away, or withdraw a certifier's accreditation (admin)."""
    _role_change(False, role, who, claim, account, as_json)
