"""Claim explainers (issue 13, item 2): each claim type on the product page opens to what
it means, the scheme's site and who accredited its certifiers (with a proof link); the
admin sets the texts with `provenance claim describe`, which keeps the config file's
comments and refuses anything but an https address."""

from __future__ import annotations

import html as html_module
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger.claim_types import load_claim_types
from ledger.cli import app as cli
from ledger.demo import DEMO_BAG
from ledger.identifiers import digital_link

BAG = digital_link(*DEMO_BAG).path()
JSON = {"Accept": "application/json"}


def explainer_of(html: str, claim_name: str) -> str:
    """The explainer of one claim type on the page (its <details>)."""
    match = re.search(r'<details class="explainer small"><summary>What “' + re.escape(claim_name) + r"”.*?</details>", html, re.S)
    assert match, f"no explainer for {claim_name}"
    return match.group(0)


def describe(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["claim", "describe", *args], env={"PROVENANCE_CONFIG": str(config)})
    return result.exit_code, result.stdout + (result.stderr or "")


def test_each_claim_type_explains_itself_with_its_scheme_and_the_accreditation_of_its_certifier(client):
    html = client.get(BAG).text
    fair = explainer_of(html, "Fair trade")
    assert "paid at least an agreed minimum price" in fair
    assert 'href="https://www.fairtrade.net/"' in fair
    assert "Certified by EthicCert Labs" in fair
    accredited = re.search(r"Accredited for Fair trade by the ledger&#39;s admin since (\d+ \w+ \d{4})\.", fair)
    assert accredited, fair
    proof = re.search(r'<a href="(/proof/0x[0-9a-f]{64})"[^>]*>Proof of accreditation', fair)
    assert proof
    page = client.get(proof.group(1))
    assert page.status_code == 200 and "EthicCert Labs" in page.text  # the proof is the grant itself
    # Every claim type on the page has its explainer, in the JSON too.
    groups = client.get(BAG, headers=JSON).json()["claim_groups"]
    assert {g["claim"] for g in groups} == {"FAIRTRADE", "ORGANIC", "DEFORESTATION_FREE"}
    assert all(g["explainer"]["text"] and g["explainer"]["scheme_url"].startswith("https://") for g in groups)
    deforestation = next(g for g in groups if g["claim"] == "DEFORESTATION_FREE")["explainer"]["certifiers"]
    assert [c["name"] for c in deforestation] == ["VerdeTrace Assurance"]


def test_the_admin_describes_a_claim_type_and_the_page_shows_it_escaped(site, tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('# the operator\'s notes\nbrand_name = "Acme"  # our name\n')
    text = "Fair <b>and</b> square: farmers paid properly."
    code, out = describe(config, "fairtrade", "--text", text, "--scheme-url", "https://scheme.example/fair")
    assert code == 0, out
    assert "# the operator's notes" in config.read_text() and "# our name" in config.read_text()  # comments kept
    monkeypatch.setenv("PROVENANCE_CONFIG", str(config))
    from api.main import create_app

    with TestClient(create_app(site.settings)) as client:
        fair = explainer_of(client.get(BAG).text, "Fair trade")
    assert "Fair &lt;b&gt;and&lt;/b&gt; square" in fair and "<b>and</b>" not in fair
    assert 'href="https://scheme.example/fair"' in fair
    assert "agreed minimum price" not in fair  # the admin's English text replaced the packaged one


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "http://scheme.example/", "https://", "https://scheme.example/a b", "data:text/html,x"],
)
def test_describe_refuses_anything_but_an_https_address_and_leaves_the_file_alone(tmp_path, url):
    config = tmp_path / "config.toml"
    config.write_text("# untouched\n")
    code, out = describe(config, "ORGANIC", "--scheme-url", url)
    assert code == 1 and "https://" in out
    assert config.read_text() == "# untouched\n"


def test_explainers_come_in_the_pages_languages_and_fall_back_to_english(tmp_path):
    config = tmp_path / "config.toml"
    config.touch()
    code, out = describe(config, "RAINFOREST", "--text", "Ranas felices.", "--lang", "es")
    assert code == 0, out
    code, out = describe(config, "RAINFOREST", "--text", "x", "--lang", "it")
    assert code == 1 and "en, es, fr, de" in out
    types = load_claim_types(config)
    assert types["RAINFOREST"].explainer_in("es") == "Ranas felices."
    assert types["RAINFOREST"].explainer_in("de") is None  # no English to fall back on either
    organic = types["ORGANIC"]
    assert {"en", "es", "fr", "de"} <= set(organic.explainer)  # the packaged texts, all four
    assert organic.explainer_in("fr").startswith("Biologique") and organic.explainer_in("it") == organic.explainer_in("en")
    assert html_module.escape(organic.scheme_url) == organic.scheme_url


def test_the_explainer_is_in_the_pages_language(client):
    spanish = client.get(BAG, headers={"Accept-Language": "es"}).text
    assert "a los agricultores se les pagó al menos un precio mínimo" in spanish
    assert "paid at least an agreed minimum price" not in spanish
    german = client.get(BAG, headers={"Accept-Language": "de"}).text
    assert "Fairer Handel bedeutet" in german and "Bio bedeutet" in german
