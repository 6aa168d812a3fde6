"""Organisations, claim types, accreditation and the admin hand-over."""

from __future__ import annotations

from brownie import ZERO_ADDRESS, accounts
from contract_helpers import (
    ADMIN_DELAY,
    accreditation_role,
    b32,
    batch_id,
    batch_input,
    digest,
    gtin_with_check_digit,
    hex32,
    is_accredited,
    now,
    reverts_with,
    sleep,
)

LATE_GTIN = gtin_with_check_digit(950999900001)  # a GTIN nobody holds in the fixture


def test_register_actor_stores_record_and_emits(ledger, admin):
    new = accounts[6]
    tx = ledger.registerActor(new, "Molino San Jose", b"MX", digest("profile"), {"from": admin})
    event = tx.events["ActorRegistered"]
    assert event["account"] == new
    assert event["actorId"] == 5
    assert event["name"] == "Molino San Jose"
    assert event["country"] == "0x" + b"MX".hex()
    assert event["metadataHash"] == "0x" + digest("profile").hex()
    assert tuple(ledger.getActor(new)) == (5, True, False)


def test_register_actor_by_non_admin_reverts(ledger, farm):
    with reverts_with("AccessControlUnauthorizedAccount", farm.address):
        ledger.registerActor(accounts[6], "X", b"CO", digest("x"), {"from": farm})


def test_register_actor_twice_reverts(ledger, admin, farm):
    with reverts_with("ProvenanceActorAlreadyRegistered", farm.address):
        ledger.registerActor(farm, "Again", b"CO", digest("x"), {"from": admin})


def test_register_zero_address_reverts(ledger, admin):
    with reverts_with("ProvenanceActorAlreadyRegistered"):
        ledger.registerActor(ZERO_ADDRESS, "Nobody", b"CO", digest("x"), {"from": admin})


def test_register_actor_with_empty_or_long_name_reverts(ledger, admin):
    with reverts_with("ProvenanceInvalidName", "0"):
        ledger.registerActor(accounts[6], "", b"CO", digest("x"), {"from": admin})
    with reverts_with("ProvenanceInvalidName", "65"):
        ledger.registerActor(accounts[6], "x" * 65, b"CO", digest("x"), {"from": admin})


def test_register_actor_with_bad_country_reverts(ledger, admin):
    for country in (b"co", b"C1", b"\x00\x00"):
        with reverts_with("ProvenanceInvalidCountry"):
            ledger.registerActor(accounts[6], "Molino", country, digest("x"), {"from": admin})


def test_profile_update_is_requested_then_approved(ledger, admin, farm):
    tx = ledger.requestProfileUpdate("Finca La Esperanza SAS", b"CO", digest("v2"), {"from": farm})
    event = tx.events["ActorProfileUpdateRequested"]
    assert (event["account"], event["name"], event["metadataHash"]) == (farm, "Finca La Esperanza SAS", hex32(digest("v2")))
    assert "ActorProfileUpdated" not in tx.events
    tx = ledger.approveProfileUpdate(farm, "Finca La Esperanza SAS", b"CO", digest("v2"), {"from": admin})
    event = tx.events["ActorProfileUpdated"]
    assert (event["account"], event["name"], event["country"]) == (farm, "Finca La Esperanza SAS", "0x" + b"CO".hex())
    assert event["metadataHash"] == hex32(digest("v2"))


def test_profile_request_by_unregistered_reverts(ledger, outsider):
    with reverts_with("ProvenanceUnknownActor", outsider.address):
        ledger.requestProfileUpdate("Me", b"CO", digest("x"), {"from": outsider})


def test_profile_request_by_inactive_reverts(ledger, admin, farm):
    ledger.deactivateActor(farm, {"from": admin})
    with reverts_with("ProvenanceActorInactive", farm.address):
        ledger.requestProfileUpdate("Me", b"CO", digest("x"), {"from": farm})


