"""Governed names (issue 9, certifier impersonation): an organisation's profile changes only
as the admin approved it, and no organisation takes a name another one holds."""

from __future__ import annotations

import pytest
from brownie import accounts
from contract_helpers import digest, reverts_with

CERTIFIER_NAME = "EthicCert Labs"
# The same name to a reader: case, spaces and punctuation do not make another name.
LOOKALIKES = ["EthicCert Labs", "ethiccert-LABS", "ETHICCERT LABS", "Ethic Cert. Labs!", " ethiccertlabs "]


def profile_events(tx) -> list[str]:
    """Names of the profile events a transaction emitted."""
    return [name for name in ("ActorProfileUpdateRequested", "ActorProfileUpdated") if name in tx.events]


def test_request_changes_nothing_until_approved(ledger, admin, farm):
    tx = ledger.requestProfileUpdate("Finca Nueva", b"PE", digest("v2"), {"from": farm})
    assert profile_events(tx) == ["ActorProfileUpdateRequested"]
    event = tx.events["ActorProfileUpdateRequested"]
    assert (event["account"], event["name"], event["country"]) == (farm, "Finca Nueva", "0x" + b"PE".hex())
    # The old name is still the farm's: nobody else may register it meanwhile.
    with reverts_with("ProvenanceNameTaken", farm.address):
        ledger.registerActor(accounts[6], "Finca La Esperanza", b"CO", digest("x"), {"from": admin})
    tx = ledger.approveProfileUpdate(farm, "Finca Nueva", b"PE", digest("v2"), {"from": admin})
    assert profile_events(tx) == ["ActorProfileUpdated"]
    # Approved, the old name is free and the new one is held.
    tx = ledger.registerActor(accounts[6], "Finca La Esperanza", b"CO", digest("x"), {"from": admin})
    assert tx.events["ActorRegistered"]["name"] == "Finca La Esperanza"
    with reverts_with("ProvenanceNameTaken", farm.address):
        ledger.registerActor(accounts[7], "finca nueva", b"CO", digest("x"), {"from": admin})


@pytest.mark.parametrize(
    "name, country, metadata",
    [
        ("EthicCert Labs", b"PE", "v2"),  # another name than requested
        ("Finca Nueva", b"CO", "v2"),  # another country
        ("Finca Nueva", b"PE", "v3"),  # another metadata document
        ("finca nueva", b"PE", "v2"),  # even a name that folds the same
    ],
)
def test_approving_other_than_the_request_reverts(ledger, admin, farm, name, country, metadata):
    ledger.requestProfileUpdate("Finca Nueva", b"PE", digest("v2"), {"from": farm})
    with reverts_with("ProvenanceProfileUpdateNotRequested", farm.address):
        ledger.approveProfileUpdate(farm, name, country, digest(metadata), {"from": admin})
    # The request itself is still there to approve.
    tx = ledger.approveProfileUpdate(farm, "Finca Nueva", b"PE", digest("v2"), {"from": admin})
    assert tx.events["ActorProfileUpdated"]["name"] == "Finca Nueva"


def test_approval_without_request_or_twice_reverts(ledger, admin, farm, coop):
    with reverts_with("ProvenanceProfileUpdateNotRequested", farm.address):
        ledger.approveProfileUpdate(farm, "Finca La Esperanza", b"CO", digest("x"), {"from": admin})
    ledger.requestProfileUpdate("Finca Nueva", b"PE", digest("v2"), {"from": farm})
    # One organisation's request is not another's.
    with reverts_with("ProvenanceProfileUpdateNotRequested", coop.address):
        ledger.approveProfileUpdate(coop, "Finca Nueva", b"PE", digest("v2"), {"from": admin})
    ledger.approveProfileUpdate(farm, "Finca Nueva", b"PE", digest("v2"), {"from": admin})
    with reverts_with("ProvenanceProfileUpdateNotRequested", farm.address):
        ledger.approveProfileUpdate(farm, "Finca Nueva", b"PE", digest("v2"), {"from": admin})


def test_a_new_request_replaces_the_previous_one(ledger, admin, farm):
    ledger.requestProfileUpdate("Finca Uno", b"CO", digest("1"), {"from": farm})
    ledger.requestProfileUpdate("Finca Dos", b"CO", digest("2"), {"from": farm})
    with reverts_with("ProvenanceProfileUpdateNotRequested", farm.address):
        ledger.approveProfileUpdate(farm, "Finca Uno", b"CO", digest("1"), {"from": admin})
    tx = ledger.approveProfileUpdate(farm, "Finca Dos", b"CO", digest("2"), {"from": admin})
    assert tx.events["ActorProfileUpdated"]["name"] == "Finca Dos"


@pytest.mark.parametrize("name", LOOKALIKES)
def test_taking_a_certifiers_name_is_refused_at_approval(ledger, admin, farm, certifier, name):
    # The farm may ask (the index warns the admin), but the name never becomes the farm's.
    ledger.requestProfileUpdate(name, b"CO", digest("x"), {"from": farm})
    with reverts_with("ProvenanceNameTaken", certifier.address):
        ledger.approveProfileUpdate(farm, name, b"CO", digest("x"), {"from": admin})


@pytest.mark.parametrize("name", LOOKALIKES)
def test_registering_a_certifiers_name_reverts(ledger, admin, certifier, name):
    with reverts_with("ProvenanceNameTaken", certifier.address):
        ledger.registerActor(accounts[6], name, b"DE", digest("x"), {"from": admin})
    assert ledger.getActor(accounts[6])[0] == 0


