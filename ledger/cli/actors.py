"""`provenance actor` and `provenance role`: organisations and what they may do (admin)."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.cli.common import (
    AccountOption,
    JsonOption,
    address_of,
    connection,
    emit,
    handles_errors,
    print_fields,
    say,
    writer,
)
from ledger.cli.documents import publish_after_write
from ledger.errors import InvalidInputError

if TYPE_CHECKING:
    from ledger.connection import LedgerConnection
    from ledger.writer import LedgerWriter

actor_app = typer.Typer(help="Organisations on the ledger (never persons).", no_args_is_help=True)
role_app = typer.Typer(help="Supplier role and certifier accreditation per claim (admin).", no_args_is_help=True)

WhoArgument = Annotated[str, typer.Argument(help="Address, keystore account name, or node:N.")]


def _profile_hash(website: str | None) -> bytes:
    from ledger.documents import metadata_hash
    from ledger.models import ZERO_HASH

    return metadata_hash({"website": website}) if website else ZERO_HASH


def _publish_profile(w: LedgerWriter, website: str | None) -> None:
    """Keep the public profile document and push it to the `publish_to` servers."""
    if website:
        publish_after_write(w.connection.settings, [w.documents.put_json({"website": website})])


AllowSimilarOption = Annotated[
    bool,
    typer.Option(
        "--allow-similar",
        help="Accept a name that looks like another organisation's (same letters once accents, case, "
        "spaces, invisible characters and look-alike Cyrillic/Greek letters are set aside), "
        "after checking they are different bodies.",
    ),
]


@actor_app.command("register")
@handles_errors
def register(
    who: WhoArgument,
    name: Annotated[str, typer.Option(help="Display name of the organisation.")],
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 code, e.g. CO.")],
    website: Annotated[str | None, typer.Option(help="Public website (goes into the profile document).")] = None,
    allow_similar: AllowSimilarOption = False,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an organisation (admin). A name that looks like another organisation's is
    refused unless --allow-similar."""
    from ledger.identifiers import check_country, check_name

    check_name(name)
    check_country(country)
    w = writer(account)
    address = address_of(w.connection, who)
    receipt = w.register_actor(address, name, country, _profile_hash(website), allow_similar=allow_similar)
    _publish_profile(w, website)
    emit(
        as_json,
        {"address": address, "name": name, "country": country, **receipt.model_dump()},
        lambda: say(f"Registered {name} ({address}) in {country}; tx {receipt.tx_hash}, block {receipt.block_number}"),
    )


@actor_app.command("rename")
@handles_errors
def rename(
    name: Annotated[str, typer.Option(help="The new display name (unique among organisations).")],
    country: Annotated[str | None, typer.Option(help="ISO 3166-1 alpha-2 code (default: unchanged).")] = None,
    website: Annotated[str | None, typer.Option(help="Public website (goes into the profile document).")] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask the admin to change your organisation's name (and country, website): nothing
    changes until the admin approves it with `provenance actor approve`. A name that looks
    like another organisation's (accents, case, invisible characters, look-alike letters
    of other scripts aside) is refused."""
    from ledger.identifiers import check_country, check_name, describe_name, reveal_name

    check_name(name)
    w = writer(account)
    if country is None:
        country = _current_profile(w.connection, w.signer.address)["country"]
    check_country(country)
    receipt = w.request_profile_update(name, country, _profile_hash(website))
    _publish_profile(w, website)
    emit(
        as_json,
        {"address": w.signer.address, "name": name, "country": country, "approved": False, **receipt.model_dump()},
        lambda: say(
            f"Asked the admin to rename {w.connection.names.actor(w.signer.address)} to {describe_name(name)} ({country}); "
            f'nothing changes until approved (`provenance actor approve {w.signer.address} --name "{reveal_name(name)}"`); '
            f"tx {receipt.tx_hash}"
        ),
    )


@actor_app.command("approve")
@handles_errors
def approve(
    who: WhoArgument,
    name: Annotated[
        str | None,
        typer.Option(
            help="The exact name the organisation asked for, as `actor show` or this command without it "
            "displays it (typed, or in its escaped form such as 'EthicCert Lab\\u0455')."
        ),
    ] = None,
    allow_similar: AllowSimilarOption = False,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve the profile change an organisation asked for (admin): exactly what it asked.
    The requested name must be repeated with --name, so nothing is approved unseen; every
    character that is not plain ASCII is shown escaped with its Unicode name."""
    from ledger.identifiers import describe_name, reveal_name

    w = writer(account)
    address = address_of(w.connection, who)
    before = w.connection.names.actor(address)
    pending = w.pending_profile_request(address)
    if pending is None:
        raise InvalidInputError(f"{before} has no profile change awaiting approval (it asks with `provenance actor rename`)")
    requested = pending["name"]
    if pending.get("name_invalid_utf8"):
        # The request was sent around the client with bytes that are not text; what we read
        # (with U+FFFD) is not what was asked, so it cannot be approved "exactly as asked".
        raise InvalidInputError(
            f"{before} asked to be renamed to a name that is not valid UTF-8 text ({describe_name(requested)}): "
            "it cannot be approved as asked; ask the organisation to request its name again with "
            "`provenance actor rename`"
        )
    if name is None:
        raise InvalidInputError(
            f"{before} asks to be renamed {describe_name(requested)} ({pending['country']}). Check it, then approve "
            f'exactly this name by repeating it: `provenance actor approve {address} --name "{reveal_name(requested)}"`'
        )
    if name not in (requested, reveal_name(requested)):
        raise InvalidInputError(
            f"{before} asked to be renamed {describe_name(requested)}, not {describe_name(name)}: nothing was approved; "
            f'pass --name "{reveal_name(requested)}" to approve what it asked'
        )
    profile, receipt = w.approve_profile_update(
        address, requested, pending["country"], pending["metadata_hash"], allow_similar=allow_similar
    )
    emit(
        as_json,
        {"address": address, "name": profile["name"], "country": profile["country"], "approved": True, **receipt.model_dump()},
        lambda: say(f"Approved: {before} is now {describe_name(profile['name'])} ({profile['country']}); tx {receipt.tx_hash}"),
    )


