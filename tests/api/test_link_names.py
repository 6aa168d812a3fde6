"""Descriptive link text (issue 13, item 8; WCAG 2.4.4 and 2.4.9): a screen reader's list of
links on the coffee page never holds two links of the same name that go to different
places ("Proof" twenty times over); each short visible text ("Proof", "proof",
"Certificate details") is completed for assistive technology, its visible words first."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from test_accessibility import AXE, describe

from ledger.demo import DEMO_BAG, DEMO_LOAF
from ledger.identifiers import digital_link

PAGES = [digital_link(*DEMO_BAG).path(), digital_link(*DEMO_LOAF).path()]


class Links(HTMLParser):
    """Every link's accessible name (its aria-label, else its text, hidden-to-the-eye text
    included, `hidden` and aria-hidden text left out) and its address."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, str]] = []  # (name, href, visible text)
        self._open: dict[str, str] | None = None
        self._name: list[str] = []
        self._visible: list[str] = []
        self._stack: list[tuple[bool, bool]] = []  # per open element inside the link: (aria-hidden, visually hidden)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "href" in a:
            self._open, self._name, self._visible, self._stack = a, [], [], []
        elif self._open is not None and tag not in ("br", "img", "wbr"):
            hidden = a.get("aria-hidden") == "true" or "hidden" in a  # neither is part of the name
            self._stack.append((hidden, "visually-hidden" in a.get("class", "").split()))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            text = " ".join("".join(self._name).split())
            name = self._open.get("aria-label") or text
            self.links.append((name, self._open["href"], " ".join("".join(self._visible).split())))
            self._open = None
        elif self._open is not None and self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        if self._open is None or any(hidden for hidden, _ in self._stack):
            return
        self._name.append(data)
        if not any(visually_hidden for _, visually_hidden in self._stack):
            self._visible.append(data)


def links_of(html: str) -> list[tuple[str, str, str]]:
    parser = Links()
    parser.feed(re.sub(r"<svg.*?</svg>", "", html, flags=re.S))
    return parser.links


def test_no_two_links_on_a_product_page_share_a_name_but_not_a_place(client):
    for path in PAGES:
        links = links_of(client.get(path).text)
        assert len(links) > 20, path
        places: dict[str, set[str]] = {}
        for name, href, _ in links:
            places.setdefault(name.casefold(), set()).add(href)
        ambiguous = {name: sorted(hrefs) for name, hrefs in places.items() if len(hrefs) > 1}
        assert ambiguous == {}, f"{path}: links of one name going to different places: {ambiguous}"


def test_every_link_name_starts_with_its_visible_text(client):
    """Speech input users say what they see ("click Proof"): the name must start with it (WCAG 2.5.3)."""
    links = links_of(client.get(PAGES[0]).text)
    proofs = [name for name, href, visible in links if href.startswith("/proof/")]
    assert len(proofs) > 10 and all(re.match(r"(?i)proof\b.+", name) and name.lower() != "proof" for name in proofs), proofs
    for name, _, visible in links:
        assert name.casefold().startswith(visible.casefold()), (name, visible)


def test_the_product_pages_with_every_fold_open_have_no_axe_violations(browser, live_server):
    """The claim explainers, certificate details and every record, opened: what they hold
    (links with hidden completions, the map) passes axe-core too."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    found = []
    for path in PAGES:
        page.goto(live_server + path)
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        page.add_script_tag(path=str(AXE))
        found += [describe(path, v) for v in page.evaluate("axe.run().then(r => r.violations)")]
    context.close()
    assert found == [], "\n".join(found)
