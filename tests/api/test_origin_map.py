"""The origin map (issue 13, item 4): an inline SVG of the countries where a product was
grown and processed, drawn from the packaged Natural Earth atlas (npm world-atlas), with
a text alternative, nothing fetched from elsewhere, and the page under 60 KB."""

from __future__ import annotations

import re

from api.origin_map import atlas, origin_map
from ledger.demo import DEMO_BAG, DEMO_LOAF
from ledger.identifiers import digital_link

BAG = digital_link(*DEMO_BAG).path()
LOAF = digital_link(*DEMO_LOAF).path()
PAGE_LIMIT = 60 * 1024


def svg_of(html: str) -> str:
    match = re.search(r'<figure class="origin-map">.*?</figure>', html, re.S)
    assert match, "no origin map on the page"
    return match.group(0)


def test_the_coffee_page_maps_colombia_where_it_was_grown_and_spain_where_it_was_roasted(client):
    response = client.get(BAG)
    html = response.text
    figure = svg_of(html)
    drawn = dict(re.findall(r'<path class="(grown|processed)" data-country="([A-Z]{2})"', figure))
    assert {v: k for k, v in drawn.items()} == {"CO": "grown", "ES": "processed"}
    assert figure.count("<circle") == 2  # a dot per country
    assert 'role="img"' in figure and 'aria-labelledby="origin-map-caption"' in figure
    caption = re.search(r'<figcaption id="origin-map-caption">(.*?)</figcaption>', figure, re.S).group(1)
    assert "Grown in Colombia." in caption and "Processed in Spain." in caption
    # Nothing fetched from elsewhere: no address at all inside the figure, no image, no script.
    assert not re.search(r"https?:|//|href|<image|<use|<script", figure)
    assert len(response.content) <= PAGE_LIMIT, f"the coffee page is {len(response.content):,} bytes"


def test_the_loaf_maps_ghana_for_its_cocoa_and_france_for_its_flour(client):
    figure = svg_of(client.get(LOAF).text)
    drawn = re.findall(r'<path class="(grown|processed)" data-country="([A-Z]{2})"', figure)
    # The mill's flour is a raw lot of its own, so France is where something was grown too.
    assert sorted(drawn) == [("grown", "FR"), ("grown", "GH")]
    assert "Grown in France, Ghana." in figure or "Grown in Ghana, France." in figure


def test_the_map_is_cropped_to_the_countries_and_small():
    coffee = origin_map(["CO"], ["CO", "ES"])
    assert coffee is not None and [c["code"] for c in coffee["countries"]] == ["CO", "ES"]
    assert coffee["processed"] == ["Spain"]  # Colombia also gathered and blended: it stays "grown"
    size = len(coffee["land"]) + sum(len(c["path"]) for c in coffee["countries"])
    assert size < 8000, size
    # Every point lies in the view box (coasts beyond the crop are pinned to its edge).
    for path in [coffee["land"], *(c["path"] for c in coffee["countries"])]:
        for move in re.findall(r"M(-?\d+) (-?\d+)", path):
            x, y = map(int, move)
            assert 0 <= x <= coffee["width"] and 0 <= y <= coffee["height"]
    assert origin_map([], []) is None and origin_map(["XX"], []) is None  # nothing known: no map


def test_the_atlas_comes_with_make_install():
    found = atlas()
    assert found is not None, "node_modules/world-atlas is missing: run make install"
    assert len(found.countries) > 150 and found.land


def test_the_map_names_the_countries_in_the_pages_language(client):
    caption = svg_of(client.get(BAG, headers={"Accept-Language": "es"}).text)
    assert "Colombia" in caption and "España" in caption and "Spain" not in caption


def test_the_map_fits_a_phone_and_is_drawn(browser, live_server, output_dir):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    page.goto(live_server + BAG)
    figure = page.locator("figure.origin-map")
    figure.scroll_into_view_if_needed()
    box = page.locator("figure.origin-map svg").bounding_box()
    assert box is not None and 300 <= box["width"] <= 390 and box["height"] > 150
    assert page.locator("figure.origin-map path.grown").bounding_box()["width"] > 10  # Colombia is drawn, not a speck
    figure.screenshot(path=output_dir / "coffee-origin-map.png")
    page.locator("ul.claims details.explainer").first.evaluate("d => d.open = true")
    page.locator("ul.claims > li").first.screenshot(path=output_dir / "coffee-claim-explainer.png")
    context.close()
