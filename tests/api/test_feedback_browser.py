"""The feedback form in Debian's chromium, as a shopper on a phone uses it: with JavaScript
off, a rating and a question go in and show on the lot's page; a refused post shows the
form again, its errors announced (role=alert) and the text kept; and axe-core finds no
violation on the form with errors."""

from __future__ import annotations

import time

from apisite import ROOT
from test_accessibility import SCREENS, describe

from ledger.demo import DEMO_BAG
from ledger.identifiers import digital_link

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BAG_PAGE = digital_link(*DEMO_BAG).path()
#: The server's default minimum fill time (ledger.config), plus a margin.
FILL_SECONDS = 3.2


def test_a_shopper_rates_and_asks_without_javascript(browser, live_server, output_dir):
    context = browser.new_context(**SCREENS["phone"], java_script_enabled=False)
    page = context.new_page()
    page.goto(live_server + BAG_PAGE)
    page.get_by_label("4 stars").check()
    page.get_by_label("Your comment or question").fill("Is this <i>lot</i> washed or natural?")
    page.get_by_label("This is a question for the maker").check()
    time.sleep(FILL_SECONDS)
    with page.expect_navigation():
        page.get_by_role("button", name="Send").click()
    assert BAG_PAGE in page.url and "#comment-" in page.url
    comment = page.locator(page.url[page.url.index("#") :])
    assert comment.is_visible()
    assert "Is this <i>lot</i> washed or natural?" in comment.inner_text()  # shown as typed, not as markup
    assert "Question" in comment.inner_text() and "4 stars" in comment.inner_text()
    page.screenshot(path=str(output_dir / "feedback-posted.png"), full_page=False)
    context.close()


def test_a_refused_post_keeps_the_text_announces_why_and_passes_axe(browser, live_server, output_dir):
    context = browser.new_context(**SCREENS["phone"])  # JavaScript on for axe only: the pages run none
    page = context.new_page()
    page.goto(live_server + BAG_PAGE)
    typed = "Buy cheap at http://a.example and http://b.example"
    page.get_by_label("Your comment or question").fill(typed)
    time.sleep(FILL_SECONDS)
    with page.expect_navigation():
        page.get_by_role("button", name="Send").click()
    alert = page.get_by_role("alert")
    assert "please leave links out" in alert.inner_text()
    assert page.get_by_label("Your comment or question").input_value() == typed
    page.screenshot(path=str(output_dir / "feedback-refused.png"), full_page=True)
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("axe.run().then(r => r.violations)")
    context.close()
    assert not violations, "\n".join(describe("/feedback (refused)", v) for v in violations)
