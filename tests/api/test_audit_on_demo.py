"""The audit on the demo ledger reports the planted problems and nothing else, through
the CLI and the API alike."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ledger.cli import app
from ledger.demo import DEMO_AUDIT_POLICY, DEMO_BAG, DEMO_LOAF
from ledger.identifiers import batch_id

PLANTED = [
    ("recall_reach", "critical", "MV-F-2211"),
    ("claim_revoked", "high", "NAR-2026-07"),
    ("claim_expired", "medium", "MIR-2026-07"),
]


def summary(findings):
    return [(f["check"], f["severity"], f["lot"]) for f in findings]


def run_cli(site, *args):
    env = {"PROVENANCE_DATA_DIR": str(site.settings.data_dir), "PROVENANCE_RPC_URL": site.settings.rpc_url}
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout


def test_audit_all_on_the_demo_reports_the_planted_problems_only(site, tmp_path):
    (site.settings.data_dir / "audit.toml").write_text(DEMO_AUDIT_POLICY.to_toml())
    try:
        code, out = run_cli(site, "audit", "--all", "--json")
        assert code == 3  # a finding at or above `high`
        findings = json.loads(out)["findings"]
        assert summary(findings) == PLANTED
        recall = findings[0]
        assert recall["related_batches"] == ["0x" + batch_id(*DEMO_LOAF).hex()] and recall["events"][0]["tx_hash"].startswith(
            "0x"
        )
        assert run_cli(site, "audit", "--all", "--fail-on", "never")[0] == 0
        code, out = run_cli(site, "audit", "--all", "--fail-on", "critical")
        assert code == 3 and "Recalled lot MV-F-2211" in out
    finally:
        (site.settings.data_dir / "audit.toml").unlink()


def test_audit_of_one_lot_keeps_to_its_lineage(site):
    code, out = run_cli(site, "audit", *DEMO_BAG, "--json", "--fail-on", "never")
    assert code == 0 and summary(json.loads(out)["findings"]) == PLANTED[1:]
    code, out = run_cli(site, "audit", *DEMO_LOAF, "--json", "--fail-on", "never")
    assert summary(json.loads(out)["findings"]) == PLANTED[:1]
    assert run_cli(site, "audit")[0] == 1  # neither a lot nor --all


def test_audit_api(client):
    assert summary(client.get("/api/v1/audit").json()["findings"]) == PLANTED
    assert summary(client.get("/api/v1/audit", params={"min_severity": "high"}).json()["findings"]) == PLANTED[:2]
    bag = "0x" + batch_id(*DEMO_BAG).hex()
    assert summary(client.get(f"/api/v1/audit/batches/{bag}").json()["findings"]) == PLANTED[1:]
    assert client.get("/api/v1/audit", params={"min_severity": "extreme"}).status_code == 422


def test_verify_on_the_demo_bag_passes_and_fails_after_a_document_is_altered(site):
    from ledger.documents import DocumentStore

    code, out = run_cli(site, "verify", *DEMO_BAG, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["checked"] > 30
    bag = json.loads(run_cli(site, "history", *DEMO_BAG, "--json")[1])["batch"]
    store = DocumentStore(site.settings.documents_dir)
    path = store.path_of(bytes.fromhex(bag["metadata_hash"][2:]))
    original = path.read_bytes()
    path.chmod(0o644)
    try:
        path.write_bytes(original.replace(b"250 g bag", b"500 g bag"))
        code, out = run_cli(site, "verify", *DEMO_BAG)
        assert code == 4 and "MISMATCH metadata of lot TP-B-1107-A" in out
    finally:
        path.write_bytes(original)
    assert run_cli(site, "verify", *DEMO_BAG)[0] == 0
