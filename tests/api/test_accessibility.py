"""Accessibility: axe-core (the npm devDependency) run in Debian's chromium against every
kind of page the site serves, on a phone and on a desktop screen, must find nothing."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from apisite import ROOT

from ledger.demo import DEMO_BAG

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

SCREENS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True},
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}

#: Rules /docs fails inside Swagger UI's own markup: fastapi-offline's bundle builds that
#: page by script (nothing of it comes from our templates), so these are not checked
#: there, and there only. Every other rule still runs on /docs, landmarks included (the
#: shell's mount point is made <main> in api.routes.assets).
DOCS_SWAGGER_RULES = {
    "color-contrast": "Swagger UI's own colours: white on #89bf04 (.version-stamp), #4990e2 on white (.url) and more",
    "heading-order": "Swagger UI puts its operation tags (h3) straight under the API title (h1)",
    "nested-interactive": "Swagger UI puts a copy button inside each operation's summary button",
}


def page_paths(client) -> dict[str, int]:
    """Every page kind with the status it answers: the landing page, each lot's page (from
    the auditor API), one proof page, a 400 (bad GTIN check digit), a 404 (unknown lot)
    and the API docs."""
    batches = client.get("/api/v1/batches", params={"limit": 500}).json()["items"]
    lots = [f"/01/{b['gtin']}/10/{quote(b['lot'], safe='')}" for b in batches]
    bag_id = client.get(f"/01/{DEMO_BAG[0]}/10/{DEMO_BAG[1]}", headers={"Accept": "application/json"}).json()["batch_id"]
    registration = client.get(f"/api/v1/batches/{bag_id}/history").json()["events"][0]["tx_hash"]
    return {
        "/": 200,
        **dict.fromkeys(lots, 200),
        f"/proof/{registration}": 200,
        f"/feedback?batch_id={bag_id}": 200,  # the feedback form on a page of its own (lots' pages carry it too)
        f"/01/09506000134377/10/{DEMO_BAG[1]}": 400,  # wrong check digit
        f"/01/{DEMO_BAG[0]}/10/NO-SUCH-LOT": 404,
        "/docs": 200,
        # Last (its ?lang= is remembered in a cookie): a translated page, switcher and lang attributes included.
        f"/01/{DEMO_BAG[0]}/10/{DEMO_BAG[1]}?lang=de": 200,
    }


def axe_violations(page, url: str, status: int) -> list[dict[str, Any]]:
    """Open `url` (answering `status`), inject axe-core after load (the site's pages carry
    no script of their own) and return what axe.run() reports as violations."""
    response = page.goto(url)
    assert response is not None and response.status == status, url
    if url.endswith("/docs"):
        page.wait_for_selector(".swagger-ui .opblock")  # Swagger UI builds its page by script
    page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate("axe.run().then(r => r.violations)")
    if url.endswith("/docs"):
        violations = [v for v in violations if v["id"] not in DOCS_SWAGGER_RULES]
    return violations


def describe(path: str, violation: dict[str, Any]) -> str:
    """One violation as a person reads it: page, rule, impact, and each offending node."""
    # failureSummary is "Fix any/all of the following:" then one line per failed check.
    nodes = "\n".join(f"      {node['target']}: {node['failureSummary'].splitlines()[1].strip()}" for node in violation["nodes"])
    return f"  {path}: {violation['id']} ({violation['impact']}) {violation['help']}\n{nodes}"


@pytest.mark.parametrize("screen", SCREENS)
def test_axe_finds_no_violation_on_any_page(browser, live_server, client, screen):
    assert AXE.is_file(), "axe-core is missing from node_modules: run tools/bootstrap.sh (npm install)"
    # JavaScript on in this context only: axe is a script (the site's own pages run none).
    context = browser.new_context(**SCREENS[screen])
    page = context.new_page()
    found = []
    paths = page_paths(client)
    for path, status in paths.items():
        found += [describe(path, v) for v in axe_violations(page, live_server + path, status)]
    context.close()
    assert len(paths) > 8  # the demo's lots are there
    assert not found, f"axe-core violations on the {screen} screen:\n" + "\n".join(found)