def test_profile_approval_of_inactive_reverts(ledger, admin, farm):
    ledger.requestProfileUpdate("Finca Nueva", b"CO", digest("x"), {"from": farm})
    ledger.deactivateActor(farm, {"from": admin})
    with reverts_with("ProvenanceActorInactive", farm.address):
        ledger.approveProfileUpdate(farm, "Finca Nueva", b"CO", digest("x"), {"from": admin})


def test_profile_approval_by_non_admin_reverts(ledger, farm, roaster):
    ledger.requestProfileUpdate("Finca Nueva", b"CO", digest("x"), {"from": farm})
    for caller in (farm, roaster):
        with reverts_with("AccessControlUnauthorizedAccount", caller.address):
            ledger.approveProfileUpdate(farm, "Finca Nueva", b"CO", digest("x"), {"from": caller})


def test_profile_request_with_bad_input_reverts(ledger, farm):
    with reverts_with("ProvenanceInvalidCountry"):
        ledger.requestProfileUpdate("Finca", b"zz", digest("x"), {"from": farm})
    with reverts_with("ProvenanceInvalidName", "0"):
        ledger.requestProfileUpdate("", b"CO", digest("x"), {"from": farm})
    with reverts_with("ProvenanceInvalidName", "65"):
        ledger.requestProfileUpdate("x" * 65, b"CO", digest("x"), {"from": farm})


def test_deactivate_and_reactivate(ledger, admin, farm):
    tx = ledger.deactivateActor(farm, {"from": admin})
    assert tx.events["ActorDeactivated"]["account"] == farm
    assert ledger.getActor(farm)[1] is False
    tx = ledger.reactivateActor(farm, {"from": admin})
    assert tx.events["ActorReactivated"]["account"] == farm
    assert ledger.getActor(farm)[1] is True


def test_deactivate_errors(ledger, admin, farm, outsider):
    with reverts_with("AccessControlUnauthorizedAccount"):
        ledger.deactivateActor(farm, {"from": outsider})
    with reverts_with("ProvenanceUnknownActor"):
        ledger.deactivateActor(outsider, {"from": admin})
    ledger.deactivateActor(farm, {"from": admin})
    with reverts_with("ProvenanceActorInactive"):
        ledger.deactivateActor(farm, {"from": admin})


def test_reactivate_errors(ledger, admin, farm, outsider):
    with reverts_with("AccessControlUnauthorizedAccount"):
        ledger.reactivateActor(farm, {"from": outsider})
    with reverts_with("ProvenanceUnknownActor"):
        ledger.reactivateActor(outsider, {"from": admin})
    with reverts_with("ProvenanceActorAlreadyActive", farm.address):
        ledger.reactivateActor(farm, {"from": admin})


def test_inactive_supplier_cannot_register(ledger, admin, farm):
    ledger.deactivateActor(farm, {"from": admin})
    with reverts_with("ProvenanceActorInactive", farm.address):
        ledger.registerBatch(batch_input("L-1"), {"from": farm})


def test_default_claim_types_are_defined(ledger, admin, coop):
    # The deployment announces the three default claim types, with the role that accredits
    # for each: the role computed here the way the contract derives it.
    events = ledger.tx.events["ClaimTypeDefined"]
    assert [(e["claim"], e["claimTypeId"], e["accreditationRole"]) for e in events] == [
        (hex32(b32(claim)), number, accreditation_role(b32(claim)))
        for number, claim in enumerate(("FAIRTRADE", "ORGANIC", "DEFORESTATION_FREE"), start=1)
    ]
    # Defined: a certifier can be accredited for it. Not defined: refused.
    tx = ledger.accreditCertifier(coop, b32("DEFORESTATION_FREE"), {"from": admin})
    assert tx.events["RoleGranted"]["role"] == accreditation_role(b32("DEFORESTATION_FREE"))
    with reverts_with("ProvenanceUnknownClaimType", b32("HALAL")):
        ledger.accreditCertifier(coop, b32("HALAL"), {"from": admin})


