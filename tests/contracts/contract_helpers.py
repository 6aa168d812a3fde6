"""Helpers shared by the contract tests (names and encodings as the contract expects them)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from brownie import chain
from brownie.exceptions import VirtualMachineError
from eth_abi import encode
from eth_utils import keccak

ADMIN_DELAY = 2 * 24 * 3600
DAY = 24 * 3600
MAX_UINT64 = 2**64 - 1
# secp256k1 group order: a signature with s above n / 2 is the malleable twin of one below.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

COFFEE_GTIN = 9506000134352  # GS1's example GTIN: valid check digit; the farm's
ROASTED_GTIN = 9506000134369  # the roaster's
BAG_GTIN = 9506000134376  # the roaster's
COOP_GTIN = 9501234000015  # under the cooperative's company prefix 9501234
COOP_GTIN_2 = 9501234000022  # another GTIN under the cooperative's prefix
MEMBER_GTIN = 9501234010014  # inside 950123401, the range the coop sub-licenses in tests
MEMBER_GTIN_2 = 9501234010021
CERTIFIER_SUPPLIER_GTIN = 9508888000019  # licensed to the certifier in the self-certification tests

# The licences the fixture grants. The three GTINs of GS1's example share the company
# prefix 9506000, so the farm and the roaster each hold a narrower range of it: the farm a
# 12-digit prefix (exactly one valid GTIN), the roaster two single-GTIN licences.
FARM_LICENCE = (12, 950600013435)
ROASTER_LICENCES = [(14, ROASTED_GTIN), (14, BAG_GTIN)]
COOP_LICENCE = (7, 9501234)

ZERO32 = b"\x00" * 32

# Batch tuple fields as getBatch returns them.
SUPPLIER, CUSTODIAN, PENDING, REGISTERED, REMAINING, STATUS, RECALLED, RECALL_STATE, REGISTERED_AT = range(9)
STATUS_NONE, STATUS_ACTIVE, STATUS_CONSUMED, STATUS_VOIDED = range(4)
RECALL_NONE, RECALL_RECALLED, RECALL_UPHELD, RECALL_WITHDRAWN = range(4)


def setup_ledger(contract, admin, farm, coop, roaster, certifier) -> None:
    """Registers the organisations, roles, accreditations and licences of the fixture."""
    for account, name, country in [
        (farm, "Finca La Esperanza", "CO"),
        (coop, "Cooperativa Alto Huila", "CO"),
        (roaster, "Tostadores del Puerto", "ES"),
        (certifier, "EthicCert Labs", "DE"),
    ]:
        contract.registerActor(account, name, country.encode(), digest(name), {"from": admin})
    for account in (farm, coop, roaster):
        contract.grantRole(contract.SUPPLIER_ROLE(), account, {"from": admin})
    contract.accreditCertifier(certifier, b32("FAIRTRADE"), {"from": admin})
    contract.accreditCertifier(certifier, b32("ORGANIC"), {"from": admin})
    contract.grantLicence(farm, *FARM_LICENCE, {"from": admin})
    contract.grantLicence(coop, *COOP_LICENCE, {"from": admin})
    for length, prefix in ROASTER_LICENCES:
        contract.grantLicence(roaster, length, prefix, {"from": admin})


def b32(text: str) -> bytes:
    """A short string left-aligned in 32 bytes, the way claims and business steps are sent."""
    return text.encode().ljust(32, b"\x00")


def lot20(text: str | bytes) -> bytes:
    """A GS1 lot left-aligned in 20 bytes (raw bytes are taken as they are)."""
    raw = text if isinstance(text, bytes) else text.encode()
    return raw.ljust(20, b"\x00")


def digest(text: str) -> bytes:
    """A stand-in sha256-sized document hash."""
    return keccak(text=text)


def hex32(value: bytes) -> str:
    """How brownie shows a bytes32 event field."""
    return "0x" + value.hex()


def gtin_with_check_digit(body: int) -> int:
    """`body` followed by its GS1 check digit (weights 3, 1, 3, ... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(str(body))))
    return body * 10 + (10 - total % 10) % 10


CERTIFIER_ROLE = keccak(b"CERTIFIER_ROLE")


def accreditation_role(claim: bytes) -> str:
    """The AccessControl role accrediting a certifier for `claim`, as the contract derives
    it: keccak256(abi.encode(keccak256("CERTIFIER_ROLE"), claim)). Computed here (the view
    was removed for size) and checked against ClaimTypeDefined.accreditationRole."""
    return "0x" + keccak(encode(["bytes32", "bytes32"], [CERTIFIER_ROLE, claim])).hex()


def is_accredited(ledger, account: Any, claim: bytes) -> bool:
    """Whether `account` is accredited for `claim` (the `isAccredited` view is gone)."""
    return ledger.hasRole(accreditation_role(claim), account)


def licence_key(prefix_length: int, prefix: int) -> int:
    """The key the contract files a licence under: `(prefix << 4) | prefixLength`."""
    return (prefix << 4) | prefix_length


def batch_id(gtin: int, lot: str | bytes) -> str:
    """The batch id the contract derives from GTIN + lot."""
    return "0x" + keccak(gtin.to_bytes(8, "big") + lot20(lot)).hex()


def batch_input(lot: str | bytes, quantity: int = 60_000, gtin: int = COFFEE_GTIN, unit: str = "KGM") -> tuple:
    """A BatchInput tuple."""
    name = lot if isinstance(lot, str) else lot.hex()
    return (gtin, lot20(lot), quantity, unit.encode().ljust(3, b"\x00"), digest(f"metadata {name}"))


