"""Organisations, claim types, accreditation and the admin hand-over."""

from __future__ import annotations

from brownie import ZERO_ADDRESS, accounts, chain

from contract_helpers import ADMIN_DELAY, b32, batch_input, digest, reverts_with


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
    assert ledger.actorAddress(5) == new


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


def test_update_profile_emits(ledger, farm):
    tx = ledger.updateActorProfile("Finca La Esperanza SAS", b"CO", digest("v2"), {"from": farm})
    event = tx.events["ActorProfileUpdated"]
    assert (event["account"], event["name"]) == (farm, "Finca La Esperanza SAS")


def test_update_profile_by_unregistered_reverts(ledger, outsider):
    with reverts_with("ProvenanceUnknownActor", outsider.address):
        ledger.updateActorProfile("Me", b"CO", digest("x"), {"from": outsider})


def test_update_profile_by_inactive_reverts(ledger, admin, farm):
    ledger.deactivateActor(farm, {"from": admin})
    with reverts_with("ProvenanceActorInactive", farm.address):
        ledger.updateActorProfile("Me", b"CO", digest("x"), {"from": farm})


def test_update_profile_with_bad_input_reverts(ledger, farm):
    with reverts_with("ProvenanceInvalidCountry"):
        ledger.updateActorProfile("Finca", b"zz", digest("x"), {"from": farm})
    with reverts_with("ProvenanceInvalidName"):
        ledger.updateActorProfile("", b"CO", digest("x"), {"from": farm})


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


def test_default_claim_types_are_defined(ledger):
    for claim in ("FAIRTRADE", "ORGANIC", "DEFORESTATION_FREE"):
        assert ledger.isClaimTypeDefined(b32(claim))
    assert not ledger.isClaimTypeDefined(b32("HALAL"))


def test_define_claim_type(ledger, admin):
    tx = ledger.defineClaimType(b32("RAINFOREST_ALLIANCE"), {"from": admin})
    event = tx.events["ClaimTypeDefined"]
    assert event["claimTypeId"] == 4
    assert event["accreditationRole"] == ledger.accreditationRole(b32("RAINFOREST_ALLIANCE"))
    assert ledger.isClaimTypeDefined(b32("RAINFOREST_ALLIANCE"))


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
    assert tx.events["RoleGranted"]["role"] == ledger.accreditationRole(claim)
    assert ledger.isAccredited(coop, claim)
    tx = ledger.withdrawAccreditation(coop, claim, {"from": admin})
    assert tx.events["RoleRevoked"]["account"] == coop
    assert not ledger.isAccredited(coop, claim)


def test_accreditation_errors(ledger, admin, coop, farm):
    with reverts_with("AccessControlUnauthorizedAccount"):
        ledger.accreditCertifier(coop, b32("ORGANIC"), {"from": farm})
    with reverts_with("AccessControlUnauthorizedAccount"):
        ledger.withdrawAccreditation(coop, b32("ORGANIC"), {"from": farm})
    with reverts_with("ProvenanceUnknownClaimType"):
        ledger.accreditCertifier(coop, b32("HALAL"), {"from": admin})
    with reverts_with("ProvenanceUnknownClaimType"):
        ledger.withdrawAccreditation(coop, b32("HALAL"), {"from": admin})


def test_roles_granted_before_registration_are_mirrored(ledger, admin):
    new = accounts[7]
    ledger.grantRole(ledger.SUPPLIER_ROLE(), new, {"from": admin})
    ledger.grantRole(ledger.accreditationRole(b32("ORGANIC")), new, {"from": admin})
    ledger.registerActor(new, "Late Registrant", b"PE", digest("x"), {"from": admin})
    assert tuple(ledger.getActor(new))[2] is True
    ledger.registerBatch(batch_input("LATE-1"), {"from": new})
    subject = ledger.batchIdOf(batch_input("LATE-1")[0], batch_input("LATE-1")[1])
    ledger.attest((0, subject, b32("ORGANIC"), 0, 0, digest("e")), {"from": new})


def test_revoked_supplier_role_blocks_registration(ledger, admin, farm):
    ledger.revokeRole(ledger.SUPPLIER_ROLE(), farm, {"from": admin})
    assert tuple(ledger.getActor(farm))[2] is False
    with reverts_with("AccessControlUnauthorizedAccount", farm.address):
        ledger.registerBatch(batch_input("L-1"), {"from": farm})


def test_admin_handover_is_two_step_with_delay(ledger, admin):
    successor = accounts[8]
    ledger.beginDefaultAdminTransfer(successor, {"from": admin})
    with reverts_with("AccessControlEnforcedDefaultAdminDelay"):
        ledger.acceptDefaultAdminTransfer({"from": successor})
    chain.sleep(ADMIN_DELAY + 1)
    chain.mine()
    with reverts_with("AccessControlInvalidDefaultAdmin"):
        ledger.acceptDefaultAdminTransfer({"from": admin})
    ledger.acceptDefaultAdminTransfer({"from": successor})
    assert ledger.defaultAdmin() == successor
    with reverts_with("AccessControlUnauthorizedAccount"):
        ledger.registerActor(accounts[6], "X", b"CO", digest("x"), {"from": admin})


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
