"""A realistic demo ledger: a coffee chain and a bakery chain, every page path exercised.

Coffee: three farms' lots are merged at a cooperative, exported, roasted by a small
roaster and packed into retail bags. Bakery: flour and cocoa go into a chocolate loaf.
GTINs are licensed by the admin: the roaster, the mill, the cocoa union and the bakery
hold their GS1 Company Prefixes; the cooperative holds one too and sub-licenses a GTIN
to each member farm (farms have no GS1 membership), under which the farms register
their lots. Fair-trade, organic and deforestation-free claims are attested by fictional
certifiers (never a supplier or holder of what they certify); one claim is revoked with
a reason, one has expired, and one flour lot is recalled with a reason, a recall the
admin reviews and upholds. All organisations and places are fictional; no person is
named. Runs on the local chain only (it signs with the node's unlocked accounts).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ledger.audit import AuditPolicy, YieldRule
from ledger.connection import LedgerConnection
from ledger.conversions import subject_of_address
from ledger.identifiers import complete_gtin
from ledger.models import AttestationCreate, BatchCreate, LicenceScope, SubjectKind, TransformationKind
from ledger.rpc import rpc_call
from ledger.signers import NodeAccountSigner
from ledger.writer import LedgerWriter, hex0x

DAY = 24 * 3600
YEAR = 365 * DAY
#: The demo history spans this long, ending now: harvest in summer, bags on the shelf today.
DEMO_SPAN = 150 * DAY


def demo_genesis_timestamp() -> int:
    """When a fresh chain meant for the demo should begin, so its history has real dates."""
    return int(time.time()) - DEMO_SPAN - DAY


# GS1 prefix 950 is GS1's own example range: no real company's GTINs are used. Each
# organisation's GTINs lie inside the GS1 Company Prefix licensed to it (see LICENCES).
ROASTER_PREFIX = "95060001343"  # Tostadores del Puerto
BAKERY_PREFIX = "95060001344"  # Boulangerie des Tilleuls
COOP_PREFIX = "9506000135"  # Cooperativa Cafetera Alto Huila; GTINs sub-licensed to its farms
MILL_PREFIX = "9506000137"  # Moulin de la Vallee
COCOA_PREFIX = "9506000138"  # Ashanti Cocoa Growers Union

ROASTED_COFFEE = complete_gtin("0950600013436")
COFFEE_BAG = complete_gtin("0950600013437")
CHOCOLATE_LOAF = complete_gtin("0950600013440")
HUILA_BLEND = complete_gtin("0950600013500")  # the cooperative's export blend
#: One GTIN per member farm (each its own product), sub-licensed by the cooperative.
FARM_COFFEE = {
    "esperanza": complete_gtin("0950600013501"),
    "mirador": complete_gtin("0950600013502"),
    "naranjos": complete_gtin("0950600013503"),
}
#: Finca La Esperanza's green coffee (node:1 on the demo ledger).
GREEN_COFFEE = FARM_COFFEE["esperanza"]
FLOUR = complete_gtin("0950600013700")
COCOA = complete_gtin("0950600013800")

#: Root licences the admin grants: organisation key -> GS1 Company Prefix.
LICENCES = {
    "roaster": ROASTER_PREFIX,
    "bakery": BAKERY_PREFIX,
    "coop": COOP_PREFIX,
    "mill": MILL_PREFIX,
    "cocoa": COCOA_PREFIX,
}


@dataclass(frozen=True)
class Organisation:
    """A demo organisation and the node account it signs with."""

    key: str
    node_index: int
    name: str
    country: str
    supplier: bool = True
    claims: tuple[str, ...] = ()


ORGANISATIONS = (
    Organisation("esperanza", 1, "Finca La Esperanza", "CO"),
    Organisation("mirador", 2, "Finca El Mirador", "CO"),
    Organisation("naranjos", 3, "Finca Los Naranjos", "CO"),
    Organisation("coop", 4, "Cooperativa Cafetera Alto Huila", "CO"),
    Organisation("roaster", 5, "Tostadores del Puerto", "ES"),
    Organisation("mill", 6, "Moulin de la Vallee", "FR"),
    Organisation("cocoa", 7, "Ashanti Cocoa Growers Union", "GH"),
    Organisation("bakery", 8, "Boulangerie des Tilleuls", "FR"),
    Organisation("ethiccert", 9, "EthicCert Labs", "DE", supplier=False, claims=("FAIRTRADE", "ORGANIC")),
    Organisation("verdetrace", 10, "VerdeTrace Assurance", "NL", supplier=False, claims=("DEFORESTATION_FREE",)),
)

#: The demo's audit policy: the most each process may give per unit of input.
DEMO_AUDIT_POLICY = AuditPolicy(
    yields=[
        YieldRule("roasting", ROASTED_COFFEE, 0.9, input_gtin=HUILA_BLEND),  # roasting loses 15-20% of the weight
        YieldRule("bagging 250 g", COFFEE_BAG, 4.0),  # bags per kg of roasted coffee
        YieldRule("baking 500 g loaves", CHOCOLATE_LOAF, 2.5),  # loaves per kg of dry ingredients
    ]
)

#: The retail bag a customer scans in the demo: GTIN and lot.
DEMO_BAG = (COFFEE_BAG, "TP-B-1107-A")
#: The chocolate loaf whose flour was recalled.
DEMO_LOAF = (CHOCOLATE_LOAF, "BT-CL-1122")


def is_seeded(connection: LedgerConnection) -> bool:
    """Whether the demo's retail bag already exists."""
    from ledger.identifiers import batch_id

    created_at: int = connection.contract.functions.getBatch(batch_id(*DEMO_BAG)).call()[5]
    return created_at != 0


