"""Certification rules (issue 9): separation of duties, bounded backdating, and one path
to accreditation that agrees with what attest accepts."""

from __future__ import annotations

import pytest
from contract_helpers import (
    CERTIFIER_SUPPLIER_GTIN,
    DAY,
    accreditation_role,
    b32,
    batch_input,
    digest,
    is_accredited,
    now,
    reverts_with,
    sign_attestation,
    sleep,
)

BATCH, ACTOR = 0, 1
VALID, NOT_ACCREDITED = 1, 5
YEAR = 365 * DAY


def request(subject, claim="FAIRTRADE", valid_from=0, kind=BATCH):
    """An AttestationRequest tuple, valid for a year from now."""
    return (kind, subject, b32(claim), valid_from, now() + YEAR, digest("certificate"))


def actor_subject(account) -> bytes:
    return bytes.fromhex(account.address[2:]).rjust(32, b"\0")


@pytest.fixture
def certifying_supplier(ledger, admin, certifier):
    """The certifier also holds the supplier role and a GTIN: the setting for self-certification."""
    ledger.grantRole(ledger.SUPPLIER_ROLE(), certifier, {"from": admin})
    ledger.grantLicence(certifier, 14, CERTIFIER_SUPPLIER_GTIN, {"from": admin})
    return certifier


# ------------------------------------------------------------------ separation of duties


def test_certifier_attesting_its_own_batch_reverts(ledger, certifying_supplier, coop):
    own = ledger.registerBatch(batch_input("C-1", gtin=CERTIFIER_SUPPLIER_GTIN), {"from": certifying_supplier})
    with reverts_with("ProvenanceConflictOfInterest", certifying_supplier.address, f", {BATCH}, ", own.return_value):
        ledger.attest(request(own.return_value), {"from": certifying_supplier})
    # Still its own after handing it over: it supplied it.
    ledger.transferCustody(own.return_value, coop, {"from": certifying_supplier})
    ledger.acceptCustody(own.return_value, {"from": coop})
    with reverts_with("ProvenanceConflictOfInterest", certifying_supplier.address):
        ledger.attest(request(own.return_value), {"from": certifying_supplier})
    with reverts_with("ProvenanceConflictOfInterest", certifying_supplier.address):
        ledger.attestMany([request(own.return_value)], {"from": certifying_supplier})


def test_certifier_attesting_a_batch_it_holds_reverts(ledger, farm, certifying_supplier, farm_batch):
    ledger.transferCustody(farm_batch, certifying_supplier, {"from": farm})
    ledger.acceptCustody(farm_batch, {"from": certifying_supplier})
    with reverts_with("ProvenanceConflictOfInterest", certifying_supplier.address, farm_batch):
        ledger.attest(request(farm_batch), {"from": certifying_supplier})


def test_certifier_holding_without_supplier_role_is_still_conflicted(ledger, farm, certifier, farm_batch):
    # Holding goods is enough: a plain certifier that accepted a batch does not vouch for it.
    ledger.transferCustody(farm_batch, certifier, {"from": farm})
    ledger.acceptCustody(farm_batch, {"from": certifier})
    with reverts_with("ProvenanceConflictOfInterest", certifier.address, farm_batch):
        ledger.attest(request(farm_batch), {"from": certifier})


def test_certifier_attesting_a_batch_pending_hand_over_to_it_reverts(ledger, farm, certifier, farm_batch):
    ledger.transferCustody(farm_batch, certifier, {"from": farm})
    with reverts_with("ProvenanceConflictOfInterest", certifier.address, farm_batch):
        ledger.attest(request(farm_batch), {"from": certifier})
    # Once the hand-over is called off, it is an independent party again.
    ledger.cancelCustodyTransfer(farm_batch, {"from": farm})
    tx = ledger.attest(request(farm_batch), {"from": certifier})
    assert tx.events["Attested"]["issuer"] == certifier


def test_certifier_attesting_itself_reverts(ledger, certifier):
    subject = actor_subject(certifier)
    with reverts_with("ProvenanceConflictOfInterest", certifier.address, f"{ACTOR}, "):
        ledger.attest(request(subject, kind=ACTOR), {"from": certifier})