def as_bytes32(value: Any) -> bytes:
    """A bytes32 given as bytes or 0x-hex (brownie returns either)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return bytes.fromhex(str(value)[2:])


def attestation_uid(issuer: str, request: tuple, valid_from: int) -> str:
    """The uid the contract gives an attestation: the hash of its content, with the
    effective `validFrom` (the view was removed from the contract for size)."""
    kind, subject, claim, _, valid_until, evidence = request
    encoded = encode(
        ["address", "uint8", "bytes32", "bytes32", "uint64", "uint64", "bytes32"],
        [str(issuer), kind, as_bytes32(subject), claim, valid_from, valid_until, evidence],
    )
    return "0x" + keccak(encoded).hex()


def _shown(fragment: Any) -> list[str]:
    """The ways brownie may print an error argument: as text, or a bytes32 as a Python
    bytes literal (it decodes bytesN arguments of custom errors that way)."""
    if isinstance(fragment, (bytes, bytearray)):
        return [str(bytes(fragment)), "0x" + bytes(fragment).hex()]
    text = str(fragment)
    if re.fullmatch(r"0x[0-9a-fA-F]{64}", text):
        return [text, str(bytes.fromhex(text[2:]))]
    return [text]


@contextmanager
def reverts_with(error: str, *fragments: Any) -> Iterator[None]:
    """Expect a revert with custom error `error`, whose decoded arguments contain `fragments`
    (addresses, numbers, or bytes32 values as bytes or 0x-hex)."""
    with pytest.raises(VirtualMachineError) as info:
        yield
    message = info.value.revert_msg or ""
    assert re.match(rf"{error}\b", message), f"expected {error}, got {message!r}"
    for fragment in fragments:
        shown = _shown(fragment)
        assert any(s.lower() in message.lower() for s in shown if s.startswith("0x")) or any(s in message for s in shown), (
            f"{fragment!r} not in {message!r}"
        )


def now() -> int:
    """Timestamp of the latest block.

    Read from the node rather than from brownie's `chain.time()`, which adds its own
    time offset to the wall clock and drifts from anvil's clock after snapshot reverts;
    the next block's timestamp is never below this value, which is what the tests rely on.
    """
    return chain[-1].timestamp


def sleep(seconds: int) -> None:
    """Move the chain's clock forward and mine, so `now()` sees it."""
    chain.sleep(seconds)
    chain.mine()


# Written out here on purpose rather than imported from ledger.writer: the contract is
# checked against an encoding of the EIP-712 type made independently of the client's.
ATTEST_FIELDS = [
    {"name": "issuer", "type": "address"},
    {"name": "subjectKind", "type": "uint8"},
    {"name": "subject", "type": "bytes32"},
    {"name": "claim", "type": "bytes32"},
    {"name": "validFrom", "type": "uint64"},
    {"name": "validUntil", "type": "uint64"},
    {"name": "evidenceHash", "type": "bytes32"},
    {"name": "signedAt", "type": "uint64"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


def attest_typed_data(
    ledger,
    issuer: str,
    request: tuple,
    nonce: int,
    deadline: int,
    signed_at: int,
    *,
    chain_id: int | None = None,
    verifying_contract: str | None = None,
    version: str = "2",
) -> dict:
    """The EIP-712 `Attest` message for `request`, in the domain of `ledger` on this chain
    unless the keyword arguments name another deployment, chain or version."""
    kind, subject, claim, valid_from, valid_until, evidence = request
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Attest": ATTEST_FIELDS,
        },
        "primaryType": "Attest",
        "domain": {
            "name": "ProvenanceLedger",
            "version": version,
            "chainId": chain.id if chain_id is None else chain_id,
            "verifyingContract": verifying_contract or ledger.address,
        },
        "message": {
            "issuer": str(issuer),
            "subjectKind": kind,
            "subject": as_bytes32(subject),
            "claim": claim,
            "validFrom": valid_from,
            "validUntil": valid_until,
            "evidenceHash": evidence,
            "signedAt": signed_at,
            "nonce": nonce,
            "deadline": deadline,
        },
    }


def attest_digest(ledger, issuer: str, request: tuple, nonce: int, deadline: int, signed_at: int) -> bytes:
    """The 32-byte EIP-712 digest the ledger checks a signature against."""
    from eth_account.messages import _hash_eip191_message, encode_typed_data

    typed = attest_typed_data(ledger, issuer, request, nonce, deadline, signed_at)
    return _hash_eip191_message(encode_typed_data(full_message=typed))


def sign_attestation(
    ledger,
    private_key: Any,
    issuer: str,
    request: tuple,
    nonce: int,
    deadline: int,
    signed_at: int,
    **domain: Any,
) -> bytes:
    """An EIP-712 `Attest` signature over `request` as the ledger verifies it (see
    {attest_typed_data} for the `domain` keywords)."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    typed = attest_typed_data(ledger, issuer, request, nonce, deadline, signed_at, **domain)
    return bytes(Account.sign_message(encode_typed_data(full_message=typed), private_key).signature)


def malleate(signature: bytes) -> bytes:
    """The high-s twin of a 65-byte (r, s, v) signature: s -> n - s, v flipped. It
    recovers the same signer, so only a contract that refuses high s rejects it."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    twin_v = 28 if v == 27 else 27
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([twin_v])
