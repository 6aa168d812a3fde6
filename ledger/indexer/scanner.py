"""Following the chain: `eth_getLogs` in adaptive ranges, only `confirmations` deep, with
block hashes remembered so a reorganisation is noticed and rewound.

The chain is the truth. Before each range the cursor's block is compared with the chain's
block at that number; when the chain no longer has it (a shorter chain: a node restarted
onto an older snapshot, `anvil_rollback`) or has another block there (a reorganisation),
the index rewinds to the common ancestor, the newest remembered block the chain still
holds, and goes on from there."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from web3 import Web3

from ledger.errors import ChainError
from ledger.indexer.decoding import LogDecoder
from ledger.indexer.handlers import LedgerEvent
from ledger.indexer.store import Cursor, CursorMoved, IndexStore, SetAside
from ledger.rpc import rpc_batch, rpc_call

MIN_RANGE = 1
MAX_RANGE = 50_000
TARGET_LOGS = 5_000  # per request: big enough to amortise the round trip, small enough for providers
#: Remembered blocks compared with the chain per JSON-RPC batch while looking for the common ancestor.
ANCESTOR_BATCH = 64
#: How many times in a row a range the chain changed under is read again before giving up.
#: A range another writer took (CursorMoved) does not count: that writer made progress, so
#: losing to it again and again still ends when the index is caught up.
CHANGED_RETRIES = 20


#: How providers say an eth_getLogs spans too many blocks (geth/Erigon/Infura, QuickNode,
#: Alchemy, Ankr, BlastAPI...), and how they say it returns too many logs.
_RANGE_CAP = re.compile(
    r"block range|range (is )?too (large|wide|big)|maximum block range|blocks? distance|range limit|"
    r"exceed(s|ed)? (the )?max(imum)? range|too many blocks|limited to an? [\d,]+ (block )?range|"
    r"up to an? [\d,]+ block range",
    re.IGNORECASE,
)
_RESULT_CAP = re.compile(
    r"more than \d+ results|too many (results|logs)|response size (exceeded|is too big)|"
    r"log response size|result(s)? (limit|set too large)|query exceeds max results|limit exceeded",
    re.IGNORECASE,
)
#: A suggested range in the error ("this block range should work: [0x1, 0x2]", Alchemy).
_SUGGESTED = re.compile(r"\[(0x[0-9a-fA-F]+),\s*(0x[0-9a-fA-F]+)\]")
_NUMBER = re.compile(r"(\d[\d,]*)")


@dataclass(frozen=True)
class ProviderLimit:
    """What a refused eth_getLogs said about the provider's caps."""

    kind: str  # "blocks" or "results"
    #: The block span the provider allows or suggests, when the message names one.
    blocks: int | None = None


def provider_limit(message: str, start: int) -> ProviderLimit | None:
    """The cap an eth_getLogs error names, or None when it names none."""
    suggested = _SUGGESTED.search(message)
    if suggested:
        low, high = (int(x, 16) for x in suggested.groups())
        if low == start and high >= low:
            return ProviderLimit("results" if _RESULT_CAP.search(message) else "blocks", high - low + 1)
    if _RESULT_CAP.search(message):
        return ProviderLimit("results")
    if _RANGE_CAP.search(message):
        numbers = [int(n.replace(",", "")) for n in _NUMBER.findall(message)]
        plausible = [n for n in numbers if 1 <= n <= 1_000_000]
        return ProviderLimit("blocks", max(plausible) if plausible else None)
    return None


#: An event's place in the chain: (block number, log index).
_chain_order = attrgetter("block_number", "log_index")


class ChainChanged(ChainError):
    """The chain changed between two requests of one range (blocks gone or replaced)."""


@dataclass
class ScanReport:
    """What one `sync` did."""

    events_added: int = 0
    ranges: int = 0
    reorgs: int = 0
    events_dropped: int = 0
    head: int = 0
    cursor: int = 0
    #: The lowest block the index was rewound to (the common ancestor), if it was.
    rewound_to: int | None = None

    def rewind_notice(self) -> str | None:
        """One sentence for the operator when the index was rewound, else None."""
        if self.rewound_to is None:
            return None
        return rewind_notice(self.rewound_to, self.events_dropped)


def rewind_notice(block: int, dropped: int) -> str:
    """What a rewind did, said the same way by `run`, `index` and the followers."""
    return f"index rewound to block {block:,}: dropped {dropped:,} event(s) the chain no longer holds"


