"""A maker's reply or hide carries the account's EIP-712 signature, so anyone reading the
public log can check it was the lot's supplier (or the ledger's admin) who answered or hid,
and not whoever runs the server.

The signed message names the action, the comment it is about and the sha256 of the entry's
content without the signature (`unsigned`), in the domain "Provenance feedback" version 1
of the chain the lot is on.
"""

from __future__ import annotations

import json
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from web3 import Web3

from ledger.feedback.chain import content_hash
from ledger.rpc import rpc_call
from ledger.signers import LocalKeySigner, Signer

DOMAIN_NAME = "Provenance feedback"
DOMAIN_VERSION = "1"


def unsigned(content: dict[str, Any]) -> dict[str, Any]:
    """The content without its signature: what the signature covers."""
    return {key: value for key, value in content.items() if key != "signature"}


def typed_data(content: dict[str, Any]) -> dict[str, Any]:
    """The EIP-712 message a reply or hide is signed as."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "FeedbackAction": [
                {"name": "action", "type": "string"},
                {"name": "target", "type": "uint64"},
                {"name": "content", "type": "bytes32"},
            ],
        },
        "primaryType": "FeedbackAction",
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": int(content["chain_id"])},
        "message": {"action": content["kind"], "target": int(content["target"]), "content": content_hash(unsigned(content))},
    }


def sign(signer: Signer, w3: Web3, content: dict[str, Any]) -> dict[str, Any]:
    """`content` with the signer's signature added: a local key signs here, the local
    chain's unlocked accounts (node:N) are signed for by the node (eth_signTypedData_v4)."""
    message = typed_data(content)
    if isinstance(signer, LocalKeySigner):
        signature = signer.sign_typed_data(message)
    else:
        signature = bytes.fromhex(
            str(rpc_call(w3, "eth_signTypedData_v4", [signer.address, json.dumps(message)])).removeprefix("0x")
        )
    return {**content, "signature": "0x" + signature.hex()}


def signed_by(content: dict[str, Any]) -> str | None:
    """The address whose signature `content` carries, or None when it carries none that
    recovers (missing, malformed)."""
    signature = content.get("signature")
    if not isinstance(signature, str):
        return None
    try:
        recovered: str = Account.recover_message(encode_typed_data(full_message=typed_data(content)), signature=signature)
    except Exception:  # noqa: BLE001 - any malformed signature or content is "not signed"
        return None
    return Web3.to_checksum_address(recovered)
