"""Proof pages for people: each proof link of a product page opens a page saying what the
transaction recorded in plain words (names, quantities with unit names, date), where
(transaction, block, network) and how to check it, with the JSON one link further."""

from __future__ import annotations

import html as html_module
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from apisite import HOSTILE_GTIN, HOSTILE_LOT, HOSTILE_NAME, HOSTILE_PLACE, HOSTILE_PRODUCT
from fastapi.testclient import TestClient

from ledger.demo import FARM_COFFEE, HUILA_BLEND

JSON = {"Accept": "application/json"}
ESPERANZA = f"/01/{FARM_COFFEE['esperanza']}/10/ESP-2026-07"
BLEND = f"/01/{HUILA_BLEND}/10/AH-EXP-0420"


def text_of(html: str) -> str:
    """The page's visible text, whitespace collapsed (for phrase checks)."""
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return html_module.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def history(client: TestClient, page: str) -> list[dict[str, Any]]:
    """The ledger events of the lot at `page`, from the auditor API."""
    batch_id = client.get(page, headers=JSON).json()["batch_id"]
    return client.get(f"/api/v1/batches/{batch_id}/history").json()["events"]  # type: ignore[no-any-return]


def event_of(client: TestClient, page: str, name: str) -> dict[str, Any]:
    return next(e for e in history(client, page) if e["name"] == name)


def day_of(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%-d %b %Y")


def test_the_product_page_links_each_proof_to_its_readable_page(client):
    page = client.get(ESPERANZA).text
    registration = event_of(client, ESPERANZA, "BatchRegistered")["tx_hash"]
    assert f'href="/proof/{registration}"' in page
    assert "/api/v1/transactions/" not in page  # the JSON is one link further, from the proof page


def test_a_registration_says_what_who_when_where_and_how_to_check(client, site):
    event = event_of(client, ESPERANZA, "BatchRegistered")
    response = client.get(f"/proof/{event['tx_hash']}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    text = text_of(response.text)
    assert "Registered 12,000 kg of Green coffee, washed Caturra, lot ESP-2026-07" in text
    assert "By Finca La Esperanza" in text and event["args"]["supplier"] in text  # name, with its address small
    assert "kilogram (KGM)" in text  # the unit by its UN/ECE name
    assert day_of(event["timestamp"]) in text
    assert "local demo chain" in text and "31337" in text
    assert event["tx_hash"] in text and f"Block {event['block_number']}" in text
    assert site.connection.address in text  # the contract to check against
    assert f"provenance verify {FARM_COFFEE['esperanza']} ESP-2026-07" in text
    assert f'href="/api/v1/transactions/{event["tx_hash"]}"' in response.text
    assert "block explorer" not in text  # no explorer for the local chain


def test_a_transformation_names_its_inputs_and_outputs(client):
    merge = event_of(client, BLEND, "TransformationRecorded")
    text = text_of(client.get(f"/proof/{merge['tx_hash']}").text)
    assert "Merged 12,000 kg of Green coffee, washed Caturra, lot ESP-2026-07" in text
    assert "8,000 kg of Green coffee, washed Castillo, lot MIR-2026-07" in text
    assert "into Green coffee, Huila regional blend, lot AH-EXP-0420" in text
    assert "By Cooperativa Cafetera Alto Huila" in text and "merge" in text  # the kind as a word, never a number
    assert day_of(merge["timestamp"]) in text and merge["tx_hash"] in text


def test_an_attestation_names_the_claim_the_certifier_and_the_lot(client):
    batch_id = client.get(ESPERANZA, headers=JSON).json()["batch_id"]
    claims = client.get(f"/api/v1/batches/{batch_id}/claims").json()
    organic = next(c for c in claims["claims"] if c["claim"] == "ORGANIC")
    text = text_of(client.get(f"/proof/{organic['tx_hash']}").text)
    assert "Certified Organic for Green coffee, washed Caturra, lot ESP-2026-07" in text
    assert "By EthicCert Labs" in text and organic["issuer"] in text
    assert f"Valid from {day_of(organic['valid_from'])}" in text
    assert "local demo chain" in text and organic["tx_hash"] in text
    assert f'href="/api/v1/transactions/{organic["tx_hash"]}"' in client.get(f"/proof/{organic['tx_hash']}").text


def test_the_json_proof_url_is_unchanged_for_programs(client):
    event = event_of(client, ESPERANZA, "BatchRegistered")
    data = client.get(f"/api/v1/transactions/{event['tx_hash']}").json()
    assert data["tx_hash"] == event["tx_hash"] and data["events"][0]["args"]["unit"] == "KGM"


def test_hostile_text_from_the_chain_renders_inert(client):
    hostile = f"/01/{HOSTILE_GTIN}/10/{HOSTILE_LOT.replace('<', '%3C').replace('>', '%3E')}"
    events = history(client, hostile)
    for name in ("BatchRegistered", "StepRecorded"):
        tx_hash = next(e["tx_hash"] for e in events if e["name"] == name)
        page = client.get(f"/proof/{tx_hash}").text
        for raw in (HOSTILE_NAME, HOSTILE_PLACE, HOSTILE_PRODUCT):
            assert raw not in page
        assert "<script>" not in page and "<img" not in page
        text = text_of(page)
        assert HOSTILE_NAME in text and HOSTILE_PRODUCT in text  # shown, as text
        if name == "StepRecorded":
            assert HOSTILE_PLACE in text
        assert f"provenance verify {HOSTILE_GTIN} '<script>'" in text  # one shell word, quoted


def test_an_unknown_transaction_is_a_plain_404_and_a_bad_hash_a_422(client):
    missing = client.get("/proof/0x" + "ab" * 32)
    assert missing.status_code == 404 and "could not find this proof" in missing.text
    assert client.get("/proof/0x1234").status_code == 422


@pytest.fixture
def explorer_client(site):
    from api.main import create_app

    settings = site.settings.model_copy(update={"explorer_url": "https://sepolia.etherscan.io"})
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_the_explorer_link_appears_only_when_the_network_names_one(client, explorer_client):
    tx_hash = event_of(client, ESPERANZA, "BatchRegistered")["tx_hash"]
    assert "etherscan" not in client.get(f"/proof/{tx_hash}").text
    page = explorer_client.get(f"/proof/{tx_hash}").text
    assert f'href="https://sepolia.etherscan.io/tx/{tx_hash}"' in page


def test_the_network_is_named_and_its_explorer_comes_from_its_profile(tmp_path):
    from api.proof_view import network_of
    from ledger.config import Settings
    from ledger.errors import ConfigurationError

    assert network_of(Settings(data_dir=tmp_path), None).name == "local demo chain"
    config = tmp_path / "config.toml"
    config.write_text(
        '[networks.sepolia]\nchain_id = 11155111\nrpc_url = "https://rpc.example"\n'
        'explorer_url = "https://sepolia.etherscan.io/"\n'
    )
    sepolia = network_of(Settings.from_env({"PROVENANCE_CONFIG": str(config)}, network="sepolia"), None)
    assert (sepolia.name, sepolia.chain_id) == ("sepolia", 11155111)
    assert sepolia.explorer_link("0xab") == "https://sepolia.etherscan.io/tx/0xab"
    with pytest.raises(ConfigurationError, match="explorer_url"):
        Settings.from_env({"PROVENANCE_EXPLORER_URL": "javascript:alert(1)"})
