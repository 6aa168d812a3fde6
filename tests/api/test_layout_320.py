"""No horizontal scrolling on the narrowest phones (issue 13, item 8; WCAG 1.4.10 reflow):
at 320 x 640 CSS px in Debian's chromium, the landing page, every demo lot's page, a
proof page and the 400 and 404 pages are no wider than the screen."""

from __future__ import annotations

from test_accessibility import page_paths

NARROW = {"viewport": {"width": 320, "height": 640}, "device_scale_factor": 2, "is_mobile": True}


def overflow(page) -> dict[str, object]:
    """How far the document is wider than the screen, and the widest culprits."""
    return page.evaluate(
        """() => {
        const root = document.scrollingElement, width = root.clientWidth, wide = [];
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
        while (walker.nextNode() && wide.length < 5) {
            const node = walker.currentNode, range = document.createRange();
            range.selectNodeContents(node);
            const right = (node.nodeType === 1 ? node.getBoundingClientRect() : range.getBoundingClientRect()).right;
            const element = node.nodeType === 1 ? node : node.parentElement;
            if (element.closest('.visually-hidden')) continue;  // clipped to 1 px: never widens the page
            if (right > width + 0.5) wide.push(`${element.tagName.toLowerCase()}.${element.className}: ${(node.textContent || '').trim().slice(0, 40)} (${Math.round(right)} px)`);
        }
        return {scroll: root.scrollWidth, client: width, wide};
    }"""
    )


def test_no_page_scrolls_sideways_at_320_px(browser, client, live_server):
    paths = {path: status for path, status in page_paths(client).items() if path != "/docs"}
    assert len(paths) >= 10  # the landing page, every demo lot, a proof page, 400 and 404
    context = browser.new_context(**NARROW, java_script_enabled=True)
    page = context.new_page()
    wider = {}
    for path, status in paths.items():
        response = page.goto(live_server + path)
        assert response is not None and response.status == status, path
        # Open every folded part: what it shows must fit too.
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        measured = overflow(page)
        if measured["scroll"] > measured["client"]:
            wider[path] = measured
    context.close()
    assert wider == {}, f"pages wider than 320 px: {wider}"
