"""The small things a shopper notices (issue 13, item 8): compressed answers, an icon,
lots found whatever their letter case, error pages in plain words, /docs without a CDN,
and tap targets a thumb can hit."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert, select, text

from ledger.demo import DEMO_BAG
from ledger.identifiers import batch_id, digital_link
from ledger.indexer import schema
from ledger.indexer.store import IndexStore, database_url
from ledger.queries import ReadModel

BAG = digital_link(*DEMO_BAG).path()
BAG_ID = "0x" + batch_id(*DEMO_BAG).hex()
GTIN, LOT = DEMO_BAG
JSON = {"Accept": "application/json"}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True}
#: Where the tests' PostgreSQL server answers (as in tests/ledger/postgres.py).
POSTGRES_URL = os.environ.get("PROVENANCE_TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"


def raw_body(client: TestClient, path: str, encoding: str) -> tuple[dict[str, str], bytes]:
    """The answer's headers and its body as sent, not decoded."""
    with client.stream("GET", path, headers={"Accept-Encoding": encoding}) as response:
        assert response.status_code == 200
        return dict(response.headers), b"".join(response.iter_raw())


def visible_text(html: str) -> str:
    """The page's text outside folded <details>."""
    return re.sub(r"<details.*?</details>", "", html, flags=re.S)


# ---------------------------------------------------------------- 1. compression


@pytest.mark.parametrize("path", [BAG, "/", f"/api/v1/batches/{BAG_ID}/history"])
def test_pages_and_json_are_gzipped_for_clients_that_accept_it(client, path):
    plain_headers, plain = raw_body(client, path, "identity")
    headers, compressed = raw_body(client, path, "gzip")
    assert "content-encoding" not in plain_headers
    assert headers["content-encoding"] == "gzip" and "accept-encoding" in headers["vary"].lower()
    assert gzip.decompress(compressed) == plain and len(compressed) < len(plain) / 2
    # From the page cache the second time: compressed all the same.
    assert gzip.decompress(raw_body(client, path, "gzip")[1]) == plain


def test_head_carries_the_compressed_gets_headers(client):
    get = client.get(BAG, headers={"Accept-Encoding": "gzip"})
    head = client.head(BAG, headers={"Accept-Encoding": "gzip"})
    assert head.headers["content-encoding"] == "gzip" and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]


def test_small_answers_are_not_compressed(client):
    headers, body = raw_body(client, "/favicon.ico", "gzip")
    assert len(body) < 1024 and "content-encoding" not in headers


# ---------------------------------------------------------------- 2. favicon


