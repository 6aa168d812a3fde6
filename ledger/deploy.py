"""Deploying the ledger contract (and beside it Anchors, where the feedback log's head is
published) once and remembering where they are.

The record (`deployment.json`) also names the code it was deployed from. A ledger deployed
from other code (an older version of the contract) is never used silently: it is refused
with a sentence, or replaced at a new address when the caller asks to redeploy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from web3 import Web3

from ledger.artifacts import ANCHORS_NAME, load_artifact
from ledger.errors import DeploymentError

if TYPE_CHECKING:
    from ledger.fees import TransactionSender


@dataclass(frozen=True)
class Deployment:
    """Where the ledger contract lives on a chain, and which code it was deployed from."""

    chain_id: int
    address: ChecksumAddress
    block_number: int
    tx_hash: str
    admin: ChecksumAddress
    #: keccak256 of the artifact's runtime code it was deployed from (None in records
    #: written before versions were told apart).
    code_hash: str | None = None
    #: The Anchors contract beside it (None in records written before it existed: it is
    #: then deployed and recorded by the next `provenance run` or `provenance deploy`).
    anchors: ChecksumAddress | None = None
    anchors_block: int | None = None


def artifact_code_hash() -> str:
    """keccak256 of the current artifact's runtime code (immutables as zero placeholders)."""
    return "0x" + keccak(_code(load_artifact().deployed_bytecode)).hex()


def _code(hex_code: str | bytes) -> bytes:
    if isinstance(hex_code, bytes):
        return hex_code
    return bytes.fromhex(hex_code.removeprefix("0x"))


def code_matches_artifact(chain_code: bytes) -> bool:
    """Whether `chain_code` is the current artifact's runtime code.

    Immutables (the EIP-712 domain cache, ...) are filled in at deployment, and the
    artifact holds zeros in their place; so the code matches when it has the same length
    and differs only where the artifact has zero bytes. Other code differs elsewhere, at
    least in the compiler's metadata hash at the end.
    """
    expected = _code(load_artifact().deployed_bytecode)
    actual = _code(chain_code)
    if len(actual) != len(expected):
        return False
    return all(a == e or e == 0 for a, e in zip(actual, expected, strict=True))


def read_deployment(path: Path) -> Deployment | None:
    """The deployment recorded at `path`, or None when there is none."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise DeploymentError(f"{path} is not valid JSON ({exc}); delete it to deploy anew") from exc
    try:
        return Deployment(**data)
    except TypeError as exc:
        raise DeploymentError(f"{path} is not a deployment record ({exc}); delete it to deploy anew") from exc


def write_deployment(path: Path, deployment: Deployment) -> None:
    """Record a deployment atomically (write then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(deployment), indent=2) + "\n")
    tmp.replace(path)


def deploy_ledger(w3: Web3, admin: ChecksumAddress, admin_transfer_delay: int) -> Deployment:
    """Deploy the ledger, then Anchors, from `admin`, an account the node signs for (the
    local chain's)."""
    artifact = load_artifact()
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    try:
        tx_hash = factory.constructor(admin, admin_transfer_delay).transact({"from": admin})
    except Exception as exc:  # noqa: BLE001 - the node's reason is what a person needs
        raise DeploymentError(f"deploying the ledger failed: {exc}") from exc
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise DeploymentError(f"deploying the ledger failed in transaction {tx_hash.hex()}")
    anchors, anchors_block = deploy_anchors(w3, admin)
    return Deployment(
        chain_id=w3.eth.chain_id,
        address=receipt["contractAddress"],
        block_number=receipt["blockNumber"],
        tx_hash="0x" + bytes(tx_hash).hex().removeprefix("0x"),
        admin=admin,
        code_hash=artifact_code_hash(),
        anchors=anchors,
        anchors_block=anchors_block,
    )


def older_code_reason(w3: Web3, deployment: Deployment) -> str | None:
    """Why the recorded ledger is not this version's contract, or None when it is."""
    if deployment.code_hash is not None and deployment.code_hash != artifact_code_hash():
        return "its record names other contract code than this version's"
    if not code_matches_artifact(bytes(w3.eth.get_code(deployment.address))):
        return "the code at its address is not this version's contract"
    return None