def test_define_claim_type(ledger, admin, coop):
    tx = ledger.defineClaimType(b32("RAINFOREST_ALLIANCE"), {"from": admin})
    event = tx.events["ClaimTypeDefined"]
    assert event["claimTypeId"] == 4
    assert event["claim"] == hex32(b32("RAINFOREST_ALLIANCE"))
    assert event["accreditationRole"] == accreditation_role(b32("RAINFOREST_ALLIANCE"))
    assert tx.events["MaxBackdatingSet"]["period"] == 90 * 24 * 3600
    # Now defined: accreditation for it works and grants exactly the announced role.
    tx = ledger.accreditCertifier(coop, b32("RAINFOREST_ALLIANCE"), {"from": admin})
    assert tx.events["RoleGranted"]["role"] == event["accreditationRole"]
    assert is_accredited(ledger, coop, b32("RAINFOREST_ALLIANCE"))


def test_define_claim_type_errors(ledger, admin, farm):
    with reverts_with("AccessControlUnauthorizedAccount"):
        ledger.defineClaimType(b32("X"), {"from": farm})
    with reverts_with("ProvenanceClaimTypeAlreadyDefined"):
        ledger.defineClaimType(b32("ORGANIC"), {"from": admin})
    with reverts_with("ProvenanceClaimTypeAlreadyDefined"):
        ledger.defineClaimType(b"\x00" * 32, {"from": admin})


def test_accredit_and_withdraw(ledger, admin, coop):
    claim = b32("DEFORESTATION_FREE")
    tx = ledger.accreditCertifier(coop, claim, {"from": admin})
    assert tx.events["RoleGranted"]["role"] == accreditation_role(claim)
    assert is_accredited(ledger, coop, claim)
    tx = ledger.withdrawAccreditation(coop, claim, {"from": admin})
    assert tx.events["RoleRevoked"]["account"] == coop
    assert tx.events["RoleRevoked"]["role"] == accreditation_role(claim)
    assert not is_accredited(ledger, coop, claim)


def test_accreditation_errors(ledger, admin, coop, farm):
    with reverts_with("AccessControlUnauthorizedAccount"):
        ledger.accreditCertifier(coop, b32("ORGANIC"), {"from": farm})
    with reverts_with("AccessControlUnauthorizedAccount"):
        ledger.withdrawAccreditation(coop, b32("ORGANIC"), {"from": farm})
    with reverts_with("ProvenanceUnknownClaimType"):
        ledger.accreditCertifier(coop, b32("HALAL"), {"from": admin})
    with reverts_with("ProvenanceUnknownClaimType"):
        ledger.withdrawAccreditation(coop, b32("HALAL"), {"from": admin})


def test_accrediting_an_unregistered_or_inactive_account_reverts(ledger, admin, farm):
    # The accreditation bits live in the organisation's slot: no slot, no accreditation.
    with reverts_with("ProvenanceUnknownActor", accounts[7].address):
        ledger.accreditCertifier(accounts[7], b32("ORGANIC"), {"from": admin})
    assert not is_accredited(ledger, accounts[7], b32("ORGANIC"))
    ledger.deactivateActor(farm, {"from": admin})
    with reverts_with("ProvenanceActorInactive", farm.address):
        ledger.accreditCertifier(farm, b32("ORGANIC"), {"from": admin})
    assert not is_accredited(ledger, farm, b32("ORGANIC"))
    # Reactivated, it can be accredited.
    ledger.reactivateActor(farm, {"from": admin})
    tx = ledger.accreditCertifier(farm, b32("ORGANIC"), {"from": admin})
    assert tx.events["RoleGranted"]["account"] == farm
    assert is_accredited(ledger, farm, b32("ORGANIC"))


