"""Deploying the ledger contract once and remembering where it is."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_typing import ChecksumAddress
from web3 import Web3

from ledger.artifacts import load_artifact
from ledger.errors import DeploymentError


@dataclass(frozen=True)
class Deployment:
    """Where the ledger contract lives on a chain."""

    chain_id: int
    address: ChecksumAddress
    block_number: int
    tx_hash: str
    admin: ChecksumAddress


def read_deployment(path: Path) -> Deployment | None:
    """The deployment recorded at `path`, or None when there is none."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise DeploymentError(f"{path} is not valid JSON ({exc}); delete it to deploy anew") from exc
    return Deployment(**data)


def write_deployment(path: Path, deployment: Deployment) -> None:
    """Record a deployment atomically (write then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(deployment), indent=2) + "\n")
    tmp.replace(path)


def deploy_ledger(w3: Web3, admin: ChecksumAddress, admin_transfer_delay: int) -> Deployment:
    """Deploy the ledger from `admin`, an account the node signs for (the local chain's)."""
    artifact = load_artifact()
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx_hash = factory.constructor(admin, admin_transfer_delay).transact({"from": admin})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise DeploymentError(f"deploying the ledger failed in transaction {tx_hash.hex()}")
    return Deployment(
        chain_id=w3.eth.chain_id,
        address=receipt["contractAddress"],
        block_number=receipt["blockNumber"],
        tx_hash="0x" + bytes(tx_hash).hex().removeprefix("0x"),
        admin=admin,
    )


def ensure_deployed(
    w3: Web3, record: Path, admin_transfer_delay: int
) -> tuple[Deployment, bool, str | None]:
    """The recorded deployment if its code is on this chain, else a fresh one.

    Returns (deployment, created, warning): `warning` explains why a recorded deployment
    was not reused.
    """
    warning = None
    existing = read_deployment(record)
    chain_id = w3.eth.chain_id
    if existing is not None:
        if existing.chain_id == chain_id and w3.eth.get_code(existing.address):
            return existing, False, None
        warning = (
            f"the ledger recorded in {record} ({existing.address} on chain {existing.chain_id}) "
            f"is not on this chain; its state was reset, so the ledger is deployed anew"
        )
    admin = w3.eth.accounts[0]
    deployment = deploy_ledger(w3, admin, admin_transfer_delay)
    write_deployment(record, deployment)
    return deployment, True, warning
