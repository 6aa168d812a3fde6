"""Attestations: direct, bulk and delegated (EIP-712); revocation; one status view."""

from __future__ import annotations

from brownie import accounts, chain, web3
from contract_helpers import (
    COFFEE_GTIN,
    as_bytes32,
    attestation_uid,
    b32,
    batch_id,
    digest,
    hex32,
    now,
    reverts_with,
    sign_attestation,
    sleep,
)
from eth_account import Account

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
    assert uid == attestation_uid(certifier.address, req, tx.timestamp)
    stored = ledger.getAttestation(uid)
    assert (stored[0], bytes(stored[1]), stored[2], stored[3], stored[5]) == (certifier, b32("FAIRTRADE"), BATCH, tx.timestamp, 0)
    assert ledger.attestationStatus(uid) == VALID


def test_attest_actor(ledger, certifier, farm):
    req = request(actor_subject(farm), "ORGANIC", kind=ACTOR)
    tx = ledger.attest(req, {"from": certifier})
    assert tx.return_value == attestation_uid(certifier.address, req, tx.timestamp)
    event = tx.events["Attested"]
    assert (event["subject"], event["subjectKind"]) == (hex32(actor_subject(farm)), ACTOR)
    assert ledger.getAttestation(tx.return_value)[2] == ACTOR
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
    req = request(farm_batch, valid_from=now() + 100)
    tx = ledger.attest(req, {"from": certifier})
    uid = tx.return_value
    # An explicit start is kept as given (not the block time), so the same request gives the same uid.
    assert uid == attestation_uid(certifier.address, req, req[3]) == tx.events["Attested"]["uid"]
    assert tx.events["Attested"]["validFrom"] == req[3]
    assert ledger.attestationStatus(uid) == NOT_YET_VALID
    with reverts_with("ProvenanceAttestationAlreadyExists", uid):
        ledger.attest(req, {"from": certifier})


def test_attest_many(ledger, certifier, farm, farm_batch):
    reqs = [request(farm_batch), request(farm_batch, "ORGANIC"), request(actor_subject(farm), kind=ACTOR)]
    tx = ledger.attestMany(reqs, {"from": certifier})
    assert list(tx.return_value) == [attestation_uid(certifier.address, r, tx.timestamp) for r in reqs]
    # One event per request, in order, each saying what was attested about whom.
    shown = [
        (
            e["uid"],
            e["subject"],
            e["issuer"],
            e["subjectKind"],
            bytes(e["claim"]),
            e["validFrom"],
            e["validUntil"],
            e["evidenceHash"],
        )
        for e in tx.events["Attested"]
    ]
    assert shown == [
        (uid, hex32(as_bytes32(r[1])), certifier, r[0], r[2], tx.timestamp, r[4], hex32(r[5]))
        for uid, r in zip(tx.return_value, reqs, strict=True)
    ]
    assert all(ledger.attestationStatus(uid) == VALID for uid in tx.return_value)


def test_attest_many_is_all_or_nothing(ledger, certifier, farm, farm_batch):
    good = request(farm_batch)
    bad = request(farm_batch, "HALAL")
    with reverts_with("ProvenanceUnknownClaimType"):
        ledger.attestMany([good, bad], {"from": certifier})
    # The good request before the bad one left nothing behind, at any plausible block time.
    start = now()
    for timestamp in range(start, start + 5):
        uid = attestation_uid(certifier.address, good, timestamp)
        assert ledger.attestationStatus(uid) == NOT_FOUND
        assert ledger.getAttestation(uid)[0] == "0x" + "00" * 20
    # And the good one alone goes through afterwards: nothing was half-written.
    tx = ledger.attestMany([good], {"from": certifier})
    assert ledger.attestationStatus(tx.return_value[0]) == VALID


def test_attest_many_refuses_a_duplicate_inside(ledger, certifier, farm_batch):
    req = request(farm_batch, valid_from=now() + 100)
    with reverts_with("ProvenanceAttestationAlreadyExists", attestation_uid(certifier.address, req, req[3])):
        ledger.attestMany([req, req], {"from": certifier})
    assert ledger.attestationStatus(attestation_uid(certifier.address, req, req[3])) == NOT_FOUND


