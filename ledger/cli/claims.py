"""`provenance claim`: certifiers attest, revoke, sign offline; anyone submits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.cli.common import (
    OPTIONS,
    AccountOption,
    JsonOption,
    address_of,
    check_output_path,
    connection,
    emit,
    handles_errors,
    parse_batch_id,
    parse_time,
    print_fields,
    say,
    show_time,
    warn,
    write_output,
    writer,
)
from ledger.cli.documents import outbox, publish_after_write
from ledger.errors import InvalidInputError, SigningKeyError

if TYPE_CHECKING:
    from ledger.connection import LedgerConnection
    from ledger.documents import DocumentStore
    from ledger.models import AttestationCreate, SubjectKind

app = typer.Typer(help="Ethical-sourcing claims: attest, revoke, sign offline, submit, cancel signatures.", no_args_is_help=True)

BatchOption = Annotated[tuple[str, str] | None, typer.Option(help="The batch the claim is about: GTIN LOT.", show_default=False)]
ActorOption = Annotated[str | None, typer.Option("--actor", help="The organisation the claim is about.")]
ClaimOption = Annotated[str, typer.Option(help="Claim type: FAIRTRADE, ORGANIC, DEFORESTATION_FREE, ...")]
FromOption = Annotated[str | None, typer.Option("--valid-from", help="Start, YYYY-MM-DD (default: now).")]
UntilOption = Annotated[str | None, typer.Option("--valid-until", help="End, YYYY-MM-DD (default: open-ended).")]
EvidenceOption = Annotated[Path | None, typer.Option(help="The certificate or audit report (stored off chain).")]
PrivateOption = Annotated[
    bool,
    typer.Option(
        "--private",
        help="Keep the evidence private: never published; the chain anchors a public envelope naming its hash, and pages show that you hold it and its hash.",
    ),
]


def _request(
    store: DocumentStore,
    subject: str,
    kind: SubjectKind,
    claim: str,
    valid_from: str | None,
    valid_until: str | None,
    evidence: Path | None,
    private: bool = False,
) -> AttestationCreate:
    from ledger.models import AttestationCreate
    from ledger.writer import hex0x

    evidence_hash = hex0x(store.put_file(evidence)) if evidence else "0x" + "00" * 32
    if evidence and private:
        # The file is never pushed nor served: the issuer hands it to an auditor itself.
        # The chain anchors a public envelope naming it by hash, never the file's own hash
        # (a directly anchored hash is one every server accepts from whoever has a copy).
        from ledger.documents import evidence_envelope

        store.mark_private(bytes.fromhex(evidence_hash[2:]), evidence.name)
        evidence_hash = hex0x(store.put_json(evidence_envelope(bytes.fromhex(evidence_hash[2:]))))
    return AttestationCreate(
        subject_kind=kind,
        subject=subject,
        claim=claim.upper(),
        valid_from=parse_time(valid_from),
        valid_until=parse_time(valid_until),
        evidence_hash=evidence_hash,
    )


def _subject(conn: LedgerConnection | None, batch: tuple[str, str] | None, actor: str | None) -> tuple[str, SubjectKind]:
    from ledger.models import SubjectKind
    from ledger.writer import hex0x

    if (batch is None) == (actor is None):
        raise InvalidInputError("say what the claim is about: either --batch GTIN LOT or --actor WHO")
    from ledger.conversions import subject_of_address

    if batch is not None:
        return hex0x(parse_batch_id(*batch)), SubjectKind.BATCH
    if conn is None:
        from web3 import Web3

        if not Web3.is_address(actor):
            raise InvalidInputError("offline, --actor must be a 0x address")
        return subject_of_address(actor), SubjectKind.ACTOR  # type: ignore[arg-type]
    return subject_of_address(address_of(conn, actor)), SubjectKind.ACTOR  # type: ignore[arg-type]


@app.command("attest")
@handles_errors
def attest(
    claim: ClaimOption,
    batch: BatchOption = None,
    actor: ActorOption = None,
    valid_from: FromOption = None,
    valid_until: UntilOption = None,
    evidence: EvidenceOption = None,
    private: PrivateOption = False,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Attest a claim about a batch or an organisation, as an accredited certifier."""
    from ledger.models import SubjectKind

    w = writer(account)
    subject, kind = _subject(w.connection, batch, actor)
    request = _request(w.documents, subject, kind, claim, valid_from, valid_until, evidence, private)
    uid, receipt = w.attest(request)
    publish_after_write(w.connection.settings, [bytes.fromhex(request.evidence_hash[2:])])
    emit(
        as_json,
        {"uid": uid, "claim": request.claim, "subject": subject, "subject_kind": kind.name.lower(), **receipt.model_dump()},
        lambda: say(
            f"Attested {request.claim} for {w.connection.names.batch(bytes.fromhex(subject[2:])) if kind is SubjectKind.BATCH else subject}"
            f"; attestation {uid}, tx {receipt.tx_hash}"
        ),
    )


