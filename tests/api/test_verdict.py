"""The verdict card on a phone's first screen (390 x 844, JS off, Debian's chromium): what a
shopper must see before scrolling, measured in the browser."""

from __future__ import annotations

from ledger.demo import DEMO_BAG, DEMO_LOAF

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True}
FIRST_SCREEN = 844


def below_the_fold(locator) -> list[str]:
    """The texts of the matched elements that do not end inside the first screen."""
    late = []
    for i in range(locator.count()):
        box = locator.nth(i).bounding_box()
        if box is None or box["y"] + box["height"] > FIRST_SCREEN:
            late.append(locator.nth(i).inner_text())
    return late


def test_coffee_bag_shows_recall_state_and_every_claim_chip_on_the_first_screen(browser, live_server, output_dir):
    context = browser.new_context(**PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server}/01/{DEMO_BAG[0]}/10/{DEMO_BAG[1]}")
    state = page.locator("#recall-state")
    assert "No recall" in state.inner_text()
    chips = page.locator("section.verdict li.chip")
    assert chips.count() == page.locator("ul.claims > li").count() >= 3  # one chip per claim type
    assert "Huila, Colombia" in page.locator("section.verdict").inner_text()
    assert below_the_fold(state) == [] and below_the_fold(chips) == []
    page.screenshot(path=output_dir / "coffee-bag-first-screen.png")
    context.close()


def test_recalled_loaf_shows_the_reason_and_what_to_do_on_the_first_screen(browser, live_server, output_dir):
    context = browser.new_context(**PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server}/01/{DEMO_LOAF[0]}/10/{DEMO_LOAF[1]}")
    reason, what = page.locator("#recall-state .recall-reason"), page.locator("#recall-state .recall-what")
    assert "Deoxynivalenol above the EU limit" in reason.inner_text()
    assert "return it to the shop" in what.inner_text().lower()
    assert below_the_fold(reason) == [] and below_the_fold(what) == []
    notice = page.locator("section.recall-notice")
    assert "MV-F-2211" in notice.inner_text() and DEMO_LOAF[1] in notice.inner_text()  # the flour and the loaf it reached
    assert notice.get_by_role("link", name="Official notice").get_attribute("href", timeout=2000).startswith("https://")
    page.screenshot(path=output_dir / "loaf-recall-first-screen.png")
    context.close()