def test_conflict_of_interest_through_attest_by_sig(ledger, certifier, farm, farm_batch):
    ledger.transferCustody(farm_batch, certifier, {"from": farm})
    req = request(farm_batch)
    signed_at, deadline = now(), now() + 3600
    signature = sign_attestation(ledger, certifier.private_key, certifier.address, req, 0, deadline, signed_at)
    with reverts_with("ProvenanceConflictOfInterest", certifier.address, farm_batch):
        ledger.attestBySig(req, certifier, signed_at, deadline, signature, {"from": farm})


# ------------------------------------------------------------------ backdating


def test_valid_from_1970_reverts(ledger, certifier, farm, farm_batch):
    with reverts_with("ProvenanceValidFromTooEarly", "1, "):
        ledger.attest(request(farm_batch, valid_from=1), {"from": certifier})
    with reverts_with("ProvenanceValidFromTooEarly", "1, "):
        ledger.attest(request(actor_subject(farm), valid_from=1, kind=ACTOR), {"from": certifier})


def test_valid_from_before_the_batch_was_registered_reverts(ledger, farm, certifier):
    sleep(3600)
    batch = ledger.registerBatch(batch_input("L-NEW"), {"from": farm})
    registered_at = batch.timestamp
    assert ledger.getBatch(batch.return_value)[8] == registered_at
    # An hour before the batch existed is well inside the 90 days, but before the batch.
    with reverts_with("ProvenanceValidFromTooEarly", f"{registered_at - 1}, {registered_at}"):
        ledger.attest(request(batch.return_value, valid_from=registered_at - 1), {"from": certifier})
    tx = ledger.attest(request(batch.return_value, valid_from=registered_at), {"from": certifier})
    assert tx.events["Attested"]["validFrom"] == registered_at


def test_valid_from_beyond_max_backdating_reverts(ledger, certifier, farm):
    # The default bound is 90 days for every claim type.
    too_early = now() - 91 * DAY
    with reverts_with("ProvenanceValidFromTooEarly", f"{too_early}, "):
        ledger.attest(request(actor_subject(farm), valid_from=too_early, kind=ACTOR), {"from": certifier})
    inside = now() - 89 * DAY
    tx = ledger.attest(request(actor_subject(farm), valid_from=inside, kind=ACTOR), {"from": certifier})
    assert tx.events["Attested"]["validFrom"] == inside


def test_backdating_bound_counts_from_the_block(ledger, certifier, farm, farm_batch):
    # A batch 100 days old: a claim from the day it was registered is now too far back.
    registered_at = ledger.getBatch(farm_batch)[8]
    sleep(100 * DAY)
    with reverts_with("ProvenanceValidFromTooEarly", f"{registered_at}, "):
        ledger.attest(request(farm_batch, valid_from=registered_at), {"from": certifier})


def test_set_max_backdating_changes_the_bound(ledger, admin, certifier, farm):
    tx = ledger.setMaxBackdating(b32("FAIRTRADE"), YEAR, {"from": admin})
    event = tx.events["MaxBackdatingSet"]
    assert (bytes(event["claim"]), event["period"]) == (b32("FAIRTRADE"), YEAR)
    start = now() - 200 * DAY
    tx = ledger.attest(request(actor_subject(farm), valid_from=start, kind=ACTOR), {"from": certifier})
    assert tx.events["Attested"]["validFrom"] == start
    # Other claim types keep their own bound.
    with reverts_with("ProvenanceValidFromTooEarly", f"{start}, "):
        ledger.attest(request(actor_subject(farm), "ORGANIC", valid_from=start, kind=ACTOR), {"from": certifier})
    # A bound of zero forbids any start before the block.
    ledger.setMaxBackdating(b32("FAIRTRADE"), 0, {"from": admin})
    past = now() - 10
    with reverts_with("ProvenanceValidFromTooEarly", f"{past}, "):
        ledger.attest(request(actor_subject(farm), valid_from=past, kind=ACTOR), {"from": certifier})
    tx = ledger.attest(request(actor_subject(farm), kind=ACTOR), {"from": certifier})
    assert tx.events["Attested"]["validFrom"] == tx.timestamp


def test_set_max_backdating_errors(ledger, admin, farm, certifier):
    with reverts_with("AccessControlUnauthorizedAccount", farm.address):
        ledger.setMaxBackdating(b32("FAIRTRADE"), YEAR, {"from": farm})
    with reverts_with("ProvenanceUnknownClaimType", str(b32("HALAL"))):
        ledger.setMaxBackdating(b32("HALAL"), YEAR, {"from": admin})
    # The bound is still 90 days.
    with reverts_with("ProvenanceValidFromTooEarly"):
        ledger.attest(request(actor_subject(farm), valid_from=now() - 91 * DAY, kind=ACTOR), {"from": certifier})


