"""A real browser (Debian's chromium, headless, driven by Playwright) on a phone-sized
screen against the app served by uvicorn."""

from __future__ import annotations

import zxingcpp
from PIL import Image

from ledger.demo import DEMO_BAG, DEMO_LOAF

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True}


def test_demo_page_renders_journey_claims_and_recall_on_a_phone_without_javascript(browser, live_server, output_dir):
    context = browser.new_context(**PHONE, java_script_enabled=False)
    page = context.new_page()
    response = page.goto(f"{live_server}/01/{DEMO_BAG[0]}/10/{DEMO_BAG[1]}")
    assert response is not None and response.status == 200
    assert page.locator("h1").inner_text() == "Huila blend coffee beans, 250 g bag"
    # The journey in a few plain stages, the farms linked; every record folded below them.
    stages = page.locator("ol.stages > li")
    assert stages.count() == 6 and stages.first.is_visible()
    assert stages.first.get_by_role("link", name="Finca La Esperanza: Green coffee, washed Caturra, lot ESP-2026-07").is_visible()
    records = page.locator("ol.records > li")
    assert records.count() >= 15 and not records.first.is_visible()
    page.get_by_text("Every record (22)").click()  # <details> opens without script
    assert records.first.is_visible() and "Finca La Esperanza" in records.first.inner_text()
    # Claims judged when traded: expired and revoked since wear their own states.
    assert page.locator(".badge.claim-expired_since").first.is_visible()
    assert page.locator(".badge.claim-revoked_since").first.is_visible()
    assert page.locator(".badge.claim-valid").count() >= 5
    # Nothing wider than the phone: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=output_dir / "coffee-bag.png", full_page=True)

    page.goto(f"{live_server}/01/{DEMO_LOAF[0]}/10/{DEMO_LOAF[1]}")
    banner = page.get_by_role("alert")
    assert banner.is_visible() and "MV-F-2211" in banner.inner_text()
    assert banner.bounding_box()["y"] < page.locator("h1").bounding_box()["y"]
    page.screenshot(path=output_dir / "chocolate-loaf-recall.png", full_page=True)
    context.close()


def test_svg_qr_rendered_by_the_browser_decodes_to_the_page_it_opens(browser, live_server, output_dir):
    context = browser.new_context(viewport={"width": 600, "height": 600})
    page = context.new_page()
    page_url = f"{live_server}/01/{DEMO_BAG[0]}/10/{DEMO_BAG[1]}"
    page.goto(f"{live_server}/qr/01/{DEMO_BAG[0]}/10/{DEMO_BAG[1]}.svg")
    shot = output_dir / "qr-rendered.png"
    page.locator("svg").screenshot(path=shot)
    (decoded,) = [r.text for r in zxingcpp.read_barcodes(Image.open(shot))]
    assert decoded == page_url
    response = page.goto(decoded)
    assert response is not None and response.status == 200
    assert page.locator("h1").inner_text() == "Huila blend coffee beans, 250 g bag"
    context.close()


def test_landing_page_search_leads_to_the_product_page(browser, live_server):
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(live_server + "/")
    page.get_by_label("GTIN").fill(DEMO_LOAF[0])
    page.get_by_label("Lot").fill(DEMO_LOAF[1])
    page.get_by_role("button", name="Look up").click()
    page.wait_for_url(f"**/01/{DEMO_LOAF[0]}/10/{DEMO_LOAF[1]}")
    assert page.locator("h1").inner_text() == "Chocolate sourdough loaf, 500 g"
    page.goto(live_server + "/")
    page.get_by_label("GTIN").fill("123")
    page.get_by_label("Lot").fill("X")
    page.get_by_role("button", name="Look up").click()
    assert "GTIN '123'" in page.get_by_role("alert").inner_text()
    context.close()