def test_supplier_role_granted_before_registration_is_mirrored(ledger, admin):
    new = accounts[7]
    ledger.grantRole(ledger.SUPPLIER_ROLE(), new, {"from": admin})
    ledger.registerActor(new, "Late Registrant", b"PE", digest("x"), {"from": admin})
    assert tuple(ledger.getActor(new))[2] is True
    # Accreditation needs the registered organisation, so it comes after registration.
    ledger.accreditCertifier(new, b32("ORGANIC"), {"from": admin})
    assert is_accredited(ledger, new, b32("ORGANIC"))
    # A licence needs a registered organisation, so it comes after registration.
    ledger.grantLicence(new, 14, LATE_GTIN, {"from": admin})
    subject = ledger.registerBatch(batch_input("LATE-1", gtin=LATE_GTIN), {"from": new}).return_value
    assert subject == batch_id(LATE_GTIN, "LATE-1")
    # A registrant may not certify its own batch, but its accreditation bit is mirrored:
    # it attests another organisation's batch.
    other = ledger.registerBatch(batch_input("L-OTHER"), {"from": accounts[1]}).return_value
    tx = ledger.attest((0, other, b32("ORGANIC"), 0, 0, digest("e")), {"from": new})
    assert tx.events["Attested"]["issuer"] == new
    with reverts_with("ProvenanceConflictOfInterest", new.address):
        ledger.attest((0, subject, b32("ORGANIC"), 0, 0, digest("e")), {"from": new})


def test_licence_for_unregistered_or_inactive_account_reverts(ledger, admin, farm):
    with reverts_with("ProvenanceUnknownActor", accounts[7].address):
        ledger.grantLicence(accounts[7], 14, LATE_GTIN, {"from": admin})
    ledger.deactivateActor(farm, {"from": admin})
    with reverts_with("ProvenanceActorInactive", farm.address):
        ledger.grantLicence(farm, 14, LATE_GTIN, {"from": admin})


def test_revoked_supplier_role_blocks_registration(ledger, admin, farm):
    tx = ledger.revokeRole(ledger.SUPPLIER_ROLE(), farm, {"from": admin})
    assert tx.events["RoleRevoked"]["account"] == farm
    assert tuple(ledger.getActor(farm))[2] is False
    with reverts_with("AccessControlUnauthorizedAccount", farm.address):
        ledger.registerBatch(batch_input("L-1"), {"from": farm})


def test_renounced_supplier_role_blocks_registration(ledger, farm):
    role = ledger.SUPPLIER_ROLE()
    tx = ledger.renounceRole(role, farm, {"from": farm})
    assert (tx.events["RoleRevoked"]["account"], tx.events["RoleRevoked"]["sender"]) == (farm, farm)
    assert not ledger.hasRole(role, farm)
    assert tuple(ledger.getActor(farm))[2] is False
    with reverts_with("AccessControlUnauthorizedAccount", farm.address):
        ledger.registerBatch(batch_input("L-1"), {"from": farm})


def test_renounce_for_another_account_reverts(ledger, farm, coop):
    with reverts_with("AccessControlBadConfirmation"):
        ledger.renounceRole(ledger.SUPPLIER_ROLE(), coop, {"from": farm})
    assert ledger.hasRole(ledger.SUPPLIER_ROLE(), coop)


def test_supplier_role_granted_again_works(ledger, admin, farm):
    ledger.revokeRole(ledger.SUPPLIER_ROLE(), farm, {"from": admin})
    ledger.grantRole(ledger.SUPPLIER_ROLE(), farm, {"from": admin})
    assert tuple(ledger.getActor(farm))[2] is True
    tx = ledger.registerBatch(batch_input("L-1"), {"from": farm})
    assert tx.events["BatchRegistered"]["supplier"] == farm


def test_grant_role_by_non_admin_reverts(ledger, farm, outsider):
    with reverts_with("AccessControlUnauthorizedAccount", farm.address):
        ledger.grantRole(ledger.SUPPLIER_ROLE(), outsider, {"from": farm})


def test_default_admin_role_cannot_be_granted_directly(ledger, admin, farm):
    with reverts_with("AccessControlEnforcedDefaultAdminRules"):
        ledger.grantRole(ledger.DEFAULT_ADMIN_ROLE(), farm, {"from": admin})
    assert not ledger.hasRole(ledger.DEFAULT_ADMIN_ROLE(), farm)


