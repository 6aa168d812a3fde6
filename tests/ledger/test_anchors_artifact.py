"""The committed Anchors artifact is what contracts/Anchors.sol compiles to, and the export
tool checks every contract the client uses (the ledger, Anchors and the bulk path's
BatchLookup), not just the first."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ledger.artifacts import ANCHORS_NAME, ARTIFACT_DIR, BATCH_LOOKUP_NAME, EXPORTED_CONTRACTS, load_artifact

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))


def test_every_exported_artifact_matches_a_fresh_compile(tmp_path, monkeypatch, capsys):
    env = dict(os.environ)
    env.setdefault("SOLCX_BINARY_PATH", str(ROOT / ".venv" / "toolchain" / "solcx"))
    subprocess.run(["brownie", "compile"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    check = subprocess.run([sys.executable, "tools/export_artifacts.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert set(EXPORTED_CONTRACTS) == {"ProvenanceLedger", ANCHORS_NAME, BATCH_LOOKUP_NAME}
    # A stale Anchors copy is caught, not only a stale ledger (checked on a copy of the artifacts).
    tool = importlib.import_module("export_artifacts")
    copy = tmp_path / "artifacts"
    shutil.copytree(ARTIFACT_DIR, copy)
    (copy / f"{ANCHORS_NAME}.json").write_text((copy / f"{ANCHORS_NAME}.json").read_text().replace('"anchor"', '"anch0r"'))
    monkeypatch.setattr(tool, "ARTIFACT_DIR", copy)
    assert tool.main(["--check"]) == 1
    assert "Anchors.json differs" in capsys.readouterr().err


def test_the_anchors_artifact_has_one_function_and_one_event():
    abi = load_artifact(ANCHORS_NAME).abi
    assert sorted((item["type"], item.get("name")) for item in abi) == [("event", "Anchored"), ("function", "anchor")]
    event = next(item for item in abi if item["type"] == "event")
    assert [(i["name"], i["indexed"]) for i in event["inputs"]] == [("by", True), ("head", False), ("count", False)]
