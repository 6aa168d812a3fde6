"""GS1 licences: nobody registers lots of a GTIN it does not hold a licence for (issue 9,
lot squatting), and the licence rules themselves (who grants, sub-licenses, withdraws)."""

from __future__ import annotations

import pytest
from brownie import ZERO_ADDRESS, accounts
from contract_helpers import (
    BAG_GTIN,
    COFFEE_GTIN,
    COOP_GTIN,
    COOP_GTIN_2,
    COOP_LICENCE,
    FARM_LICENCE,
    MEMBER_GTIN,
    MEMBER_GTIN_2,
    ROASTED_GTIN,
    ROASTER_LICENCES,
    STATUS_ACTIVE,
    STATUS_NONE,
    batch_id,
    batch_input,
    digest,
    gtin_with_check_digit,
    licence_key,
    reverts_with,
)

SPLIT, MERGE, PROCESSING = 0, 1, 2
NO_DATA = b"\0" * 32
MEMBER_RANGE = (9, 950123401)  # inside the coop's prefix 9501234: MEMBER_GTIN, MEMBER_GTIN_2


@pytest.fixture
def member_farm(ledger, admin, member):
    """A member farm of the cooperative: a supplier without a GS1 membership of its own."""
    ledger.registerActor(member, "Finca Miembro", b"CO", digest("member"), {"from": admin})
    ledger.grantRole(ledger.SUPPLIER_ROLE(), member, {"from": admin})
    return member


# ------------------------------------------------------------------ the attack: squatting


def test_squatting_another_companys_gtin_by_registration_reverts(ledger, farm, roaster):
    # The farm tries to take the roaster's lot number before the roaster prints it.
    with reverts_with("ProvenanceNotLicensed", str(BAG_GTIN), farm.address):
        ledger.registerBatch(batch_input("TP-B-1108-A", gtin=BAG_GTIN), {"from": farm})
    assert ledger.getBatch(batch_id(BAG_GTIN, "TP-B-1108-A"))[5] == STATUS_NONE
    # The rightful owner then registers it.
    tx = ledger.registerBatch(batch_input("TP-B-1108-A", gtin=BAG_GTIN), {"from": roaster})
    assert tx.events["BatchRegistered"]["supplier"] == roaster


def test_squatting_by_bulk_registration_reverts_and_stores_nothing(ledger, farm):
    # The squatter hides 200 future lots of another GTIN behind a lot of its own.
    inputs = [batch_input("OWN-1")] + [batch_input(f"TP-B-{i}", gtin=BAG_GTIN) for i in range(200)]
    with reverts_with("ProvenanceNotLicensed", str(BAG_GTIN), farm.address):
        ledger.registerBatches(inputs, {"from": farm})
    assert ledger.getBatch(batch_id(COFFEE_GTIN, "OWN-1"))[5] == STATUS_NONE
    assert ledger.getBatch(batch_id(BAG_GTIN, "TP-B-0"))[5] == STATUS_NONE


def test_squatting_after_a_run_of_own_gtin_in_bulk_reverts(ledger, farm):
    # The bulk path checks a GTIN once per run: a change of GTIN mid-list is checked again.
    inputs = [batch_input("OWN-1"), batch_input("OWN-2"), batch_input("TP-1", gtin=ROASTED_GTIN), batch_input("OWN-3")]
    with reverts_with("ProvenanceNotLicensed", str(ROASTED_GTIN), farm.address):
        ledger.registerBatches(inputs, {"from": farm})


def test_squatting_by_transformation_output_reverts(ledger, farm, farm_batch):
    with reverts_with("ProvenanceNotLicensed", str(ROASTED_GTIN), farm.address):
        ledger.transform(PROCESSING, [(farm_batch, 1_000)], [batch_input("R-77", gtin=ROASTED_GTIN)], NO_DATA, {"from": farm})
    # Nothing was consumed and nothing created.
    assert ledger.getBatch(farm_batch)[4] == 60_000
    assert ledger.getBatch(batch_id(ROASTED_GTIN, "R-77"))[5] == STATUS_NONE


def test_squatting_in_a_later_output_reverts(ledger, farm, farm_batch):
    outputs = [batch_input("OWN-A", 1), batch_input("R-78", 1, gtin=ROASTED_GTIN)]
    with reverts_with("ProvenanceNotLicensed", str(ROASTED_GTIN), farm.address):
        ledger.transform(SPLIT, [(farm_batch, 2)], outputs, NO_DATA, {"from": farm})
    assert ledger.getBatch(batch_id(COFFEE_GTIN, "OWN-A"))[5] == STATUS_NONE