def test_attest_many_empty_reverts(ledger, certifier):
    with reverts_with("ProvenanceEmptyList"):
        ledger.attestMany([], {"from": certifier})


def test_attest_by_signature_submitted_by_anyone(ledger, certifier, outsider, farm_batch):
    req = request(farm_batch)
    deadline = now() + 3600
    signed_at = now()
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline, signed_at)
    tx = ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})
    assert tx.events["Attested"]["issuer"] == certifier
    # validFrom 0 in a signed request means the signing time, not the block time.
    assert tx.events["Attested"]["validFrom"] == signed_at
    assert tx.return_value == attestation_uid(certifier.address, req, signed_at)
    assert ledger.nonces(certifier) == 1
    assert ledger.attestationStatus(tx.return_value) == VALID


def test_attest_by_signature_replay_reverts(ledger, certifier, outsider, farm_batch):
    req = request(farm_batch)
    deadline = now() + 3600
    signed_at = now()
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline, signed_at)
    first = ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})
    assert first.events["Attested"]["issuer"] == certifier and ledger.nonces(certifier) == 1
    with reverts_with("ProvenanceInvalidSignature", certifier.address):
        ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})
    assert ledger.nonces(certifier) == 1  # the replay used up nothing


def test_attest_by_signature_from_wrong_signer_reverts(ledger, certifier, outsider, farm_batch):
    req = request(farm_batch)
    deadline = now() + 3600
    signed_at = now()
    impostor = Account.create()
    signature = sign_attestation(ledger, impostor.key, certifier.address, req, 0, deadline, signed_at)
    with reverts_with("ProvenanceInvalidSignature", certifier.address):
        ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})


def test_attest_by_signature_for_altered_request_reverts(ledger, certifier, outsider, farm_batch):
    req = request(farm_batch)
    deadline = now() + 3600
    signed_at = now()
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline, signed_at)
    altered = req[:4] + (req[4] + YEAR,) + req[5:]
    with reverts_with("ProvenanceInvalidSignature"):
        ledger.attestBySig(altered, certifier, signed_at, deadline, signature, {"from": outsider})


def test_attest_by_signature_after_deadline_reverts(ledger, certifier, outsider, farm_batch):
    req = request(farm_batch)
    deadline = now() - 1
    signed_at = now() - 2
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline, signed_at)
    with reverts_with("ProvenanceSignatureExpired", str(deadline)):
        ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": outsider})


def test_revoke_by_issuer(ledger, certifier, farm_batch):
    uid = ledger.attest(request(farm_batch), {"from": certifier}).return_value
    tx = ledger.revokeAttestation(uid, "Audit found mixed lots", digest("non-conformity"), {"from": certifier})
    event = tx.events["AttestationRevoked"]
    assert (event["uid"], event["by"], event["reason"]) == (uid, certifier, "Audit found mixed lots")
    assert event["reasonHash"] == hex32(digest("non-conformity"))
    assert ledger.getAttestation(uid)[5] == tx.timestamp
    assert ledger.attestationStatus(uid) == REVOKED


def test_revoke_by_admin(ledger, admin, certifier, farm_batch):
    uid = ledger.attest(request(farm_batch), {"from": certifier}).return_value
    tx = ledger.revokeAttestation(uid, "withdrawn", digest("r"), {"from": admin})
    event = tx.events["AttestationRevoked"]
    assert (event["uid"], event["by"], event["reason"], event["reasonHash"]) == (uid, admin, "withdrawn", hex32(digest("r")))
    stored = ledger.getAttestation(uid)
    assert (stored[0], stored[5]) == (certifier, tx.timestamp)  # still the certifier's, revoked now
    assert ledger.attestationStatus(uid) == REVOKED


