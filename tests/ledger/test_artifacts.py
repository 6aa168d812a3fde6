"""The committed ABI/bytecode copy is what the contract sources compile to today."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ledger.artifacts import ARTIFACT_DIR, CONTRACT_NAME, artifact_from_build, artifact_to_json, load_artifact

ROOT = Path(__file__).resolve().parents[2]


def test_committed_artifact_matches_a_fresh_compile():
    env = dict(os.environ)
    env.setdefault("SOLCX_BINARY_PATH", str(ROOT / ".venv" / "toolchain" / "solcx"))
    subprocess.run(["brownie", "compile"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    build = json.loads((ROOT / "build" / "contracts" / f"{CONTRACT_NAME}.json").read_text())
    committed = (ARTIFACT_DIR / f"{CONTRACT_NAME}.json").read_text()
    assert committed == artifact_to_json(artifact_from_build(build)), (
        "ledger/artifacts is stale: run `make artifacts` and commit it"
    )


def test_artifact_exposes_the_ledger_interface():
    names = {item.get("name") for item in load_artifact().abi}
    for expected in (
        "registerBatch",
        "registerBatches",
        "transferCustody",
        "acceptCustody",
        "transform",
        "recallBatch",
        "attest",
        "attestBySig",
        "revokeAttestation",
        "attestationStatus",
        "BatchRegistered",
        "TransformationRecorded",
        "Attested",
    ):
        assert expected in names
    # EIP-170: deployable on any EVM chain.
    assert len(bytes.fromhex(load_artifact().deployed_bytecode.removeprefix("0x"))) <= 24_576
