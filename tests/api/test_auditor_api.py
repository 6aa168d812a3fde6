"""The auditor's API (/api/v1), /healthz, and that the public API is read-only."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ledger.demo import DEMO_BAG, DEMO_LOAF, FARM_COFFEE, FLOUR
from ledger.identifiers import batch_id

BAG_ID = "0x" + batch_id(*DEMO_BAG).hex()
LOAF_ID = "0x" + batch_id(*DEMO_LOAF).hex()
FLOUR_ID = "0x" + batch_id(FLOUR, "MV-F-2211").hex()
NARANJOS_ID = "0x" + batch_id(FARM_COFFEE["naranjos"], "NAR-2026-07").hex()


def test_batches_filter_and_paginate(client, site):
    roaster = site.connection.w3.eth.accounts[5]
    body = client.get("/api/v1/batches", params={"supplier": roaster}).json()
    assert {b["lot"] for b in body["items"]} == {"TP-R-1107", DEMO_BAG[1]} and body["next_offset"] is None
    consumed = [
        b
        for gtin in FARM_COFFEE.values()
        for b in client.get("/api/v1/batches", params={"gtin": gtin, "status": "consumed"}).json()["items"]
    ]
    assert {b["lot"] for b in consumed} == {"ESP-2026-07", "MIR-2026-07", "NAR-2026-07"}
    assert [b["lot"] for b in client.get("/api/v1/batches", params={"recalled": True}).json()["items"]] == ["MV-F-2211"]
    first = client.get("/api/v1/batches", params={"limit": 4}).json()
    second = client.get("/api/v1/batches", params={"limit": 4, "offset": first["next_offset"]}).json()
    assert first["next_offset"] == 4 and not {b["batch_id"] for b in first["items"]} & {b["batch_id"] for b in second["items"]}
    everything = client.get("/api/v1/batches", params={"limit": 500}).json()["items"]
    assert len(everything) == 10  # nine demo lots and the hostile one
    times = [b["registered_at"] for b in everything]
    assert times == sorted(times, reverse=True)
    cut = times[3]
    assert all(b["registered_at"] >= cut for b in client.get("/api/v1/batches", params={"since": cut}).json()["items"])
    one = client.get("/api/v1/batches", params={"gtin": DEMO_BAG[0], "lot": DEMO_BAG[1]}).json()["items"]
    assert [b["batch_id"] for b in one] == [BAG_ID]
    assert client.get("/api/v1/batches", params={"gtin": "123"}).status_code == 422
    assert client.get("/api/v1/batches", params={"lot": "X"}).status_code == 422


def test_one_batch_and_its_full_history_with_proof(client):
    batch = client.get(f"/api/v1/batches/{BAG_ID}").json()
    assert batch["product"] == "Huila blend coffee beans, 250 g bag" and batch["remaining_quantity"] == 2000
    history = client.get(f"/api/v1/batches/{BAG_ID}/history").json()["events"]
    assert len(history) > 30
    assert all(
        e["tx_hash"].startswith("0x")
        and len(e["tx_hash"]) == 66
        and isinstance(e["log_index"], int)
        and e["block_number"] > 0
        and e["timestamp"] > 0
        for e in history
    )
    order = [(e["block_number"], e["log_index"]) for e in history]
    assert order == sorted(order)
    own = client.get(f"/api/v1/batches/{BAG_ID}/history", params={"ancestors": False}).json()["events"]
    assert {e["batch_id"] for e in own if e["batch_id"]} == {BAG_ID} and len(own) < len(history)
    tx = client.get(f"/api/v1/transactions/{history[0]['tx_hash']}").json()
    assert tx["events"][0]["name"] == history[0]["name"] and tx["block_number"] == history[0]["block_number"]
    assert client.get(f"/api/v1/batches/0x{'ab' * 32}").status_code == 404
    assert client.get("/api/v1/batches/not-an-id").status_code == 422
    assert client.get(f"/api/v1/transactions/0x{'00' * 32}").status_code == 404


def test_lineage_up_and_down(client):
    up = client.get(f"/api/v1/batches/{BAG_ID}/lineage").json()["tree"]
    export = up["inputs"][0]["inputs"][0]
    assert export["lot"] == "AH-EXP-0420" and {i["lot"] for i in export["inputs"]} == {
        "ESP-2026-07",
        "MIR-2026-07",
        "NAR-2026-07",
    }
    shallow = client.get(f"/api/v1/batches/{BAG_ID}/lineage", params={"depth": 1}).json()["tree"]
    assert "inputs" not in shallow["inputs"][0]
    down = client.get(f"/api/v1/batches/{FLOUR_ID}/lineage", params={"direction": "down"}).json()["tree"]
    assert [o["lot"] for o in down["outputs"]] == [DEMO_LOAF[1]]
    assert client.get(f"/api/v1/batches/{BAG_ID}/lineage", params={"direction": "sideways"}).status_code == 422


def test_claims_with_status_now_and_at_a_past_time(client):
    now = client.get(f"/api/v1/batches/{NARANJOS_ID}/claims").json()
    organic = next(c for c in now["claims"] if c["claim"] == "ORGANIC")
    assert organic["status"] == "revoked" and organic["revoked_tx_hash"].startswith("0x")
    before = client.get(f"/api/v1/claims/{organic['uid']}", params={"at": organic["revoked_at"] - 1}).json()
    assert before["status"] == "valid"
    assert client.get(f"/api/v1/claims/{organic['uid']}").json()["status"] == "revoked"
    too_early = client.get(f"/api/v1/claims/{organic['uid']}", params={"at": organic["valid_from"] - 1}).json()
    assert too_early["status"] == "not_yet_valid"
    bag = client.get(f"/api/v1/batches/{BAG_ID}/claims").json()
    assert bag["claims"] == [] and bag["coverage"]["DEFORESTATION_FREE"] == 1.0
    assert client.get(f"/api/v1/claims/0x{'00' * 32}").status_code == 404


def test_actors_and_their_claims(client, site):
    coop = site.connection.w3.eth.accounts[4]
    actors = client.get("/api/v1/actors", params={"limit": 100}).json()["items"]
    assert "Cooperativa Cafetera Alto Huila" in {a["name"] for a in actors}
    actor = client.get(f"/api/v1/actors/{coop.lower()}").json()  # any letter case
    assert actor["name"] == "Cooperativa Cafetera Alto Huila" and actor["supplier"] is True
    claims = client.get(f"/api/v1/actors/{coop}/claims").json()["claims"]
    assert [(c["claim"], c["status"]) for c in claims] == [("FAIRTRADE", "valid")]
    certifier = client.get(f"/api/v1/actors/{site.connection.w3.eth.accounts[9]}").json()
    assert certifier["accredited_claims"] == ["FAIRTRADE", "ORGANIC"]
    assert client.get(f"/api/v1/actors/0x{'12' * 20}").status_code == 404


def test_index_status_and_healthz(client, site):
    index = client.get("/api/v1/index").json()
    assert index["contract"] == site.connection.address and index["chain_id"] == 31337 and index["blocks_behind"] == 0
    health = client.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["chain"]["reachable"] and body["index"]["lag_blocks"] == 0


def test_healthz_reports_an_unreachable_chain(site):
    from api.main import create_app
    from ledger.chain import free_loopback_port

    dead = site.settings.model_copy(update={"rpc_url": f"http://127.0.0.1:{free_loopback_port()}"})
    with TestClient(create_app(dead)) as client:
        response = client.get("/healthz")
        assert response.status_code == 503
        body = response.json()
        assert body["chain"]["reachable"] is False and "does not answer" in body["problems"][0]
        assert client.get(f"/01/{DEMO_BAG[0]}/10/{DEMO_BAG[1]}").status_code == 200  # pages still served


def test_the_public_api_is_read_only_but_for_document_uploads_and_feedback(client):
    schema = client.get("/openapi.json").json()
    writes = {(path, method) for path, operations in schema["paths"].items() for method in operations if method != "get"}
    # Issue 11: an upload of a document whose hash the chain anchors; issue 13: a shopper's feedback.
    assert writes == {
        ("/api/v1/documents", "post"),
        ("/api/v1/documents/{sha256_hex}", "post"),
        ("/api/v1/feedback", "post"),
    }
    for method in ("post", "put", "patch", "delete"):
        assert client.request(method, f"/api/v1/batches/{BAG_ID}").status_code == 405
        assert client.request(method, f"/01/{DEMO_BAG[0]}/10/{DEMO_BAG[1]}").status_code == 405
    docs = client.get("/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text
    assert {"/api/v1/batches", "/api/v1/batches/{batch_id}/history", "/healthz"} <= set(schema["paths"])
