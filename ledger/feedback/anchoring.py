"""Publishing the feedback log's head on chain (contracts/Anchors.sol: one event, ~24,000
gas), reading the heads published, and the server's loop that anchors at intervals.

Readers trust the anchors of one account (the `by` of the event is indexed): the server's
anchoring account, `feedback_anchor_account` (default: the `account` setting's signer).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract

from ledger.artifacts import ANCHORS_NAME, load_artifact
from ledger.config import Settings
from ledger.deploy import read_deployment
from ledger.errors import ConfigurationError, LedgerError
from ledger.feedback.store import AnchorRecord, FeedbackStore, Head
from ledger.signers import LocalKeySigner, Signer, resolve_address, resolve_signer

#: An anchor is one event: far below this, whatever the chain.
ANCHOR_GAS_CAP = 60_000


@dataclass(frozen=True)
class AnchorsAt:
    """Where the Anchors contract is, and the block it was created in (logs start there)."""

    address: ChecksumAddress
    from_block: int


@dataclass(frozen=True)
class OnChainAnchor:
    """One Anchored event of the anchoring account."""

    count: int
    head: str
    tx_hash: str
    block_number: int


def anchors_at(settings: Settings, chain_id: int) -> AnchorsAt:
    """The Anchors contract recorded beside the ledger on chain `chain_id`."""
    for record in (settings.deployment_record(chain_id), settings.deployment_file):
        deployment = read_deployment(record)
        if deployment is not None and deployment.chain_id == chain_id and deployment.anchors:
            return AnchorsAt(deployment.anchors, deployment.anchors_block or 0)
    raise ConfigurationError(
        f"no Anchors contract recorded for chain {chain_id} in {settings.deployment_record(chain_id)} or "
        f"{settings.deployment_file}: `provenance run` deploys one on the local chain, `provenance deploy` on a network"
    )


def anchors_contract(w3: Web3, where: AnchorsAt) -> Contract:
    """The Anchors contract at `where`."""
    return w3.eth.contract(address=where.address, abi=load_artifact(ANCHORS_NAME).abi)


def anchoring_signer(settings: Settings, w3: Web3) -> Signer:
    """Who anchors: `feedback_anchor_account`, else the settings' signer."""
    return resolve_signer(settings, w3, settings.feedback_anchor_account)


def anchoring_address(settings: Settings, w3: Web3) -> ChecksumAddress:
    """Whose anchors to trust, without unlocking a key: `feedback_anchor_account` (an
    address, node:N or a keystore name), else the signer the settings name."""
    who = settings.feedback_anchor_account or settings.account
    if who:
        return resolve_address(settings, w3, who)
    return resolve_signer(settings, w3).address  # the environment's key, or node:0 on the local chain


def send_anchor(settings: Settings, w3: Web3, signer: Signer, where: AnchorsAt, head: Head) -> AnchorRecord:
    """Publish `head` (one transaction) and return what was anchored where."""
    call = anchors_contract(w3, where).functions.anchor(bytes.fromhex(head.hash.removeprefix("0x")), head.count)
    gas = min(ANCHOR_GAS_CAP, int(call.estimate_gas({"from": signer.address}) * 1.25) + 5_000)
    if isinstance(signer, LocalKeySigner):
        from ledger.fees import FeePolicy, Outbox, TransactionSender

        sender = TransactionSender(
            w3, signer, settings.chain_id, FeePolicy.from_settings(settings), Outbox(settings.data_dir, settings.chain_id, signer.address),
            poll=0.02 if settings.is_local_chain and not settings.network else 0.5,
        )  # fmt: skip
        receipt = sender.wait(
            sender.submit({"to": where.address, "data": call._encode_transaction_data(), "value": 0, "gas": gas})
        )
        tx_hash = bytes(receipt["transactionHash"])
    else:
        sent = call.transact({"from": signer.address, "gas": gas})
        tx_hash = bytes(sent)
        receipt = dict(w3.eth.wait_for_transaction_receipt(sent, timeout=120, poll_latency=0.05))
    if receipt["status"] != 1:
        raise LedgerError(f"anchoring the feedback head failed in transaction 0x{tx_hash.hex()}")
    return AnchorRecord(head.count, head.hash, "0x" + tx_hash.hex(), int(receipt["blockNumber"]), int(time.time()))


