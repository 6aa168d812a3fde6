"""One exception root for everything the client raises, with messages a person can act on."""

from __future__ import annotations

import functools
import re
from typing import Any, Protocol

from ledger.conversions import short_text

# eth_abi / eth_utils are imported where an error is decoded, not here: every CLI module
# imports this one, and `provenance --help` must not pay for the Ethereum libraries.


class LedgerError(Exception):
    """Root of every error raised by the ledger client. Its message says what to do."""


class ConfigurationError(LedgerError):
    """A setting is missing or wrong."""


class ChainError(LedgerError):
    """The chain could not be started, reached or used."""


class RpcError(ChainError):
    """The node answered a JSON-RPC call with an error object (see :mod:`ledger.rpc`).

    `method` is the call, `message` the node's own words (callers match on it, e.g. "nonce
    too low"), `code` the JSON-RPC error code when the node gave one."""

    def __init__(self, method: str, message: str, code: int | None = None) -> None:
        super().__init__(f"{method} failed: {message}")
        self.method = method
        self.message = message
        self.code = code


class WebServerError(LedgerError):
    """The web server would not start or answer."""


class PortInUseError(ChainError):
    """Something else already listens where the local chain should."""


class ArtifactError(LedgerError):
    """The compiled contract is missing or does not match its sources."""


class DeploymentError(LedgerError):
    """The ledger contract could not be deployed or found."""


class InvalidInputError(LedgerError):
    """Input was rejected before anything was sent: nothing was written."""