def test_unlicensed_supplier_cannot_register_anything(ledger, admin, member):
    ledger.registerActor(member, "Finca Sin Licencia", b"CO", digest("m"), {"from": admin})
    ledger.grantRole(ledger.SUPPLIER_ROLE(), member, {"from": admin})
    for gtin in (COFFEE_GTIN, COOP_GTIN, MEMBER_GTIN):
        with reverts_with("ProvenanceNotLicensed", str(gtin), member.address):
            ledger.registerBatch(batch_input("X-1", gtin=gtin), {"from": member})


def test_licence_withdrawn_mid_way(ledger, admin, farm):
    first = ledger.registerBatch(batch_input("L-1"), {"from": farm}).return_value
    tx = ledger.withdrawLicence(*FARM_LICENCE, {"from": admin})
    event = tx.events["LicenceWithdrawn"]
    assert (event["key"], event["licensee"], event["by"]) == (licence_key(*FARM_LICENCE), farm, admin)
    with reverts_with("ProvenanceNotLicensed", str(COFFEE_GTIN), farm.address):
        ledger.registerBatch(batch_input("L-2"), {"from": farm})
    with reverts_with("ProvenanceNotLicensed", str(COFFEE_GTIN), farm.address):
        ledger.registerBatches([batch_input("L-3")], {"from": farm})
    with reverts_with("ProvenanceNotLicensed", str(COFFEE_GTIN), farm.address):
        ledger.transform(SPLIT, [(first, 10)], [batch_input("L-1-A", 10)], NO_DATA, {"from": farm})
    # What was registered under the licence stays, and its custodian still moves it.
    assert tuple(ledger.getBatch(first))[:2] == (farm, farm)
    assert ledger.getBatch(first)[5] == STATUS_ACTIVE
    # Granted again, the farm registers again.
    ledger.grantLicence(farm, *FARM_LICENCE, {"from": admin})
    tx = ledger.registerBatch(batch_input("L-2"), {"from": farm})
    assert tx.events["BatchRegistered"]["supplier"] == farm


def test_licence_event_fields(ledger, admin, member_farm, coop):
    tx = ledger.grantLicence(member_farm, 8, 95099990, {"from": admin})
    event = tx.events["LicenceGranted"]
    assert (event["key"], event["licensee"], event["grantor"]) == (licence_key(8, 95099990), member_farm, admin)
    assert (event["prefixLength"], event["prefix"], event["parentKey"]) == (8, 95099990, 0)
    tx = ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": coop})
    event = tx.events["LicenceGranted"]
    assert (event["key"], event["licensee"], event["grantor"]) == (licence_key(*MEMBER_RANGE), member_farm, coop)
    assert (event["prefixLength"], event["prefix"]) == MEMBER_RANGE
    assert event["parentKey"] == licence_key(*COOP_LICENCE)


# ------------------------------------------------------------------ sub-licences


def test_sub_licensee_registers_inside_its_range_only(ledger, coop, member_farm):
    ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": coop})
    for gtin in (MEMBER_GTIN, MEMBER_GTIN_2):
        tx = ledger.registerBatch(batch_input("M-1", gtin=gtin), {"from": member_farm})
        assert tx.events["BatchRegistered"]["supplier"] == member_farm
    # The coop's GTINs outside the sub-licensed range stay the coop's.
    with reverts_with("ProvenanceNotLicensed", str(COOP_GTIN), member_farm.address):
        ledger.registerBatch(batch_input("M-1", gtin=COOP_GTIN), {"from": member_farm})


def test_single_gtin_sub_licence(ledger, coop, member_farm):
    ledger.grantLicence(member_farm, 14, COOP_GTIN_2, {"from": coop})
    ledger.registerBatch(batch_input("M-1", gtin=COOP_GTIN_2), {"from": member_farm})
    with reverts_with("ProvenanceNotLicensed", str(COOP_GTIN), member_farm.address):
        ledger.registerBatch(batch_input("M-1", gtin=COOP_GTIN), {"from": member_farm})


