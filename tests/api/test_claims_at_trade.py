"""The coffee bag's claims judged when each farm lot was traded, with the present state
beside it: Mirador's fair-trade certificate (expired 30 days ago) and Los Naranjos'
organic one (revoked at demo day 120) both covered their lots when the lots were handed
over (days 12-14) and merged (day 20)."""

from __future__ import annotations

import html as html_module
import re

from api import schemas
from ledger.demo import DEMO_BAG

BAG = f"/01/{DEMO_BAG[0]}/10/{DEMO_BAG[1]}"
JSON = {"Accept": "application/json"}


def text_of(html: str) -> str:
    """The page's visible text, whitespace collapsed (for phrase checks)."""
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return html_module.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def claim_of(page: dict, claim: str, lot: str) -> dict:
    return next(c for c in page["claims"] if c["claim"] == claim and c["subject_lot"] == lot)


def test_an_expired_certificate_was_valid_when_its_lot_was_traded_and_counts(client):
    page = client.get(BAG, headers=JSON).json()
    fair = claim_of(page, "FAIRTRADE", "MIR-2026-07")
    assert (fair["status_at_trade"], fair["status_now"], fair["state"]) == ("valid", "expired", "expired_since")
    assert fair["verdict"] == "valid when traded; has since expired"
    # Traded before it expired, and the page keeps its later expiry.
    assert fair["valid_from"] <= fair["traded_at"] < fair["valid_until"] < page["at"]
    # Every farm lot's fair trade held when traded: the whole input counts (it was 69% judged today).
    assert {c["claim"]: c["share"] for c in page["coverage"]}["FAIRTRADE"] == 1.0
    group = next(g for g in page["claim_groups"] if g["claim"] == "FAIRTRADE")
    assert group["coverage"] == 1.0 and fair in group["claims"]
    html = client.get(BAG).text
    assert '<li class="claim-expired_since"><span class="badge claim-expired_since">Valid when traded</span>' in html
    assert "Green coffee, washed Castillo (lot MIR-2026-07, Finca El Mirador): valid when traded; has since expired." in text_of(
        html
    )


def test_a_certificate_revoked_after_the_trade_was_valid_then(client):
    page = client.get(BAG, headers=JSON).json()
    organic = claim_of(page, "ORGANIC", "NAR-2026-07")
    assert (organic["status_at_trade"], organic["status_now"], organic["state"]) == ("valid", "revoked", "revoked_since")
    assert organic["traded_at"] < organic["revoked_at"]
    assert organic["verdict"] == "valid when traded; has since been revoked"
    assert {c["claim"]: c["share"] for c in page["coverage"]}["ORGANIC"] == round(18 / 26, 6)
    html = client.get(BAG).text
    assert '<span class="badge claim-revoked_since">' in html
    assert "“Pesticide residue found in re-audit”" in text_of(html)  # the reason stays on the page


def test_one_entry_per_claim_type_with_its_lots(client):
    page = client.get(BAG, headers=JSON).json()
    schemas.ProductPage.model_validate(page)
    groups = {g["claim"]: g for g in page["claim_groups"]}
    assert list(groups) == ["DEFORESTATION_FREE", "FAIRTRADE", "ORGANIC"]
    assert [c["subject_lot"] for c in groups["DEFORESTATION_FREE"]["claims"]] == ["NAR-2026-07", "MIR-2026-07", "ESP-2026-07"]
    assert all(g["state"] == "valid" for g in groups.values())
    assert sum(len(g["claims"]) for g in groups.values()) == len(page["claims"])
    html = client.get(BAG).text
    assert html.count('<h3>Deforestation-free <span class="badge') == 1
    assert len(html.encode()) <= 60_000


def test_each_pair_of_statuses_reads_as_one_state_and_sentence():
    from api.views import CLAIM_STATES, claim_state

    cases = {
        ("valid", "valid"): "valid",
        ("valid", "expired"): "valid when traded; has since expired",
        ("valid", "revoked"): "valid when traded; has since been revoked",
        ("revoked", "revoked"): "revoked before it was traded",
        ("expired", "expired"): "expired before it was traded",
        ("issuer_not_accredited", "valid"): "its certifier was not accredited when it was traded",
    }
    assert {pair: CLAIM_STATES[claim_state(*pair)][1] for pair in cases} == cases
