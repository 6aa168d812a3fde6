"""The maker's brand and the shopper's landing page (issue 13, item 8): the header shows
the name and logo from the settings, the logo is served from the app with a long cache
and never runs script; the landing page lists no lot unless the operator features
products, so test and half-finished lots never show there."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.brand import MAX_LOGO_BYTES
from ledger.demo import DEMO_BAG
from ledger.errors import ConfigurationError
from ledger.identifiers import digital_link

LOGO = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle cx="5" cy="5" r="4" fill="#7a4b00"/></svg>'
BRAND = "Tostadores del Puerto"


@pytest.fixture
def branded(site, tmp_path: Path) -> Iterator[TestClient]:
    """The app with a brand and a logo, featuring the demo's coffee bag."""
    from api.main import create_app

    logo = tmp_path / "logo.svg"
    logo.write_bytes(LOGO)
    settings = site.settings.model_copy(update={"brand_name": BRAND, "brand_logo": logo, "featured_products": [DEMO_BAG[0]]})
    with TestClient(create_app(settings)) as client:
        yield client


def header_of(html: str) -> str:
    return re.search(r'<header class="site">.*?</header>', html, re.S).group(0)


def test_the_header_shows_the_makers_name_and_logo_on_every_page(branded):
    for path, status in [("/", 200), (digital_link(*DEMO_BAG).path(), 200), ("/01/09506000134376/10/NO-SUCH", 404)]:
        response = branded.get(path)
        assert response.status_code == status, path
        header = header_of(response.text)
        assert BRAND in header and "Provenance ledger" not in header, path
        logo = re.search(r'<img src="(/brand-logo\?v=[0-9a-f]{16})" alt=""', header)
        assert logo, header
    assert f"<title>{BRAND} – where your product comes from</title>" in branded.get("/").text
    served = branded.get(logo.group(1))
    assert served.status_code == 200 and served.content == LOGO
    assert served.headers["content-type"] == "image/svg+xml"
    assert "immutable" in served.headers["cache-control"] and "max-age=31536000" in served.headers["cache-control"]
    assert "sandbox" in served.headers["content-security-policy"] and served.headers["x-content-type-options"] == "nosniff"


def test_without_a_brand_the_header_says_provenance_ledger_and_there_is_no_logo(client):
    header = header_of(client.get("/").text)
    assert ">Provenance ledger</a>" in header and "<img" not in header
    assert client.get("/brand-logo").status_code == 404


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("big.svg", b"<svg>" + b" " * MAX_LOGO_BYTES + b"</svg>", "at most"),
        ("fake.png", LOGO, "not the .png file"),
        ("fake.svg", b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "not the .svg file"),
        ("missing.svg", None, "cannot be read"),
    ],
)
def test_a_logo_too_big_or_not_what_its_name_says_stops_the_app_with_a_reason(site, tmp_path, name, content, problem):
    from api.main import create_app

    logo = tmp_path / name
    if content is not None:
        logo.write_bytes(content)
    with pytest.raises(ConfigurationError, match=problem):
        create_app(site.settings.model_copy(update={"brand_logo": logo}))


def test_the_landing_page_lists_no_lot_unless_products_are_featured(client, branded):
    plain = client.get("/").text
    assert "How to read a product page" in plain and 'action="/search"' in plain
    assert "/01/" not in plain  # no lot at all: test and unfinished lots stay off the shopper's page
    featured = branded.get("/").text
    bag = digital_link(*DEMO_BAG).path()
    assert f'href="{bag}"' in featured and "Huila blend coffee beans, 250 g bag" in featured
    assert "VOID-1" not in featured and "<table" not in featured  # only the featured product's lots