class Scanner:
    """Moves the store's cursor towards `head - confirmations`."""

    def __init__(
        self,
        w3: Web3,
        address: str,
        deploy_block: int,
        store: IndexStore,
        confirmations: int = 0,
        max_range: int = MAX_RANGE,
        decoder: LogDecoder | None = None,
        finality: str = "latest",
        log_block_range: int | None = None,
        log_result_limit: int | None = None,
    ) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.deploy_block = deploy_block
        self.store = store
        self.confirmations = confirmations
        #: "latest" (minus `confirmations`), or the node's "safe"/"finalized" block.
        self.finality = finality
        self.chain_id = w3.eth.chain_id
        self.decoder = decoder or LogDecoder()
        self.max_range = min(max_range, log_block_range or max_range)
        self.range = min(2_000, self.max_range)
        self.log_result_limit = log_result_limit
        self.target_logs = min(TARGET_LOGS, log_result_limit // 2) if log_result_limit else TARGET_LOGS
        #: eth_getLogs the provider refused for its caps, by kind (for tests and operators).
        self.limits_hit: dict[str, int] = {"blocks": 0, "results": 0}
        self._changed = 0  # ranges read again in this sync because the chain or the cursor moved
        #: The next range's logs, asked for while the current range is applied: ((start,
        #: end), future of (end block hash seen before the logs were read, logs)).
        self._next: tuple[tuple[int, int], Future[tuple[str, list[dict[str, Any]]] | None]] | None = None
        self._fetcher: ThreadPoolExecutor | None = None

    def _rpc(self, method: str, params: list[Any]) -> Any:
        return rpc_call(self.w3, method, params)

    def _headers(self, numbers: list[int]) -> dict[int, tuple[str, int] | None]:
        """Hash and timestamp of each block, None for a block the chain does not have, in
        JSON-RPC batches."""
        found: dict[int, tuple[str, int] | None] = {}
        for start in range(0, len(numbers), 500):
            chunk = numbers[start : start + 500]
            blocks = rpc_batch(self.w3, "eth_getBlockByNumber", [[hex(n), False] for n in chunk])
            for number, block in zip(chunk, blocks, strict=True):
                found[number] = None if block is None else (block["hash"], int(block["timestamp"], 16))
        return found

    def _blocks(self, numbers: list[int]) -> dict[int, tuple[str, int]]:
        """Hash and timestamp of each block, which the chain must have: a missing one
        means the chain got shorter since the range was read (ChainChanged)."""
        found = self._headers(numbers)
        missing = [number for number, header in found.items() if header is None]
        if missing:
            raise ChainChanged(f"block {missing[0]} is not available from the node")
        return found  # type: ignore[return-value]

    def chain_head(self) -> int:
        """The chain's newest block."""
        return int(self._rpc("eth_blockNumber", []), 16)

    def safe_head(self) -> int:
        """The newest block deep enough to index: the node's safe or finalized block when
        so configured, else the head minus `confirmations`."""
        if self.finality in ("safe", "finalized"):
            block = self._rpc("eth_getBlockByNumber", [self.finality, False])
            if block is None:
                raise ChainError(f'the node does not report a {self.finality!r} block; set finality = "latest"')
            return int(block["number"], 16)
        return self.chain_head() - self.confirmations

    @classmethod
    def for_settings(cls, connection: Any, store: IndexStore, **kwargs: Any) -> Scanner:
        """A scanner for a LedgerConnection, with the settings' confirmations, finality and
        provider limits."""
        settings = connection.settings
        return cls(
            connection.w3,
            connection.address,
            connection.deploy_block,
            store,
            settings.confirmations,
            finality=settings.finality,
            log_block_range=settings.log_block_range,
            log_result_limit=settings.log_result_limit,
            **kwargs,
        )

    def _shrink(self, error: ChainError, start: int) -> None:
        """A smaller range after eth_getLogs was refused: the provider's block cap when it
        names one, else half (a result cap, or an error that names no cap)."""
        limit = provider_limit(str(error), start)
        if limit is not None:
            self.limits_hit[limit.kind] += 1
        if limit is not None and limit.kind == "blocks" and limit.blocks:
            self.max_range = min(self.max_range, limit.blocks)
            if self.range > limit.blocks:
                self.range = limit.blocks
                return
        if self.range == MIN_RANGE:
            raise error
        self.range = max(MIN_RANGE, self.range // 2)

    def common_ancestor(self, cursor: Cursor) -> Cursor:
        """The newest remembered block below `cursor` that the chain still holds, with the
        same hash (compared ANCESTOR_BATCH blocks per request); before the deployment block
        when none is left."""
        remembered = [(n, h) for n, h in self.store.stored_blocks_desc() if n < cursor.block_number]
        for start in range(0, len(remembered), ANCESTOR_BATCH):
            chunk = remembered[start : start + ANCESTOR_BATCH]
            on_chain = self._headers([number for number, _ in chunk])
            for number, stored_hash in chunk:
                header = on_chain[number]
                if header is not None and header[0] == stored_hash:
                    return Cursor(number, stored_hash)
        return Cursor(self.deploy_block - 1, "0x")

    def _check_reorg(self, cursor: Cursor, report: ScanReport) -> Cursor:
        """The cursor, or the common ancestor after rewinding what the chain no longer
        holds: the cursor's block is gone (a shorter chain) or is another block."""
        header = self._headers([cursor.block_number])[cursor.block_number]
        if header is not None and header[0] == cursor.block_hash:
            return cursor
        ancestor = self.common_ancestor(cursor)
        # Compare-and-set: another writer that moved the cursor meanwhile wins (CursorMoved).
        dropped = self.store.rewind(self.address, self.chain_id, ancestor, expected=cursor)
        report.reorgs += 1
        report.events_dropped += dropped
        report.rewound_to = ancestor.block_number if report.rewound_to is None else min(report.rewound_to, ancestor.block_number)
        return ancestor

    def step(self, report: ScanReport) -> bool:
        """Index one range; False when the store is caught up. A range the chain changed
        under, or whose cursor another writer moved, is read again (True)."""
        try:
            more = self._step(report)
        except CursorMoved:
            self._next = None  # asked for after a range that is read again: ask again
            return True
        except ChainChanged:
            self._next = None
            self._changed += 1
            if self._changed > CHANGED_RETRIES:
                raise
            return True
        except BaseException:
            self._next = None
            raise
        self._changed = 0
        return more

    def _step(self, report: ScanReport) -> bool:
        head = self.safe_head()
        report.head = head
        cursor = self.store.cursor(self.address, self.chain_id)
        if cursor is not None and cursor.block_number >= self.deploy_block:
            cursor = self._check_reorg(cursor, report)
        start = self.deploy_block if cursor is None or cursor.block_number < self.deploy_block else cursor.block_number + 1
        if start > head:
            report.cursor = start - 1
            return False
        end = min(head, start + self.range - 1)
        read = self._read_range(start, end)
        if read is None:
            return True  # the range was refused or cut short: read a smaller one
        end_hash_before, logs = read
        self._adapt_range(len(logs))
        if end < head:
            # Ask for the next range now: the node serves it while this one is applied.
            self._prefetch(end + 1, min(head, end + self.range))
        # Each log's block number parsed once per block, not once per log.
        number_of = {hex_number: int(hex_number, 16) for hex_number in {log["blockNumber"] for log in logs}}
        blocks = self._range_blocks(start, end, logs, number_of, end_hash_before)
        events, undecodable = self._decode(logs, number_of, blocks)
        report.events_added += self.store.apply_range(
            self.address,
            self.chain_id,
            events,
            [(n, h, t) for n, (h, t) in blocks.items()],
            Cursor(end, blocks[end][0]),
            undecodable,
            expected=cursor,
        )
        report.ranges += 1
        report.cursor = end
        return end < head

    def _read_range(self, start: int, end: int) -> tuple[str | None, list[dict[str, Any]]] | None:
        """The range's logs (with the hash its end block had before, when prefetched), or
        None after the range was made smaller: the provider refused it, or returned as
        many logs as its result cap, so the list may have been cut short."""
        try:
            end_hash_before, logs = self._logs(start, end)
        except ChainError as exc:
            # Providers cap ranges or results: take the cap they name, else halve; try again.
            self._shrink(exc, start)
            return None
        if self.log_result_limit and len(logs) >= self.log_result_limit and self.range > MIN_RANGE:
            # At the configured cap the provider may have cut the list short: read less.
            self.limits_hit["results"] += 1
            self.range = max(MIN_RANGE, self.range // 2)
            return None
        return end_hash_before, logs

    def _adapt_range(self, log_count: int) -> None:
        """Aim at `target_logs` per request: double the range after a sparse one, halve it
        after a dense one."""
        if log_count < self.target_logs // 4:
            self.range = min(self.max_range, self.range * 2)
        elif log_count > self.target_logs:
            self.range = max(MIN_RANGE, self.range // 2)

    def _range_blocks(
        self, start: int, end: int, logs: list[dict[str, Any]], number_of: dict[str, int], end_hash_before: str | None
    ) -> dict[int, tuple[str, int]]:
        """Hash and timestamp of the range's end block and of every block with a log, checked
        against what the logs were read from (ChainChanged when the chain moved meanwhile)."""
        numbers = sorted(set(number_of.values()) | {end})
        blocks = self._blocks(numbers)
        if end_hash_before is not None and blocks[end][0] != end_hash_before:
            # A prefetched range: its last block changed between the request and now.
            raise ChainChanged(f"the chain changed while blocks {start}-{end} were read")
        if any(
            blocks[number_of[hex_number]][0] != block_hash
            for hex_number, block_hash in {(log["blockNumber"], log["blockHash"]) for log in logs}
        ):
            # A reorganisation between eth_getLogs and the headers: read the range again.
            raise ChainChanged(f"the chain changed while blocks {start}-{end} were read")
        return blocks

    def _get_logs(self, start: int, end: int) -> list[dict[str, Any]]:
        return self._rpc("eth_getLogs", [{"address": self.address, "fromBlock": hex(start), "toBlock": hex(end)}])  # type: ignore[no-any-return]

    def _logs(self, start: int, end: int) -> tuple[str | None, list[dict[str, Any]]]:
        """The logs of blocks start..end: the prefetched answer when it is for exactly this
        range (with the hash block `end` had before it was read), else asked for now (None)."""
        pending, self._next = self._next, None
        if pending is not None and pending[0] == (start, end):
            prefetched = pending[1].result()
            if prefetched is not None:
                return prefetched
        # No prefetch, one for another range (a rewind, a grown head, a smaller range:
        # its answer is dropped), or one whose end block could not be read: ask now.
        return None, self._get_logs(start, end)

    def _prefetch(self, start: int, end: int) -> None:
        """Ask for blocks start..end's logs in the background. The hash of block `end` is
        read first: if the chain still has that block when the range is applied, the logs
        were read from the chain being indexed (a reorganisation replaces a suffix of the
        chain, so a changed block in the range changes block `end` too)."""
        if self._fetcher is None:
            self._fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-prefetch")

        def fetch() -> tuple[str, list[dict[str, Any]]] | None:
            try:
                header = self._headers([end])[end]
            except ChainError:
                header = None
            if header is None:
                return None  # the chain changed or the node refused: read it when its turn comes
            return header[0], self._get_logs(start, end)

        self._next = ((start, end), self._fetcher.submit(fetch))

    def _decode(
        self, logs: list[dict[str, Any]], number_of: dict[str, int], blocks: dict[int, tuple[str, int]]
    ) -> tuple[list[LedgerEvent], list[SetAside]]:
        """The range's events in chain order, and the logs this ABI cannot read (set aside)."""
        decode = self.decoder.decode
        events = []
        undecodable = []
        for log in logs:
            number = number_of[log["blockNumber"]]
            try:
                decoded = decode(log)
            except Exception as exc:  # noqa: BLE001 - a log this ABI cannot read is set aside, not fatal
                name = self.decoder.name_of(log["topics"][0]) if log["topics"] else None
                undecodable.append(
                    SetAside(
                        log["transactionHash"],
                        int(log["logIndex"], 16),
                        number,
                        name or (log["topics"][0] if log["topics"] else "(no topic)"),
                        "decode",
                        f"cannot decode the log: {type(exc).__name__}: {exc}"[:1000],
                    )
                )
                continue
            if decoded is not None:
                events.append(
                    LedgerEvent(
                        decoded[0],
                        decoded[1],
                        log["transactionHash"],
                        int(log["logIndex"], 16),
                        number,
                        log["blockHash"],
                        blocks[number][1],
                    )
                )
        # Nodes return logs in chain order; sorting keeps that true for any node (and
        # costs one pass when it already holds).
        events.sort(key=_chain_order)
        return events, undecodable

    def readmit_undecoded(self, report: ScanReport) -> None:
        """Decode again the logs an older decoder set aside (e.g. a recall whose reason
        was not UTF-8, before strings were decoded leniently) and take in those that
        decode now: without this they would stay hidden behind the cursor until a rebuild."""
        pending = self.store.undecoded()
        if not pending:
            return
        events = []
        receipts: dict[str, Any] = {}
        for item in pending:
            if item.tx_hash not in receipts:
                receipts[item.tx_hash] = self._rpc("eth_getTransactionReceipt", [item.tx_hash])
            receipt = receipts[item.tx_hash]
            log = next((x for x in (receipt or {}).get("logs", []) if int(x["logIndex"], 16) == item.log_index), None)
            if log is None or log["address"].lower() != self.address.lower():
                continue  # reorganised away: the rewind logic owns that case
            try:
                decoded = self.decoder.decode(log)
            except Exception:  # noqa: BLE001 - still undecodable: it stays set aside
                continue
            if decoded is None:
                continue
            number = int(log["blockNumber"], 16)
            timestamp = self._blocks([number])[number][1]
            events.append(
                LedgerEvent(decoded[0], decoded[1], log["transactionHash"], item.log_index, number, log["blockHash"], timestamp)
            )
        report.events_added += self.store.readmit(sorted(events, key=_chain_order))

    def sync(self, progress: Callable[[ScanReport], None] | None = None) -> ScanReport:
        """Catch up with the chain (first taking in set-aside logs that decode now)."""
        report = ScanReport()
        self._changed = 0
        self._next = None
        self.readmit_undecoded(report)
        try:
            while self.step(report):
                if progress:
                    progress(report)
        finally:
            self._next = None
        self.store.mark_checked(report.head)
        if progress:
            progress(report)
        return report
