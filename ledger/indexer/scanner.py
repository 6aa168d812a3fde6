"""Following the chain: `eth_getLogs` in adaptive ranges, only `confirmations` deep, with
block hashes remembered so a reorganisation is noticed and rewound."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from ledger.errors import ChainError
from ledger.indexer.decoding import LogDecoder
from ledger.indexer.handlers import LedgerEvent
from ledger.indexer.store import Cursor, IndexStore, SetAside

MIN_RANGE = 1
MAX_RANGE = 50_000
TARGET_LOGS = 5_000  # per request: big enough to amortise the round trip, small enough for providers


@dataclass
class ScanReport:
    """What one `sync` did."""

    events_added: int = 0
    ranges: int = 0
    reorgs: int = 0
    events_dropped: int = 0
    head: int = 0
    cursor: int = 0


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
    ) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.deploy_block = deploy_block
        self.store = store
        self.confirmations = confirmations
        self.chain_id = w3.eth.chain_id
        self.decoder = decoder or LogDecoder()
        self.max_range = max_range
        self.range = min(2_000, max_range)

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in response:
            raise ChainError(f"{method} failed: {response['error'].get('message', response['error'])}")
        return response["result"]

    def _blocks(self, numbers: list[int]) -> dict[int, tuple[str, int]]:
        """Hash and timestamp of each block, in JSON-RPC batches."""
        found: dict[int, tuple[str, int]] = {}
        for start in range(0, len(numbers), 500):
            chunk = numbers[start : start + 500]
            responses = self.w3.provider.make_batch_request([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])  # type: ignore[list-item]
            for number, response in zip(chunk, responses):
                block = response.get("result") if isinstance(response, dict) else None
                if block is None:
                    raise ChainError(f"block {number} is not available from the node")
                found[number] = (block["hash"], int(block["timestamp"], 16))
        return found

    def safe_head(self) -> int:
        """The newest block deep enough to index."""
        return int(self._rpc("eth_blockNumber", []), 16) - self.confirmations

    def _check_reorg(self, cursor: Cursor, report: ScanReport) -> Cursor:
        """The cursor, or the common ancestor after rewinding a reorganisation."""
        chain_hash = self._blocks([cursor.block_number])[cursor.block_number][0]
        if chain_hash == cursor.block_hash:
            return cursor
        ancestor = Cursor(self.deploy_block - 1, "0x")
        for number, stored_hash in self.store.stored_blocks_desc():
            if number >= cursor.block_number:
                continue
            if self._blocks([number])[number][0] == stored_hash:
                ancestor = Cursor(number, stored_hash)
                break
        report.reorgs += 1
        report.events_dropped += self.store.rewind(self.address, self.chain_id, ancestor)
        return ancestor

    def step(self, report: ScanReport) -> bool:
        """Index one range; False when the store is caught up."""
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
        try:
            logs = self._rpc("eth_getLogs", [{"address": self.address, "fromBlock": hex(start), "toBlock": hex(end)}])
        except ChainError:
            # Providers cap ranges or results: halve and try again.
            if self.range == MIN_RANGE:
                raise
            self.range = max(MIN_RANGE, self.range // 2)
            return True
        numbers = sorted({int(log["blockNumber"], 16) for log in logs} | {end})
        blocks = self._blocks(numbers)
        events = []
        undecodable = []
        for log in logs:
            number = int(log["blockNumber"], 16)
            try:
                decoded = self.decoder.decode(log)
            except Exception as exc:  # noqa: BLE001 - a log this ABI cannot read is set aside, not fatal
                name = self.decoder.name_of(log["topics"][0]) if log["topics"] else None
                undecodable.append(SetAside(log["transactionHash"], int(log["logIndex"], 16), number,
                                            name or (log["topics"][0] if log["topics"] else "(no topic)"), "decode",
                                            f"cannot decode the log: {type(exc).__name__}: {exc}"[:1000]))  # fmt: skip
                continue
            if decoded is None:
                continue
            events.append(
                LedgerEvent(decoded[0], decoded[1], log["transactionHash"], int(log["logIndex"], 16), number,
                            log["blockHash"], blocks[number][1])  # fmt: skip
            )
        events.sort(key=lambda e: (e.block_number, e.log_index))
        report.events_added += self.store.apply_range(
            self.address, self.chain_id, events, [(n, h, t) for n, (h, t) in blocks.items()], Cursor(end, blocks[end][0]),
            undecodable,
        )
        report.ranges += 1
        report.cursor = end
        # Adapt: aim at TARGET_LOGS per request.
        if len(logs) < TARGET_LOGS // 4:
            self.range = min(self.max_range, self.range * 2)
        elif len(logs) > TARGET_LOGS:
            self.range = max(MIN_RANGE, self.range // 2)
        return end < head

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
            events.append(LedgerEvent(decoded[0], decoded[1], log["transactionHash"], item.log_index, number, log["blockHash"], timestamp))
        report.events_added += self.store.readmit(sorted(events, key=lambda e: (e.block_number, e.log_index)))

    def sync(self, progress: Callable[[ScanReport], None] | None = None) -> ScanReport:
        """Catch up with the chain (first taking in set-aside logs that decode now)."""
        report = ScanReport()
        self.readmit_undecoded(report)
        while self.step(report):
            if progress:
                progress(report)
        self.store.mark_checked(report.head)
        if progress:
            progress(report)
        return report
