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

A transaction sent alone is mined in a block of its own (anvil's automine). A JSON-RPC batch
of several sends is mined as one block: one journal entry (one line, one checksum, so a
crash keeps all of it or none), one fsync, and one block whose state root anvil computes
once. That root is the cost of a block, and it grows with the chain's storage (18 ms at
10,000 lots, 82 ms at 60,000, measured): the bulk writer sends its transactions in batches,
so a large import pays it per batch, not per transaction.
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

from ledger.localnode.anvil import BLOCK_GAS_LIMIT, Anvil, RpcError
from ledger.localnode.journal import Entry, Journal, fsync_directory
from ledger.localnode.snapshots import Snapshot, SnapshotStore

#: Methods that only read (or sign with an unlocked key): forwarded as they are.
READ_PREFIXES = ("eth_", "net_", "web3_", "txpool_", "debug_", "trace_", "ots_")
READ_METHODS = frozenset({"anvil_nodeInfo", "anvil_metadata", "anvil_dumpState"})
#: Methods that send a transaction, which automine puts in a block of its own.
SENDS = frozenset(
    {
        "eth_sendTransaction",
        "eth_sendRawTransaction",
        "eth_sendRawTransactionSync",
        "eth_sendTransactionSync",
        "eth_sendUnsignedTransaction",  # anvil's, for an impersonated account
    }
)
#: Sends a batch may group into one block (the Sync ones wait for a block of their own).
GROUPABLE = frozenset({"eth_sendTransaction", "eth_sendRawTransaction"})
#: The journal's method for a batch of sends mined as one block (params: [[method, params], ...]).
#: Not a JSON-RPC method: a client asking for it is refused.
BLOCK_OF_SENDS = "localnode_blockOfSends"
#: Methods that set the next block's time (the client's choice is kept, not replaced).
SETS_NEXT_TIME = frozenset({"evm_setNextBlockTimestamp", "anvil_setNextBlockTimestamp"})
#: Methods whose blocks anvil dates by its own clock (or mines on a timer, or that start a
#: new chain): a replay runs at another time, so it could not rebuild the same blocks.
UNREPLAYABLE = frozenset({"anvil_mine", "hardhat_mine", "anvil_reset", "hardhat_reset"})
SETS_INTERVAL_MINING = frozenset({"evm_setIntervalMining", "anvil_setIntervalMining"})
#: Client settings a block of sends changes for a moment and puts back as the client left them.
SETS_AUTOMINE = frozenset({"evm_setAutomine", "anvil_setAutomine"})
SETS_GAS_LIMIT = frozenset({"evm_setBlockGasLimit", "anvil_setBlockGasLimit"})
#: A snapshot waits until this many times the last one's pause has passed since it.
SNAPSHOT_DUTY = 10
#: ...unless the journal since the last one holds this many times `snapshot_entries`.
SNAPSHOT_CEILING = 10
#: The legacy state file `--state` wrote before the journal existed, imported once.
LEGACY_STATE = "state.json"


def groups_into_block(requests: list[Any]) -> bool:
    """Whether a JSON-RPC batch is one the node mines as a single block: two or more
    requests, every one a plain send (eth_sendRawTransaction or eth_sendTransaction)."""
    return len(requests) >= 2 and all(isinstance(r, dict) and r.get("method") in GROUPABLE for r in requests)


def is_read(method: str) -> bool:
    """Whether a request leaves the chain's state as it is (no journal entry needed)."""
    return method in READ_METHODS or (method.startswith(READ_PREFIXES) and method not in SENDS)


def mines_one_block(method: str, params: list[Any]) -> bool:
    """Whether a request mines one block whose time the node should choose."""
    return method in SENDS or (method == "evm_mine" and not any(p is not None for p in params))


def unreplayable(method: str, params: list[Any]) -> bool:
    """Whether a request would mine blocks the journal cannot date (so the node refuses it):
    anvil_mine and the like, interval mining, and evm_mine with options (its blocks take
    anvil's clock unless a timestamp is given, and several blocks still tick on it)."""
    if method in UNREPLAYABLE:
        return True
    if method in SETS_INTERVAL_MINING:
        return any(p not in (0, "0x0", None) for p in params)
    if method == "evm_mine":
        return any(
            isinstance(p, dict) and (p.get("timestamp") is None or p.get("blocks") not in (None, 1, "0x1")) for p in params
        )
    return False


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
        parts.append(
            f"restored to {where}; replayed {self.transactions} transaction(s) "
            f"({self.replayed} journal entries); head is block {self.head}"
        )
        if self.damaged_snapshots:
            parts.append(f"skipped {len(self.damaged_snapshots)} damaged snapshot(s)")
        return "; ".join(parts)


