"""Raw JSON-RPC calls to the node, for the paths where web3's result formatting costs more
than the round trip (receipts with many logs, eth_getLogs) or where web3 has no method
(anvil's `evm_*`).

Every raw call in the client goes through here, so an error answer always becomes the same
:class:`~ledger.errors.RpcError` (a :class:`~ledger.errors.ChainError`) naming the method and
carrying the node's message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from ledger.errors import ChainError, RpcError

if TYPE_CHECKING:  # web3 is imported by the callers; this module must stay cheap to import
    from web3 import Web3
    from web3.types import RPCEndpoint, RPCResponse


def _result(method: str, response: RPCResponse) -> Any:
    """The `result` of one response; RpcError for an error answer."""
    if "error" in response:
        error: Any = response["error"]  # an object per JSON-RPC 2.0, a bare string from some nodes
        message = error.get("message", error) if isinstance(error, dict) else error
        code = error.get("code") if isinstance(error, dict) else None
        raise RpcError(method, str(message), code if isinstance(code, int) else None)
    if "result" not in response:
        raise ChainError(f"{method} failed: the node answered neither a result nor an error ({response!r})")
    return response["result"]


def rpc_call(w3: Web3, method: str, params: Sequence[Any]) -> Any:
    """The decoded JSON `result` of one call (None where the node has nothing, e.g. a
    receipt not yet mined). Raises RpcError when the node answers with an error."""
    # RPCEndpoint is a NewType over str: every method name is one.
    response = w3.provider.make_request(cast("RPCEndpoint", method), list(params))
    return _result(method, response)


def rpc_batch(w3: Web3, method: str, params: Sequence[Sequence[Any]]) -> list[Any]:
    """The results of `method` called once for each entry of `params`, sent as one JSON-RPC
    batch, in the order asked. Raises RpcError when any call answers an error, and
    ChainError when the node refuses the batch as a whole."""
    answers = rpc_answers(w3, method, params)
    for answer in answers:
        if isinstance(answer, RpcError):
            raise answer
    return answers


def rpc_answers(w3: Web3, method: str, params: Sequence[Sequence[Any]]) -> list[Any]:
    """As :func:`rpc_batch`, but each call's error answer is returned in its place (an
    RpcError) rather than raised: for sends, where the ones before a refusal were taken."""
    from web3.providers.base import JSONBaseProvider

    provider = w3.provider
    if not isinstance(provider, JSONBaseProvider):  # batching is defined for JSON providers only
        raise ChainError(f"{method} failed: the provider {type(provider).__name__} cannot send JSON-RPC batches")
    requests = [(cast("RPCEndpoint", method), list(p)) for p in params]  # NewType over str, as above
    responses = provider.make_batch_request(requests)
    if not isinstance(responses, list):  # a node refusing the whole batch answers one error
        raise ChainError(f"{method} failed for a batch of {len(requests)}: {responses!r}")
    if len(responses) != len(requests):
        raise ChainError(f"{method} failed: {len(requests)} calls in a batch, {len(responses)} answers")
    answers: list[Any] = []
    for response in responses:
        try:
            answers.append(_result(method, response))
        except RpcError as exc:
            answers.append(exc)
    return answers


def mined_receipt(w3: Web3, tx_hash: bytes) -> dict[str, Any] | None:
    """Status, block, gas used and created contract of a mined transaction, read raw (web3's
    formatting of a receipt with hundreds of logs costs more than the round trip); None
    while it is not mined. A provider's passing refusal (a rate limit answered as a JSON-RPC
    error) reads as "not mined yet": callers poll until their own deadline."""
    try:
        raw = rpc_call(w3, "eth_getTransactionReceipt", ["0x" + tx_hash.hex()])
    except RpcError:
        return None
    return _lean(raw, tx_hash)


def mined_receipts(w3: Web3, tx_hashes: Sequence[bytes]) -> list[dict[str, Any] | None]:
    """:func:`mined_receipt` for several transactions in one JSON-RPC batch (None for each
    not mined, or refused); all None when the node refuses the batch as a whole."""
    try:
        answers = rpc_answers(w3, "eth_getTransactionReceipt", [["0x" + h.hex()] for h in tx_hashes])
    except ChainError:
        return [None] * len(tx_hashes)
    return [None if isinstance(raw, RpcError) else _lean(raw, h) for raw, h in zip(answers, tx_hashes, strict=True)]


def _lean(raw: Any, tx_hash: bytes) -> dict[str, Any] | None:
    """The fields a writer needs of a raw receipt (None: not mined)."""
    if not raw:
        return None
    return {
        "status": int(raw["status"], 16),
        "blockNumber": int(raw["blockNumber"], 16),
        "gasUsed": int(raw["gasUsed"], 16),
        "transactionHash": tx_hash,
        "contractAddress": raw.get("contractAddress"),
    }