def test_the_site_has_an_icon_every_page_names(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert icon.content.startswith(b"<svg") and b"<script" not in icon.content
    max_age = int(re.search(r"max-age=(\d+)", icon.headers["cache-control"]).group(1))
    assert max_age >= 7 * 24 * 3600
    for path in ("/", BAG, "/no/such/page"):
        assert '<link rel="icon" href="/favicon.ico"' in client.get(path).text


# ---------------------------------------------------------------- 3. letter case of lots


def test_a_lot_typed_in_other_letter_case_leads_to_its_page(client):
    lower = digital_link(GTIN, LOT.lower()).path()
    answer = client.get(lower + "?linkType=all", follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == BAG + "?linkType=all"
    assert client.get(lower).url.path == BAG
    found = client.get("/search", params={"gtin": GTIN, "lot": LOT.lower()}, follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"] == BAG
    labels = client.get("/labels" + lower, follow_redirects=False)
    assert labels.status_code == 307 and labels.headers["location"] == "/labels" + BAG
    # Another lot is still not found.
    assert client.get(digital_link(GTIN, "tp-b-1107-z").path()).status_code == 404


def _copy_bag_row(source: IndexStore, target: IndexStore, *lots: str) -> None:
    """The coffee bag's row under other lots (nothing else is needed to look lots up)."""
    with source.engine.connect() as conn:
        row = dict(conn.execute(select(schema.batches).where(schema.batches.c.batch_id == BAG_ID)).mappings().one())
    with target.engine.begin() as conn:
        for lot in lots:
            conn.execute(insert(schema.batches).values({**row, "lot": lot, "batch_id": "0x" + batch_id(GTIN, lot).hex()}))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store(request, tmp_path) -> Iterator[IndexStore]:
    """An empty index: SQLite, or a PostgreSQL database of its own (the shared test
    database belongs to the index tests)."""
    if request.param == "sqlite":
        store = IndexStore.open(None, tmp_path)
        yield store
        store.dispose()
        return
    name = f"small_things_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url(POSTGRES_URL, tmp_path), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    store = IndexStore.open(url, tmp_path)
    try:
        yield store
    finally:
        store.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()


def test_the_read_model_finds_lots_whatever_their_letter_case(site, empty_store):
    source = IndexStore.open(site.settings.database_url, site.settings.data_dir)
    try:
        _copy_bag_row(source, empty_store, LOT, "Tp-B-1107-A", "TP-B-1107-AA")
    finally:
        source.dispose()
    model = ReadModel(empty_store)
    assert model.lots_ignoring_case(GTIN, "tp-b-1107-a") == ["TP-B-1107-A", "Tp-B-1107-A"]
    assert model.lots_ignoring_case(GTIN, "TP-B-1107-AA") == ["TP-B-1107-AA"]
    assert model.lots_ignoring_case(GTIN, "tp-b-1107") == []  # no prefix matches
    assert model.lots_ignoring_case("09506000134352", "tp-b-1107-a") == []  # another product's lots are not its


@pytest.fixture(scope="module")
def two_spellings(site, tmp_path_factory) -> Iterator[TestClient]:
    """The app over a copy of the site's index where a second lot differs from the
    coffee bag's only by letter case."""
    from api.main import create_app

    data_dir = tmp_path_factory.mktemp("two-spellings")
    source = sqlite3.connect(site.settings.data_dir / "index.sqlite")
    copy = sqlite3.connect(data_dir / "index.sqlite")
    source.backup(copy)  # consistent, WAL included
    source.close()
    copy.close()
    for name in ("deployment.json",):
        if (site.settings.data_dir / name).exists():
            shutil.copy(site.settings.data_dir / name, data_dir / name)
    original = IndexStore.open(None, site.settings.data_dir)
    store = IndexStore.open(None, data_dir)
    _copy_bag_row(original, store, "tp-B-1107-a")
    original.dispose()
    store.dispose()
    with TestClient(create_app(site.settings.model_copy(update={"data_dir": Path(data_dir)}))) as test_client:
        yield test_client


def test_two_lots_differing_only_by_case_are_both_offered(two_spellings):
    other = digital_link(GTIN, "tp-B-1107-a").path()
    answer = two_spellings.get(digital_link(GTIN, "tp-b-1107-a").path(), follow_redirects=False)
    assert answer.status_code == 404 and "only in capital and small letters" in answer.text
    assert f'href="{BAG}"' in answer.text and f'href="{other}"' in answer.text
    as_json = two_spellings.get(digital_link(GTIN, "TP-b-1107-A").path(), headers=JSON)
    assert as_json.status_code == 404 and as_json.json()["choices"] == [BAG, other]
    # The exact spelling always wins.
    assert two_spellings.get(BAG, follow_redirects=False).status_code == 200
    found = two_spellings.get("/search", params={"gtin": GTIN, "lot": "tp-b-1107-a"}, follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"] == digital_link(GTIN, "tp-b-1107-a").path()


# ---------------------------------------------------------------- 4. error pages in plain words


def test_a_mistyped_code_is_explained_in_plain_words(client):
    response = client.get(f"/01/{GTIN[:-1]}7/10/{LOT}")
    assert response.status_code == 400
    shown = visible_text(response.text)
    assert "does not look like a product code from a label" in shown and "Scan the QR code" in shown
    assert "Expected 6, got 7" not in shown and "Expected 6, got 7" in response.text  # folded away
    assert "Expected 6, got 7" in client.get(f"/01/{GTIN[:-1]}7/10/{LOT}", headers=JSON).json()["detail"]
    long_lot = client.get("/search", params={"gtin": GTIN, "lot": "A" * 21})
    assert long_lot.status_code == 400 and "does not look like a lot from a label" in visible_text(long_lot.text)
    assert 'value="' + "A" * 21 + '"' in long_lot.text  # the form keeps what was typed


def test_not_found_pages_say_what_to_do(client):
    unknown = visible_text(client.get("/no/such/page").text)
    assert "There is no page at this address" in unknown and "Scan the QR code" in unknown
    lot = visible_text(client.get(digital_link(GTIN, "NO-SUCH-LOT").path()).text)
    assert "We could not find this lot" in lot and "every letter, digit and sign must match" in lot


# ---------------------------------------------------------------- 5. /docs offline


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_name_no_outside_address(client, path):
    html = client.get(path).text
    assert '<html lang="en">' in html
    assert not re.findall(r"https?://[^\s'\"<>)]+", html)
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', html)
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_swagger_ui_works_with_no_network_but_the_app(browser, live_server, output_dir):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    outside: list[str] = []
    host = urlsplit(live_server).netloc

    def only_the_app(route) -> None:
        if urlsplit(route.request.url).netloc == host:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_app)
    page = context.new_page()
    page.goto(live_server + "/docs")
    page.locator(".swagger-ui .info .title").wait_for(timeout=15_000)
    assert "Provenance ledger" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".opblock").count() > 10
    page.screenshot(path=output_dir / "docs.png")
    assert outside == []
    context.close()


# ---------------------------------------------------------------- 6. tap targets

TARGETS = "a[href], button, summary, input:not([type=hidden]), select, textarea"


@pytest.mark.parametrize("path", [BAG, "/"])
def test_every_tap_target_is_at_least_44_px(browser, live_server, path):
    context = browser.new_context(**PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(live_server + path)
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")  # folded ones too
    small = []
    for element in page.locator(TARGETS).all():
        box = element.bounding_box()
        if box is None:  # not rendered: the feedback form's honeypot, which people never see
            assert not element.is_visible()
            continue
        # A radio button or checkbox inside its label is tapped anywhere on the label.
        label = element.evaluate(
            "e => { const l = ['radio', 'checkbox'].includes(e.type) && e.closest('label');"
            " if (!l) return null; const r = l.getBoundingClientRect(); return {width: r.width, height: r.height}; }"
        )
        box = label or box
        if box["height"] < 44 or box["width"] < 44:
            small.append((element.evaluate("e => e.outerHTML.slice(0, 80)"), round(box["width"]), round(box["height"])))
    assert page.locator(TARGETS).count() > 3
    assert small == []
    context.close()
