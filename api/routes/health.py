"""/healthz: is the chain reachable, and does the index follow it (neither behind nor ahead)?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ContextDep

router = APIRouter(tags=["health"])

#: The index may trail the chain by this many blocks (beyond `confirmations`) and still be healthy.
MAX_LAG_BLOCKS = 10
#: A health check answers quickly, or says the chain does not.
RPC_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class ChainView:
    """What /healthz asks the chain: its head, and its block at the index's cursor."""

    head: int | None
    block_hash: str | None  # the chain's block at the cursor's number (None: it has none there)
    error: str | None  # why the chain could not be read


def chain_view(rpc_url: str, block: int | None) -> ChainView:
    """The chain's head and the hash of its block number `block`, in one JSON-RPC batch
    (one round trip, short timeout)."""
    calls = [{"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []}]
    if block is not None and block >= 0:
        calls.append({"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": [hex(block), False]})
    try:
        response = requests.post(rpc_url, json=calls, timeout=RPC_TIMEOUT_SECONDS)
        response.raise_for_status()
        answers = {item["id"]: item for item in response.json()}
        head = int(answers[0]["result"], 16)
        found = answers.get(1, {}).get("result")
        return ChainView(head, found["hash"] if found else None, None)
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"; say which
        return ChainView(None, None, f"{type(exc).__name__}: {exc}"[:300])


@router.get("/healthz", summary="Chain reachability, index position and events set aside (503 when unhealthy)")
def healthz(context: ContextDep) -> JSONResponse:
    """`ok` when the chain answers and the index follows it: at most MAX_LAG_BLOCKS
    beyond the confirmations setting behind, and not ahead (its newest block is the
    chain's block at that number). Otherwise 503 `unhealthy`, `problems` saying which:
    the chain does not answer; the index database does not answer; the index is
    `ahead` (it holds blocks the chain does not: the chain got shorter or changed, and
    the follower rewinds it on its next sync); or `behind`. `index.position` says the
    same in one word. `degraded` (still 200: the index follows the chain and pages are
    served) when the indexer set events aside that it could not decode or apply:
    `index.set_aside` counts them, `warnings` says so, and /api/v1/index lists them.
    Pages keep being served from the index either way."""
    problems: list[str] = []
    try:
        freshness = context.model.freshness()
        set_aside, _ = context.model.set_aside(0)
        database_error = None
    except SQLAlchemyError as exc:
        freshness, set_aside = None, 0
        database_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    indexed = freshness.block_number if freshness else None
    view = chain_view(context.settings.rpc_url, indexed)
    head = view.head
    lag = None if head is None or indexed is None else max(0, head - indexed)
    position = None
    if head is None:
        problems.append(f"the chain at {context.settings.rpc_url} does not answer ({view.error})")
    if database_error is not None:
        problems.append(f"the index database does not answer ({database_error})")
    elif indexed is None:
        problems.append("the index is empty: run `provenance index` (or `provenance run`)")
    elif head is not None and freshness is not None:
        position = _position(freshness.block_number, freshness.block_hash, head, view.block_hash)
        if position == "ahead" and indexed > head:
            problems.append(f"the index is ahead of the chain: it holds blocks up to {indexed} but the chain's head is "
                            f"{head} (the chain lost blocks); the follower rewinds the index on its next sync")  # fmt: skip
        elif position == "ahead":
            problems.append(f"the index is ahead of the chain: its block {indexed} is not the chain's block {indexed} "
                            "(the chain changed); the follower rewinds the index on its next sync")  # fmt: skip
        elif lag is not None and lag > context.settings.confirmations + MAX_LAG_BLOCKS:
            position = "behind"
            problems.append(f"the index is {lag} blocks behind the chain: is `provenance index --follow` running?")
    warnings: list[str] = []
    if set_aside:
        warnings.append(f"the indexer set aside {set_aside} event(s) it could not decode or apply; "
                        "the index may be incomplete: see /api/v1/index")  # fmt: skip
    body: dict[str, Any] = {
        "status": "unhealthy" if problems else "degraded" if warnings else "ok",
        "problems": problems,
        "warnings": warnings,
        "chain": {"rpc_url": context.settings.rpc_url, "reachable": head is not None, "head": head},
        "index": {"block": indexed, "lag_blocks": lag, "ahead_blocks": None if head is None or indexed is None else max(0, indexed - head),
                  "position": position, "head_seen": freshness.head_seen if freshness else None,
                  "checked_at": freshness.checked_at if freshness else None, "set_aside": set_aside,
                  "database_reachable": database_error is None},
    }  # fmt: skip
    return JSONResponse(body, status_code=200 if not problems else 503)


def _position(indexed: int, indexed_hash: str, head: int, chain_hash: str | None) -> str:
    """`ahead` when the index holds a block the chain does not (beyond its head, or another
    block at the same number), else `following` (how far behind is judged by the caller).
    A cursor before the ledger's first block (hash "0x") holds no block to compare."""
    if indexed > head:
        return "ahead"
    if indexed_hash != "0x" and chain_hash is not None and chain_hash != indexed_hash:
        return "ahead"
    return "following"