def test_name_taken_between_request_and_approval_reverts(ledger, admin, farm):
    ledger.requestProfileUpdate("Cafe del Sur", b"CO", digest("x"), {"from": farm})
    ledger.registerActor(accounts[6], "CAFE DEL SUR", b"CO", digest("y"), {"from": admin})
    with reverts_with("ProvenanceNameTaken", accounts[6].address):
        ledger.approveProfileUpdate(farm, "Cafe del Sur", b"CO", digest("x"), {"from": admin})


@pytest.mark.parametrize("name", LOOKALIKES)
def test_deactivating_frees_the_name_and_the_old_account_stays_out(ledger, admin, certifier, name):
    # The attack (review 07): a certifier lost its key; the admin deactivates the old account
    # and registers the company at its new address, under its name (or a variant of it).
    new = accounts[6]
    ledger.deactivateActor(certifier, {"from": admin})
    tx = ledger.registerActor(new, name, b"DE", digest("new key"), {"from": admin})
    assert (tx.events["ActorRegistered"]["account"], tx.events["ActorRegistered"]["name"]) == (new, name)
    # The old account, reactivated, would be a second "EthicCert Labs": refused.
    with reverts_with("ProvenanceNameTaken", new.address):
        ledger.reactivateActor(certifier, {"from": admin})
    assert tuple(ledger.getActor(certifier))[1] is False
    # The name is the new account's: nobody else registers it.
    with reverts_with("ProvenanceNameTaken", new.address):
        ledger.registerActor(accounts[7], CERTIFIER_NAME, b"DE", digest("x"), {"from": admin})


def test_a_name_freed_by_deactivation_can_be_taken_by_a_rename(ledger, admin, farm, certifier):
    ledger.deactivateActor(certifier, {"from": admin})
    ledger.requestProfileUpdate(CERTIFIER_NAME, b"CO", digest("x"), {"from": farm})
    tx = ledger.approveProfileUpdate(farm, CERTIFIER_NAME, b"CO", digest("x"), {"from": admin})
    assert tx.events["ActorProfileUpdated"]["name"] == CERTIFIER_NAME
    with reverts_with("ProvenanceNameTaken", farm.address):
        ledger.reactivateActor(certifier, {"from": admin})
    # The farm's old name was released by the rename.
    tx = ledger.registerActor(accounts[6], "Finca La Esperanza", b"CO", digest("x"), {"from": admin})
    assert tx.events["ActorRegistered"]["name"] == "Finca La Esperanza"


def test_reactivation_while_the_name_is_free_holds_it_again(ledger, admin, farm, certifier):
    ledger.deactivateActor(certifier, {"from": admin})
    tx = ledger.reactivateActor(certifier, {"from": admin})
    assert tx.events["ActorReactivated"]["account"] == certifier
    assert tuple(ledger.getActor(certifier))[1] is True
    # Held again: a registration or a rename to it is refused.
    with reverts_with("ProvenanceNameTaken", certifier.address):
        ledger.registerActor(accounts[6], "ethiccert-LABS", b"DE", digest("x"), {"from": admin})
    ledger.requestProfileUpdate(CERTIFIER_NAME, b"CO", digest("x"), {"from": farm})
    with reverts_with("ProvenanceNameTaken", certifier.address):
        ledger.approveProfileUpdate(farm, CERTIFIER_NAME, b"CO", digest("x"), {"from": admin})


def test_name_goes_back_to_the_old_account_once_the_new_one_is_deactivated(ledger, admin, certifier):
    new = accounts[6]
    ledger.deactivateActor(certifier, {"from": admin})
    ledger.registerActor(new, "ETHICCERT LABS", b"DE", digest("x"), {"from": admin})
    ledger.deactivateActor(new, {"from": admin})
    tx = ledger.reactivateActor(certifier, {"from": admin})
    assert tx.events["ActorReactivated"]["account"] == certifier
    # Now the new account is the one locked out, and a third registration is refused.
    with reverts_with("ProvenanceNameTaken", certifier.address):
        ledger.reactivateActor(new, {"from": admin})
    with reverts_with("ProvenanceNameTaken", certifier.address):
        ledger.registerActor(accounts[7], "Ethic Cert. Labs!", b"DE", digest("x"), {"from": admin})
    assert tuple(ledger.getActor(new))[1] is False


def test_an_organisation_may_restyle_its_own_name(ledger, admin, certifier):
    ledger.requestProfileUpdate("ETHICCERT LABS", b"DE", digest("v2"), {"from": certifier})
    tx = ledger.approveProfileUpdate(certifier, "ETHICCERT LABS", b"DE", digest("v2"), {"from": admin})
    assert tx.events["ActorProfileUpdated"]["name"] == "ETHICCERT LABS"
    with reverts_with("ProvenanceNameTaken", certifier.address):
        ledger.registerActor(accounts[6], "EthicCert Labs", b"DE", digest("x"), {"from": admin})


def test_names_differing_in_letters_or_digits_are_different(ledger, admin):
    # Folding drops only case, spaces and punctuation: letters and digits still count.
    for account, name in ((accounts[6], "EthicCert Labs 2"), (accounts[7], "EthicCert Lab")):
        tx = ledger.registerActor(account, name, b"DE", digest(name), {"from": admin})
        assert tx.events["ActorRegistered"]["name"] == name