def test_new_claim_type_starts_with_90_days(ledger, admin):
    tx = ledger.defineClaimType(b32("RAINFOREST_ALLIANCE"), {"from": admin})
    event = tx.events["MaxBackdatingSet"]
    assert (bytes(event["claim"]), event["period"]) == (b32("RAINFOREST_ALLIANCE"), 90 * DAY)


# ------------------------------------------------------------------ accreditation paths agree


@pytest.mark.parametrize("claim", ["FAIRTRADE", "HALAL"])
def test_granting_an_accreditation_role_directly_reverts(ledger, admin, coop, claim):
    # Defined or not yet defined, an accreditation goes through accreditCertifier only.
    role = accreditation_role(b32(claim))
    with reverts_with("ProvenanceRoleNotGrantable", role):
        ledger.grantRole(role, coop, {"from": admin})
    assert not ledger.hasRole(role, coop)
    assert not is_accredited(ledger, coop, b32(claim))


def test_role_granted_before_its_claim_type_cannot_exist(ledger, admin, coop, farm):
    # The attack: grantRole before defineClaimType read as accredited but could not attest.
    role = accreditation_role(b32("HALAL"))
    with reverts_with("ProvenanceRoleNotGrantable", role):
        ledger.grantRole(role, coop, {"from": admin})
    ledger.defineClaimType(b32("HALAL"), {"from": admin})
    assert not is_accredited(ledger, coop, b32("HALAL"))
    with reverts_with("ProvenanceNotAccredited", coop.address):
        ledger.attest(request(actor_subject(farm), "HALAL", kind=ACTOR), {"from": coop})
    ledger.accreditCertifier(coop, b32("HALAL"), {"from": admin})
    assert is_accredited(ledger, coop, b32("HALAL"))
    tx = ledger.attest(request(actor_subject(farm), "HALAL", kind=ACTOR), {"from": coop})
    assert tx.events["Attested"]["issuer"] == coop


def test_other_roles_are_not_grantable(ledger, admin, coop):
    role = b"\x42" * 32
    with reverts_with("ProvenanceRoleNotGrantable", role):
        ledger.grantRole(role, coop, {"from": admin})


def _agrees(ledger, certifier, subject_account, accredited: bool) -> None:
    """is_accredited (hasRole of the accreditation role) and attest give the same answer for FAIRTRADE."""
    assert is_accredited(ledger, certifier, b32("FAIRTRADE")) is accredited
    req = request(actor_subject(subject_account), kind=ACTOR)
    if accredited:
        tx = ledger.attest(req, {"from": certifier})
        assert tx.events["Attested"]["issuer"] == certifier
    else:
        with reverts_with("ProvenanceNotAccredited", certifier.address):
            ledger.attest(req, {"from": certifier})


def test_is_accredited_and_attest_agree_through_every_path(ledger, admin, certifier, farm, coop, roaster):
    claim = b32("FAIRTRADE")
    role = accreditation_role(claim)
    _agrees(ledger, certifier, farm, True)
    ledger.withdrawAccreditation(certifier, claim, {"from": admin})
    _agrees(ledger, certifier, coop, False)
    ledger.accreditCertifier(certifier, claim, {"from": admin})
    _agrees(ledger, certifier, coop, True)
    tx = ledger.renounceRole(role, certifier, {"from": certifier})
    assert tx.events["RoleRevoked"]["account"] == certifier
    _agrees(ledger, certifier, roaster, False)
    ledger.accreditCertifier(certifier, claim, {"from": admin})
    _agrees(ledger, certifier, roaster, True)
    tx = ledger.revokeRole(role, certifier, {"from": admin})
    assert tx.events["RoleRevoked"]["account"] == certifier
    _agrees(ledger, certifier, farm, False)
    # The other accreditation was never touched.
    assert is_accredited(ledger, certifier, b32("ORGANIC"))


def test_renounced_accreditation_invalidates_existing_attestations(ledger, certifier, farm):
    uid = ledger.attest(request(actor_subject(farm), kind=ACTOR), {"from": certifier}).return_value
    assert ledger.attestationStatus(uid) == VALID
    ledger.renounceRole(accreditation_role(b32("FAIRTRADE")), certifier, {"from": certifier})
    assert ledger.attestationStatus(uid) == NOT_ACCREDITED