def test_admin_handover_is_two_step_with_delay(ledger, admin):
    successor = accounts[8]
    tx = ledger.beginDefaultAdminTransfer(successor, {"from": admin})
    schedule = tx.events["DefaultAdminTransferScheduled"]["acceptSchedule"]
    assert schedule == tx.timestamp + ADMIN_DELAY
    assert tuple(ledger.pendingDefaultAdmin()) == (successor, schedule)
    with reverts_with("AccessControlEnforcedDefaultAdminDelay", str(schedule)):
        ledger.acceptDefaultAdminTransfer({"from": successor})
    sleep(ADMIN_DELAY - 100)
    with reverts_with("AccessControlEnforcedDefaultAdminDelay", str(schedule)):
        ledger.acceptDefaultAdminTransfer({"from": successor})
    sleep(101)
    with reverts_with("AccessControlInvalidDefaultAdmin", admin.address):
        ledger.acceptDefaultAdminTransfer({"from": admin})
    ledger.acceptDefaultAdminTransfer({"from": successor})
    assert ledger.defaultAdmin() == successor
    assert ledger.hasRole(ledger.DEFAULT_ADMIN_ROLE(), successor)
    assert not ledger.hasRole(ledger.DEFAULT_ADMIN_ROLE(), admin)
    with reverts_with("AccessControlUnauthorizedAccount", admin.address):
        ledger.registerActor(accounts[6], "X", b"CO", digest("x"), {"from": admin})
    tx = ledger.registerActor(accounts[6], "X", b"CO", digest("x"), {"from": successor})
    assert tx.events["ActorRegistered"]["account"] == accounts[6]


def test_admin_handover_can_be_cancelled(ledger, admin):
    successor = accounts[8]
    ledger.beginDefaultAdminTransfer(successor, {"from": admin})
    with reverts_with("AccessControlUnauthorizedAccount", successor.address):
        ledger.cancelDefaultAdminTransfer({"from": successor})
    tx = ledger.cancelDefaultAdminTransfer({"from": admin})
    assert "DefaultAdminTransferCanceled" in tx.events
    assert tuple(ledger.pendingDefaultAdmin()) == (ZERO_ADDRESS, 0)
    sleep(ADMIN_DELAY + 1)
    with reverts_with("AccessControlInvalidDefaultAdmin", successor.address):
        ledger.acceptDefaultAdminTransfer({"from": successor})
    assert ledger.defaultAdmin() == admin


def test_admin_handover_begun_by_non_admin_reverts(ledger, farm):
    with reverts_with("AccessControlUnauthorizedAccount", farm.address):
        ledger.beginDefaultAdminTransfer(farm, {"from": farm})


def test_default_admin_delay_change_waits(ledger, admin):
    # Shortening the delay itself takes effect only after the current delay.
    tx = ledger.changeDefaultAdminDelay(3600, {"from": admin})
    effect = tx.events["DefaultAdminDelayChangeScheduled"]["effectSchedule"]
    assert effect > tx.timestamp
    assert ledger.defaultAdminDelay() == ADMIN_DELAY
    sleep(effect - now() + 1)
    assert ledger.defaultAdminDelay() == 3600


def test_claim_types_are_limited_to_the_mirrored_bits(ledger, admin):
    # Three are defined at deployment; the actor slot mirrors 128.
    for i in range(125):
        ledger.defineClaimType(b32(f"CLAIM_{i}"), {"from": admin})
    with reverts_with("ProvenanceTooManyClaimTypes", "128"):
        ledger.defineClaimType(b32("ONE_TOO_MANY"), {"from": admin})


def test_highest_claim_bit_works(ledger, admin, certifier, farm_batch):
    for i in range(125):
        ledger.defineClaimType(b32(f"CLAIM_{i}"), {"from": admin})
    ledger.accreditCertifier(certifier, b32("CLAIM_124"), {"from": admin})
    uid = ledger.attest((0, farm_batch, b32("CLAIM_124"), 0, 0, digest("e")), {"from": certifier}).return_value
    assert ledger.attestationStatus(uid) == 1
    ledger.withdrawAccreditation(certifier, b32("CLAIM_124"), {"from": admin})
    assert ledger.attestationStatus(uid) == 5