@app.command("revoke")
@handles_errors
def revoke(
    uid: Annotated[str, typer.Argument(help="The attestation id (0x...).")],
    reason: Annotated[str, typer.Option(help="Why, in a short text shown to customers (1 to 280 bytes).")],
    notice: Annotated[Path | None, typer.Option(help="The full revocation notice (stored off chain, its hash on chain).")] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke an attestation (its issuer or the admin), saying why."""
    from ledger.identifiers import check_reason
    from ledger.models import ZERO_HASH
    from ledger.writer import hex0x

    if not (uid.startswith("0x") and len(uid) == 66):
        raise InvalidInputError(f"{uid!r} is not an attestation id (0x and 64 hex digits)")
    check_reason(reason, "revocation reason")
    w = writer(account)
    reason_hash = w.documents.put_file(notice) if notice else ZERO_HASH
    receipt = w.revoke_attestation(bytes.fromhex(uid[2:]), reason, reason_hash)
    publish_after_write(w.connection.settings, [reason_hash])
    emit(
        as_json,
        {"uid": uid, "reason": reason, "reason_hash": hex0x(reason_hash), **receipt.model_dump()},
        lambda: say(f"Revoked {uid}: {reason}; tx {receipt.tx_hash}"),
    )


@app.command("invalidate-nonces")
@handles_errors
def invalidate_nonces(
    next_nonce: Annotated[
        int | None,
        typer.Option(
            "--next",
            help="First nonce still usable (default: one above every nonce signed so far, on the ledger or by `claim sign` here, cancelling every signature handed out so far).",
            min=1,
        ),
    ] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel signed attestations you handed out (`claim sign`) that nobody submitted yet:
    every nonce below --next can no longer be used."""
    from ledger.keys import HandedOutNonces

    w = writer(account)
    before = w.nonce()
    if next_nonce is None:
        # Signatures made with --nonce may lie above the ledger's nonce: cancel those too.
        highest = HandedOutNonces(w.connection.settings.data_dir).highest(w.connection.address, w.signer.address)
        next_nonce = max(before, -1 if highest is None else highest) + 1
    new_next, receipt = w.invalidate_nonces(next_nonce)
    emit(
        as_json,
        {"issuer": w.signer.address, "previous_nonce": before, "next_nonce": new_next, **receipt.model_dump()},
        lambda: say(
            f"Signed attestations of {w.connection.names.actor(w.signer.address)} with nonces {before} to {new_next - 1} "
            f"can no longer be submitted; the next signature uses nonce {new_next}; tx {receipt.tx_hash}"
        ),
    )


@app.command("set-backdating")
@handles_errors
def set_backdating(
    claim: Annotated[str, typer.Argument(help="The claim type, e.g. ORGANIC.")],
    days: Annotated[float, typer.Option(help="How many days before its block an attestation may start.", min=0)],
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set how far back an attestation of a claim type may start (admin; default 90 days)."""
    w = writer(account)
    seconds = int(days * 86400)
    receipt = w.set_max_backdating(claim.upper(), seconds)
    emit(
        as_json,
        {"claim": claim.upper(), "seconds": seconds, **receipt.model_dump()},
        lambda: say(f"{claim.upper()} attestations may now start up to {days:g} days before their block; tx {receipt.tx_hash}"),
    )


@app.command("sign")
@handles_errors
def sign(
    claim: ClaimOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the signed attestation (JSON).")],
    batch: BatchOption = None,
    actor: ActorOption = None,
    valid_from: FromOption = None,
    valid_until: UntilOption = None,
    evidence: EvidenceOption = None,
    deadline: Annotated[str | None, typer.Option(help="Last moment it may be submitted (default: in 7 days).")] = None,
    nonce: Annotated[
        int | None,
        typer.Option(
            help="The nonce to sign with; give it to sign with no connection at all (default: the ledger's next nonce, above every one signed here before).",
            min=0,
        ),
    ] = None,
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign an attestation offline (EIP-712) for anyone to submit with `claim submit`."""
    from ledger.deploy import read_deployment
    from ledger.documents import DocumentStore
    from ledger.keys import HandedOutNonces
    from ledger.signers import LocalKeySigner, resolve_signer
    from ledger.writer import now, sign_attestation

    check_output_path(output, "--output")  # before a nonce is taken or a key unlocked
    settings = OPTIONS.settings()
    handed_out = HandedOutNonces(settings.data_dir)
    warning = None
    if nonce is None:
        conn = connection()
        signer = resolve_signer(settings, conn.w3, account)
        contract = conn.address
        if not isinstance(signer, LocalKeySigner):
            raise SigningKeyError("signing offline needs a key of your own: use --account NAME (a keystore)")
        # Signatures handed out and not yet submitted have not moved the ledger's nonce:
        # the next one must be above them, or it would be dead on arrival.
        highest = handed_out.highest(contract, signer.address)
        nonce = max(int(conn.contract.functions.nonces(signer.address).call()), -1 if highest is None else highest + 1)
    else:
        conn = None
        from ledger.keys import Keystore, account_from_env

        choice = account or settings.account
        local = Keystore(settings.keystore_dir).unlock(choice) if choice else account_from_env()
        if local is None:
            raise SigningKeyError("signing offline needs a key: use --account NAME (a keystore) or PROVENANCE_PRIVATE_KEY")
        signer = LocalKeySigner(local)
        deployment = read_deployment(settings.deployment_file)
        configured = settings.contract_address or (deployment.address if deployment else None)
        if not configured:
            raise InvalidInputError("offline signing needs the ledger's address: set PROVENANCE_CONTRACT_ADDRESS")
        from web3 import Web3

        contract = Web3.to_checksum_address(configured)
        if nonce in handed_out.handed_out(contract, signer.address):
            warning = (
                f"nonce {nonce} was already handed out by `claim sign` here: only one of the signatures "
                "with it can ever be submitted"
            )
    subject, kind = _subject(conn, batch, actor)
    request = _request(DocumentStore(settings.documents_dir), subject, kind, claim, valid_from, valid_until, evidence)
    # The signing time is part of the signature: a claim with no --valid-from starts then.
    signed = sign_attestation(
        signer, settings.chain_id, contract, request, nonce, parse_time(deadline) or now() + 7 * 86400, signed_at=now()
    )
    write_output(output, signed.model_dump_json(indent=2) + "\n", "--output")
    handed_out.add(contract, signer.address, nonce)
    if settings.publish_to:  # anchored only once submitted: `provenance documents push` delivers it then
        outbox(settings).enqueue([bytes.fromhex(request.evidence_hash[2:])])
    if warning:
        warn(warning)
    emit(
        as_json,
        {
            "output": str(output),
            "issuer": signed.issuer,
            "nonce": signed.nonce,
            "signed_at": signed.signed_at,
            "deadline": signed.deadline,
            "warning": warning,
        },
        lambda: say(
            f"Signed {request.claim} as {signed.issuer} (nonce {nonce}, valid until {show_time(signed.deadline)}): {output}"
        ),
    )


@app.command("submit")
@handles_errors
def submit(
    path: Annotated[Path, typer.Argument(help="A signed attestation from `claim sign`.")],
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Submit an attestation a certifier signed offline (anyone may pay for it)."""
    from ledger.models import SignedAttestation

    try:
        signed = SignedAttestation.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{path} is not a signed attestation from `claim sign`: {exc}") from exc
    w = writer(account)
    uid, receipt = w.submit_signed_attestation(signed)
    # The certifier's evidence, if whoever submits holds it (the certifier pushes it otherwise).
    publish_after_write(w.connection.settings, [bytes.fromhex(signed.request.evidence_hash.removeprefix("0x"))])
    emit(
        as_json,
        {"uid": uid, "issuer": signed.issuer, **receipt.model_dump()},
        lambda: say(
            f"Submitted {signed.request.claim} by {w.connection.names.actor(signed.issuer)}; attestation {uid}, tx {receipt.tx_hash}"
        ),
    )


@app.command("define")
@handles_errors
def define(
    claim: Annotated[str, typer.Argument(help="The new claim type, e.g. RAINFOREST_ALLIANCE.")],
    account: AccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Define a new claim type certifiers can be accredited for (admin)."""
    w = writer(account)
    receipt = w.define_claim_type(claim.upper())
    emit(as_json, {"claim": claim.upper(), **receipt.model_dump()}, lambda: say(f"Defined {claim.upper()}; tx {receipt.tx_hash}"))


@app.command("status")
@handles_errors
def status(uid: Annotated[str, typer.Argument(help="The attestation id (0x...).")], as_json: JsonOption = False) -> None:
    """Whether an attestation holds now, as the contract answers it."""
    from ledger.models import AttestationStatus, short_string

    conn = connection()
    raw = bytes.fromhex(uid.removeprefix("0x"))
    state = AttestationStatus(conn.contract.functions.attestationStatus(raw).call())
    issuer, claim, kind, valid_from, valid_until, revoked_at = conn.contract.functions.getAttestation(raw).call()
    data = {
        "uid": uid,
        "status": state.name.lower(),
        "issuer": issuer,
        "claim": short_string(claim),
        "valid_from": valid_from,
        "valid_until": valid_until,
        "revoked_at": revoked_at or None,
    }
    emit(
        as_json,
        data,
        lambda: print_fields(
            [
                ("Status", state.name.lower().replace("_", " ")),
                ("Claim", data["claim"]),
                ("Issuer", conn.names.actor(issuer)),
                ("Valid", f"{show_time(valid_from)} to {show_time(valid_until)}"),
                ("Revoked", show_time(revoked_at) if revoked_at else None),
            ]
        ),
    )


@app.command("describe")
@handles_errors
def describe(
    claim: Annotated[str, typer.Argument(help="The claim type, e.g. FAIRTRADE.")],
    text: Annotated[
        str | None, typer.Option(help="What the claim means, in plain words for a shopper (at most 1,000 characters).")
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="The language of --text: en, es, fr or de.")] = "en",
    scheme_url: Annotated[str | None, typer.Option(help="The scheme's official site (https only).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Set what a claim type means on the shopper's pages and its scheme's site, in the
    config file ([claim_types.CLAIM]; its comments and layout are kept). No transaction."""
    from ledger.claim_types import describe_claim_type

    config_file = OPTIONS.settings().config_file
    described = describe_claim_type(config_file, claim, text, lang, scheme_url)
    data = {
        "claim": described.claim,
        "scheme_url": described.scheme_url,
        "explainer": described.explainer,
        "config_file": config_file,
    }
    emit(
        as_json,
        data,
        lambda: say(
            f"{described.claim} described in {config_file} (explainer in {', '.join(sorted(described.explainer)) or 'no language'}; "
            f"scheme {described.scheme_url or 'not set'}); pages show it within a minute"
        ),
    )
