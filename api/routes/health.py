"""/healthz: is the chain reachable, and how far behind is the index?"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from web3 import HTTPProvider, Web3

from api.deps import ContextDep

router = APIRouter(tags=["health"])

#: The index may trail the chain by this many blocks (beyond `confirmations`) and still be healthy.
MAX_LAG_BLOCKS = 10


def chain_head(rpc_url: str) -> tuple[int | None, str | None]:
    """The chain's newest block number, or the reason it could not be read."""
    try:
        return Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 2})).eth.block_number, None
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"; say which
        return None, f"{type(exc).__name__}: {exc}"[:300]


@router.get("/healthz", summary="Chain reachability, index lag and events set aside (503 when unhealthy)")
def healthz(context: ContextDep) -> JSONResponse:
    """`ok` when the chain answers and the index trails it by at most MAX_LAG_BLOCKS
    beyond the confirmations setting; otherwise 503 `unhealthy` with the reasons.
    `degraded` (still 200: the index follows the chain and pages are served) when the
    indexer set events aside that it could not decode or apply: `index.set_aside` counts
    them, `warnings` says so, and /api/v1/index lists them. Pages keep being served from
    the index either way."""
    head, error = chain_head(context.settings.rpc_url)
    freshness = context.model.freshness()
    indexed = freshness.block_number if freshness else None
    lag = None if head is None or indexed is None else max(0, head - indexed)
    problems: list[str] = []
    if head is None:
        problems.append(f"the chain at {context.settings.rpc_url} does not answer ({error})")
    if indexed is None:
        problems.append("the index is empty: run `provenance index` (or `provenance run`)")
    elif lag is not None and lag > context.settings.confirmations + MAX_LAG_BLOCKS:
        problems.append(f"the index is {lag} blocks behind the chain: is `provenance index --follow` running?")
    set_aside, _ = context.model.set_aside(0)
    warnings: list[str] = []
    if set_aside:
        warnings.append(f"the indexer set aside {set_aside} event(s) it could not decode or apply; "
                        "the index may be incomplete: see /api/v1/index")  # fmt: skip
    body: dict[str, Any] = {
        "status": "unhealthy" if problems else "degraded" if warnings else "ok",
        "problems": problems,
        "warnings": warnings,
        "chain": {"rpc_url": context.settings.rpc_url, "reachable": head is not None, "head": head},
        "index": {"block": indexed, "lag_blocks": lag, "head_seen": freshness.head_seen if freshness else None,
                  "checked_at": freshness.checked_at if freshness else None, "set_aside": set_aside},
    }  # fmt: skip
    return JSONResponse(body, status_code=200 if not problems else 503)