def test_issuer_revokes_after_losing_accreditation(ledger, admin, certifier, farm_batch):
    uid = ledger.attest(request(farm_batch), {"from": certifier}).return_value
    ledger.withdrawAccreditation(certifier, b32("FAIRTRADE"), {"from": admin})
    tx = ledger.revokeAttestation(uid, "withdrawn", digest("r"), {"from": certifier})
    event = tx.events["AttestationRevoked"]
    assert (event["uid"], event["by"], event["reason"]) == (uid, certifier, "withdrawn")
    assert ledger.getAttestation(uid)[5] == tx.timestamp
    assert ledger.attestationStatus(uid) == REVOKED


def test_revoke_needs_a_reason_of_1_to_280_bytes(ledger, certifier, farm_batch):
    uid = ledger.attest(request(farm_batch), {"from": certifier}).return_value
    with reverts_with("ProvenanceInvalidReason", "0"):
        ledger.revokeAttestation(uid, "", digest("r"), {"from": certifier})
    with reverts_with("ProvenanceInvalidReason", "281"):
        ledger.revokeAttestation(uid, "x" * 281, digest("r"), {"from": certifier})
    assert ledger.attestationStatus(uid) == VALID
    tx = ledger.revokeAttestation(uid, "é" * 140, b"\0" * 32, {"from": certifier})  # 280 bytes of UTF-8
    assert tx.events["AttestationRevoked"]["reason"] == "é" * 140
    assert ledger.attestationStatus(uid) == REVOKED


def test_revoke_errors(ledger, certifier, farm, farm_batch):
    with reverts_with("ProvenanceUnknownAttestation"):
        ledger.revokeAttestation(b"\x01" * 32, "withdrawn", digest("r"), {"from": certifier})
    uid = ledger.attest(request(farm_batch), {"from": certifier}).return_value
    with reverts_with("ProvenanceNotRevoker", farm.address):
        ledger.revokeAttestation(uid, "withdrawn", digest("r"), {"from": farm})
    with reverts_with("ProvenanceNotRevoker"):
        ledger.revokeAttestation(uid, "withdrawn", digest("r"), {"from": accounts[6]})
    assert ledger.attestationStatus(uid) == VALID and ledger.getAttestation(uid)[5] == 0
    ledger.revokeAttestation(uid, "withdrawn", digest("r"), {"from": certifier})
    with reverts_with("ProvenanceAttestationAlreadyRevoked"):
        ledger.revokeAttestation(uid, "withdrawn", digest("r"), {"from": certifier})


def test_status_not_found(ledger):
    assert ledger.attestationStatus(b"\x02" * 32) == NOT_FOUND
    assert ledger.getAttestation(b"\x02" * 32)[0] == "0x" + "00" * 20


def test_status_follows_the_window(ledger, certifier, farm_batch):
    start = now() + 1000
    uid = ledger.attest(request(farm_batch, valid_from=start, valid_until=start + 1000), {"from": certifier}).return_value
    assert ledger.attestationStatus(uid) == NOT_YET_VALID
    sleep(1100)
    assert ledger.attestationStatus(uid) == VALID
    sleep(1000)
    assert ledger.attestationStatus(uid) == EXPIRED


def test_open_ended_attestation_does_not_expire(ledger, certifier, farm_batch):
    uid = ledger.attest(request(farm_batch, valid_until=0), {"from": certifier}).return_value
    sleep(50 * YEAR)
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


def test_status_turns_expired_at_the_exact_expiry_second(ledger, certifier, farm_batch):
    # validUntil is exclusive: valid one second before it, expired at it (kills the
    # `>=` -> `>` mutant of attestationStatus).
    start = now() + 1000
    until = start + 1000
    uid = ledger.attest(request(farm_batch, valid_from=start, valid_until=until), {"from": certifier}).return_value
    web3.provider.make_request("evm_setNextBlockTimestamp", [until - 1])
    chain.mine()
    assert ledger.attestationStatus(uid, block_identifier=chain.height) == VALID
    web3.provider.make_request("evm_setNextBlockTimestamp", [until])
    chain.mine()
    assert ledger.attestationStatus(uid, block_identifier=chain.height) == EXPIRED
