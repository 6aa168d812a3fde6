"""Signed attestations (attestBySig): the signing time, nonce invalidation, contract-wallet
(ERC-1271) issuers, and signatures that must never count twice or elsewhere."""

from __future__ import annotations

import pytest
from brownie import ERC1271Wallet, ProvenanceLedger, accounts
from contract_helpers import (
    ADMIN_DELAY,
    DAY,
    SECP256K1_N,
    attest_digest,
    attestation_uid,
    b32,
    digest,
    malleate,
    now,
    reverts_with,
    setup_ledger,
    sign_attestation,
    sleep,
)
from eth_account import Account
from eth_keys import keys

BATCH, ACTOR = 0, 1
VALID = 1
YEAR = 365 * DAY


def actor_subject(account) -> bytes:
    return bytes.fromhex(str(account)[2:]).rjust(32, b"\0")


def request(subject, claim="FAIRTRADE", valid_from=0, kind=ACTOR):
    """An AttestationRequest about an organisation (no batch registration time in the way)."""
    return (kind, subject, b32(claim), valid_from, now() + YEAR, digest("certificate"))


# ------------------------------------------------------------------ the signing time


def test_valid_from_zero_means_the_signing_time(ledger, certifier, farm, outsider):
    sleep(3600)
    req = request(actor_subject(farm))
    signed_at, deadline = now() - 1800, now() + 3600
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline, signed_at)
    sleep(600)  # the submitter waits: the start does not move with it
    tx = ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})
    assert tx.events["Attested"]["validFrom"] == signed_at != tx.timestamp
    assert ledger.getAttestation(tx.return_value)[3] == signed_at
    assert tx.return_value == attestation_uid(certifier.address, req, signed_at)


def test_submitter_cannot_choose_another_signing_time(ledger, certifier, farm, outsider):
    req = request(actor_subject(farm))
    signed_at, deadline = now() - 100, now() + 3600
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline, signed_at)
    for other in (signed_at - 1, signed_at + 1):
        with reverts_with("ProvenanceInvalidSignature", certifier.address):
            ledger.attestBySig(req, certifier, other, deadline, signature, {"from": outsider})


def test_signed_in_the_future_reverts(ledger, certifier, farm, outsider):
    req = request(actor_subject(farm))
    signed_at, deadline = now() + 1000, now() + 3600
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline, signed_at)
    with reverts_with("ProvenanceSignedInFuture", str(signed_at)):
        ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})
    assert ledger.nonces(certifier) == 0


def test_signing_time_is_bounded_by_max_backdating(ledger, certifier, farm, outsider):
    sleep(100 * DAY)
    req = request(actor_subject(farm))
    signed_at, deadline = now() - 91 * DAY, now() + 3600
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline, signed_at)
    with reverts_with("ProvenanceValidFromTooEarly", f"{signed_at}, "):
        ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})


def test_signing_time_before_the_batch_reverts(ledger, certifier, farm, outsider, farm_batch):
    registered_at = ledger.getBatch(farm_batch)[8]
    req = request(farm_batch, kind=BATCH)
    signed_at, deadline = registered_at - 1, now() + 3600
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline, signed_at)
    with reverts_with("ProvenanceValidFromTooEarly", f"{signed_at}, {registered_at}"):
        ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})


# ------------------------------------------------------------------ nonce invalidation


def test_invalidated_nonces_make_handed_out_signatures_fail(ledger, certifier, farm, outsider):
    req = request(actor_subject(farm))
    signed_at, deadline = now(), now() + 3600
    handed_out = {
        nonce: sign_attestation(ledger, certifier.private_key, certifier.address, req, nonce, deadline, signed_at)
        for nonce in (0, 4, 5)
    }
    tx = ledger.invalidateNonces(5, {"from": certifier})
    event = tx.events["NoncesInvalidated"]
    assert (event["issuer"], event["nextNonce"]) == (certifier, 5)
    assert ledger.nonces(certifier) == 5
    for nonce in (0, 4):
        with reverts_with("ProvenanceInvalidSignature", certifier.address):
            ledger.attestBySig(req, certifier, signed_at, deadline, handed_out[nonce], {"from": outsider})
    # A signature for the new nonce still works, once.
    tx = ledger.attestBySig(req, certifier, signed_at, deadline, handed_out[5], {"from": outsider})
    assert tx.events["Attested"]["issuer"] == certifier
    assert ledger.nonces(certifier) == 6


