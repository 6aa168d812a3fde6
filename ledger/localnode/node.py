"""The durable local chain: a JSON-RPC front for anvil that journals every state-changing
request (fsynced before anvil sees it), snapshots the state atomically, and on start
rebuilds the chain from the newest good snapshot plus the journal after it.

Why this holds: anvil keeps its state in memory. Everything that changes it reaches it
through this node, one request at a time, after its journal entry is on disk; so whatever a
client could have seen (a transaction hash, a receipt, a block) follows from entries that
survive any crash. Replaying them is deterministic as long as each block gets the same
timestamp, so the node chooses every block's timestamp itself (the wall clock, never
behind the previous block), records it in the entry, and waits for the block to be mined
before the next write: blocks, their hashes and the ledger's address come back identical.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ledger.localnode.anvil import Anvil, RpcError
from ledger.localnode.journal import Entry, Journal, fsync_directory
from ledger.localnode.snapshots import Snapshot, SnapshotStore

#: Methods that only read (or sign with an unlocked key): forwarded as they are.
READ_PREFIXES = ("eth_", "net_", "web3_", "txpool_", "debug_", "trace_", "ots_")
READ_METHODS = frozenset({"anvil_nodeInfo", "anvil_metadata", "anvil_dumpState"})
#: Methods that send a transaction, which automine puts in a block of its own.
SENDS = frozenset({"eth_sendTransaction", "eth_sendRawTransaction", "eth_sendRawTransactionSync", "eth_sendTransactionSync"})
#: Methods that set the next block's time (the client's choice is kept, not replaced).
SETS_NEXT_TIME = frozenset({"evm_setNextBlockTimestamp", "anvil_setNextBlockTimestamp"})
#: The legacy state file `--state` wrote before the journal existed, imported once.
LEGACY_STATE = "state.json"


def is_read(method: str) -> bool:
    """Whether a request leaves the chain's state as it is (no journal entry needed)."""
    return method in READ_METHODS or (method.startswith(READ_PREFIXES) and method not in SENDS)


def mines_one_block(method: str, params: list[Any]) -> bool:
    """Whether a request mines one block whose time the node should choose."""
    return method in SENDS or (method == "evm_mine" and not any(p is not None for p in params))


class NodeError(Exception):
    """The node cannot start with the data it has; the message says what to do."""


@dataclass
class Recovery:
    """What the node rebuilt at start: the snapshot it loaded (block, journal position),
    how many journal entries (and transactions among them) it replayed, the head after."""

    snapshot_block: int | None = None
    snapshot_seq: int = 0
    replayed: int = 0
    transactions: int = 0
    head: int = 0
    imported_legacy_state: bool = False
    damaged_snapshots: list[str] = field(default_factory=list)
    fresh: bool = False

    def sentence(self) -> str:
        """One line for `provenance run`."""
        if self.fresh:
            return "new chain (nothing saved yet)"
        parts = []
        if self.imported_legacy_state:
            parts.append("imported the earlier state.json")
        where = f"block {self.snapshot_block}" if self.snapshot_block is not None else "genesis"
        parts.append(f"restored to {where}; replayed {self.transactions} transaction(s) "
                     f"({self.replayed} journal entries); head is block {self.head}")  # fmt: skip
        if self.damaged_snapshots:
            parts.append(f"skipped {len(self.damaged_snapshots)} damaged snapshot(s)")
        return "; ".join(parts)