def ensure_deployed(
    w3: Web3, record: Path, admin_transfer_delay: int, redeploy: bool = False
) -> tuple[Deployment, bool, str | None]:
    """The recorded deployment if this version's code is on this chain, else a fresh one.

    Returns (deployment, created, warning): `warning` explains why a recorded deployment
    was not reused. A recorded ledger deployed from other (older) code raises a
    DeploymentError saying so, unless `redeploy` asks for a new deployment of the current
    code (at a new address; the old ledger stays on the chain, unused).
    """
    warning = None
    existing = read_deployment(record)
    chain_id = w3.eth.chain_id
    if existing is not None:
        if existing.chain_id == chain_id and w3.eth.get_code(existing.address):
            reason = older_code_reason(w3, existing)
            if reason is None:
                return ensure_anchors(w3, record, existing), False, None
            if not redeploy:
                raise DeploymentError(
                    f"the ledger recorded in {record} ({existing.address}) was deployed from older code ({reason}); "
                    "pass --redeploy to deploy the current version at a new address with a fresh demo "
                    "(the old ledger stays on the chain, no longer used)"
                )
            warning = (
                f"the ledger at {existing.address} was deployed from older code ({reason}); "
                "deploying the current version at a new address"
            )
        else:
            warning = (
                f"the ledger recorded in {record} ({existing.address} on chain {existing.chain_id}) "
                f"is not on this chain; its state was reset, so the ledger is deployed anew"
            )
    admin = w3.eth.accounts[0]
    deployment = deploy_ledger(w3, admin, admin_transfer_delay)
    write_deployment(record, deployment)
    return ensure_anchors(w3, record, deployment), True, warning


def deploy_anchors(w3: Web3, sender: ChecksumAddress) -> tuple[ChecksumAddress, int]:
    """Deploy Anchors from `sender`, an account the node signs for; (address, block)."""
    artifact = load_artifact(ANCHORS_NAME)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    try:
        tx_hash = factory.constructor().transact({"from": sender})
    except Exception as exc:  # noqa: BLE001 - the node's reason is what a person needs
        raise DeploymentError(f"deploying the Anchors contract failed: {exc}") from exc
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise DeploymentError(f"deploying the Anchors contract failed in transaction {tx_hash.hex()}")
    return receipt["contractAddress"], receipt["blockNumber"]


def ensure_anchors(w3: Web3, record: Path, deployment: Deployment, sender: ChecksumAddress | None = None) -> Deployment:
    """`deployment` with its Anchors contract: the recorded one when its code is on this
    chain, else one deployed now by `sender` (default: the ledger's admin; an account the
    node signs for) and recorded."""
    if deployment.anchors is not None and w3.eth.get_code(deployment.anchors):
        return deployment
    address, block = deploy_anchors(w3, sender or deployment.admin)
    deployment = replace(deployment, anchors=address, anchors_block=block)
    write_deployment(record, deployment)
    return deployment


def create_address(deployer: str, nonce: int) -> ChecksumAddress:
    """The address a contract created by `deployer` with `nonce` gets (CREATE)."""
    import rlp  # no type information (no py.typed): an override in pyproject.toml

    return Web3.to_checksum_address(keccak(rlp.encode([bytes.fromhex(deployer[2:]), nonce]))[12:])


def deploy_on_network(
    sender: TransactionSender, record: Path, admin_transfer_delay: int, timeout: float | None = None
) -> Deployment:
    """Deploy the ledger with a local key through `sender` (fees within the caps, stuck
    transactions replaced, lost replies found again) and record it in `record`.

    Safe to run again after a crash: `<record>.pending` names the transaction and the address
    it creates before anything is sent, so the next run finishes that deployment (the
    sender's outbox sends it again if needed) instead of deploying a second ledger.
    """
    w3 = sender.w3
    pending_record = record.with_suffix(".pending")
    sender.recover(timeout)
    if pending_record.exists():
        started = json.loads(pending_record.read_text())
        deployment = _finish(w3, started, sender.signer.address)
        if deployment is not None:
            write_deployment(record, deployment)
            pending_record.unlink()
            return _anchors_on_network(sender, record, deployment, timeout)
        pending_record.unlink()  # never mined (refused, or its nonce went elsewhere): deploy anew
    artifact = load_artifact()
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    data = factory.constructor(sender.signer.address, admin_transfer_delay).data_in_transaction
    address, receipt = _create_on_network(sender, data, pending_record, timeout, "the ledger")
    deployment = Deployment(
        chain_id=w3.eth.chain_id,
        address=address,
        block_number=receipt["blockNumber"],
        tx_hash="0x" + receipt["transactionHash"].hex(),
        admin=sender.signer.address,
        code_hash=artifact_code_hash(),
    )
    write_deployment(record, deployment)
    pending_record.unlink()
    return _anchors_on_network(sender, record, deployment, timeout)