def test_invalidate_nonces_backwards_reverts(ledger, certifier, farm):
    with reverts_with("ProvenanceInvalidNonce", "0, 0"):
        ledger.invalidateNonces(0, {"from": certifier})
    ledger.invalidateNonces(5, {"from": certifier})
    with reverts_with("ProvenanceInvalidNonce", "5, 5"):
        ledger.invalidateNonces(5, {"from": certifier})
    with reverts_with("ProvenanceInvalidNonce", "5, 3"):
        ledger.invalidateNonces(3, {"from": certifier})
    assert ledger.nonces(certifier) == 5
    # Nonces are per issuer: the farm's are untouched.
    assert ledger.nonces(farm) == 0


# ------------------------------------------------------------------ malleability and replay


def test_high_s_signature_reverts(ledger, certifier, farm, outsider):
    req = request(actor_subject(farm))
    signed_at, deadline = now(), now() + 3600
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline, signed_at)
    twin = malleate(signature)
    # The twin is a valid secp256k1 signature of the same key over the same digest...
    assert int.from_bytes(twin[32:64], "big") > SECP256K1_N // 2
    message_hash = attest_digest(ledger, certifier.address, req, 0, deadline, signed_at)
    r, s = int.from_bytes(twin[:32], "big"), int.from_bytes(twin[32:64], "big")
    public_key = keys.Signature(vrs=(twin[64] - 27, r, s)).recover_public_key_from_msg_hash(message_hash)
    assert public_key.to_checksum_address() == certifier.address
    # ...which the ledger refuses, so a signature has exactly one accepted encoding.
    with reverts_with("ProvenanceInvalidSignature", certifier.address):
        ledger.attestBySig(req, certifier, signed_at, deadline, twin, {"from": outsider})
    tx = ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})
    assert tx.events["Attested"]["issuer"] == certifier


def test_signature_for_another_deployment_reverts(ledger, admin, farm, coop, roaster, certifier, outsider):
    other = ProvenanceLedger.deploy(admin, ADMIN_DELAY, {"from": admin})
    setup_ledger(other, admin, farm, coop, roaster, certifier)
    req = request(actor_subject(farm))
    signed_at, deadline = now(), now() + 3600
    # Signed for `ledger`, submitted to `other` (same issuer, same nonce 0, same chain).
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline, signed_at)
    with reverts_with("ProvenanceInvalidSignature", certifier.address):
        other.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})
    assert other.nonces(certifier) == 0
    tx = ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})
    assert tx.events["Attested"]["issuer"] == certifier


@pytest.mark.parametrize("domain", [{"chain_id": 1}, {"version": "1"}])
def test_signature_for_another_chain_or_version_reverts(ledger, certifier, farm, outsider, domain):
    req = request(actor_subject(farm))
    signed_at, deadline = now(), now() + 3600
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline, signed_at, **domain)
    with reverts_with("ProvenanceInvalidSignature", certifier.address):
        ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})


def test_signature_naming_another_issuer_reverts(ledger, certifier, farm, outsider):
    # The certifier's own valid signature, but for the farm as issuer, is not the farm's.
    req = request(actor_subject(certifier))
    signed_at, deadline = now(), now() + 3600
    signature = sign_attestation(ledger, certifier.private_key, farm.address, req, 0, deadline, signed_at)
    with reverts_with("ProvenanceInvalidSignature", farm.address):
        ledger.attestBySig(req, farm, signed_at, deadline, signature, {"from": outsider})


def test_garbage_signature_reverts(ledger, certifier, farm, outsider):
    req = request(actor_subject(farm))
    signed_at, deadline = now(), now() + 3600
    for signature in (b"", b"\x01" * 64, b"\x00" * 65):
        with reverts_with("ProvenanceInvalidSignature", certifier.address):
            ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})


# ------------------------------------------------------------------ ERC-1271 issuers