class DurableNode:
    """Journal, snapshots and anvil, with the rules that keep them consistent."""

    def __init__(self, chain_dir: Path, anvil: Anvil, snapshot_seconds: float = 30.0, snapshot_entries: int = 2000, keep: int = 3) -> None:
        self.chain_dir = chain_dir
        self.anvil = anvil
        self.journal = Journal(chain_dir / "journal")
        self.snapshots = SnapshotStore(chain_dir / "snapshots", keep)
        self.snapshot_seconds = snapshot_seconds
        self.snapshot_entries = snapshot_entries
        self.write_lock = threading.Lock()
        self._snapshot_lock = threading.Lock()
        self.snapshot_seq = 0
        self.snapshot_at = time.monotonic()
        # The clock the node gives blocks: wall time plus what evm_increaseTime/evm_setTime
        # asked for, never behind the last block; a client's evm_setNextBlockTimestamp wins.
        self.time_offset = 0
        self.last_timestamp: int | None = None
        self.client_chose_time = False

    # ------------------------------------------------------------------ start

    def genesis_timestamp(self, requested: int | None) -> int:
        """The genesis time of this chain (`requested`, else now): fixed at its first start
        and kept in genesis.json, since a replay from genesis must rebuild the same block 0."""
        record = self.chain_dir / "genesis.json"
        if record.exists():
            return int(json.loads(record.read_text())["timestamp"])
        chosen = int(time.time()) if requested is None else requested
        temporary = record.with_suffix(".json.tmp")
        with temporary.open("w") as handle:
            handle.write(json.dumps({"timestamp": chosen}))
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(record)
        fsync_directory(self.chain_dir)
        return chosen

    def recover(self, requested_genesis: int | None) -> Recovery:
        """Rebuild the chain: the newest snapshot that loads, then every journal entry
        after it. Refuses (NodeError) rather than start a chain missing confirmed writes."""
        self.chain_dir.mkdir(parents=True, exist_ok=True)
        genesis = self.genesis_timestamp(requested_genesis)
        self.snapshots.remove_temporaries()
        recovery = Recovery()
        base = self._load_newest_snapshot(genesis, recovery)
        if base is None:
            legacy = self.chain_dir / LEGACY_STATE
            if legacy.exists() and not self.journal.segments():
                self._import_legacy(genesis, legacy)
                recovery.imported_legacy_state = True
            else:
                self.anvil.start(genesis)
        else:
            recovery.snapshot_block, recovery.snapshot_seq = base.block, base.seq
        expected = recovery.snapshot_seq + 1
        for entry in self.journal.entries_after(recovery.snapshot_seq):
            if entry.seq != expected:
                raise NodeError(
                    f"the chain's journal in {self.journal.directory} jumps from entry {expected - 1} to "
                    f"{entry.seq} (the snapshot that covered the gap is missing or damaged); the node will "
                    "not start a chain without those writes. Restore the snapshots directory from a backup."
                    + (f" Snapshots that did not load: {'; '.join(recovery.damaged_snapshots)}" if recovery.damaged_snapshots else "")
                )
            self.apply(entry)
            recovery.replayed += 1
            recovery.transactions += entry.method in SENDS
            expected += 1
        self.journal.open_for_append(expected - 1)
        recovery.fresh = base is None and recovery.replayed == 0 and not recovery.imported_legacy_state
        head, last = self.anvil.head()
        recovery.head = head
        # A restart must not leave the chain's clock where the last block left it.
        self.anvil.call("evm_setTime", [max(int(time.time()), last)])
        self.last_timestamp = None
        if recovery.replayed or base is None:
            self.snapshot()  # a restart that replayed is cheap the next time
        else:
            self.snapshot_seq = base.seq
        return recovery

    def _load_newest_snapshot(self, genesis: int, recovery: Recovery) -> Snapshot | None:
        for snapshot in self.snapshots.list():
            try:
                self._start_on(genesis, snapshot.read())
                return snapshot
            except (ValueError, RpcError) as exc:
                recovery.damaged_snapshots.append(f"{snapshot.path.name}: {exc}")
                self.anvil.stop()
        return None

    def _start_on(self, genesis: int, state: bytes) -> None:
        """Start anvil on a snapshot's state (unpacked to a file anvil reads at start)."""
        unpacked = self.chain_dir / "loading.json"
        try:
            unpacked.write_bytes(gzip.decompress(state))
            self.anvil.start(genesis, state_file=unpacked)
        finally:
            unpacked.unlink(missing_ok=True)

    def _import_legacy(self, genesis: int, legacy: Path) -> None:
        """Load the state file an earlier version kept (anvil's --state), once."""
        try:
            self.anvil.start(genesis, state_file=legacy)
        except RpcError as exc:
            raise NodeError(
                f"{legacy} (the chain state saved by an earlier version) cannot be loaded ({exc}; see "
                f"{self.chain_dir / 'anvil.log'}); move it aside to start a new chain, or restore it from a backup"
            ) from exc
        self.snapshot()
        legacy.replace(legacy.with_name(LEGACY_STATE + ".imported"))

    # ------------------------------------------------------------------ writes

    def next_timestamp(self) -> int:
        """The time of the next block: wall time (as the client moved it), not before the last."""
        if self.last_timestamp is None:
            self.last_timestamp = self.anvil.head()[1]
        return max(int(time.time()) + self.time_offset, self.last_timestamp)

    def apply(self, entry: Entry, request_id: Any = 1) -> dict[str, Any]:
        """Send a journalled request to anvil (its chosen block time first); for a
        transaction, wait until it is mined so the next entry's time applies to the next block."""
        if entry.timestamp is not None:
            self.anvil.call("evm_setNextBlockTimestamp", [entry.timestamp])
        response = self.anvil.request(entry.method, entry.params, request_id)
        if entry.method in SENDS and isinstance(response.get("result"), str):
            self.anvil.wait_mined(response["result"])
        return response

    def write(self, method: str, params: list[Any], request_id: Any) -> dict[str, Any]:
        """Journal a state-changing request (fsync), then apply it; one at a time."""
        with self.write_lock:
            timestamp = None
            mines = mines_one_block(method, params)
            if mines and not self.client_chose_time:
                timestamp = self.next_timestamp()
            try:
                entry = self.journal.append(method, params, timestamp)
            except OSError as exc:
                return {"jsonrpc": "2.0", "id": request_id,
                        "error": {"code": -32603, "message": f"the local chain cannot journal the request ({exc}); nothing was sent"}}  # fmt: skip
            response = self.apply(entry, request_id)
            self._track_time(method, params, timestamp, mines, "error" not in response)
        self._maybe_snapshot()
        return response

    def _track_time(self, method: str, params: list[Any], timestamp: int | None, mines: bool, ok: bool) -> None:
        if not ok:
            return
        if method in SETS_NEXT_TIME:
            self.client_chose_time = True
        elif mines:
            self.client_chose_time = False
            self.last_timestamp = timestamp
        elif method == "evm_increaseTime":
            self.time_offset += _int(params[0])
        elif method == "evm_setTime":
            self.time_offset = _int(params[0]) - int(time.time())
        else:
            self.last_timestamp = None  # reverts, rollbacks...: read the head again

    # ------------------------------------------------------------------ snapshots

    def _maybe_snapshot(self) -> None:
        pending = self.journal.last_seq - self.snapshot_seq
        if pending >= self.snapshot_entries or (pending and time.monotonic() - self.snapshot_at >= self.snapshot_seconds):
            if not self._snapshot_lock.locked():
                threading.Thread(target=self.snapshot, name="snapshot", daemon=True).start()

    def snapshot(self, wait: bool = False) -> Snapshot | None:
        """Dump the state between two writes (the journal rolls over to a new segment at
        the same point), write it atomically, then drop what no kept snapshot needs.
        Returns None when another snapshot is being taken (and `wait` is false)."""
        if not self._snapshot_lock.acquire(blocking=wait):
            return None
        try:
            with self.write_lock:
                seq = self.journal.last_seq
                state = bytes.fromhex(str(self.anvil.call("anvil_dumpState", []))[2:])
                block = self.anvil.head()[0]
                self.journal.rotate()
            self.snapshot_at = time.monotonic()
            snapshot = self.snapshots.write(seq, block, state)
            self.snapshot_seq = seq
            kept = self.snapshots.list()
            self.journal.prune_through(kept[-1].seq)
            return snapshot
        finally:
            self._snapshot_lock.release()

    def run_snapshots(self, stop: threading.Event) -> None:
        """Snapshot a quiet chain that has unsaved entries every `snapshot_seconds`."""
        while not stop.wait(min(1.0, self.snapshot_seconds / 4)):
            self._maybe_snapshot()

    def record(self, recovery: Recovery) -> None:
        """Leave what the start recovered where the process that started us reads it."""
        path = self.chain_dir / "recovery.json"
        path.with_suffix(".tmp").write_text(json.dumps(asdict(recovery) | {"sentence": recovery.sentence()}))
        path.with_suffix(".tmp").replace(path)


def _int(value: Any) -> int:
    """A JSON-RPC quantity given as a number or a hex string."""
    return int(value, 16) if isinstance(value, str) and value.startswith("0x") else int(value)
