"""/healthz: is the chain reachable, and does the index follow it (neither behind nor ahead)?"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ApiContext, ContextDep
from api.schemas import ChainHealth, Health, IndexHealth, IndexPosition
from ledger.indexer.store import IndexFreshness

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


@dataclass(frozen=True)
class IndexView:
    """What /healthz reads from the index store: its freshness and the events set aside,
    or why the database did not answer."""

    freshness: IndexFreshness | None
    set_aside: int
    database_error: str | None

    @property
    def block(self) -> int | None:
        """The index's cursor block (None when the index is empty or unreadable)."""
        return self.freshness.block_number if self.freshness else None


def index_view(context: ApiContext) -> IndexView:
    """The index's side of the health check; a database that fails is reported, not raised."""
    try:
        freshness = context.model.freshness()
        set_aside, _ = context.model.set_aside(0)
    except SQLAlchemyError as exc:
        return IndexView(None, 0, f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
    return IndexView(freshness, set_aside, None)


def _compare(index: IndexView, chain: ChainView, confirmations: int) -> tuple[IndexPosition | None, str | None]:
    """Where the index stands against a chain that answered: (position, the problem if any)."""
    indexed, head, freshness = index.block, chain.head, index.freshness
    if indexed is None or head is None or freshness is None:
        return None, None
    position = _position(indexed, freshness.block_hash, head, chain.block_hash)
    if position == "ahead" and indexed > head:
        return position, (
            f"the index is ahead of the chain: it holds blocks up to {indexed} but the chain's head is "
            f"{head} (the chain lost blocks); the follower rewinds the index on its next sync"
        )
    if position == "ahead":
        return position, (
            f"the index is ahead of the chain: its block {indexed} is not the chain's block {indexed} "
            "(the chain changed); the follower rewinds the index on its next sync"
        )
    lag = max(0, head - indexed)
    if lag > confirmations + MAX_LAG_BLOCKS:
        return "behind", f"the index is {lag} blocks behind the chain: is `provenance index --follow` running?"
    return position, None


def _problems(rpc_url: str, index: IndexView, chain: ChainView, comparison_problem: str | None) -> list[str]:
    """Why the service is unhealthy, in the order a person should look (empty: healthy)."""
    problems: list[str] = []
    if chain.head is None:
        problems.append(f"the chain at {rpc_url} does not answer ({chain.error})")
    if index.database_error is not None:
        problems.append(f"the index database does not answer ({index.database_error})")
    elif index.block is None:
        problems.append("the index is empty: run `provenance index` (or `provenance run`)")
    elif comparison_problem is not None:
        problems.append(comparison_problem)
    return problems


def _warnings(index: IndexView) -> list[str]:
    """What is wrong without making the service unhealthy."""
    if not index.set_aside:
        return []
    return [
        f"the indexer set aside {index.set_aside} event(s) it could not decode or apply; "
        "the index may be incomplete: see /api/v1/index"
    ]


def health_report(rpc_url: str, confirmations: int, index: IndexView, chain: ChainView) -> Health:
    """The /healthz answer from what the index and the chain said."""
    indexed, head, freshness = index.block, chain.head, index.freshness
    position, comparison_problem = _compare(index, chain, confirmations)
    problems = _problems(rpc_url, index, chain, comparison_problem)
    warnings = _warnings(index)
    lag = ahead = None
    if head is not None and indexed is not None:
        lag, ahead = max(0, head - indexed), max(0, indexed - head)
    return Health(
        status="unhealthy" if problems else "degraded" if warnings else "ok",
        problems=problems,
        warnings=warnings,
        chain=ChainHealth(rpc_url=rpc_url, reachable=head is not None, head=head),
        index=IndexHealth(
            block=indexed,
            lag_blocks=lag,
            ahead_blocks=ahead,
            position=position,
            head_seen=freshness.head_seen if freshness else None,
            checked_at=freshness.checked_at if freshness else None,
            set_aside=index.set_aside,
            database_reachable=index.database_error is None,
        ),
    )


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Unhealthy: `problems` says why"}},
    summary="Chain reachability, index position and events set aside (503 when unhealthy)",
)
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
    settings = context.settings
    index = index_view(context)
    report = health_report(settings.rpc_url, settings.confirmations, index, chain_view(settings.rpc_url, index.block))
    return JSONResponse(report.model_dump(mode="json"), status_code=503 if report.problems else 200)


def _position(indexed: int, indexed_hash: str, head: int, chain_hash: str | None) -> IndexPosition:
    """`ahead` when the index holds a block the chain does not (beyond its head, or another
    block at the same number), else `following` (how far behind is judged by the caller).
    A cursor before the ledger's first block (hash "0x") holds no block to compare."""
    if indexed > head:
        return "ahead"
    if indexed_hash != "0x" and chain_hash is not None and chain_hash != indexed_hash:
        return "ahead"
    return "following"
