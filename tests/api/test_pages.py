"""The customer's side through TestClient: resolver, page content, link types, errors,
escaping, QR codes and label sheets."""

from __future__ import annotations

import html as html_module
import io
import re
from urllib.parse import quote

import pytest
import zxingcpp
from apisite import HOSTILE_GTIN, HOSTILE_LOT, HOSTILE_NAME, HOSTILE_PLACE, HOSTILE_PRODUCT
from PIL import Image

from ledger.demo import CHOCOLATE_LOAF, DEMO_BAG, DEMO_LOAF

BAG = f"/01/{DEMO_BAG[0]}/10/{DEMO_BAG[1]}"
LOAF = f"/01/{DEMO_LOAF[0]}/10/{DEMO_LOAF[1]}"
HOSTILE = f"/01/{HOSTILE_GTIN}/10/{quote(HOSTILE_LOT, safe='')}"
JSON = {"Accept": "application/json"}
BASE = "https://provenance.example"


def text_of(html: str) -> str:
    """The page's visible text, whitespace collapsed (for phrase checks)."""
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return html_module.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_landing_page_offers_search_and_no_list_of_lots(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert 'action="/search"' in response.text and 'name="gtin"' in response.text and 'name="lot"' in response.text
    # Lots are listed only for featured products (tests/api/test_brand.py): none here.
    assert "Huila blend coffee beans, 250 g bag" not in response.text and "/01/" not in response.text


def test_search_redirects_to_the_digital_link_and_explains_bad_input(client):
    response = client.get("/search", params={"gtin": "9506000134376", "lot": DEMO_BAG[1]}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == BAG
    bad = client.get("/search", params={"gtin": "9506000134377", "lot": "X"})
    assert bad.status_code == 400 and "check digit" in bad.text.lower()
    assert 'value="9506000134377"' in bad.text  # the form keeps what was typed


def test_product_page_shows_product_origins_claims_journey_and_proof(client, site):
    response = client.get(BAG)
    assert response.status_code == 200
    html, text = response.text, text_of(response.text)
    assert "<h1>Huila blend coffee beans, 250 g bag</h1>" in html
    assert "Tostadores del Puerto (ES)" in text and "TP-B-1107-A" in text and "09506000134376" in text
    # Where it comes from: the three farms with their share of the input.
    for farm, share in (("Finca La Esperanza", "46%"), ("Finca El Mirador", "31%"), ("Finca Los Naranjos", "23%")):
        assert re.search(rf"{farm} · {farm}, \w+, Huila, Colombia Lot \S+ · {share} of the inputs", text), farm
    # Claims: coverage, and bad news as plainly as good news.
    # Claims are judged when each lot was traded: Mirador's fair trade (expired since) and Los
    # Naranjos' organic (revoked since) still covered their lots then.
    for claim, share in (("Deforestation-free", "100%"), ("Fair trade", "100%"), ("Organic", "69%")):
        assert f"{claim} Valid {share} of the raw materials, by quantity, carried a valid certificate when traded" in text
    # One entry per claim type, with the lots under it, each with its state: exactly one
    # expired since (Mirador's fair trade) and one revoked since (Los Naranjos' organic).
    assert re.findall(r'<h3>([^<]+?) <span class="badge claim-(\w+)">', html) == [
        ("Deforestation-free", "valid"),
        ("Fair trade", "valid"),
        ("Organic", "valid"),
    ]
    lots = re.findall(r'<li class="claim-(\w+)"><span class="badge claim-\1">[^<]+</span> [^<]*?\(lot ([^,]+),', html)
    assert sorted(b for b in lots if b[0] != "valid") == [("expired_since", "MIR-2026-07"), ("revoked_since", "NAR-2026-07")]
    assert len(lots) == 8  # claims about the three farm lots (the cooperative's own is checked below)
    assert "valid when traded; has since expired" in text and "valid when traded; has since been revoked" in text
    assert "Revoked by EthicCert Labs on" in text and "“Pesticide residue found in re-audit”" in text  # the reason, as text
    assert "</time> until <time" in html and "</time>until" not in html  # words stay apart around dates
    assert "Valid Cooperativa Cafetera Alto Huila." in text  # an organisation's claim counts too
    # The journey's full log (folded below its plain stages, see test_journey) runs back to the farms, oldest first.
    journey = html[html.index('<details class="records">') :]
    titles = re.findall(r"<h3>([^<]+)</h3>", journey)
    assert titles[0] == "Registered: Green coffee, washed Caturra, lot ESP-2026-07"
    assert "Merged: Green coffee, Huila regional blend, lot AH-EXP-0420" in titles
    assert titles[-1] == "Packed: Huila blend coffee beans, 250 g bag, lot TP-B-1107-A"
    assert "Handed over: Green coffee, Huila regional blend, lot AH-EXP-0420" in titles
    # Verify it yourself: chain, contract, and a proof link for every fact.
    assert f"{site.connection.address}" in html and "Chain id 31337" in text
    assert len(re.findall(r'href="/proof/0x[0-9a-f]{64}"', journey)) >= len(titles)
    assert "up to date" in text
    assert 'class="banner recall"' not in html


def test_product_page_is_light_self_contained_and_accessible(client):
    html = client.get(BAG).text
    assert len(html.encode()) < 60_000
    assert "<script" not in html.lower()
    # No external asset: nothing loaded from elsewhere (links to a scheme's site are not assets).
    assert not re.search(r"""(src=|<link[^>]*href=)["']?(https?:)?//""", html), "no external assets"
    assert '<html lang="en">' in html and 'name="viewport"' in html
    assert html.count("<h1>") == 1 and re.search(r"<h2 id=\"claims\">", html)
    # The share bars are decoration (each share is written out beside it), so hidden from screen readers.
    bars = re.findall(r'<div class="bar"([^>]*)>', html)
    assert len(bars) == 6 and all('aria-hidden="true"' in attributes for attributes in bars)  # 3 origins, 3 claims
    assert not re.search(r"<img\b", html)  # no picture that would need a text alternative
    # The origin map is the one picture: an image with its caption as its name.
    assert re.findall(r"<svg\b[^>]*>", html) == [re.search(r"<svg\b[^>]*>", html).group(0)]
    assert 'role="img" aria-labelledby="origin-map-caption"' in html and 'id="origin-map-caption"' in html


def test_recall_of_an_input_puts_a_banner_at_the_top(client):
    html = client.get(LOAF).text
    banner = html.index('class="banner recall"')
    assert banner < html.index("<h1>")
    assert 'role="alert"' in html[banner - 80 : banner + 80]
    assert "An ingredient: Organic wheat flour T65 (lot MV-F-2211)" in text_of(html)
    # Why, and the admin's review of the recall (v2).
    assert "“Deoxynivalenol above the EU limit in retained sample”" in text_of(html)
    assert "reviewed and upheld by the ledger's admin" in text_of(html)
    recall = client.get(LOAF, params={"linkType": "gs1:recallStatus"}).json()
    assert recall["recalled"] is True and [r["lot"] for r in recall["recalls"]] == ["MV-F-2211"]


def test_json_for_programs_says_what_the_page_says(client):
    data = client.get(BAG, headers=JSON).json()
    assert data["product"] == "Huila blend coffee beans, 250 g bag" and data["url"] == BASE + BAG
    assert {o["lot"] for o in data["origins"]} == {"ESP-2026-07", "MIR-2026-07", "NAR-2026-07"}
    assert all(e["tx_hash"].startswith("0x") and e["block_number"] > 0 for e in data["journey"])
    assert {c["status"] for c in data["claims"]} == {"valid", "expired", "revoked"}


@pytest.mark.parametrize(
    ("link_type", "key"),
    [
        ("gs1:certificationInfo", "claims"),
        ("gs1:traceability", "journey"),
        ("gs1:recallStatus", "recalled"),
        ("https://gs1.org/voc/certificationInfo", "claims"),
    ],
)
def test_each_link_type_serves_its_json(client, link_type, key):
    response = client.get(BAG, params={"linkType": link_type})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["anchor"] == BASE + BAG and key in body
    if key == "recalled":
        assert body["recalled"] is False and body["recalls"] == []
    if key == "claims":
        assert {c["claim"] for c in body["claims"]} == {"FAIRTRADE", "ORGANIC", "DEFORESTATION_FREE"}
        # Every farm lot's fair-trade certificate was valid when the lot was traded (Mirador's has expired since).
        assert {c["claim"]: c["share"] for c in body["coverage"]}["FAIRTRADE"] == pytest.approx(1.0, abs=1e-6)
    if key == "journey":
        assert body["history"].startswith("/api/v1/batches/0x") and len(body["origins"]) == 3


def test_link_type_all_is_a_linkset_and_unknown_types_are_named(client):
    response = client.get(BAG, params={"linkType": "all"})
    assert response.headers["content-type"] == "application/linkset+json"
    (entry,) = response.json()["linkset"]
    assert entry["anchor"] == BASE + BAG
    assert {k.removeprefix("https://gs1.org/voc/") for k in entry if k != "anchor"} == {
        "pip",
        "certificationInfo",
        "traceability",
        "recallStatus",
    }
    assert entry["https://gs1.org/voc/pip"][0]["href"] == BASE + BAG
    assert 'rel="linkset"' in client.get(BAG).headers["link"]
    unknown = client.get(BAG, params={"linkType": "gs1:nutritionalInfo"})
    assert unknown.status_code == 404 and "gs1:recallStatus" in unknown.json()["available"]
    assert client.get(BAG, params={"linkType": "gs1:pip"}).headers["content-type"].startswith("text/html")


def test_a_serial_number_is_accepted(client):
    response = client.get(BAG + "/21/SN-0042")
    assert response.status_code == 200 and "item SN-0042" in text_of(response.text)


def test_invalid_gtin_is_a_400_page_in_the_site_style(client):
    response = client.get("/01/09506000134377/10/TP-B-1107-A")
    assert response.status_code == 400 and response.headers["content-type"].startswith("text/html")
    assert '<header class="site">' in response.text and "check digit" in response.text.lower()
    assert "Traceback" not in response.text
    as_json = client.get("/01/12345/10/X", headers=JSON)
    assert as_json.status_code == 400 and "GTIN" in as_json.json()["detail"]


def test_unknown_lot_is_a_helpful_404(client):
    response = client.get(f"/01/{DEMO_BAG[0]}/10/NO-SUCH-LOT")
    assert response.status_code == 404 and '<header class="site">' in response.text
    text = text_of(response.text)
    assert "No lot 'NO-SUCH-LOT' of product 09506000134376 is registered" in text and "Check the lot printed" in text
    assert client.get("/no/such/page").status_code == 404
    assert client.get(f"/01/{DEMO_BAG[0]}").status_code == 404  # pages are per lot; the page says so


def test_strings_from_the_chain_render_inert(client):
    response = client.get(HOSTILE)
    assert response.status_code == 200
    html = response.text
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;alert(&#34;product&#34;)&lt;/script&gt;" in html  # the product name, shown as text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html  # the organisation's name
    assert "&lt;script&gt;alert(&#39;place&#39;)&lt;/script&gt;" in html  # the place of a step
    # Self-declared claims are shown as such, not as certified.
    assert "Self-declared" in html and "no certifier vouches for it" in html
    data = client.get(HOSTILE, headers=JSON).json()
    assert data["product"] == HOSTILE_PRODUCT and data["producer"]["name"] == HOSTILE_NAME and data["lot"] == HOSTILE_LOT
    assert any(e["where"] == HOSTILE_PLACE for e in data["journey"])
    landing = client.get("/").text
    assert "<script" not in landing.lower()


def decode(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image)]


def test_qr_png_decodes_to_the_exact_digital_link_which_resolves(client):
    response = client.get(f"/qr{BAG}.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert decode(Image.open(io.BytesIO(response.content))) == [BASE + BAG]
    assert client.get(BAG).status_code == 200
    hostile = client.get(f"/qr{HOSTILE}.png")
    (url,) = decode(Image.open(io.BytesIO(hostile.content)))
    assert url == BASE + HOSTILE and client.get(url.removeprefix(BASE)).status_code == 200


def test_qr_svg_is_served_and_other_suffixes_are_refused(client):
    response = client.get(f"/qr{BAG}.svg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/svg+xml"
    assert response.content.lstrip().startswith(b"<?xml") and b"<svg" in response.content
    assert client.get(f"/qr{BAG}.gif").status_code == 404
    assert client.get("/qr/01/09506000134377/10/X.png").status_code == 400


def test_label_sheet_prints_n_labels_with_product_lot_and_code(client):
    response = client.get(f"/labels{LOAF}", params={"count": 6})
    assert response.status_code == 200
    html = response.text
    assert html.count("<svg") == 6 and html.count("Chocolate sourdough loaf, 500 g") == 8  # <title>, <h1>, 6 labels
    # Each code is an image to a screen reader, with words saying what it is.
    codes = re.findall(r'<div role="img"([^>]*)>\s*<svg', html)
    assert len(codes) == 6 and all('aria-label="QR code linking to' in attributes for attributes in codes)
    assert f"Lot {DEMO_LOAF[1]}" in html and f"GTIN {CHOCOLATE_LOAF}" in html and "@media print" in html
    assert client.get(f"/labels{LOAF}", params={"count": 0}).status_code == 422
    assert client.get(f"/labels{LOAF}", params={"count": 1000}).status_code == 422
    assert client.get(f"/labels/01/{DEMO_BAG[0]}/10/NOPE").status_code == 404
