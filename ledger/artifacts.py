"""The compiled contracts (ABI and bytecode), as committed in `ledger/artifacts/`: the
ledger, Anchors (where the feedback log's head is published) and BatchLookup (the bulk
path's many-lots-in-one-call lookup).

The committed copy lets the client work from a plain `pip install` without Node or
brownie; a test compiles the sources afresh and checks the copy still matches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ledger.errors import ArtifactError

ARTIFACT_DIR = Path(__file__).parent / "artifacts"
CONTRACT_NAME = "ProvenanceLedger"
#: The small contract that publishes heads of off-chain logs (contracts/Anchors.sol).
ANCHORS_NAME = "Anchors"
#: The never-deployed lookup the bulk path runs in one eth_call (contracts/lookup/BatchLookup.sol).
BATCH_LOOKUP_NAME = "BatchLookup"
#: Every contract the client deploys or reads, as committed by tools/export_artifacts.py.
EXPORTED_CONTRACTS = (CONTRACT_NAME, ANCHORS_NAME, BATCH_LOOKUP_NAME)


@dataclass(frozen=True)
class ContractArtifact:
    """ABI, creation bytecode and compiler facts of one contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler: dict[str, Any]


def artifact_from_build(build: dict[str, Any]) -> ContractArtifact:
    """Extract what the client needs from a brownie build JSON."""
    return ContractArtifact(
        name=build["contractName"],
        abi=build["abi"],
        bytecode=build["bytecode"],
        deployed_bytecode=build["deployedBytecode"],
        compiler=build.get("compiler", {}),
    )


def artifact_to_json(artifact: ContractArtifact) -> str:
    """Serialise an artifact the way it is committed (stable key order, one trailing newline)."""
    return (
        json.dumps(
            {
                "contractName": artifact.name,
                "compiler": artifact.compiler,
                "abi": artifact.abi,
                "bytecode": artifact.bytecode,
                "deployedBytecode": artifact.deployed_bytecode,
            },
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )


@cache
def load_artifact(name: str = CONTRACT_NAME) -> ContractArtifact:
    """Load the committed artifact of contract `name`."""
    path = ARTIFACT_DIR / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path} is missing: run `make artifacts` to compile the contracts") from exc
    return artifact_from_build(data)