def test_sub_licence_lapses_with_its_root_and_stays_lapsed(ledger, admin, coop, member_farm):
    ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": coop})
    ledger.registerBatch(batch_input("M-1", gtin=MEMBER_GTIN), {"from": member_farm})
    ledger.withdrawLicence(*COOP_LICENCE, {"from": admin})
    with reverts_with("ProvenanceNotLicensed", str(MEMBER_GTIN), member_farm.address):
        ledger.registerBatch(batch_input("M-2", gtin=MEMBER_GTIN), {"from": member_farm})
    with reverts_with("ProvenanceNotLicensed", str(COOP_GTIN), coop.address):
        ledger.registerBatch(batch_input("C-1", gtin=COOP_GTIN), {"from": coop})
    # The admin grants the root licence again: the coop is back, the old sub-licence is not.
    ledger.grantLicence(coop, *COOP_LICENCE, {"from": admin})
    tx = ledger.registerBatch(batch_input("C-1", gtin=COOP_GTIN), {"from": coop})
    assert tx.events["BatchRegistered"]["supplier"] == coop
    with reverts_with("ProvenanceNotLicensed", str(MEMBER_GTIN), member_farm.address):
        ledger.registerBatch(batch_input("M-2", gtin=MEMBER_GTIN), {"from": member_farm})
    # The lapsed sub-licence no longer takes its range: the coop cuts it again at once.
    tx = ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": coop})
    event = tx.events["LicenceGranted"]
    assert (event["key"], event["grantor"], event["parentKey"]) == (
        licence_key(*MEMBER_RANGE), coop, licence_key(*COOP_LICENCE)
    )  # fmt: skip
    tx = ledger.registerBatch(batch_input("M-2", gtin=MEMBER_GTIN), {"from": member_farm})
    assert tx.events["BatchRegistered"]["supplier"] == member_farm


def test_sub_licensing_by_a_non_holder_reverts(ledger, farm, coop, member_farm):
    # The farm holds no root licence covering the coop's prefix.
    with reverts_with("ProvenanceNotLicensor", "9, 950123401", farm.address):
        ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": farm})
    # A sub-licensee cannot cut its range further: only a root holder sub-licenses.
    ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": coop})
    with reverts_with("ProvenanceNotLicensor", str(MEMBER_GTIN), member_farm.address):
        ledger.grantLicence(farm, 14, MEMBER_GTIN, {"from": member_farm})
    # A root holder cannot sub-license outside its own prefix, nor its whole prefix again.
    with reverts_with("ProvenanceNotLicensor", str(BAG_GTIN), coop.address):
        ledger.grantLicence(member_farm, 14, BAG_GTIN, {"from": coop})
    with reverts_with("ProvenanceNotLicensor", "7, 9501234", coop.address):
        ledger.grantLicence(member_farm, *COOP_LICENCE, {"from": coop})
    with reverts_with("ProvenanceNotLicensed", str(BAG_GTIN), member_farm.address):
        ledger.registerBatch(batch_input("X", gtin=BAG_GTIN), {"from": member_farm})


def test_sub_licensing_by_an_unregistered_or_inactive_account_reverts(ledger, admin, coop, member_farm, outsider):
    with reverts_with("ProvenanceUnknownActor", outsider.address):
        ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": outsider})
    ledger.deactivateActor(coop, {"from": admin})
    with reverts_with("ProvenanceActorInactive", coop.address):
        ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": coop})


def test_sub_licence_to_an_unregistered_account_reverts(ledger, coop, outsider):
    with reverts_with("ProvenanceUnknownActor", outsider.address):
        ledger.grantLicence(outsider, *MEMBER_RANGE, {"from": coop})


def test_withdraw_by_a_stranger_reverts(ledger, farm, coop, roaster, member_farm):
    ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": coop})
    # Neither another organisation nor the sub-licensee itself withdraws a sub-licence.
    for stranger in (roaster, member_farm):
        with reverts_with("ProvenanceNotLicensor", "9, 950123401", stranger.address):
            ledger.withdrawLicence(*MEMBER_RANGE, {"from": stranger})
    # Nobody but the admin withdraws a root licence, not even its holder's sub-licensees.
    for stranger in (farm, member_farm):
        with reverts_with("ProvenanceNotLicensor", "7, 9501234", stranger.address):
            ledger.withdrawLicence(*COOP_LICENCE, {"from": stranger})
    tx = ledger.registerBatch(batch_input("M-1", gtin=MEMBER_GTIN), {"from": member_farm})
    assert tx.events["BatchRegistered"]["supplier"] == member_farm