def _current_profile(conn: LedgerConnection, address: str) -> dict[str, str]:
    """The approved name and country of `address`, from its events."""
    logs = conn.logs("ActorRegistered", account=address) + conn.logs("ActorProfileUpdated", account=address)
    if not logs:
        raise InvalidInputError(
            f"{address} is not a registered organisation; the admin registers it first (`provenance actor register`)"
        )
    latest = max(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))["args"]
    return {"name": latest["name"], "country": bytes(latest["country"]).decode()}


@actor_app.command("show")
@handles_errors
def show(who: WhoArgument, as_json: JsonOption = False) -> None:
    """Show an organisation: name, country, status and roles."""
    from ledger.conversions import short_text
    from ledger.identifiers import describe_name, unusual_characters

    conn = connection()
    address = address_of(conn, who)
    actor_id, active, supplier = conn.contract.functions.getActor(address).call()
    if actor_id == 0:
        raise InvalidInputError(f"{address} is not a registered organisation")
    latest = _current_profile(conn, address)
    pending = conn.pending_profile_request(address)
    claims = [
        short_text(log["args"]["claim"])
        for log in conn.logs("ClaimTypeDefined")
        if conn.contract.functions.hasRole(log["args"]["accreditationRole"], address).call()
    ]
    data = {
        "address": address,
        "actor_id": actor_id,
        "name": latest["name"],
        "country": latest["country"],
        "pending_rename": {"name": pending["name"], "country": pending["country"]} if pending else None,
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
                ("Spelled", unusual_characters(data["name"]) and describe_name(data["name"])),
                ("Address", address),
                ("Status", "active" if active else "deactivated"),
                ("Supplier", "yes" if supplier else "no"),
                ("Accredited", ", ".join(claims) or "none"),
                (
                    "Asked",
                    pending
                    and f"rename to {describe_name(pending['name'])} ({pending['country']}), awaiting the admin's approval",
                ),
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
    emit(as_json, {"address": address, **receipt.model_dump()}, lambda: say(f"Deactivated {address}; tx {receipt.tx_hash}"))


@actor_app.command("reactivate")
@handles_errors
def reactivate(who: WhoArgument, account: AccountOption = None, as_json: JsonOption = False) -> None:
    """Reactivate an organisation (admin)."""
    w = writer(account)
    address = address_of(w.connection, who)
    receipt = w.reactivate_actor(address)
    emit(as_json, {"address": address, **receipt.model_dump()}, lambda: say(f"Reactivated {address}; tx {receipt.tx_hash}"))


class Role(str, Enum):  # noqa: UP042 - typer shows str(member) choices; StrEnum would change how members print
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
        {
            "address": address,
            "role": role.value,
            "claim": claim.upper() if claim else None,
            "granted": grant,
            **receipt.model_dump(),
        },
        lambda: say(f"{verb} {what}: {w.connection.names.actor(address)}; tx {receipt.tx_hash}"),
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