class SimilarNameError(InvalidInputError):
    """An organisation name looks like another organisation's (same :func:`name_skeleton`):
    refused before anything was sent. `holder` is the address of the other organisation."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


class SigningKeyError(LedgerError):
    """A signing key could not be found or unlocked."""


class ConflictError(LedgerError):
    """The ledger already holds something different under the same identifier."""


class ContractRevertError(LedgerError):
    """The ledger contract refused the call; nothing was written.

    `error_name` is the contract's custom error (e.g. ``ProvenanceUnknownBatch``) and
    `arguments` its decoded arguments; the message is a sentence for a person.
    """

    error_name: str = ""

    def __init__(self, message: str, arguments: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.arguments = arguments or {}


class Describer(Protocol):
    """Turns on-chain identifiers into words: organisation names, lots."""

    def actor(self, address: str) -> str:
        """How to call the organisation at `address`."""
        ...

    def batch(self, batch_id: bytes) -> str:
        """How to call a batch, e.g. 'lot L-17 of GTIN 09506000134352'."""
        ...


class PlainDescriber:
    """Describes identifiers by themselves (used when nothing better is known)."""

    def actor(self, address: str) -> str:
        """The address itself."""
        return str(address)

    def batch(self, batch_id: bytes) -> str:
        """'batch 0x…'."""
        return "batch 0x" + bytes(batch_id).hex()


# Sentence per custom error. Fields in braces are the error's arguments; a prefix formats
# them: `actor:` and `batch:` run them through the Describer, `gtin:` prints a GTIN-14,
# `time:` a UTC date, `claim:` a claim type, `role:` a role's name, `subject:` an
# attestation's subject (batch or organisation), `licence:` the scope of the error's
# prefixLength/prefix arguments. Every custom error in the ABI has one (a test checks).
_TEMPLATES: dict[str, str] = {
    "ProvenanceUnknownActor": "{actor:account} is not a registered organisation on this ledger; the admin must register it first (`provenance actor register`)",
    "ProvenanceActorAlreadyRegistered": "{actor:account} is already registered",
    "ProvenanceActorInactive": "{actor:account} has been deactivated by the admin and cannot take part until reactivated",
    "ProvenanceActorAlreadyActive": "{actor:account} is already active",
    "ProvenanceInvalidName": "the organisation name must be 1 to 64 bytes long (got {length})",
    "ProvenanceInvalidCountry": "the country must be an ISO 3166-1 alpha-2 code in capitals, such as CO",
    "ProvenanceInvalidGtin": "GTIN {gtin:gtin} has no valid GS1 check digit or more than 14 digits",
    "ProvenanceInvalidLot": "the lot must be 1 to 20 characters of GS1 CSET 82 (letters, digits and !\"%&'()*+,-./:;<=>?_, no spaces)",
    "ProvenanceZeroQuantity": "quantities must be greater than zero",
    "ProvenanceInvalidUnit": "the unit must be a UN/ECE Rec 20 code such as KGM",
    "ProvenanceBatchAlreadyRegistered": "{batch:batchId} is already registered by {actor:supplier}",
    "ProvenanceUnknownBatch": "{batch:batchId} is not registered on this ledger: check the GTIN and lot",
    "ProvenanceNotCustodian": "{actor:account} does not hold {batch:batchId} ({actor:custodian} does); only the custodian may move, record or consume it",
    "ProvenanceTransferPending": "{batch:batchId} is already being handed over to {actor:pendingCustodian}; it must accept or the hand-over be cancelled first",
    "ProvenanceNoTransferPending": "no hand-over of {batch:batchId} is waiting to be accepted",
    "ProvenanceNotPendingCustodian": "{batch:batchId} was offered to {actor:pendingCustodian}, not to {actor:account}",
    "ProvenanceNotTransferParty": "only the custodian or the proposed custodian of {batch:batchId} may cancel its hand-over, not {actor:account}",
    "ProvenanceSelfTransfer": "{batch:batchId} is already held by {actor:account}",
    "ProvenanceBatchConsumed": "{batch:batchId} has been fully used up by earlier transformations",
    "ProvenanceBatchRecalled": "{batch:batchId} has been recalled; it cannot be used unless the admin withdraws the recall (`provenance batch review-recall --withdraw`)",
    "ProvenanceNotRecaller": "only the supplier of {batch:batchId} or the admin may recall it (only the admin once a recall of it was withdrawn), not {actor:account}",
    "ProvenanceInsufficientQuantity": "{batch:batchId} has only {remaining} left, not {requested}",
    "ProvenanceInvalidTransformation": "this transformation kind does not take {inputs} input(s) and {outputs} output(s): split takes 1 input, merge 1 output",
    "ProvenanceEmptyList": "nothing to do: the list is empty",
    "ProvenanceInvalidBusinessStep": "the business step must be a CBV step such as shipping or receiving",
    "ProvenanceClaimTypeAlreadyDefined": "claim type {claim:claim} is empty or already defined",
    "ProvenanceUnknownClaimType": "claim type {claim:claim} is not defined on the ledger; the admin defines claim types (`provenance claim define`)",
    "ProvenanceNotAccredited": "{actor:certifier} is not accredited for this claim ({claim:claim}); the admin accredits certifiers per claim (`provenance role grant certifier --claim`)",
    "ProvenanceInvalidValidity": "the validity window is empty or reversed (from {time:validFrom} until {time:validUntil})",
    "ProvenanceUnknownSubject": "the subject of the attestation ({subject:subject}) does not exist on the ledger",
    "ProvenanceAttestationAlreadyExists": "an identical attestation already exists (0x{uid})",
    "ProvenanceUnknownAttestation": "no attestation has the id 0x{uid}",
    "ProvenanceAttestationAlreadyRevoked": "the attestation 0x{uid} is already revoked",
    "ProvenanceNotRevoker": "only the issuer of the attestation or the admin may revoke it, not {actor:account}",
    "ProvenanceSignatureExpired": "the signed attestation expired at its deadline ({time:deadline}); ask the certifier to sign it again",
    "ProvenanceInvalidSignature": "the signature is not {actor:issuer}'s for this attestation and nonce (altered, already used, cancelled with `claim invalidate-nonces`, or signed by someone else)",
    "ProvenanceSignedInFuture": "the attestation says it was signed at {time:signedAt}, which is later than the chain's time; check the signer's clock and sign it again",
    "ProvenanceInvalidNonce": "the next nonce must be above the current {current} and at most 4,294,967,295 beyond it (asked for {requested})",
    "ProvenanceTooManyClaimTypes": "no more than {limit} claim types can be defined",
    "ProvenanceTooManyActors": "no more than {limit} organisations can be registered on this ledger",
    "ProvenanceInvalidPrefix": "{licence:} is not a licence scope: a GS1 Company Prefix has 4 to 12 digits (`--prefix`), a single GTIN 14 digits with a valid check digit (`--gtin`)",
    "ProvenanceLicenceAlreadyGranted": "{licence:} is already licensed to {actor:licensee}; withdraw that licence first (`provenance licence withdraw`)",
    "ProvenanceLicenceOverlaps": "{licence:} lies inside the root licence of {actor:holder}, which alone may sub-license it (`provenance licence sublicense`)",
    "ProvenanceUnknownLicence": "no licence is in force for {licence:}; `provenance licence list` shows the licences",
    "ProvenanceNotLicensor": "{actor:account} may not grant or withdraw a licence for {licence:}: sub-licensing needs a root licence covering it, withdrawing needs its grantor or the admin",
    "ProvenanceNotLicensed": "{actor:account} holds no licence for GTIN {gtin:gtin}: the GTIN's licensee (or the admin) must grant or sub-license it (`provenance licence grant|sublicense`)",
    "ProvenanceBatchVoided": "{batch:batchId} was voided by the admin (registered in error); nothing can happen to it any more",
    "ProvenanceInvalidReason": "the reason must be 1 to 280 bytes of text (got {length})",
    "ProvenanceNameTaken": "{actor:holder} already uses this name (names are compared without case, spaces or punctuation); choose another",
    "ProvenanceProfileUpdateNotRequested": "{actor:account} has not requested this profile change; the admin approves exactly what the organisation asked for (`provenance actor rename`)",
    "ProvenanceConflictOfInterest": "{actor:issuer} cannot attest about {subject:subject}: a certifier never vouches for itself or for goods it supplied, holds or is being handed",
    "ProvenanceValidFromTooEarly": "the claim cannot start at {time:validFrom}: the earliest allowed start is {time:earliest} (not before the batch was registered, nor further back than the claim type allows)",
    "ProvenanceNoRecallToReview": "{batch:batchId} has no recall awaiting review",
    "ProvenanceRoleNotGrantable": "only the supplier role is granted directly ({role:role} is not); accredit certifiers per claim (`provenance role grant certifier --claim`)",
    "AccessControlUnauthorizedAccount": "{actor:account} lacks the role this needs ({role:neededRole}); the admin grants roles (`provenance role grant`)",
    "AccessControlBadConfirmation": "the role renunciation was not confirmed by the account itself",
    "AccessControlEnforcedDefaultAdminDelay": "the admin hand-over delay has not passed yet (until {time:schedule})",
    "AccessControlEnforcedDefaultAdminRules": "the admin role can only move through the two-step hand-over",
    "AccessControlInvalidDefaultAdmin": "{actor:defaultAdmin} is not the pending admin",
    "SafeCastOverflowedUintDowncast": "a value does not fit the ledger's {bits}-bit field ({value})",
    "InvalidShortString": "a short string is longer than 31 bytes",
    "StringTooLong": "a string is longer than the ledger allows",
}

# Sentences for errors whose meaning changes with an argument: (name, test, template).
_VARIANTS: list[tuple[str, Any, str]] = [
    # Root licences never nest: holder 0 means a root licence lies INSIDE the new one.
    (
        "ProvenanceLicenceOverlaps",
        lambda args: int(str(args.get("holder") or "0x0"), 16) == 0,
        "{licence:} cannot be licensed: another root licence lies inside it, and root licences never nest (withdraw that one first, or license a narrower prefix)",
    ),
]


@functools.cache
def _role_names() -> dict[bytes, str]:
    """Roles by id, for sentences."""
    from eth_utils.crypto import keccak

    return {
        b"\0" * 32: "the admin role",
        keccak(text="SUPPLIER_ROLE"): "the supplier role",
    }


_FIELD = re.compile(r"\{(?:(actor|batch|gtin|time|claim|role|subject|licence):)?(\w*)\}")


def _error_class(name: str) -> type[ContractRevertError]:
    short = name.removeprefix("Provenance")
    cls = type(short + ("" if short.endswith("Error") else "Error"), (ContractRevertError,), {"error_name": name})
    cls.__doc__ = _TEMPLATES.get(name, name)
    cls.__module__ = __name__
    return cls


#: Exception class of every known custom error, by the contract's error name.
ERROR_CLASSES: dict[str, type[ContractRevertError]] = {name: _error_class(name) for name in _TEMPLATES}
globals().update({cls.__name__: cls for cls in ERROR_CLASSES.values()})


def _format(template: str, arguments: dict[str, Any], describer: Describer) -> str:
    def replace(match: re.Match[str]) -> str:
        kind, field = match.group(1), match.group(2)
        # ABI-decoded values: each one's Python type follows the Solidity type that the
        # template's kind names (address -> str, bytes32 -> bytes, uint -> int).
        value: Any = arguments.get(field)
        if kind == "actor":
            return describer.actor(value)
        if kind == "batch":
            return describer.batch(value)
        if kind == "gtin":
            return f"{int(value):014d}"
        if kind == "time":
            return _when(int(value))
        if kind == "claim":
            return short_text(value) or "(empty)"
        if kind == "role":
            return _role_names().get(bytes(value), "role 0x" + bytes(value).hex())
        if kind == "subject":
            subject = bytes(value)
            # SubjectKind.Actor (1): an address left-padded to 32 bytes.
            if arguments.get("subjectKind") == 1:
                return describer.actor("0x" + subject[12:].hex())
            return describer.batch(subject)
        if kind == "licence":
            from ledger.models import describe_licence  # models imports this module

            return describe_licence(int(arguments["prefixLength"]), int(arguments["prefix"]))
        if isinstance(value, bytes):
            return value.hex()
        return str(value)

    return _FIELD.sub(replace, template)


def _when(seconds: int) -> str:
    """A unix time as a UTC date and time ('open' for 0)."""
    from datetime import UTC, datetime

    if seconds == 0:
        return "open"
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return str(seconds)


class ErrorDecoder:
    """Decodes revert data returned by the ledger contract into named exceptions."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        from eth_utils.abi import collapse_if_tuple
        from eth_utils.crypto import keccak

        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for item in abi:
            if item.get("type") != "error":
                continue
            types = [collapse_if_tuple(i) for i in item["inputs"]]
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            self._errors[selector] = (item["name"], [i["name"] for i in item["inputs"]], types)

    def decode(self, data: bytes | str, describer: Describer | None = None) -> ContractRevertError:
        """The exception for revert `data` (unknown data gives a generic ContractRevertError)."""
        raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else bytes(data)
        describer = describer or PlainDescriber()
        entry = self._errors.get(raw[:4])
        if entry is None:
            return ContractRevertError(f"the ledger contract refused the call (revert data 0x{raw.hex() or 'empty'})")
        from eth_abi.abi import decode as abi_decode

        name, names, types = entry
        values = abi_decode(types, raw[4:])
        arguments = dict(zip(names, values, strict=True))
        template = _TEMPLATES.get(name, name + " {arguments}")
        for variant, applies, alternative in _VARIANTS:
            if variant == name and applies(arguments):
                template = alternative
        cls = ERROR_CLASSES.get(name, ContractRevertError)
        return cls(_format(template, arguments, describer), arguments)