def test_grantor_and_admin_withdraw_a_sub_licence(ledger, admin, coop, member_farm):
    ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": coop})
    tx = ledger.withdrawLicence(*MEMBER_RANGE, {"from": coop})
    event = tx.events["LicenceWithdrawn"]
    assert (event["key"], event["licensee"], event["by"]) == (licence_key(*MEMBER_RANGE), member_farm, coop)
    with reverts_with("ProvenanceNotLicensed", str(MEMBER_GTIN), member_farm.address):
        ledger.registerBatch(batch_input("M-1", gtin=MEMBER_GTIN), {"from": member_farm})
    ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": coop})
    tx = ledger.withdrawLicence(*MEMBER_RANGE, {"from": admin})
    assert tx.events["LicenceWithdrawn"]["by"] == admin
    with reverts_with("ProvenanceNotLicensed", str(MEMBER_GTIN), member_farm.address):
        ledger.registerBatch(batch_input("M-1", gtin=MEMBER_GTIN), {"from": member_farm})


def test_withdraw_unknown_licence_reverts(ledger, admin):
    with reverts_with("ProvenanceUnknownLicence", "9, 950123401"):
        ledger.withdrawLicence(*MEMBER_RANGE, {"from": admin})
    ledger.withdrawLicence(*FARM_LICENCE, {"from": admin})
    with reverts_with("ProvenanceUnknownLicence", "12, 950600013435"):
        ledger.withdrawLicence(*FARM_LICENCE, {"from": admin})


# ------------------------------------------------------------------ granting root licences


def test_grant_by_non_admin_outside_its_root_reverts(ledger, farm, roaster):
    # An organisation's grantLicence is a sub-licence: only inside a root licence it holds.
    with reverts_with("ProvenanceNotLicensor", str(BAG_GTIN), farm.address):
        ledger.grantLicence(farm, 14, BAG_GTIN, {"from": farm})
    # Not even its own root licence again (a sub-licence must be strictly inside).
    with reverts_with("ProvenanceNotLicensor", "12, 950600013435", farm.address):
        ledger.grantLicence(roaster, *FARM_LICENCE, {"from": farm})
    with reverts_with("ProvenanceNotLicensed", str(BAG_GTIN), farm.address):
        ledger.registerBatch(batch_input("X", gtin=BAG_GTIN), {"from": farm})


def test_overlapping_root_licence_reverts(ledger, admin, farm, coop, roaster):
    # Inside the coop's company prefix, as a longer prefix or as one GTIN.
    with reverts_with("ProvenanceLicenceOverlaps", "9, 950123401", coop.address):
        ledger.grantLicence(roaster, *MEMBER_RANGE, {"from": admin})
    with reverts_with("ProvenanceLicenceOverlaps", str(COOP_GTIN), coop.address):
        ledger.grantLicence(roaster, 14, COOP_GTIN, {"from": admin})
    # The very GTIN the farm's 12-digit prefix covers.
    with reverts_with("ProvenanceLicenceOverlaps", str(COFFEE_GTIN), farm.address):
        ledger.grantLicence(roaster, 14, COFFEE_GTIN, {"from": admin})
    with reverts_with("ProvenanceNotLicensed", str(COFFEE_GTIN), roaster.address):
        ledger.registerBatch(batch_input("X", gtin=COFFEE_GTIN), {"from": roaster})


def test_same_licence_twice_reverts(ledger, admin, farm, roaster):
    with reverts_with("ProvenanceLicenceAlreadyGranted", "12, 950600013435", farm.address):
        ledger.grantLicence(roaster, *FARM_LICENCE, {"from": admin})
    with reverts_with("ProvenanceLicenceAlreadyGranted", str(BAG_GTIN), roaster.address):
        ledger.grantLicence(farm, 14, BAG_GTIN, {"from": admin})


