"""Attestations: direct, bulk and delegated (EIP-712); revocation; one status view."""

from __future__ import annotations

from brownie import accounts, chain
from eth_account import Account

from contract_helpers import COFFEE_GTIN, b32, batch_id, digest, now, reverts_with, sign_attestation

BATCH, ACTOR = 0, 1
NOT_FOUND, VALID, NOT_YET_VALID, EXPIRED, REVOKED, NOT_ACCREDITED = range(6)
YEAR = 365 * 24 * 3600


def request(subject, claim="FAIRTRADE", valid_from=0, valid_until=None, kind=BATCH, evidence="certificate"):
    until = now() + YEAR if valid_until is None else valid_until
    return (kind, subject, b32(claim), valid_from, until, digest(evidence))


def actor_subject(account) -> bytes:
    return bytes.fromhex(account.address[2:]).rjust(32, b"\0")


def test_attest_batch(ledger, certifier, farm_batch):
    req = request(farm_batch)
    tx = ledger.attest(req, {"from": certifier})
    uid = tx.return_value
    event = tx.events["Attested"]
    assert (event["uid"], event["subject"], event["issuer"]) == (uid, farm_batch, certifier)
    assert event["subjectKind"] == BATCH
    assert bytes(event["claim"]) == b32("FAIRTRADE")
    assert event["validFrom"] == tx.timestamp
    assert event["validUntil"] == req[4]
    assert uid == ledger.attestationUid(certifier, req[:3] + (tx.timestamp,) + req[4:])
    stored = ledger.getAttestation(uid)
    assert (stored[0], bytes(stored[1]), stored[2], stored[3], stored[5]) == (
        certifier, b32("FAIRTRADE"), BATCH, tx.timestamp, 0
    )
    assert ledger.attestationStatus(uid) == VALID
    assert ledger.isAttestationValid(uid)


def test_attest_actor(ledger, certifier, farm):
    tx = ledger.attest(request(actor_subject(farm), "ORGANIC", kind=ACTOR), {"from": certifier})
    assert ledger.attestationStatus(tx.return_value) == VALID


def test_attest_unknown_claim_reverts(ledger, certifier, farm_batch):
    with reverts_with("ProvenanceUnknownClaimType"):
        ledger.attest(request(farm_batch, "HALAL"), {"from": certifier})


def test_attest_without_accreditation_reverts(ledger, certifier, coop, farm_batch):
    with reverts_with("ProvenanceNotAccredited", certifier.address):
        ledger.attest(request(farm_batch, "DEFORESTATION_FREE"), {"from": certifier})
    with reverts_with("ProvenanceNotAccredited", coop.address):
        ledger.attest(request(farm_batch), {"from": coop})


def test_attest_by_unregistered_or_inactive_reverts(ledger, admin, certifier, outsider, farm_batch):
    with reverts_with("ProvenanceUnknownActor", outsider.address):
        ledger.attest(request(farm_batch), {"from": outsider})
    ledger.deactivateActor(certifier, {"from": admin})
    with reverts_with("ProvenanceActorInactive", certifier.address):
        ledger.attest(request(farm_batch), {"from": certifier})


def test_attest_with_reversed_window_reverts(ledger, certifier, farm_batch):
    start = now() + 1000
    with reverts_with("ProvenanceInvalidValidity"):
        ledger.attest(request(farm_batch, valid_from=start, valid_until=start), {"from": certifier})
    with reverts_with("ProvenanceInvalidValidity"):
        ledger.attest(request(farm_batch, valid_from=2**41), {"from": certifier})


def test_attest_unknown_subject_reverts(ledger, certifier, outsider):
    with reverts_with("ProvenanceUnknownSubject"):
        ledger.attest(request(batch_id(COFFEE_GTIN, "NOPE")), {"from": certifier})
    with reverts_with("ProvenanceUnknownSubject"):
        ledger.attest(request(actor_subject(outsider), kind=ACTOR), {"from": certifier})
    dirty = b"\x01" + actor_subject(certifier)[1:]
    with reverts_with("ProvenanceUnknownSubject"):
        ledger.attest(request(dirty, kind=ACTOR), {"from": certifier})


def test_identical_attestation_twice_reverts(ledger, certifier, farm_batch):
    req = request(farm_batch, valid_from=now() - 10)
    uid = ledger.attest(req, {"from": certifier}).return_value
    with reverts_with("ProvenanceAttestationAlreadyExists"):
        ledger.attest(req, {"from": certifier})


def test_attest_many(ledger, certifier, farm, farm_batch):
    reqs = [request(farm_batch), request(farm_batch, "ORGANIC"), request(actor_subject(farm), kind=ACTOR)]
    tx = ledger.attestMany(reqs, {"from": certifier})
    assert len(tx.return_value) == 3 and len(tx.events["Attested"]) == 3


def test_attest_many_empty_reverts(ledger, certifier):
    with reverts_with("ProvenanceEmptyList"):
        ledger.attestMany([], {"from": certifier})


def test_attest_by_signature_submitted_by_anyone(ledger, certifier, outsider, farm_batch):
    req = request(farm_batch)
    deadline = now() + 3600
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline)
    tx = ledger.attestBySig(req, certifier, deadline, signature, {"from": outsider})
    assert tx.events["Attested"]["issuer"] == certifier
    assert ledger.nonces(certifier) == 1
    assert ledger.attestationStatus(tx.return_value) == VALID


