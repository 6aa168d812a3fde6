"""Who signs transactions: a local key (keystore or environment) or the local node's account."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol, cast

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3

from ledger.config import Settings
from ledger.errors import SigningKeyError
from ledger.keys import Keystore, account_from_env, read_keystore

if TYPE_CHECKING:
    from web3.types import TxParams

_NODE = re.compile(r"^node:(\d+)$")
_KEYSTORE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class Signer(Protocol):
    """Signs and sends transactions for one address."""

    address: ChecksumAddress

    def send(self, w3: Web3, tx: dict[str, Any]) -> bytes:
        """Send `tx` (complete but unsigned); returns its hash."""
        ...


class LocalKeySigner:
    """Signs with a private key held in memory; the key is never exposed by this object."""

    def __init__(self, account: LocalAccount) -> None:
        self._account = account
        self.address: ChecksumAddress = account.address

    def sign(self, tx: dict[str, Any]) -> bytes:
        """The signed raw transaction."""
        return bytes(self._account.sign_transaction(tx).raw_transaction)

    def sign_typed_data(self, full_message: dict[str, Any]) -> bytes:
        """An EIP-712 signature."""
        from eth_account.messages import encode_typed_data

        return bytes(self._account.sign_message(encode_typed_data(full_message=full_message)).signature)

    def send(self, w3: Web3, tx: dict[str, Any]) -> bytes:
        """Sign locally and send the raw transaction."""
        return bytes(w3.eth.send_raw_transaction(self.sign(tx)))

    def __repr__(self) -> str:  # never show the key
        return f"LocalKeySigner({self.address})"


class NodeAccountSigner:
    """An account the node itself unlocks (anvil's dev accounts): no key exists here at all."""

    def __init__(self, address: ChecksumAddress) -> None:
        self.address = address

    def send(self, w3: Web3, tx: dict[str, Any]) -> bytes:
        """Ask the node to sign and send."""
        # Signer.send's contract: `tx` is complete (web3's build_transaction), so its keys
        # are TxParams' keys.
        return bytes(w3.eth.send_transaction(cast("TxParams", tx)))

    def __repr__(self) -> str:
        return f"NodeAccountSigner({self.address})"


def node_account(w3: Web3, index: int) -> ChecksumAddress:
    """Address of the node's unlocked account `index`."""
    accounts = w3.eth.accounts
    if index >= len(accounts):
        raise SigningKeyError(
            f"the node at this RPC URL unlocks {len(accounts)} accounts, so node:{index} does not exist "
            "(node:N accounts exist only on the local development chain)"
        )
    return accounts[index]


def resolve_signer(settings: Settings, w3: Web3, account: str | None = None) -> Signer:
    """The signer named by `account`, else by the settings: keystore name, node:N or env key."""
    choice = account or settings.account
    if choice:
        node = _NODE.match(choice)
        if node:
            return NodeAccountSigner(node_account(w3, int(node.group(1))))
        return LocalKeySigner(Keystore(settings.keystore_dir).unlock(choice))
    from_env = account_from_env()
    if from_env is not None:
        return LocalKeySigner(from_env)
    if settings.is_local_chain:
        return NodeAccountSigner(node_account(w3, 0))
    raise SigningKeyError(
        "no signing key: pass --account NAME (a keystore from `provenance account new`) or set PROVENANCE_PRIVATE_KEY"
    )


def resolve_address(settings: Settings, w3: Web3, who: str) -> ChecksumAddress:
    """An address from `who`: a 0x address, `node:N`, or a keystore name (no password needed)."""
    if Web3.is_address(who):
        return Web3.to_checksum_address(who)
    node = _NODE.match(who)
    if node:
        return node_account(w3, int(node.group(1)))
    for entry in Keystore(settings.keystore_dir).entries():
        if entry.name == who:
            return Web3.to_checksum_address(entry.address)
    candidate = settings.keystore_dir / f"{who}.json"
    if _KEYSTORE_NAME.match(who) and candidate.is_file():
        read_keystore(candidate)  # there is such a keystore, but damaged: say so
    raise SigningKeyError(f"{who!r} is neither an address, node:N, nor a keystore account name")