def test_wider_root_licence_around_existing_ones_reverts(ledger, admin, farm, roaster, member_farm):
    # The farm holds 950600013435 (12 digits) and the roaster two GTINs of 9506000: a root
    # licence of 9506000 granted afterwards would hand their GTINs to a third organisation.
    with reverts_with("ProvenanceLicenceOverlaps", "7, 9506000"):
        ledger.grantLicence(member_farm, 7, 9506000, {"from": admin})
    with reverts_with("ProvenanceLicenceOverlaps", "11, 95060001343"):
        ledger.grantLicence(member_farm, 11, 95060001343, {"from": admin})
    with reverts_with("ProvenanceNotLicensed", str(COFFEE_GTIN), member_farm.address):
        ledger.registerBatch(batch_input("SQUAT-1", gtin=COFFEE_GTIN), {"from": member_farm})
    # Once every root inside is withdrawn, the range is free for one holder.
    ledger.withdrawLicence(*FARM_LICENCE, {"from": admin})
    with reverts_with("ProvenanceLicenceOverlaps", "7, 9506000"):
        ledger.grantLicence(member_farm, 7, 9506000, {"from": admin})
    ledger.withdrawLicence(14, ROASTED_GTIN, {"from": admin})
    ledger.withdrawLicence(14, BAG_GTIN, {"from": admin})
    tx = ledger.grantLicence(roaster, 7, 9506000, {"from": admin})
    assert tx.events["LicenceGranted"]["key"] == licence_key(7, 9506000)
    # Now the farm's old range lies inside the roaster's: only the roaster may hand it out.
    with reverts_with("ProvenanceLicenceOverlaps", "12, 950600013435", roaster.address):
        ledger.grantLicence(farm, *FARM_LICENCE, {"from": admin})
    ledger.grantLicence(farm, *FARM_LICENCE, {"from": roaster})
    tx = ledger.registerBatch(batch_input("L-1"), {"from": farm})
    assert tx.events["BatchRegistered"]["supplier"] == farm


@pytest.mark.parametrize(
    "length, prefix",
    [
        (3, 950),  # shorter than a GS1 Company Prefix
        (0, 0),
        (13, 9506000134352),  # 13 is neither a prefix length nor a GTIN
        (15, 9506000134352),
        (7, 10_000_000),  # eight digits do not fit a 7-digit prefix
        (12, 10**12),
        (14, 9506000134353),  # a GTIN with a wrong check digit
        (14, 0),
        (14, 10**14 + 2),  # more than 14 digits
    ],
)
def test_invalid_prefix_reverts(ledger, admin, coop, farm, length, prefix):
    with reverts_with("ProvenanceInvalidPrefix", f"{length}, {prefix}"):
        ledger.grantLicence(farm, length, prefix, {"from": admin})
    with reverts_with("ProvenanceInvalidPrefix", f"{length}, {prefix}"):
        ledger.grantLicence(farm, length, prefix, {"from": coop})
    with reverts_with("ProvenanceInvalidPrefix", f"{length}, {prefix}"):
        ledger.withdrawLicence(length, prefix, {"from": admin})


def test_shortest_and_longest_prefixes_are_accepted(ledger, admin, member_farm):
    # 4 digits is the shortest, 12 the longest GS1 Company Prefix the contract takes.
    tx = ledger.grantLicence(member_farm, 4, 1234, {"from": admin})
    assert tx.events["LicenceGranted"]["key"] == licence_key(4, 1234)
    gtin = gtin_with_check_digit(123400000000)  # 0 1234 00000000 c
    ledger.registerBatch(batch_input("S-1", gtin=gtin), {"from": member_farm})
    tx = ledger.grantLicence(member_farm, 12, 555555555555, {"from": admin})
    assert tx.events["LicenceGranted"]["key"] == licence_key(12, 555555555555)
    ledger.registerBatch(batch_input("S-1", gtin=gtin_with_check_digit(555555555555)), {"from": member_farm})


def test_indicator_digit_is_not_part_of_the_prefix(ledger, farm):
    # GTIN-14 1 9506000 13435 x: the same company prefix behind indicator digit 1 (a case
    # of the farm's coffee) is the farm's as well.
    case_gtin = gtin_with_check_digit(1950600013435)
    tx = ledger.registerBatch(batch_input("CASE-1", gtin=case_gtin), {"from": farm})
    assert tx.events["BatchRegistered"]["gtin"] == case_gtin


def test_an_organisation_holding_several_root_licences(ledger, admin, farm):
    # The latest root licence is cached in the organisation's slot; withdrawing either one
    # must end exactly that one.
    second = gtin_with_check_digit(950777700001)
    ledger.grantLicence(farm, 14, second, {"from": admin})
    ledger.registerBatch(batch_input("A-1"), {"from": farm})
    ledger.registerBatch(batch_input("A-1", gtin=second), {"from": farm})
    ledger.withdrawLicence(14, second, {"from": admin})
    with reverts_with("ProvenanceNotLicensed", str(second), farm.address):
        ledger.registerBatch(batch_input("A-2", gtin=second), {"from": farm})
    ledger.registerBatch(batch_input("A-2"), {"from": farm})
    ledger.grantLicence(farm, 14, second, {"from": admin})
    ledger.withdrawLicence(*FARM_LICENCE, {"from": admin})
    with reverts_with("ProvenanceNotLicensed", str(COFFEE_GTIN), farm.address):
        ledger.registerBatch(batch_input("A-3"), {"from": farm})
    tx = ledger.registerBatch(batch_input("A-3", gtin=second), {"from": farm})
    assert tx.events["BatchRegistered"]["gtin"] == second


