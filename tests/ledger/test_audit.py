"""The audit checks: for each, a history on a real chain that must trigger it and one that
must not. Two checks guard against what the contract already forbids (attesting without
accreditation, handing over to a deactivated organisation); those are tested against an
index doctored the way a faulty or foreign indexer would leave it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from ledger.audit import Auditor, AuditPolicy, Finding, Severity, YieldRule
from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.documents import DocumentStore
from ledger.identifiers import complete_gtin, lot_bytes
from ledger.indexer import schema
from ledger.indexer.scanner import Scanner
from ledger.indexer.store import IndexStore
from ledger.models import AttestationCreate, BatchCreate, LicenceScope, SubjectKind, TransformationKind
from ledger.queries import ReadModel
from ledger.signers import NodeAccountSigner
from ledger.writer import LedgerWriter, hex0x

RAW = complete_gtin("0950600013450")
MADE = complete_gtin("0950600013451")
DAY = 24 * 3600


@dataclass
class World:
    """Organisations on the test chain: an admin, three suppliers, a certifier."""

    connection: LedgerConnection
    admin: LedgerWriter
    farm: LedgerWriter
    mill: LedgerWriter
    shop: LedgerWriter
    certifier: LedgerWriter
    tmp_path: Path

    def lot(self, lot: str, quantity: int = 1_000, gtin: str = RAW, by: LedgerWriter | None = None, **extra) -> BatchCreate:
        batch = BatchCreate(gtin=gtin, lot=lot, quantity=quantity, unit="KGM", product=f"Product {lot}", **extra)
        (by or self.farm).register_batch(batch)
        return batch

    def attest(self, subject: bytes, claim: str = "FAIRTRADE", valid_from: int = 0, valid_until: int | None = None) -> str:
        now = self.now()
        # v2: a claim about a lot starts at its registration at the earliest.
        registered = self.admin.batch_state(subject).registered_at
        request = AttestationCreate(
            subject_kind=SubjectKind.BATCH,
            subject=hex0x(subject),
            claim=claim,
            valid_from=valid_from or registered,
            valid_until=valid_until or now + 365 * DAY,
        )
        return self.certifier.attest(request)[0]

    def now(self) -> int:
        return int(self.connection.w3.eth.get_block("latest")["timestamp"])

    def advance(self, seconds: int) -> None:
        self.connection.w3.provider.make_request("evm_increaseTime", [seconds])
        self.connection.w3.provider.make_request("evm_mine", [])

    def index(self) -> ReadModel:
        store = IndexStore.open(f"sqlite:///{self.tmp_path / 'audit.sqlite'}", self.tmp_path)
        store.drop_all()
        store = IndexStore.open(f"sqlite:///{self.tmp_path / 'audit.sqlite'}", self.tmp_path)
        Scanner(self.connection.w3, self.connection.address, self.connection.deploy_block, store).sync()
        return ReadModel(store, DocumentStore(self.connection.settings.documents_dir))

    def audit(self, policy: AuditPolicy | None = None, model: ReadModel | None = None) -> list[Finding]:
        return Auditor(model or self.index(), policy, now=self.now()).audit_all()


@pytest.fixture
def world(local_ledger, rewind, tmp_path) -> World:
    settings = Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url)
    connection = LedgerConnection.open(settings)
    accounts = connection.w3.eth.accounts
    admin = LedgerWriter(connection, NodeAccountSigner(accounts[0]))
    writers = {}
    for index, name in ((1, "Farm"), (2, "Mill"), (3, "Shop"), (4, "Certifier")):
        admin.register_actor(accounts[index], f"Audit {name}", "FR")
        if name != "Certifier":
            admin.grant_supplier(accounts[index])
        writers[name] = LedgerWriter(connection, NodeAccountSigner(accounts[index]))
    admin.accredit(accounts[4], "FAIRTRADE")
    # GTIN licences: the farm holds the prefix of RAW and MADE and sub-licenses them to
    # the mill and the shop, so every supplier here may register and transform under them.
    admin.grant_licence(accounts[1], LicenceScope.company_prefix(RAW[1:12]))
    writers["Farm"].sub_license(accounts[2], LicenceScope.company_prefix(RAW[1:13]))
    writers["Farm"].sub_license(accounts[2], LicenceScope.company_prefix(MADE[1:13]))
    writers["Farm"].sub_license(accounts[3], LicenceScope.single_gtin(RAW))
    return World(connection, admin, writers["Farm"], writers["Mill"], writers["Shop"], writers["Certifier"], tmp_path)


def checks(findings: list[Finding]) -> list[tuple[str, Severity]]:
    return [(f.check, f.severity) for f in findings]


def hand_over(world: World, batch: BatchCreate, source: LedgerWriter, target: LedgerWriter) -> None:
    source.transfer_custody(batch.batch_id, target.signer.address)
    target.accept_custody(batch.batch_id)


def test_a_clean_history_has_no_findings(world):
    raw = world.lot("CLEAN-1")
    world.attest(raw.batch_id)
    world.farm.record_step(raw.batch_id, "shipping", "Farm")
    hand_over(world, raw, world.farm, world.mill)
    world.mill.record_step(raw.batch_id, "receiving", "Mill")
    made = BatchCreate(gtin=MADE, lot="CLEAN-M", quantity=800, unit="KGM", product="Made")
    world.mill.transform(TransformationKind.PROCESSING, [(raw.batch_id, 1_000)], [made])
    assert world.audit(AuditPolicy(yields=[YieldRule("milling", MADE, 0.9)])) == []


def test_recall_reach_names_every_downstream_lot(world):
    raw = world.lot("RC-1")
    middle = BatchCreate(gtin=MADE, lot="RC-M", quantity=500, unit="KGM", product="Middle")
    world.farm.transform(TransformationKind.PROCESSING, [(raw.batch_id, 600)], [middle])
    final = BatchCreate(gtin=MADE, lot="RC-F", quantity=400, unit="KGM", product="Final")
    world.farm.transform(TransformationKind.PROCESSING, [(middle.batch_id, 500)], [final])
    world.farm.recall_batch(raw.batch_id, "aflatoxin in a sample", b"\x01" * 32)
    lonely = world.lot("RC-2")
    world.farm.recall_batch(lonely.batch_id, "mislabelled allergen")
    findings = world.audit()
    reach = next(f for f in findings if f.lot == "RC-1")
    assert (reach.check, reach.severity) == ("recall_reach", Severity.CRITICAL)
    assert reach.related_batches == sorted(["0x" + middle.batch_id.hex(), "0x" + final.batch_id.hex()])
    assert "lot RC-F" in reach.explanation and reach.events[0].name == "BatchRecalled"
    assert [(f.check, f.severity) for f in findings if f.lot == "RC-2"] == [
        ("recall_reach", Severity.HIGH),
        ("recall_awaiting_review", Severity.INFO),
    ]


def test_hand_over_after_a_recall_is_flagged_but_not_before(world):
    before = world.lot("AR-1")
    hand_over(world, before, world.farm, world.mill)
    world.farm.recall_batch(before.batch_id, "moulds")  # the supplier recalls what it already shipped
    after = world.lot("AR-2")
    world.farm.recall_batch(after.batch_id, "moulds")
    hand_over(world, after, world.farm, world.mill)  # allowed: returning goods
    findings = [f for f in world.audit() if f.check == "event_after_recall"]
    assert [(f.lot, f.severity) for f in findings] == [("AR-2", Severity.MEDIUM), ("AR-2", Severity.MEDIUM)]
    assert {e.name for f in findings for e in f.events} == {"BatchRecalled", "CustodyTransferProposed", "CustodyTransferAccepted"}


def test_revoked_and_expired_claims_are_flagged_valid_ones_are_not(world):
    revoked, expiring, fine = world.lot("CL-R"), world.lot("CL-E"), world.lot("CL-V")
    uid = world.attest(revoked.batch_id)
    world.certifier.revoke_attestation(bytes.fromhex(uid[2:]), "the audit found mixed lots", b"\x03" * 32)
    world.attest(expiring.batch_id, valid_until=world.now() + 100)
    world.attest(fine.batch_id)
    world.advance(200)
    assert sorted((f.lot, f.check, f.severity) for f in world.audit()) == [
        ("CL-E", "claim_expired", Severity.MEDIUM),
        ("CL-R", "claim_revoked", Severity.HIGH),
    ]


def test_a_certifier_who_lost_accreditation_is_flagged(world):
    lot = world.lot("ACC-1")
    world.attest(lot.batch_id)
    assert world.audit() == []
    world.admin.withdraw_accreditation(world.certifier.signer.address, "FAIRTRADE")
    assert checks(world.audit()) == [("claim_issuer_no_longer_accredited", Severity.MEDIUM)]


def test_accreditation_boundaries_follow_the_contract_within_one_second(world):
    # The contract checks the accreditation when the attestation executes, so within one
    # second block order decides: a grant covers an attestation of its own second, and a
    # withdrawal in the same second after the attestation does not make it unaccredited.
    lot = world.lot("ACC-S")
    second = world.now() + 5
    pin = lambda: world.connection.w3.provider.make_request("evm_setNextBlockTimestamp", [second])  # noqa: E731
    pin()
    world.admin.define_claim_type("RAINFOREST")
    pin()
    world.admin.accredit(world.certifier.signer.address, "RAINFOREST")
    pin()
    uid = world.attest(lot.batch_id, claim="RAINFOREST")
    pin()
    world.admin.withdraw_accreditation(world.certifier.signer.address, "RAINFOREST")
    model = world.index()
    attested = [e for e in model.transaction_events(model.attestation(uid, second).tx_hash) if e.name == "Attested"]
    assert attested[0].timestamp == second  # all four in the same second
    # "At time t" is after every event of that second: withdrawn by then.
    assert model.attestation(uid, second).status == "issuer_not_accredited"
    assert model.attestation(uid, second - 1).status == "issuer_not_accredited"  # not granted yet
    found = checks(Auditor(model, now=second + 1).audit_all())
    assert ("claim_issuer_no_longer_accredited", Severity.MEDIUM) in found
    assert ("claim_unaccredited_issuer", Severity.CRITICAL) not in found


def test_an_attestation_without_accreditation_at_the_time_is_critical(world):
    # The contract refuses such an attestation; an index that holds one (a faulty or
    # foreign indexer) must still be caught: move the accreditation after the attestation.
    lot = world.lot("ACC-2")
    world.attest(lot.batch_id)
    model = world.index()
    with model.store.engine.begin() as conn:
        conn.execute(update(schema.accreditations).values(granted_at=world.now() + 10))
    found = checks(Auditor(model, now=world.now() + 20).audit_all())
    assert ("claim_unaccredited_issuer", Severity.CRITICAL) in found


def test_a_validity_window_that_misses_the_production_date_is_flagged(world):
    early = world.lot("WIN-1")
    world.attest(early.batch_id, valid_from=world.now() + 50, valid_until=world.now() + 365 * DAY)
    covered = world.lot("WIN-2")
    world.attest(covered.batch_id)
    world.advance(100)
    assert [(f.lot, f.check) for f in world.audit()] == [("WIN-1", "claim_window_misses_production")]


def test_mass_balance_against_the_inputs_and_against_a_yield_rule(world):
    raw = world.lot("MB-1")
    grown = BatchCreate(gtin=MADE, lot="MB-OUT", quantity=1_200, unit="KGM", product="More than went in")
    world.farm.transform(TransformationKind.PROCESSING, [(raw.batch_id, 1_000)], [grown])
    assert [(f.lot, f.check, f.severity) for f in world.audit()] == [("MB-OUT", "mass_balance", Severity.HIGH)]

    roasted = world.lot("MB-2")
    out = BatchCreate(gtin=complete_gtin("0950600013452"), lot="MB-ROAST", quantity=950, unit="KGM", product="Roasted")
    world.farm.transform(TransformationKind.PROCESSING, [(roasted.batch_id, 1_000)], [out])
    policy = AuditPolicy(yields=[YieldRule("roasting", out.gtin, 0.9, input_gtin=RAW)])
    assert "MB-ROAST" in {f.lot for f in world.audit(policy)}
    assert "MB-ROAST" not in {f.lot for f in world.audit(AuditPolicy(yields=[YieldRule("roasting", out.gtin, 0.96)]))}


def test_claimed_output_beyond_the_claim_bearing_input_is_flagged(world):
    fair, plain = world.lot("CO-FAIR", 500), world.lot("CO-PLAIN", 500)
    world.attest(fair.batch_id)
    honest = BatchCreate(gtin=MADE, lot="CO-HONEST", quantity=200, unit="KGM", product="Blend", claims=("FAIRTRADE",))
    world.farm.transform(TransformationKind.MERGE, [(fair.batch_id, 250), (plain.batch_id, 250)], [honest])
    assert world.audit() == []  # 200 kg claimed from 250 kg of fair-trade input
    inflated = BatchCreate(gtin=MADE, lot="CO-INFLATED", quantity=450, unit="KGM", product="Blend", claims=("FAIRTRADE",))
    world.farm.transform(TransformationKind.MERGE, [(fair.batch_id, 250), (plain.batch_id, 250)], [inflated])
    found = [(f.lot, f.check) for f in world.audit()]
    assert found == [("CO-INFLATED", "claimed_output_exceeds_claimed_input")]


def test_lots_held_by_a_deactivated_organisation_are_flagged(world):
    world.lot("DE-1", by=world.mill)
    world.lot("DE-2", by=world.shop)
    world.admin.deactivate_actor(world.mill.signer.address)
    assert [(f.lot, f.check) for f in world.audit()] == [("DE-1", "held_by_deactivated")]


def test_a_hand_over_to_a_deactivated_organisation_is_flagged(world):
    # The contract refuses it; an index missing the reactivation must still be caught.
    lot = world.lot("HD-1")
    world.admin.deactivate_actor(world.mill.signer.address)
    world.admin.reactivate_actor(world.mill.signer.address)
    hand_over(world, lot, world.farm, world.mill)
    model = world.index()
    assert Auditor(model, now=world.now()).audit_all() == []
    with model.store.engine.begin() as conn:
        conn.execute(delete(schema.events).where(schema.events.c.name == "ActorReactivated"))
    assert ("handover_to_deactivated", Severity.HIGH) in checks(Auditor(model, now=world.now()).audit_all())


def test_lots_held_too_long_by_one_custodian_are_flagged(world):
    world.lot("LONG-1")
    used = world.lot("LONG-2")
    world.farm.transform(
        TransformationKind.SPLIT,
        [(used.batch_id, 1_000)],
        [BatchCreate(gtin=RAW, lot="LONG-2A", quantity=1_000, unit="KGM", product="Part")],
    )
    world.advance(200 * DAY)
    found = [(f.lot, f.check, f.severity) for f in world.audit()]
    assert ("LONG-1", "custody_too_long", Severity.LOW) in found and "LONG-2" not in {lot for lot, _, _ in found}
    assert world.audit(AuditPolicy(max_custody_days=365)) == []


def test_steps_out_of_order_are_flagged(world):
    good, bad, late = world.lot("ST-1"), world.lot("ST-2"), world.lot("ST-3")
    world.farm.record_step(good.batch_id, "shipping", "Farm")
    world.farm.record_step(good.batch_id, "receiving", "Farm store")
    world.farm.record_step(bad.batch_id, "receiving", "Farm store")
    world.farm.record_step(late.batch_id, "inspecting", "Farm")
    world.farm.record_step(late.batch_id, "commissioning", "Farm")
    found = sorted((f.lot, f.check, f.title.endswith("received without being shipped")) for f in world.audit())
    assert found == [("ST-2", "step_out_of_order", True), ("ST-3", "step_out_of_order", False)]


def test_a_batch_audit_keeps_its_lineage_only(world):
    raw, other = world.lot("BA-1"), world.lot("BA-2")
    made = BatchCreate(gtin=MADE, lot="BA-M", quantity=500, unit="KGM", product="Made")
    world.farm.transform(TransformationKind.PROCESSING, [(raw.batch_id, 600)], [made])
    world.farm.recall_batch(raw.batch_id, "glass")
    world.farm.recall_batch(other.batch_id, "glass")
    auditor = Auditor(world.index(), now=world.now())
    assert {f.lot for f in auditor.audit_batch("0x" + made.batch_id.hex())} == {"BA-1"}
    assert {f.lot for f in auditor.audit_all()} == {"BA-1", "BA-2"}


# ---------------------------------------------------------------------- contract v2


def test_details_borrowed_from_another_lot_are_a_high_finding(world):
    # The attack: the mill registers a new lot of its own with the metadata hash of the
    # farm's lot, so its page would show the farm's product and origin.
    honest = BatchCreate(gtin=RAW, lot="HON-1", quantity=1_000, unit="KGM", product="Farm coffee", origin="Huila, CO")
    anchored = world.farm.register_batch(honest).metadata_hash
    world.mill.send(
        world.mill.contract.functions.registerBatch((int(RAW), lot_bytes("BORROW-1"), 1_000, b"KGM", bytes.fromhex(anchored[2:])))
    )
    findings = world.audit()
    assert [(f.lot, f.check, f.severity) for f in findings] == [("BORROW-1", "metadata_mismatch", Severity.HIGH)]
    assert "names GTIN" in findings[0].explanation and "HON-1" in findings[0].explanation
    assert findings[0].events[0].name == "BatchRegistered"
    assert "Farm coffee" not in findings[0].title  # the borrowed product name is never used as the lot's


def test_voided_lots_are_reported_and_high_when_they_went_into_other_lots(world):
    alone, used = world.lot("VO-1"), world.lot("VO-2")
    world.farm.transform(
        TransformationKind.PROCESSING,
        [(used.batch_id, 500)],
        [BatchCreate(gtin=MADE, lot="VO-M", quantity=400, unit="KGM", product="Made")],
    )
    world.admin.void_batch(alone.batch_id, "registered twice by mistake")
    world.admin.void_batch(used.batch_id, "wrong GTIN")
    found = {f.lot: f for f in world.audit()}
    assert (found["VO-1"].check, found["VO-1"].severity) == ("batch_voided", Severity.LOW)
    assert "registered twice by mistake" in found["VO-1"].explanation and "the ledger's admin" in found["VO-1"].explanation
    assert (found["VO-2"].check, found["VO-2"].severity) == ("batch_voided", Severity.HIGH)
    assert found["VO-2"].related_batches == [
        "0x" + BatchCreate(gtin=MADE, lot="VO-M", quantity=1, unit="KGM", product="x").batch_id.hex()
    ]
    assert {e.name for e in found["VO-2"].events} == {"BatchRegistered", "BatchVoided"}


def test_recall_reviews_withdrawn_upheld_and_awaiting(world):
    withdrawn, upheld, waiting = world.lot("RV-1"), world.lot("RV-2"), world.lot("RV-3", by=world.mill)
    world.farm.recall_batch(withdrawn.batch_id, "suspected moulds")
    world.admin.review_recall(withdrawn.batch_id, False, "the lab found none")
    hand_over(world, withdrawn, world.farm, world.shop)  # fine again after the withdrawal
    world.farm.recall_batch(upheld.batch_id, "glass fragments")
    world.admin.review_recall(upheld.batch_id, True, "confirmed")
    world.mill.recall_batch(waiting.batch_id, "pests")
    world.admin.deactivate_actor(world.mill.signer.address)  # deactivated after recalling: not the case below
    found = sorted((f.lot, f.check, f.severity) for f in world.audit())
    assert ("RV-1", "recall_withdrawn", Severity.INFO) in found
    assert not [x for x in found if x[0] == "RV-1" and x[1] != "recall_withdrawn"]  # no reach, no "after recall"
    assert ("RV-2", "recall_reach", Severity.HIGH) in found and not [x for x in found if x[0] == "RV-2" and "review" in x[1]]
    assert ("RV-3", "recall_awaiting_review", Severity.INFO) in found
    # A recall by a supplier that is deactivated when it recalls needs the admin soon.
    late = world.lot("RV-4", by=world.shop)
    world.admin.deactivate_actor(world.shop.signer.address)
    world.shop.recall_batch(late.batch_id, "pests")
    assert ("RV-4", "recall_awaiting_review", Severity.MEDIUM) in [(f.lot, f.check, f.severity) for f in world.audit()]


def test_attestations_breaking_the_v2_rules_on_a_doctored_index_are_critical(world):
    # The contract refuses these; an index that shows them (a faulty or foreign indexer)
    # must still be caught.
    lot = world.lot("RULE-1")
    uid = world.attest(lot.batch_id)
    about_farm = world.certifier.attest(
        AttestationCreate(
            subject_kind=SubjectKind.ACTOR, subject="0x" + world.farm.signer.address[2:].lower().rjust(64, "0"), claim="FAIRTRADE"
        )
    )[0]
    model = world.index()
    assert Auditor(model, now=world.now()).audit_all() == []
    certifier = world.certifier.signer.address
    e, att = schema.events, schema.attestations
    with model.store.engine.begin() as conn:
        # The certifier shown as the lot's supplier, the attestation starting before the lot, and
        # the organisation claim made about the certifier itself.
        row = (
            conn.execute(e.select().where(e.c.name == "BatchRegistered", e.c.batch_id == "0x" + lot.batch_id.hex()))
            .mappings()
            .first()
        )
        args = json.loads(row["args"]) | {"supplier": certifier}
        conn.execute(
            update(e).where(e.c.tx_hash == row["tx_hash"], e.c.log_index == row["log_index"]).values(args=json.dumps(args))
        )
        conn.execute(update(att).where(att.c.uid == uid).values(valid_from=att.c.valid_from - 1))
        conn.execute(update(att).where(att.c.uid == about_farm).values(subject="0x" + certifier[2:].lower().rjust(64, "0")))
    found = [(f.check, f.severity, f.batch_id or f.actor) for f in Auditor(model, now=world.now()).audit_all()]
    assert ("claim_conflict_of_interest", Severity.CRITICAL, "0x" + lot.batch_id.hex()) in found
    assert ("claim_backdated", Severity.CRITICAL, "0x" + lot.batch_id.hex()) in found
    assert any(check == "claim_conflict_of_interest" and about == certifier for check, _, about in found)