def anchored_heads(w3: Web3, where: AnchorsAt, by: str) -> list[OnChainAnchor]:
    """Every head `by` anchored, oldest first. An event whose transaction `by` did not send
    is refused (LedgerError): only the Anchors contract's code makes `by` the sender, and
    the address it is read from comes from a file; any other contract can emit `Anchored`
    naming whatever `by` it likes, for heads of a rewritten log."""
    contract = anchors_contract(w3, where)
    logs = contract.events.Anchored.get_logs(from_block=where.from_block, argument_filters={"by": Web3.to_checksum_address(by)})
    for log in logs:
        sender = w3.eth.get_transaction(log["transactionHash"])["from"]
        if sender.lower() != by.lower():
            raise LedgerError(
                f"the Anchored event of transaction 0x{bytes(log['transactionHash']).hex()} at {where.address} names {by} "
                f"but was sent by {sender}: {where.address} is not the Anchors contract, or not this log's"
            )
    return [
        OnChainAnchor(int(log["args"]["count"]), "0x" + bytes(log["args"]["head"]).hex(), "0x" + bytes(log["transactionHash"]).hex(), int(log["blockNumber"]))
        for log in sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))
    ]  # fmt: skip


def anchor_due(head: Head, last: AnchorRecord | None, settings: Settings, now: float) -> bool:
    """Whether the server should anchor now: the head moved, and enough entries were added
    or enough time passed since the last anchor."""
    anchored = last.count if last else 0
    if head.count <= anchored:
        return False
    if head.count - anchored >= settings.feedback_anchor_entries:
        return True
    since = last.anchored_at if last else 0
    return settings.feedback_anchor_minutes > 0 and now - since >= settings.feedback_anchor_minutes * 60


class Anchorer:
    """The server's background anchoring: checks the head every `poll` seconds, anchors when due."""

    def __init__(self, settings: Settings, w3: Web3, notice: Callable[[str], None], poll: float = 15.0) -> None:
        self.settings, self.w3, self.notice, self.poll = settings, w3, notice, poll
        self.store = FeedbackStore.open(settings.feedback_database_url, settings.data_dir)
        self.where = anchors_at(settings, settings.chain_id)
        self.signer = anchoring_signer(settings, w3)

    def anchor_if_due(self) -> AnchorRecord | None:
        """Anchor the head if it is due; what was anchored, or None."""
        head = self.store.head()
        if not anchor_due(head, self.store.last_anchor(), self.settings, time.time()):
            return None
        record = send_anchor(self.settings, self.w3, self.signer, self.where, head)
        self.store.record_anchor(record)
        return record

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: anchor when due; a failure is said and tried again next round."""
        while not stop.is_set():
            try:
                record = self.anchor_if_due()
                if record is not None:
                    self.notice(f"anchored the feedback head (entry {record.count}) in {record.tx_hash}")
            except Exception as exc:  # noqa: BLE001 - the server keeps running; the next round retries
                self.notice(f"anchoring the feedback head failed ({type(exc).__name__}: {exc}); retrying")
            stop.wait(self.poll)
        self.store.dispose()


def start_anchoring(settings: Settings, w3: Web3, stop: threading.Event, notice: Callable[[str], None]) -> str:
    """Start the server's anchoring thread (unless `feedback_anchor_minutes` is 0, and there
    is always the entry count); a line saying what it does. Raises a LedgerError when there
    is no Anchors contract or no signing key, for the caller to warn about."""
    anchorer = Anchorer(settings, w3, notice)
    threading.Thread(target=anchorer.run, args=(stop,), name="feedback-anchorer", daemon=True).start()
    every = f"every {settings.feedback_anchor_minutes:g} min or " if settings.feedback_anchor_minutes else ""
    return f"{anchorer.where.address} by {anchorer.signer.address} ({every}{settings.feedback_anchor_entries} entries)"