def test_a_withdrawn_root_regranted_to_another_organisation(ledger, admin, farm, member_farm):
    ledger.withdrawLicence(*FARM_LICENCE, {"from": admin})
    ledger.grantLicence(member_farm, *FARM_LICENCE, {"from": admin})
    with reverts_with("ProvenanceNotLicensed", str(COFFEE_GTIN), farm.address):
        ledger.registerBatch(batch_input("B-1"), {"from": farm})
    tx = ledger.registerBatch(batch_input("B-1"), {"from": member_farm})
    assert tx.events["BatchRegistered"]["supplier"] == member_farm


# ------------------------------------------------------------------ lapsed sub-licences and nesting

NESTED_GTIN = 9506000123455  # 0 9506000123 45 5: inside 9506000, 950600012 and 9506000123
A_ROOT = (7, 9506000)
B_SUB = (9, 950600012)
C_ROOT = (10, 9506000123)


@pytest.fixture
def supplier_d(ledger, admin):
    """A fourth supplier organisation, licensed for nothing yet."""
    account = accounts[6]
    ledger.registerActor(account, "Tostaduria Delta", b"CO", digest("delta"), {"from": admin})
    ledger.grantRole(ledger.SUPPLIER_ROLE(), account, {"from": admin})
    return account


def _free_company_prefix_9506000(ledger, admin) -> None:
    """Withdraws the fixture's licences inside 9506000, so the admin may license the whole prefix."""
    ledger.withdrawLicence(*FARM_LICENCE, {"from": admin})
    for length, prefix in ROASTER_LICENCES:
        ledger.withdrawLicence(length, prefix, {"from": admin})


@pytest.mark.parametrize("withdrawer", ["grantor", "admin"])
def test_lapsed_sub_licence_does_not_hide_a_root_inside_it(ledger, admin, farm, roaster, member_farm, supplier_d, withdrawer):
    # The attack (review 01): A's sub-licence to B lapses with A's root; the admin puts C's
    # root inside the lapsed range; withdrawing the lapsed sub-licence used to wipe the count
    # of roots inside it, so a root around C's could be granted to D (D then registered lots
    # of C's GTINs) and C's root could never be withdrawn (arithmetic underflow).
    a, b, c, d = roaster, member_farm, farm, supplier_d
    _free_company_prefix_9506000(ledger, admin)
    ledger.grantLicence(a, *A_ROOT, {"from": admin})
    tx = ledger.grantLicence(b, *B_SUB, {"from": a})
    assert tx.events["LicenceGranted"]["parentKey"] == licence_key(*A_ROOT)
    ledger.withdrawLicence(*A_ROOT, {"from": admin})
    with reverts_with("ProvenanceNotLicensed", str(NESTED_GTIN), b.address):
        ledger.registerBatch(batch_input("B-1", gtin=NESTED_GTIN), {"from": b})
    tx = ledger.grantLicence(c, *C_ROOT, {"from": admin})
    assert tx.events["LicenceGranted"]["parentKey"] == 0
    by = a if withdrawer == "grantor" else admin
    tx = ledger.withdrawLicence(*B_SUB, {"from": by})
    event = tx.events["LicenceWithdrawn"]
    assert (event["key"], event["licensee"], event["by"]) == (licence_key(*B_SUB), b, by)
    # A root around C's root is refused: the holder is zero, a root lies inside.
    with reverts_with("ProvenanceLicenceOverlaps", "9, 950600012", ZERO_ADDRESS):
        ledger.grantLicence(d, *B_SUB, {"from": admin})
    with reverts_with("ProvenanceLicenceOverlaps", "7, 9506000", ZERO_ADDRESS):
        ledger.grantLicence(d, *A_ROOT, {"from": admin})
    with reverts_with("ProvenanceNotLicensed", str(NESTED_GTIN), d.address):
        ledger.registerBatch(batch_input("D-SQUAT", gtin=NESTED_GTIN), {"from": d})
    tx = ledger.registerBatch(batch_input("C-1", gtin=NESTED_GTIN), {"from": c})
    assert tx.events["BatchRegistered"]["supplier"] == c
    # C's root is withdrawn normally (no Panic 0x11).
    tx = ledger.withdrawLicence(*C_ROOT, {"from": admin})
    event = tx.events["LicenceWithdrawn"]
    assert (event["key"], event["licensee"], event["by"]) == (licence_key(*C_ROOT), c, admin)
    with reverts_with("ProvenanceNotLicensed", str(NESTED_GTIN), c.address):
        ledger.registerBatch(batch_input("C-2", gtin=NESTED_GTIN), {"from": c})
    # With nothing inside any more, the range is free for D, and then for nobody else.
    tx = ledger.grantLicence(d, *B_SUB, {"from": admin})
    event = tx.events["LicenceGranted"]
    assert (event["key"], event["licensee"], event["grantor"], event["parentKey"]) == (
        licence_key(*B_SUB), d, admin, 0
    )  # fmt: skip
    tx = ledger.registerBatch(batch_input("D-1", gtin=NESTED_GTIN), {"from": d})
    assert tx.events["BatchRegistered"]["supplier"] == d
    with reverts_with("ProvenanceLicenceOverlaps", "10, 9506000123", d.address):
        ledger.grantLicence(c, *C_ROOT, {"from": admin})
    with reverts_with("ProvenanceLicenceOverlaps", "7, 9506000", ZERO_ADDRESS):
        ledger.grantLicence(a, *A_ROOT, {"from": admin})