def test_attest_by_signature_replay_reverts(ledger, certifier, outsider, farm_batch):
    req = request(farm_batch)
    deadline = now() + 3600
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline)
    ledger.attestBySig(req, certifier, deadline, signature, {"from": outsider})
    with reverts_with("ProvenanceInvalidSignature", certifier.address):
        ledger.attestBySig(req, certifier, deadline, signature, {"from": outsider})


def test_attest_by_signature_from_wrong_signer_reverts(ledger, certifier, outsider, farm_batch):
    req = request(farm_batch)
    deadline = now() + 3600
    impostor = Account.create()
    signature = sign_attestation(ledger, impostor.key, certifier.address, req, 0, deadline)
    with reverts_with("ProvenanceInvalidSignature", certifier.address):
        ledger.attestBySig(req, certifier, deadline, signature, {"from": outsider})


def test_attest_by_signature_for_altered_request_reverts(ledger, certifier, outsider, farm_batch):
    req = request(farm_batch)
    deadline = now() + 3600
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline)
    altered = req[:4] + (req[4] + YEAR,) + req[5:]
    with reverts_with("ProvenanceInvalidSignature"):
        ledger.attestBySig(altered, certifier, deadline, signature, {"from": outsider})


def test_attest_by_signature_after_deadline_reverts(ledger, certifier, outsider, farm_batch):
    req = request(farm_batch)
    deadline = now() - 1
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline)
    with reverts_with("ProvenanceSignatureExpired", str(deadline)):
        ledger.attestBySig(req, certifier, deadline, signature, {"from": outsider})


def test_revoke_by_issuer(ledger, certifier, farm_batch):
    uid = ledger.attest(request(farm_batch), {"from": certifier}).return_value
    tx = ledger.revokeAttestation(uid, digest("non-conformity"), {"from": certifier})
    event = tx.events["AttestationRevoked"]
    assert (event["uid"], event["by"]) == (uid, certifier)
    assert ledger.getAttestation(uid)[5] == tx.timestamp
    assert ledger.attestationStatus(uid) == REVOKED
    assert not ledger.isAttestationValid(uid)


def test_revoke_by_admin(ledger, admin, certifier, farm_batch):
    uid = ledger.attest(request(farm_batch), {"from": certifier}).return_value
    ledger.revokeAttestation(uid, digest("r"), {"from": admin})
    assert ledger.attestationStatus(uid) == REVOKED


def test_issuer_revokes_after_losing_accreditation(ledger, admin, certifier, farm_batch):
    uid = ledger.attest(request(farm_batch), {"from": certifier}).return_value
    ledger.withdrawAccreditation(certifier, b32("FAIRTRADE"), {"from": admin})
    ledger.revokeAttestation(uid, digest("r"), {"from": certifier})


def test_revoke_errors(ledger, certifier, farm, farm_batch):
    with reverts_with("ProvenanceUnknownAttestation"):
        ledger.revokeAttestation(b"\x01" * 32, digest("r"), {"from": certifier})
    uid = ledger.attest(request(farm_batch), {"from": certifier}).return_value
    with reverts_with("ProvenanceNotRevoker", farm.address):
        ledger.revokeAttestation(uid, digest("r"), {"from": farm})
    with reverts_with("ProvenanceNotRevoker"):
        ledger.revokeAttestation(uid, digest("r"), {"from": accounts[6]})
    ledger.revokeAttestation(uid, digest("r"), {"from": certifier})
    with reverts_with("ProvenanceAttestationAlreadyRevoked"):
        ledger.revokeAttestation(uid, digest("r"), {"from": certifier})


def test_status_not_found(ledger):
    assert ledger.attestationStatus(b"\x02" * 32) == NOT_FOUND
    assert not ledger.isAttestationValid(b"\x02" * 32)


def test_status_follows_the_window(ledger, certifier, farm_batch):
    start = now() + 1000
    uid = ledger.attest(request(farm_batch, valid_from=start, valid_until=start + 1000), {"from": certifier}).return_value
    assert ledger.attestationStatus(uid) == NOT_YET_VALID
    chain.sleep(1100)
    chain.mine()
    assert ledger.attestationStatus(uid) == VALID
    chain.sleep(1000)
    chain.mine()
    assert ledger.attestationStatus(uid) == EXPIRED


def test_open_ended_attestation_does_not_expire(ledger, certifier, farm_batch):
    uid = ledger.attest(request(farm_batch, valid_until=0), {"from": certifier}).return_value
    chain.sleep(50 * YEAR)
    chain.mine()
    assert ledger.attestationStatus(uid) == VALID


def test_status_when_accreditation_withdrawn_and_restored(ledger, admin, certifier, farm_batch):
    uid = ledger.attest(request(farm_batch), {"from": certifier}).return_value
    ledger.withdrawAccreditation(certifier, b32("FAIRTRADE"), {"from": admin})
    assert ledger.attestationStatus(uid) == NOT_ACCREDITED
    ledger.accreditCertifier(certifier, b32("FAIRTRADE"), {"from": admin})
    assert ledger.attestationStatus(uid) == VALID


def test_status_when_issuer_deactivated(ledger, admin, certifier, farm_batch):
    uid = ledger.attest(request(farm_batch), {"from": certifier}).return_value
    ledger.deactivateActor(certifier, {"from": admin})
    assert ledger.attestationStatus(uid) == NOT_ACCREDITED