def _create_on_network(
    sender: TransactionSender, data: Any, pending_record: Path, timeout: float | None, what: str
) -> tuple[ChecksumAddress, Any]:
    """Send a contract creation through `sender`, after naming its address in `pending_record`."""
    w3 = sender.w3
    gas = int(w3.eth.estimate_gas({"from": sender.signer.address, "data": data}))
    nonce = sender.next_nonce()
    sender.forget_nonce()  # submit takes it again: the same number (nothing else sends here)
    address = create_address(sender.signer.address, nonce)
    pending_record.parent.mkdir(parents=True, exist_ok=True)
    pending_record.write_text(json.dumps({"address": address, "nonce": nonce}))
    pending = sender.submit({"data": data, "value": 0, "gas": gas * 12 // 10})
    receipt = sender.wait(pending, timeout)
    if receipt["status"] != 1:
        pending_record.unlink()
        raise DeploymentError(f"deploying {what} failed in transaction 0x{receipt['transactionHash'].hex()}")
    return address, receipt


def anchors_on_network(sender: TransactionSender, record: Path, timeout: float | None = None) -> Deployment:
    """The deployment recorded at `record` with its Anchors contract: the recorded one, the
    one an interrupted run sent (`<record>.anchors-pending`), else one deployed now through
    `sender` (for a ledger deployed before Anchors existed, or a deploy stopped in between)."""
    sender.recover(timeout)
    deployment = read_deployment(record)
    if deployment is None or deployment.chain_id != sender.w3.eth.chain_id:
        raise DeploymentError(f"no ledger deployment of chain {sender.w3.eth.chain_id} recorded in {record}")
    return _anchors_on_network(sender, record, deployment, timeout)


def _anchors_on_network(sender: TransactionSender, record: Path, deployment: Deployment, timeout: float | None) -> Deployment:
    """`deployment` with its Anchors contract, deployed through `sender` when missing; as
    crash-safe as the ledger's own deployment (`<record>.anchors-pending` first)."""
    w3 = sender.w3
    if deployment.anchors is not None and w3.eth.get_code(deployment.anchors):
        return deployment
    pending_record = record.with_suffix(".anchors-pending")
    if pending_record.exists():
        address = Web3.to_checksum_address(str(json.loads(pending_record.read_text())["address"]))
        if w3.eth.get_code(address):
            deployment = replace(deployment, anchors=address, anchors_block=_creation_block(w3, address))
            write_deployment(record, deployment)
            pending_record.unlink()
            return deployment
        pending_record.unlink()
    data = w3.eth.contract(abi=load_artifact(ANCHORS_NAME).abi, bytecode=load_artifact(ANCHORS_NAME).bytecode).constructor()
    address, receipt = _create_on_network(sender, data.data_in_transaction, pending_record, timeout, "the Anchors contract")
    deployment = replace(deployment, anchors=address, anchors_block=receipt["blockNumber"])
    write_deployment(record, deployment)
    pending_record.unlink()
    return deployment


def _finish(w3: Web3, started: dict[str, object], admin: ChecksumAddress) -> Deployment | None:
    """The deployment a crashed run started, if its contract is on chain."""
    address = Web3.to_checksum_address(str(started["address"]))
    if not w3.eth.get_code(address):
        return None
    return Deployment(
        chain_id=w3.eth.chain_id,
        address=address,
        block_number=_creation_block(w3, address),
        tx_hash="unknown (finished after a restart)",
        admin=admin,
        code_hash=artifact_code_hash(),
    )


def _creation_block(w3: Web3, address: ChecksumAddress) -> int:
    """The first block where code exists at `address` (binary search)."""
    low: int = 0
    high: int = w3.eth.block_number
    while low < high:
        middle = (low + high) // 2
        if w3.eth.get_code(address, block_identifier=middle):
            high = middle
        else:
            low = middle + 1
    return low