def test_root_inside_a_lapsed_sub_licence_that_is_never_withdrawn(ledger, admin, farm, roaster, member_farm, supplier_d):
    # Same as above without the withdrawal: the lapsed slot still counts the root inside it.
    _free_company_prefix_9506000(ledger, admin)
    ledger.grantLicence(roaster, *A_ROOT, {"from": admin})
    ledger.grantLicence(member_farm, *B_SUB, {"from": roaster})
    ledger.withdrawLicence(*A_ROOT, {"from": admin})
    ledger.grantLicence(farm, *C_ROOT, {"from": admin})
    with reverts_with("ProvenanceLicenceOverlaps", "9, 950600012", ZERO_ADDRESS):
        ledger.grantLicence(supplier_d, *B_SUB, {"from": admin})
    tx = ledger.withdrawLicence(*C_ROOT, {"from": admin})
    assert tx.events["LicenceWithdrawn"]["licensee"] == farm
    # The lapsed slot is free for a root now (see the next tests).
    tx = ledger.grantLicence(supplier_d, *B_SUB, {"from": admin})
    assert tx.events["LicenceGranted"]["licensee"] == supplier_d


def test_lapsed_sub_licence_slot_granted_again_by_the_admin_as_a_root(ledger, admin, coop, roaster, member_farm):
    ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": coop})
    ledger.withdrawLicence(*COOP_LICENCE, {"from": admin})
    # Lapsed: no ProvenanceLicenceAlreadyGranted.
    tx = ledger.grantLicence(roaster, *MEMBER_RANGE, {"from": admin})
    event = tx.events["LicenceGranted"]
    assert (event["key"], event["licensee"], event["grantor"], event["parentKey"]) == (
        licence_key(*MEMBER_RANGE), roaster, admin, 0
    )  # fmt: skip
    tx = ledger.registerBatch(batch_input("R-1", gtin=MEMBER_GTIN), {"from": roaster})
    assert tx.events["BatchRegistered"]["supplier"] == roaster
    with reverts_with("ProvenanceNotLicensed", str(MEMBER_GTIN), member_farm.address):
        ledger.registerBatch(batch_input("M-1", gtin=MEMBER_GTIN), {"from": member_farm})
    # The old grantor has no say over the new root; the new one is in force.
    with reverts_with("ProvenanceNotLicensor", "9, 950123401", coop.address):
        ledger.withdrawLicence(*MEMBER_RANGE, {"from": coop})
    with reverts_with("ProvenanceLicenceAlreadyGranted", "9, 950123401", roaster.address):
        ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": admin})