@pytest.fixture
def wallet_certifier(ledger, admin):
    """A certifier whose address is a contract wallet, with the key that signs for it."""
    owner = Account.create()
    wallet = ERC1271Wallet.deploy(owner.address, {"from": admin})
    ledger.registerActor(wallet, "Contract Wallet Certification", b"NL", digest("wallet"), {"from": admin})
    ledger.accreditCertifier(wallet, b32("FAIRTRADE"), {"from": admin})
    return wallet, owner


def test_contract_wallet_issuer_attests_by_signature(ledger, farm, outsider, wallet_certifier):
    wallet, owner = wallet_certifier
    req = request(actor_subject(farm))
    signed_at, deadline = now(), now() + 3600
    signature = sign_attestation(ledger, owner.key, wallet.address, req, 0, deadline, signed_at)
    tx = ledger.attestBySig(req, wallet, signed_at, deadline, signature, {"from": outsider})
    event = tx.events["Attested"]
    assert (event["issuer"], event["validFrom"]) == (wallet.address, signed_at)
    assert tx.return_value == attestation_uid(wallet.address, req, signed_at)
    assert ledger.getAttestation(tx.return_value)[0] == wallet.address
    assert ledger.attestationStatus(tx.return_value) == VALID
    assert ledger.nonces(wallet) == 1
    # A contract signature is checked against the nonce like any other: no replay.
    with reverts_with("ProvenanceInvalidSignature", wallet.address):
        ledger.attestBySig(req, wallet, signed_at, deadline, signature, {"from": outsider})


def test_contract_wallet_refuses_a_signature_not_of_its_owner(ledger, farm, outsider, wallet_certifier):
    wallet, owner = wallet_certifier
    req = request(actor_subject(farm))
    signed_at, deadline = now(), now() + 3600
    stranger = Account.create()
    signature = sign_attestation(ledger, stranger.key, wallet.address, req, 0, deadline, signed_at)
    with reverts_with("ProvenanceInvalidSignature", wallet.address):
        ledger.attestBySig(req, wallet, signed_at, deadline, signature, {"from": outsider})
    # The owner's signature over another request does not carry over either.
    signature = sign_attestation(ledger, owner.key, wallet.address, request(actor_subject(outsider)), 0, deadline, signed_at)
    with reverts_with("ProvenanceInvalidSignature", wallet.address):
        ledger.attestBySig(req, wallet, signed_at, deadline, signature, {"from": outsider})
    assert ledger.nonces(wallet) == 0


def test_contract_wallet_invalidates_its_nonces(ledger, admin, farm, outsider, wallet_certifier):
    wallet, owner = wallet_certifier
    req = request(actor_subject(farm))
    signed_at, deadline = now(), now() + 3600
    signature = sign_attestation(ledger, owner.key, wallet.address, req, 0, deadline, signed_at)
    # The wallet's owner acts through the wallet; it needs gas money for that.
    local = accounts.add(owner.key.hex())
    admin.transfer(local, "1 ether")
    tx = wallet.execute(ledger.address, ledger.invalidateNonces.encode_input(1), {"from": local})
    assert ledger.nonces(wallet) == 1
    assert tx.events["NoncesInvalidated"]["issuer"] == wallet.address
    with reverts_with("ProvenanceInvalidSignature", wallet.address):
        ledger.attestBySig(req, wallet, signed_at, deadline, signature, {"from": outsider})


def test_invalidate_nonces_beyond_the_bounded_step_reverts(ledger, certifier):
    # A jump to 2**256 - 1 would make the next attestBySig overflow the nonce: the issuer
    # would lock itself out for good. The step is bounded instead.
    with reverts_with("ProvenanceInvalidNonce", f"0, {2**256 - 1}"):
        ledger.invalidateNonces(2**256 - 1, {"from": certifier})
    with reverts_with("ProvenanceInvalidNonce", f"0, {2**32}"):
        ledger.invalidateNonces(2**32, {"from": certifier})
    ledger.invalidateNonces(2**32 - 1, {"from": certifier})
    assert ledger.nonces(certifier) == 2**32 - 1
