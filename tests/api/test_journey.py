"""The journey a shopper reads: a few stages in plain words, farms linked to their lots'
pages, and the full log of records folded below."""

from __future__ import annotations

import re

from test_pages import BAG, JSON, LOAF

from api.stages import journey_stages
from ledger.demo import DEMO_BAG
from ledger.identifiers import digital_link

FARM_LOTS = {
    "Finca La Esperanza": "ESP-2026-07",
    "Finca El Mirador": "MIR-2026-07",
    "Finca Los Naranjos": "NAR-2026-07",
}


def journey_html(html: str) -> str:
    """The journey section of a product page."""
    return html[html.index('id="journey"') : html.index('id="verify"')]


def test_coffee_bag_reads_grown_gathered_blended_shipped_roasted_packed(client):
    data = client.get(BAG, headers=JSON).json()
    assert [s["title"] for s in data["stages"]] == [
        "Grown and harvested",
        "Gathered by Cooperativa Cafetera Alto Huila",
        "Blended",
        "Shipped to Tostadores del Puerto",
        "Roasted",
        "Packed",
    ]
    grown, gathered, blended, shipped, roasted, packed = data["stages"]
    assert grown["places"] == ["Huila, Colombia"] and grown["who"] == list(FARM_LOTS)
    assert grown["started_at"] < grown["ended_at"] <= gathered["started_at"]  # a date range, in order
    assert gathered["places"] == ["Cooperativa Alto Huila warehouse, Pitalito, CO"]
    assert gathered["who"] == ["Cooperativa Cafetera Alto Huila"] and len(gathered["lots"]) == 3
    assert shipped["places"] == ["Puerto de Buenaventura, CO", "Tostadores del Puerto, Valencia, ES"]
    assert "13,000 kg of Green coffee, Huila regional blend" in roasted["detail"]
    assert packed["lots"][0]["lot"] == DEMO_BAG[1] and packed["who"] == ["Tostadores del Puerto"]
    # Every record of the log is summed up by exactly one stage.
    assert sum(s["records"] for s in data["stages"]) == len(data["journey"]) == 22


def test_farms_link_to_their_own_lots_pages_and_those_pages_open(client):
    html = client.get(BAG).text
    stages = journey_html(html).split("<details", 1)[0]
    links = dict((text, href) for href, text in re.findall(r'<a href="(/01/[^"]+)">([^<]+)</a>', stages))
    origins = {o["lot"]: o for o in client.get(BAG, headers=JSON).json()["origins"]}
    for farm, lot in FARM_LOTS.items():
        (text,) = [t for t in links if t.startswith(f"{farm}: ")]
        assert links[text] == digital_link(origins[lot]["gtin"], lot).path()
        page = client.get(links[text], headers=JSON)
        assert page.status_code == 200 and page.json()["lot"] == lot and page.json()["producer"]["name"] == farm


def test_the_full_log_stays_folded_behind_every_record(client):
    html = client.get(BAG).text
    journey = journey_html(html)
    stages, folded = journey.split('<details class="records">', 1)
    assert "<summary>Every record (22)</summary>" in folded
    assert len(re.findall(r"<li[ >]", folded.split("</details>")[0])) == 22
    assert "Registered: Green coffee, washed Caturra, lot ESP-2026-07" in folded
    # The stages speak plainly: no block numbers, no "Merged"/"Processed" jargon.
    assert "block " not in stages and "Merged" not in stages and "Processed" not in stages
    assert len(html.encode()) <= 60_000 and "<script" not in html.lower()


def test_recalled_loaf_shows_its_recall_as_a_stage(client):
    data = client.get(LOAF, headers=JSON).json()
    titles = [s["title"] for s in data["stages"]]
    assert titles[0] == "Grown and harvested" and "Packed" in titles and titles[-1] == "Recalled"
    assert sum(s["records"] for s in data["stages"]) == len(data["journey"])


def test_stages_escape_nothing_themselves_and_tolerate_unknown_lots():
    entry = {
        "event": "BatchRegistered", "title": "Registered", "timestamp": 1, "lot": "?", "gtin": "", "product": None,
        "who": "<b>farm</b>", "where": "x, y, z", "detail": "1 kg",
    }  # fmt: skip
    (stage,) = journey_stages([entry], {"?"})
    assert stage["lots"] == [{"product": None, "lot": "?", "who": "<b>farm</b>", "href": None}]
    assert stage["places"] == ["y, z"] and stage["who"] == ["<b>farm</b>"]
