"""Helpers shared by the contract tests (names and encodings as the contract expects them)."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

import pytest
from brownie import chain
from brownie.exceptions import VirtualMachineError
from eth_utils import keccak

ADMIN_DELAY = 2 * 24 * 3600
COFFEE_GTIN = 9506000134352  # GS1's example GTIN: valid check digit
ROASTED_GTIN = 9506000134369
BAG_GTIN = 9506000134376
ZERO32 = b"\x00" * 32


def b32(text: str) -> bytes:
    """A short string left-aligned in 32 bytes, the way claims and business steps are sent."""
    return text.encode().ljust(32, b"\x00")


def lot20(text: str) -> bytes:
    """A GS1 lot left-aligned in 20 bytes."""
    return text.encode().ljust(20, b"\x00")


def digest(text: str) -> bytes:
    """A stand-in sha256-sized document hash."""
    return keccak(text=text)


def batch_id(gtin: int, lot: str) -> str:
    """The batch id the contract derives from GTIN + lot."""
    return "0x" + keccak(gtin.to_bytes(8, "big") + lot20(lot)).hex()


def batch_input(lot: str, quantity: int = 60_000, gtin: int = COFFEE_GTIN, unit: str = "KGM") -> tuple:
    """A BatchInput tuple."""
    return (gtin, lot20(lot), quantity, unit.encode().ljust(3, b"\x00"), digest(f"metadata {lot}"))


@contextmanager
def reverts_with(error: str, *fragments: str) -> Iterator[None]:
    """Expect a revert with custom error `error`, whose decoded arguments contain `fragments`."""
    with pytest.raises(VirtualMachineError) as info:
        yield
    message = info.value.revert_msg or ""
    assert re.match(rf"{error}\b", message), f"expected {error}, got {message!r}"
    for fragment in fragments:
        assert fragment.lower() in message.lower(), f"{fragment!r} not in {message!r}"


def now() -> int:
    """Timestamp of the latest block.

    Read from the node rather than from brownie's `chain.time()`, which adds its own
    time offset to the wall clock and drifts from anvil's clock after snapshot reverts;
    the next block's timestamp is never below this value, which is what the tests rely on.
    """
    return chain[-1].timestamp


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
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


def sign_attestation(ledger, private_key: str, issuer: str, request: tuple, nonce: int, deadline: int) -> bytes:
    """An EIP-712 `Attest` signature over `request` as the ledger verifies it."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    kind, subject, claim, valid_from, valid_until, evidence = request
    typed = {
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
            "version": "1",
            "chainId": chain.id,
            "verifyingContract": ledger.address,
        },
        "message": {
            "issuer": issuer,
            "subjectKind": kind,
            "subject": subject if isinstance(subject, bytes) else bytes.fromhex(subject[2:]),
            "claim": claim,
            "validFrom": valid_from,
            "validUntil": valid_until,
            "evidenceHash": evidence,
            "nonce": nonce,
            "deadline": deadline,
        },
    }
    return bytes(Account.sign_message(encode_typed_data(full_message=typed), private_key).signature)