def test_lapsed_sub_licence_slot_granted_again_by_a_new_root_holder(ledger, admin, farm, coop, roaster, member_farm):
    ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": coop})
    ledger.withdrawLicence(*COOP_LICENCE, {"from": admin})
    ledger.grantLicence(roaster, *COOP_LICENCE, {"from": admin})
    tx = ledger.grantLicence(farm, *MEMBER_RANGE, {"from": roaster})
    event = tx.events["LicenceGranted"]
    assert (event["key"], event["licensee"], event["grantor"], event["parentKey"]) == (
        licence_key(*MEMBER_RANGE), farm, roaster, licence_key(*COOP_LICENCE)
    )  # fmt: skip
    tx = ledger.registerBatch(batch_input("F-1", gtin=MEMBER_GTIN), {"from": farm})
    assert tx.events["BatchRegistered"]["supplier"] == farm
    with reverts_with("ProvenanceNotLicensed", str(MEMBER_GTIN), member_farm.address):
        ledger.registerBatch(batch_input("M-1", gtin=MEMBER_GTIN), {"from": member_farm})
    # Only the new grantor (or the admin) withdraws it.
    with reverts_with("ProvenanceNotLicensor", "9, 950123401", coop.address):
        ledger.withdrawLicence(*MEMBER_RANGE, {"from": coop})
    tx = ledger.withdrawLicence(*MEMBER_RANGE, {"from": roaster})
    assert (tx.events["LicenceWithdrawn"]["licensee"], tx.events["LicenceWithdrawn"]["by"]) == (farm, roaster)


def test_sub_licence_in_force_cannot_be_granted_again(ledger, admin, coop, roaster, member_farm):
    ledger.grantLicence(member_farm, *MEMBER_RANGE, {"from": coop})
    with reverts_with("ProvenanceLicenceAlreadyGranted", "9, 950123401", member_farm.address):
        ledger.grantLicence(roaster, *MEMBER_RANGE, {"from": coop})
    # The admin cannot either: the range lies inside the coop's root.
    with reverts_with("ProvenanceLicenceOverlaps", "9, 950123401", coop.address):
        ledger.grantLicence(roaster, *MEMBER_RANGE, {"from": admin})
    tx = ledger.registerBatch(batch_input("M-1", gtin=MEMBER_GTIN), {"from": member_farm})
    assert tx.events["BatchRegistered"]["supplier"] == member_farm
    with reverts_with("ProvenanceNotLicensed", str(MEMBER_GTIN), roaster.address):
        ledger.registerBatch(batch_input("R-1", gtin=MEMBER_GTIN), {"from": roaster})


# ------------------------------------------------------------------ the first GTIN of a list is checked


@pytest.mark.parametrize("gtin", [0, COFFEE_GTIN + 1, 10**14])
def test_invalid_gtin_first_in_a_bulk_registration_reverts(ledger, farm, member_farm, gtin):
    # The attack (review 02): GTIN 0 first in the list skipped the GTIN and licence check,
    # so even an organisation with no licence at all registered lots.
    for account in (farm, member_farm):
        with reverts_with("ProvenanceInvalidGtin", str(gtin)):
            ledger.registerBatches([batch_input("ZERO-1", gtin=gtin), batch_input("ZERO-2", gtin=gtin)], {"from": account})
        with reverts_with("ProvenanceInvalidGtin", str(gtin)):
            ledger.registerBatches([batch_input("ZERO-3", gtin=gtin)], {"from": account})
    for lot in ("ZERO-1", "ZERO-2", "ZERO-3"):
        assert ledger.getBatch(batch_id(gtin, lot))[5] == STATUS_NONE


@pytest.mark.parametrize("gtin", [0, COFFEE_GTIN + 1])
def test_invalid_gtin_as_first_transformation_output_reverts(ledger, farm, farm_batch, gtin):
    with reverts_with("ProvenanceInvalidGtin", str(gtin)):
        ledger.transform(SPLIT, [(farm_batch, 1)], [batch_input("ZERO-4", 1, gtin=gtin)], NO_DATA, {"from": farm})
    outputs = [batch_input("ZERO-5", 1, gtin=gtin), batch_input("OWN-5", 1)]
    with reverts_with("ProvenanceInvalidGtin", str(gtin)):
        ledger.transform(SPLIT, [(farm_batch, 2)], outputs, NO_DATA, {"from": farm})
    assert ledger.getBatch(farm_batch)[4] == 60_000
    for lot in ("ZERO-4", "ZERO-5"):
        assert ledger.getBatch(batch_id(gtin, lot))[5] == STATUS_NONE
    assert ledger.getBatch(batch_id(COFFEE_GTIN, "OWN-5"))[5] == STATUS_NONE