class DurableNode:
    """Journal, snapshots and anvil, with the rules that keep them consistent."""

    def __init__(
        self, chain_dir: Path, anvil: Anvil, snapshot_seconds: float = 30.0, snapshot_entries: int = 2000, keep: int = 3
    ) -> None:
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
        #: How long the last snapshot held writes back (its dump).
        self.snapshot_pause = 0.0
        #: anvil's automine and block gas limit as the journal's requests left them.
        self.automine = True
        self.gas_limit = BLOCK_GAS_LIMIT
        # The clock the node gives blocks: wall time plus what evm_increaseTime/evm_setTime
        # asked for, never behind the last block; a client's evm_setNextBlockTimestamp wins.
        self.time_offset = 0
        self.last_timestamp: int | None = None
        self.client_time: int | None = None
        # evm_snapshot ids as clients see them (the journal sequence number of the request,
        # the same in every replay) -> anvil's own id in this process. A node snapshot
        # waits while any is outstanding: anvil's snapshots are not in its state dump.
        self.evm_snapshots: dict[int, Any] = {}

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
                    + (
                        f" Snapshots that did not load: {'; '.join(recovery.damaged_snapshots)}"
                        if recovery.damaged_snapshots
                        else ""
                    )
                )
            self.apply(entry)
            recovery.replayed += 1
            recovery.transactions += len(entry.params) if entry.method == BLOCK_OF_SENDS else entry.method in SENDS
            expected += 1
        self.journal.open_for_append(expected - 1)
        head, last = self.anvil.head()
        recovery.head = head
        recovery.fresh = base is None and recovery.replayed == 0 and not recovery.imported_legacy_state
        if not recovery.fresh:
            # A restart must not leave the chain's clock where the last block left it (what
            # eth_call sees as the time). A new chain keeps its genesis clock instead: the
            # demo dates its history back from there, which a clock set to now would refuse.
            self.anvil.call("evm_setTime", [max(int(time.time()), last)])
        else:
            # A new chain's clock runs on from its genesis time, as anvil's own does: a
            # chain born in the past (the demo's) keeps its blocks in that past until a
            # client moves the clock.
            self.time_offset = genesis - int(time.time())
        self.last_timestamp = None
        self.snapshot_seq = base.seq if base is not None else 0
        if recovery.replayed or base is None:
            self.snapshot()  # a restart that replayed is cheap the next time
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
        if entry.method == BLOCK_OF_SENDS:
            return {"jsonrpc": "2.0", "id": request_id, "result": self._mine_block_of_sends(entry)}
        params = entry.params
        if entry.method == "evm_revert":
            anvil_id = self.evm_snapshots.get(_int(params[0])) if params else None
            if anvil_id is None:
                return {"jsonrpc": "2.0", "id": request_id, "result": False}  # as anvil answers an unknown id
            params = [anvil_id]
        response = self.anvil.request(entry.method, params, request_id)
        if entry.method in SENDS and isinstance(response.get("result"), str):
            if self.automine and not self.anvil.wait_mined(response["result"]):
                return self._refuse_unmined(response["result"], request_id)
        elif "result" in response:
            self._follow(entry, response)
        return response

    def _follow(self, entry: Entry, response: dict[str, Any]) -> None:
        """Keep what an applied request changed that anvil's state dump does not hold: its
        snapshots' ids, and the automine and gas-limit settings a block of sends restores."""
        if entry.method in SETS_AUTOMINE:
            self.automine = bool(entry.params and entry.params[0])
        elif entry.method in SETS_GAS_LIMIT and entry.params:
            self.gas_limit = _int(entry.params[0])
        elif entry.method == "evm_snapshot":
            self.evm_snapshots[entry.seq] = response["result"]
            response["result"] = hex(entry.seq)
        elif entry.method == "evm_revert" and response.get("result") is True:
            # Reverting to a snapshot removes it and every later one, in anvil as here.
            reverted = _int(entry.params[0])
            self.evm_snapshots = {k: v for k, v in self.evm_snapshots.items() if k < reverted}

    def _mine_block_of_sends(self, entry: Entry) -> list[dict[str, Any]]:
        """Put each send of a block entry in anvil's pool, then mine them as one block (under
        a gas limit raised to hold them all; limit and automine set back after). A send the
        block does not hold (a nonce gap, a nonce used twice in the batch, funds spent by an
        earlier send) leaves the pool and is answered as refused. Returns each answer."""
        anvil = self.anvil
        anvil.call("evm_setAutomine", [False])
        try:
            responses = [anvil.request(str(method), list(params), index) for index, (method, params) in enumerate(entry.params)]
            # Raised only now: the pool checked each transaction against the usual limit.
            anvil.call("evm_setBlockGasLimit", [hex(max(self.gas_limit, BLOCK_GAS_LIMIT) * len(entry.params))])
            anvil.call("evm_mine", [])
            mined = set(anvil.call("eth_getBlockByNumber", ["latest", False])["transactions"])
            for index, response in enumerate(responses):
                tx_hash = response.get("result")
                if isinstance(tx_hash, str) and tx_hash not in mined:
                    responses[index] = self._refuse_unmined(tx_hash, index)
        finally:
            anvil.call("evm_setBlockGasLimit", [hex(self.gas_limit)])
            anvil.call("evm_setAutomine", [self.automine])
        return responses

    def _refuse_unmined(self, tx_hash: str, request_id: Any) -> dict[str, Any]:
        """Take a sent transaction that was not mined out of anvil's pool, and say why. The
        durable chain keeps nothing waiting in a pool: a transaction queued behind a missing
        nonce would be mined when the gap is filled, in blocks anvil dates by its own clock,
        which a replay could not rebuild."""
        found = self.anvil.call("eth_getTransactionByHash", [tx_hash])
        if found is not None:
            # anvil_dropTransaction leaves a queued transaction where it is; this takes every
            # transaction of the sender out of the pool, and a sender has none ready there
            # (automine, or the block just mined, took them).
            self.anvil.call("anvil_removePoolTransactions", [found["from"]])
        return {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": {
                "code": -32000,
                "message": f"transaction {tx_hash} was not mined and was not kept: its nonce is ahead of the "
                "sender's next one (send the missing nonce first), or an earlier transaction of the same "
                "batch took its nonce or spent its funds; the local chain takes each sender's "
                "transactions in nonce order only",
            },
        }

    def write_block_of_sends(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Journal a batch of sends as one entry (one fsync), pool them and mine one block;
        the answers, in the batch's order, come once the block is mined."""
        ids = [request.get("id") for request in requests]
        calls: list[list[Any]] = [[str(r["method"]), _params(r.get("params"))] for r in requests]
        with self.write_lock:
            timestamp = self.next_timestamp() if self.client_time is None else None
            try:
                entry = self.journal.append(BLOCK_OF_SENDS, calls, timestamp)
            except OSError as exc:
                message = f"the local chain cannot journal the request ({exc}); nothing was sent"
                return [{"jsonrpc": "2.0", "id": i, "error": {"code": -32603, "message": message}} for i in ids]
            try:
                answers: list[dict[str, Any]] = self.apply(entry)["result"]
            except RpcError as exc:
                raise RpcError(
                    f"{exc}; the batch was journalled and may have been applied: check before sending it again"
                ) from exc
            self._track_time(BLOCK_OF_SENDS, calls, timestamp, True, True)
        self._maybe_snapshot()
        return [answer | {"id": request_id} for answer, request_id in zip(answers, ids, strict=True)]

    def write(self, method: str, params: list[Any], request_id: Any) -> dict[str, Any]:
        """Journal a state-changing request (fsync), then apply it; one at a time."""
        if method == BLOCK_OF_SENDS:
            return {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": -32601, "message": f"{method} is the local chain's own journal record, not a method"},
            }
        if unreplayable(method, params):
            return {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {
                    "code": -32601,
                    "message": f"{method} is not available on the durable local chain: its blocks "
                    "would take anvil's own clock, and a restart could not rebuild them with the same hashes; "
                    "mine with evm_mine (one block, optionally at a given timestamp) instead",
                },
            }
        with self.write_lock:
            timestamp = None
            mines = mines_one_block(method, params)
            if mines and self.client_time is None:
                timestamp = self.next_timestamp()
            try:
                entry = self.journal.append(method, params, timestamp)
            except OSError as exc:
                return {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "error": {"code": -32603, "message": f"the local chain cannot journal the request ({exc}); nothing was sent"},
                }
            try:
                response = self.apply(entry, request_id)
            except RpcError as exc:
                # Journalled, so the next start replays it: the client must not assume it failed.
                raise RpcError(
                    f"{exc}; the request was journalled and may have been applied: check before sending it again"
                ) from exc
            self._track_time(method, params, timestamp, mines, "error" not in response)
        self._maybe_snapshot()
        return response

    def _track_time(self, method: str, params: list[Any], timestamp: int | None, mines: bool, ok: bool) -> None:
        if not ok:
            return
        if method in SETS_NEXT_TIME:
            self.client_time = _int(params[0])
        elif mines and self.client_time is not None:
            # As anvil does: after a block at a time the client chose, the clock goes on
            # from there (the demo dates its history months back this way).
            self.time_offset = self.client_time - int(time.time())
            self.last_timestamp, self.client_time = self.client_time, None
        elif mines:
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
        since = time.monotonic() - self.snapshot_at
        due = pending >= self.snapshot_entries or (pending and since >= self.snapshot_seconds)
        # Writes wait while anvil dumps its state, and a dump grows with the ledger (seconds
        # for a million lots): never more than 1/SNAPSHOT_DUTY of the time goes to them.
        # ...unless the journal since the last one grows past SNAPSHOT_CEILING times the usual
        # count (a restart replays all of it).
        rested = since >= SNAPSHOT_DUTY * self.snapshot_pause or pending >= SNAPSHOT_CEILING * self.snapshot_entries
        if due and rested and not self._snapshot_lock.locked():
            threading.Thread(target=self.snapshot, name="snapshot", daemon=True).start()

    def snapshot(self, wait: bool = False) -> Snapshot | None:
        """Dump the state between two writes (the journal rolls over to a new segment at
        the same point), write it atomically, then drop what no kept snapshot needs.
        Returns None when another snapshot is being taken (and `wait` is false)."""
        if not self._snapshot_lock.acquire(blocking=wait):
            return None
        try:
            with self.write_lock:
                if self.evm_snapshots or self._pool_holds_transactions():
                    return None
                paused = time.monotonic()
                seq = self.journal.last_seq
                state = bytes.fromhex(str(self.anvil.call("anvil_dumpState", []))[2:])
                block = self.anvil.head()[0]
                self.journal.rotate()
            self.snapshot_at = time.monotonic()
            self.snapshot_pause = self.snapshot_at - paused
            snapshot = self.snapshots.write(seq, block, state)
            self.snapshot_seq = seq
            kept = self.snapshots.list()
            self.journal.prune_through(kept[-1].seq)
            return snapshot
        finally:
            self._snapshot_lock.release()

    def _pool_holds_transactions(self) -> bool:
        """Whether anvil holds sent transactions not yet mined (one queued behind a missing
        nonce, say). A dump leaves the pool out, so a snapshot now would lose them once the
        journal before it is pruned, even after they are mined later: the snapshot waits
        until the pool is empty, and the journal keeps their sends meanwhile."""
        status = self.anvil.call("txpool_status", [])
        return any(_int(status.get(kind) or 0) for kind in ("pending", "queued"))

    def run_snapshots(self, stop: threading.Event) -> None:
        """Snapshot a quiet chain that has unsaved entries every `snapshot_seconds`."""
        while not stop.wait(min(1.0, self.snapshot_seconds / 4)):
            self._maybe_snapshot()

    def record(self, recovery: Recovery) -> None:
        """Leave what the start recovered where the process that started us reads it."""
        path = self.chain_dir / "recovery.json"
        path.with_suffix(".tmp").write_text(json.dumps(asdict(recovery) | {"sentence": recovery.sentence()}))
        path.with_suffix(".tmp").replace(path)


def _params(value: Any) -> list[Any]:
    """A request's params as a list, as a single request's are taken (absent: none)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _int(value: Any) -> int:
    """A JSON-RPC quantity given as a number or a hex string."""
    return int(value, 16) if isinstance(value, str) and value.startswith("0x") else int(value)