class DemoClock:
    """Dates the demo's chapters on the local chain (anvil's `evm_setNextBlockTimestamp`).

    On a chain that began at least DEMO_SPAN ago (see `demo_genesis_timestamp`) the history
    is spread over DEMO_SPAN and its last chapter lands at the wall clock's now, so later
    blocks carry real time. On a younger chain the chapters keep the chain's own time.
    """

    def __init__(self, connection: LedgerConnection) -> None:
        self.connection = connection
        latest = int(connection.w3.eth.get_block("latest")["timestamp"])
        self.end = max(latest, int(time.time()))
        self.start = self.end - DEMO_SPAN
        self.spread = latest < self.start

    def day(self, offset: float) -> None:
        """The next block is mined `offset` days into the demo's span."""
        if self.spread:
            at = min(self.end, self.start + int(offset * DAY))
            rpc_call(self.connection.w3, "evm_setNextBlockTimestamp", [at])


def seed_demo(connection: LedgerConnection, say: Callable[[str], None] = lambda _: None) -> bool:
    """Write the demo history; returns False (and writes nothing) when it is already there."""
    if is_seeded(connection):
        return False
    clock = DemoClock(connection)
    accounts = connection.w3.eth.accounts
    admin = LedgerWriter(connection, NodeAccountSigner(accounts[0]))
    org = {o.key: LedgerWriter(connection, NodeAccountSigner(accounts[o.node_index])) for o in ORGANISATIONS}

    say("Registering organisations and licensing their GTINs")
    clock.day(0)
    for o in ORGANISATIONS:
        admin.register_actor(accounts[o.node_index], o.name, o.country)
        if o.supplier:
            admin.grant_supplier(accounts[o.node_index])
        for claim in o.claims:
            admin.accredit(accounts[o.node_index], claim)
    for key, prefix in LICENCES.items():
        admin.grant_licence(org[key].signer.address, LicenceScope.company_prefix(prefix))
    for key, gtin in FARM_COFFEE.items():  # member farms have no GS1 membership of their own
        org["coop"].sub_license(org[key].signer.address, LicenceScope.single_gtin(gtin))

    now = clock.end

    def batch(gtin: str, lot: str, quantity: int, unit: str, product: str, origin: str | None = None) -> BatchCreate:
        return BatchCreate(gtin=gtin, lot=lot, quantity=quantity, unit=unit, product=product, origin=origin)

    def hand_over(source: str, target: str, b: BatchCreate, place_from: str, place_to: str) -> None:
        org[source].record_step(b.batch_id, "shipping", place_from)
        org[source].transfer_custody(b.batch_id, org[target].signer.address)
        org[target].accept_custody(b.batch_id)
        org[target].record_step(b.batch_id, "receiving", place_to)

    def attest(
        certifier: str, claim: str, subject: bytes | str, kind: SubjectKind = SubjectKind.BATCH, valid_until: int | None = None
    ) -> str:
        subject_hex = hex0x(subject) if isinstance(subject, bytes) else subject_of_address(subject)
        # A batch's certificate covers it from its registration (never earlier: the ledger
        # refuses that); an organisation's starts when attested.
        state = org[certifier].batch_state(subject) if isinstance(subject, bytes) else None
        valid_from = state.registered_at if state else 0
        if valid_until is not None and valid_until <= valid_from:
            valid_until = valid_from + 1  # a chain too young to spread the demo: expired all the same
        request = AttestationCreate(
            subject_kind=kind,
            subject=subject_hex,
            claim=claim,
            valid_from=valid_from,
            valid_until=now + YEAR if valid_until is None else valid_until,
            evidence_hash=hex0x(
                org[certifier].documents.put_json({"certificate": f"{claim} audit report", "subject": subject_hex})
            ),
        )
        uid, _ = org[certifier].attest(request)
        return uid

    # Chapters in the order they happened (block times only move forward).
    say("Coffee: three farms, a cooperative, an exporter's shipment, a roaster, retail bags")
    farms = {
        "esperanza": batch(FARM_COFFEE["esperanza"], "ESP-2026-07", 12_000, "KGM", "Green coffee, washed Caturra", "Finca La Esperanza, Pitalito, Huila, Colombia"),
        "mirador": batch(FARM_COFFEE["mirador"], "MIR-2026-07", 8_000, "KGM", "Green coffee, washed Castillo", "Finca El Mirador, Acevedo, Huila, Colombia"),
        "naranjos": batch(FARM_COFFEE["naranjos"], "NAR-2026-07", 6_000, "KGM", "Green coffee, honey Colombia", "Finca Los Naranjos, Suaza, Huila, Colombia"),
    }  # fmt: skip
    for i, (key, lot) in enumerate(farms.items()):
        clock.day(2 + i)
        org[key].register_batch(lot)
        org[key].record_step(lot.batch_id, "inspecting", farms[key].origin or "")

    say("Claims: fair trade, organic, deforestation-free; one will be revoked, one has expired")
    clock.day(5)
    attest("ethiccert", "FAIRTRADE", org["coop"].signer.address, SubjectKind.ACTOR)
    attest("ethiccert", "FAIRTRADE", farms["esperanza"].batch_id)
    attest("ethiccert", "FAIRTRADE", farms["naranjos"].batch_id)
    # Expired: the season's certificate ran out before it was renewed.
    attest("ethiccert", "FAIRTRADE", farms["mirador"].batch_id, valid_until=now - 30 * DAY)
    attest("ethiccert", "ORGANIC", farms["esperanza"].batch_id)
    revoked = attest("ethiccert", "ORGANIC", farms["naranjos"].batch_id)
    for lot in farms.values():
        attest("verdetrace", "DEFORESTATION_FREE", lot.batch_id)

    for i, (key, lot) in enumerate(farms.items()):
        clock.day(12 + i)
        hand_over(key, "coop", lot, farms[key].origin or "", "Cooperativa Alto Huila warehouse, Pitalito, CO")
    clock.day(20)
    export = batch(HUILA_BLEND, "AH-EXP-0420", 26_000, "KGM", "Green coffee, Huila regional blend", "Huila, Colombia")
    org["coop"].transform(TransformationKind.MERGE, [(lot.batch_id, lot.quantity) for lot in farms.values()], [export])
    clock.day(28)
    org["coop"].record_step(export.batch_id, "shipping", "Puerto de Buenaventura, CO")
    org["coop"].transfer_custody(export.batch_id, org["roaster"].signer.address)
    clock.day(61)
    org["roaster"].accept_custody(export.batch_id)
    org["roaster"].record_step(export.batch_id, "receiving", "Tostadores del Puerto, Valencia, ES")

    say("Bakery: flour and cocoa into a chocolate loaf")
    flour = batch(FLOUR, "MV-F-2211", 5_000, "KGM", "Organic wheat flour T65", "Moulin de la Vallee, Loire, France")
    cocoa = batch(COCOA, "ACG-C-0918", 2_000, "KGM", "Cocoa powder, natural", "Ashanti Region, Ghana")
    clock.day(95)
    org["cocoa"].register_batch(cocoa)
    clock.day(96)
    attest("ethiccert", "FAIRTRADE", cocoa.batch_id)
    attest("verdetrace", "DEFORESTATION_FREE", cocoa.batch_id)
    clock.day(110)
    hand_over("cocoa", "bakery", cocoa, "Port of Tema, GH", "Boulangerie des Tilleuls, Tours, FR")

    clock.day(120)
    revocation = "Pesticide residue found in re-audit"
    org["ethiccert"].revoke_attestation(
        bytes.fromhex(revoked[2:]),
        revocation,
        org["ethiccert"].documents.put_json({"reason": revocation, "report": "Re-audit of Finca Los Naranjos, lot NAR-2026-07"}),
    )
    clock.day(135)
    roasted = batch(ROASTED_COFFEE, "TP-R-1107", 11_050, "KGM", "Roasted coffee, Huila blend, medium roast")
    org["roaster"].transform(TransformationKind.PROCESSING, [(export.batch_id, 13_000)], [roasted])
    clock.day(136)
    bags = batch(COFFEE_BAG, DEMO_BAG[1], 2_000, "H87", "Huila blend coffee beans, 250 g bag")
    org["roaster"].transform(TransformationKind.PROCESSING, [(roasted.batch_id, 500)], [bags])
    org["roaster"].record_step(bags.batch_id, "packing", "Tostadores del Puerto, Valencia, ES")

    clock.day(140)
    org["mill"].register_batch(flour)
    clock.day(141)
    attest("ethiccert", "ORGANIC", flour.batch_id)
    clock.day(142)
    hand_over("mill", "bakery", flour, "Moulin de la Vallee, Loire, FR", "Boulangerie des Tilleuls, Tours, FR")
    clock.day(148)
    loaf = batch(CHOCOLATE_LOAF, DEMO_LOAF[1], 600, "H87", "Chocolate sourdough loaf, 500 g")
    org["bakery"].transform(TransformationKind.PROCESSING, [(flour.batch_id, 300), (cocoa.batch_id, 40)], [loaf])
    org["bakery"].record_step(loaf.batch_id, "packing", "Boulangerie des Tilleuls, Tours, FR")

    say("Recall: the flour lot (mycotoxin above the limit), reviewed and upheld by the admin")
    clock.day(149)
    recall = "Deoxynivalenol above the EU limit in retained sample"
    org["mill"].recall_batch(
        flour.batch_id,
        recall,
        org["mill"].documents.put_json(
            {
                "reason": recall,
                "notice": "Recall notice MV-2026-11: lot MV-F-2211, all deliveries",
                "what_to_do": "Do not eat it. Return it to the shop where you bought it for a full refund, with or without a receipt.",
                "contact": "Moulin de la Vallee customer line, +33 2 47 00 00 00, rappel@moulin-vallee.example",
                "notice_url": "https://rappel.conso.example/fiche/MV-2026-11",
            }
        ),
    )
    clock.day(DEMO_SPAN / DAY)  # today: later blocks carry the wall clock's time
    admin.review_recall(flour.batch_id, True, "Confirmed by the accredited laboratory's analysis of the retained sample")
    return True
