"""Registering many batches: few transactions, each row's work done once, memory flat.

`LedgerWriter.register_batches` and `provenance batch import` come here. The rows stream
through in windows of WINDOW_ROWS, so a million-row CSV never has a million row objects
alive. For each window:

1. **Prepare** each row once (:class:`Row`): its batch id (one keccak), its metadata
   document's canonical bytes and their sha256, and its ABI encoding (5 words). Nothing
   is recomputed later; a transaction's calldata is those encodings joined.
2. **Look up** which ids the ledger already holds, in one `eth_call` per LOOKUP_IDS ids
   (:class:`RegistrationLookup`, running contracts/lookup/BatchLookup.sol without
   deploying it), in a thread of its own while the next window is read and prepared.
   Only the rows found are read from the logs, and only in the blocks of their
   registration times, so a look-up costs the same on a chain of a million lots.
   Found with the same content: already registered (never sent twice); other content:
   a conflict. The same lot twice in the input: the later row fails.
3. **Ask the contract** (a simulation) about the first row of each GTIN not seen before:
   a signer who may not register at all is refused before anything is sent; rows of a
   GTIN it holds no licence for fail alone.
4. **Store** the window's metadata documents (a thread writes them while the previous
   window's transactions are sent), then hand the rows to the dispatcher, chunk by chunk.

The dispatcher (:class:`_Dispatcher`, one thread) signs and sends each chunk as one
`registerBatches` transaction, keeps up to MAX_IN_FLIGHT of them unconfirmed, and settles
their receipts, while the main thread prepares the next window: signing and sending
overlap with preparing. A local key's transactions go through the TransactionSender (fees
within the caps, replacement when stuck, the outbox written before each send); a node's
account signs at the node. After a crash, the next run first sees the outbox's
transactions mined, then finds their lots on chain and skips them: nothing is lost or
sent twice.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from queue import Empty, Full, Queue
from typing import TYPE_CHECKING, Any

from ledger.artifacts import BATCH_LOOKUP_NAME, load_artifact
from ledger.documents import canonical_json, sha256
from ledger.errors import ChainError, ContractRevertError, RpcError
from ledger.fees import FeePolicy, Fees, Pending, SendRefused
from ledger.hashing import keccak256
from ledger.identifiers import DigitalLink, checked_batch_id
from ledger.indexer.decoding import default_decoder
from ledger.models import BatchCreate, RegistrationResult
from ledger.rpc import mined_receipts, rpc_answers, rpc_call

if TYPE_CHECKING:
    from ledger.fees import TransactionSender
    from ledger.writer import LedgerWriter

TX_GAS_CAP = 16_777_216  # EIP-7825: no transaction may ask for more
#: Gas budgeted per row: the worst shape measured, a sub-licensee's rows of a new GTIN each
#: with 20-character lots, takes 33,488 (a root licensee's run of one GTIN: 29,702).
GAS_PER_BULK_BATCH = 34_000
BULK_CALL_OVERHEAD = 80_000
DEFAULT_CHUNK = 480  # registrations per transaction: 16.4M gas budgeted, under EIP-7825's cap (16.78M)
MAX_IN_FLIGHT = 32  # transactions sent before their receipts are collected
#: Rows prepared and looked up at a time: memory holds about three windows (one being
#: prepared, one looked up, one stored) and the rows of the transactions in flight,
#: whatever the input's length.
WINDOW_ROWS = 2_000
#: How long a reading of zero fees (the local chain's, many consortium chains') is used
#: for the next transactions before fees are read again: a reading per transaction cost
#: the bulk path a round trip each. Other fees are read for each transaction: where blocks
#: come faster than this and the base fee rises, an older reading signs below the next
#: block's base fee, and such a transaction waits a minute to be replaced.
FEE_READING_AGE = 1.0
#: Batch ids per BatchLookup eth_call: 8.0M gas for 500 (3.2M of it the answer's deposit as
#: code), inside the usual eth_call caps; the answer (32 bytes an id) is returned as contract
#: code, so EIP-170's 24,576 bytes allow at most 766 ids.
LOOKUP_IDS = 500
#: Chunks waiting for the dispatcher: the main thread runs at most this far ahead.
QUEUED_CHUNKS = 20
#: Settled transactions between two trims of the outbox (which then holds at most about
#: this many plus those in flight: tens of MB, whatever the import's length).
OUTBOX_TRIM = 16
#: Signed transactions sent in one JSON-RPC batch at most, unless the `send_batch_size`
#: setting says otherwise. The local chain mines each such batch as one block: 16 are 7,680
#: rows and a 2.5 MB request. On a network a batch only saves round trips (sends are
#: pipelined anyway), and a provider that refuses one send of a batch may still queue the
#: later ones behind the gap, to be mined once the next run reuses the nonce: each alone.
SEND_GROUP_LOCAL = 16
SEND_GROUP_NETWORK = 1
#: How long a group waits for more signed transactions before it is sent as it is. Each
#: block costs the local chain a state root that grows with the ledger, so blocks should
#: be few. Measured on 2 cores (interleaved runs): 0.12 s matched 0.25 s at 10,000 rows
#: and lost ~10% at 100,000 (30 blocks, not 18).
GROUP_WAIT = 0.25
REGISTER_BATCHES = "registerBatches((uint64,bytes20,uint64,bytes3,bytes32)[])"
_WORD = 32


@dataclass
class BulkReport:
    """What a bulk registration did, row by row (rows are indexes into the input).

    The counts are always kept; the per-row results only when asked (`keep_results`):
    a million-row import keeps its counts and its failures, not a million results."""

    registered: list[tuple[int, RegistrationResult]] = field(default_factory=list)
    already_registered: list[tuple[int, RegistrationResult]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    transactions: int = 0
    registered_count: int = 0
    already_registered_count: int = 0
    keep_results: bool = True


@dataclass(slots=True)
class Row:
    """One input row, prepared once: everything the bulk path needs of it."""

    index: int
    batch: BatchCreate
    batch_id: bytes
    document: bytes  # the metadata document's canonical JSON (RFC 8785)
    metadata_hash: bytes
    encoded: bytes  # its IProvenanceLedger.BatchInput, ABI-encoded (5 words)


#: The standard library's sorted compact JSON, its encoder made once (json.dumps with these
#: options makes one a call: a third of the time of the encoding itself).
_SORTED_COMPACT = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def canonical_metadata(document: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of a batch's metadata document.

    A document made by BatchCreate.metadata_document without `extra` holds ASCII keys,
    strings, booleans and integers below 2^53 only; for those, the standard library's
    sorted compact JSON without ASCII escaping is byte for byte JCS, at a third of
    rfc8785's cost (tests/ledger/test_bulk_rows.py checks that on generated documents).
    `extra` may hold anything (floats, non-ASCII keys): rfc8785 then, as for text that
    is not valid Unicode (a lone surrogate)."""
    if "extra" in document:
        return canonical_json(document)
    try:
        return _SORTED_COMPACT.encode(document).encode("utf-8")
    except UnicodeEncodeError:
        return canonical_json(document)  # raises the error that names the problem


def prepare(index: int, batch: BatchCreate) -> Row:
    """The row's id, metadata and encoding, computed once (the batch is already validated)."""
    lot = batch.lot.encode("ascii")
    gtin = int(batch.gtin)
    document = canonical_metadata(batch.metadata_document())
    metadata_hash = sha256(document)
    encoded = b"".join(
        (
            gtin.to_bytes(_WORD, "big"),
            lot.ljust(_WORD, b"\0"),
            batch.quantity.to_bytes(_WORD, "big"),
            batch.unit.encode("ascii").ljust(_WORD, b"\0"),
            metadata_hash,
        )
    )
    batch_id = checked_batch_id(gtin, lot)
    return Row(index, batch, batch_id, document, metadata_hash, encoded)


def register_batches_calldata(rows: Sequence[Row]) -> bytes:
    """`registerBatches(rows)` calldata: the selector, the array's offset and length, and
    the rows' encodings (a static tuple's elements sit in place)."""
    head = _SELECTOR + _WORD.to_bytes(_WORD, "big") + len(rows).to_bytes(_WORD, "big")
    return head + b"".join(row.encoded for row in rows)


_SELECTOR = keccak256(REGISTER_BATCHES.encode())[:4]


def _json_transaction(tx: dict[str, Any]) -> dict[str, Any]:
    """A transaction for eth_sendTransaction as JSON: numbers as hex quantities."""
    return {key: hex(value) if isinstance(value, int) else value for key, value in tx.items()}


def windows(batches: Iterable[BatchCreate], size: int, first: int | None = None) -> Iterator[list[Row]]:
    """The input, prepared, `size` rows at a time; or, from `first` rows, windows doubling
    up to `size`. A window's rows are signed only once the next window is looked up:
    small first windows get the first transaction to the chain sooner."""
    window: list[Row] = []
    target = min(size, first or size)
    for index, batch in enumerate(batches):
        window.append(prepare(index, batch))
        if len(window) >= target:
            yield window
            window = []
            target = min(size, 2 * target)
    if window:
        yield window


def _lookup_arguments(address: str, batch_ids: Sequence[bytes]) -> str:
    """BatchLookup's constructor arguments (address, bytes32[]) ABI-encoded as hex, by hand:
    an address word, the array's offset (64) and length, then the ids."""
    head = bytes(12) + bytes.fromhex(address.removeprefix("0x")) + (64).to_bytes(_WORD, "big")
    return (head + len(batch_ids).to_bytes(_WORD, "big") + b"".join(batch_ids)).hex()


def _registration_times(answer: bytes, count: int) -> list[int]:
    """The uint64[] BatchLookup answers, decoded by hand and checked as strictly as eth_abi
    would: offset 32, `count` entries, nothing after them, each a uint64."""
    if len(answer) != 2 * _WORD + count * _WORD:
        raise ChainError(f"the batch look-up answered {len(answer)} bytes for {count} ids")
    if int.from_bytes(answer[:_WORD], "big") != _WORD or int.from_bytes(answer[_WORD : 2 * _WORD], "big") != count:
        raise ChainError(f"the batch look-up's answer is not an array of {count} times")
    times = []
    for start in range(2 * _WORD, len(answer), _WORD):
        word = answer[start : start + _WORD]
        if any(word[:24]):
            raise ChainError("the batch look-up answered a time that is not a uint64")
        times.append(int.from_bytes(word, "big"))
    return times


class RegistrationLookup:
    """Which batch ids the ledger holds, and their registration events."""

    def __init__(self, writer: LedgerWriter) -> None:
        self.writer = writer
        self.w3 = writer.w3
        self._creation = load_artifact(BATCH_LOOKUP_NAME).bytecode.removeprefix("0x")
        self._block_times: dict[int, int] = {}
        #: Why the node refused the one-call look-up, once it has (then logs are asked).
        self.unavailable: str | None = None

    def registered_at(self, batch_ids: Sequence[bytes]) -> list[int]:
        """Each id's registration time (0: not registered), LOOKUP_IDS ids per eth_call."""
        times: list[int] = []
        address = self.writer.connection.address
        for start in range(0, len(batch_ids), LOOKUP_IDS):
            part = list(batch_ids[start : start + LOOKUP_IDS])
            answer = rpc_call(self.w3, "eth_call", [{"data": "0x" + self._creation + _lookup_arguments(address, part)}, "latest"])
            times.extend(_registration_times(bytes.fromhex(str(answer).removeprefix("0x")), len(part)))
        return times

    def find(self, batch_ids: Sequence[bytes]) -> tuple[dict[bytes, Any], set[bytes]]:
        """The BatchRegistered logs of those ids the ledger holds, by id; and the ids it
        holds whose log the node could not give (its logs lagging behind its state).

        A node that refuses the look-up (some providers refuse an eth_call without `to`,
        or cap its gas) is asked the old way from then on: the logs of each id."""
        if self.unavailable is None:
            try:
                times = self.registered_at(batch_ids)
            except (ChainError, ValueError) as exc:
                self.unavailable = str(exc)
        if self.unavailable is not None:
            return self.writer._registrations(batch_ids), set()
        held = [(batch_id, at) for batch_id, at in zip(batch_ids, times, strict=True) if at]
        if not held:
            return {}, set()
        first = self._first_block_at_or_after(min(at for _, at in held))
        last = self._last_block_at_or_before(max(at for _, at in held))
        found: dict[bytes, Any] = {}
        ids = [batch_id for batch_id, _ in held]
        for start in range(0, len(ids), 200):
            for log in self._logs(ids[start : start + 200], first, last):
                found.setdefault(bytes(log["args"]["batchId"]), log)
        missing = [batch_id for batch_id in ids if batch_id not in found]
        if missing:  # a block time off by a reorg or a node's rounding: ask the whole range
            found.update(self.writer._registrations(missing))
        return found, {batch_id for batch_id in missing if batch_id not in found}

    def _logs(self, ids: list[bytes], first: int, last: int) -> list[Any]:
        from ledger.indexer.decoding import read_logs

        connection = self.writer.connection
        return read_logs(self.w3, connection.address, "BatchRegistered", first, to_block=last, batchId=ids)

    def _time_of(self, number: int) -> int:
        if number not in self._block_times:
            block = rpc_call(self.w3, "eth_getBlockByNumber", [hex(number), False])
            self._block_times[number] = int(block["timestamp"], 16)
        return self._block_times[number]

    def _first_block_at_or_after(self, time: int) -> int:
        low, high = self.writer.connection.deploy_block, int(rpc_call(self.w3, "eth_blockNumber", []), 16)
        while low < high:
            middle = (low + high) // 2
            if self._time_of(middle) < time:
                low = middle + 1
            else:
                high = middle
        return low

    def _last_block_at_or_before(self, time: int) -> int:
        low, high = self.writer.connection.deploy_block, int(rpc_call(self.w3, "eth_blockNumber", []), 16)
        while low < high:
            middle = (low + high + 1) // 2
            if self._time_of(middle) > time:
                high = middle - 1
            else:
                low = middle
        return low


class _LookAhead:
    """A run's look-ups, one at a time and in order, in a daemon thread: a run that fails
    (Ctrl-C included) does not wait for the look-up in progress, which on a network can
    take minutes of a provider's retries; it ends with it, unread."""

    def __init__(self, lookup: RegistrationLookup) -> None:
        self.lookup = lookup
        self.tasks: Queue[tuple[list[bytes], Future[tuple[dict[bytes, Any], set[bytes]]]] | None] = Queue()
        threading.Thread(target=self._work, name="bulk-look-up", daemon=True).start()

    def submit(self, batch_ids: list[bytes]) -> Future[tuple[dict[bytes, Any], set[bytes]]]:
        """The look-up of `batch_ids`, after those submitted before."""
        answer: Future[tuple[dict[bytes, Any], set[bytes]]] = Future()
        self.tasks.put((batch_ids, answer))
        return answer

    def close(self) -> None:
        """No more look-ups: the thread ends after the one in progress (not waited for)."""
        self.tasks.put(None)

    def _work(self) -> None:
        while (task := self.tasks.get()) is not None:
            batch_ids, answer = task
            try:
                answer.set_result(self.lookup.find(batch_ids))
            except BaseException as exc:  # handed to the main thread, which raises it
                answer.set_exception(exc)


class BulkRegistrar:
    """One bulk registration run of one writer (see the module)."""

    def __init__(
        self,
        writer: LedgerWriter,
        chunk_size: int = DEFAULT_CHUNK,
        progress: Callable[[int], None] | None = None,
        keep_results: bool = True,
        on_settled: Callable[[list[bytes]], None] | None = None,
        row_label: Callable[[int], str] | None = None,
    ) -> None:
        self.writer = writer
        #: How a message names an input row (the CLI: its CSV line).
        self.row_label = row_label or (lambda index: f"row {index + 1}")
        self.chunk_size = chunk_size
        self.progress = progress or (lambda _n: None)
        self.report = BulkReport(keep_results=keep_results)
        self.on_settled = on_settled
        self.lookup = RegistrationLookup(writer)
        self._seen: dict[bytes, int] = {}
        #: Rows to send that do not fill a chunk yet (sent with the next window's, or last).
        self._short_chunk: list[Row] = []
        self._gtin_refusal: dict[str, str | None] = {}
        self._base_url = writer.connection.settings.public_base_url

    def run(self, batches: Iterable[BatchCreate]) -> BulkReport:
        """Register `batches` (see the module); the report of what happened to each row."""
        self.writer._recover()
        limit = (self.writer._gas_limit() - BULK_CALL_OVERHEAD) // GAS_PER_BULK_BATCH
        self.chunk_size = max(1, min(self.chunk_size, limit))
        dispatcher = _Dispatcher(self)
        # One window behind: while a window's documents are written (I/O, in a thread),
        # the next window is read, prepared and looked up (in another thread); its chunks
        # go to the dispatcher only once they are on disk, so an anchored hash always has
        # its document.
        waiting: tuple[list[Row], list[tuple[Row, Any]], Future[None]] | None = None
        lookups = _LookAhead(self.lookup)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="documents") as documents:
            try:
                for window, fresh, looking in self._looked_up(batches, lookups):
                    todo, found = self._sort(fresh, *looking.result())
                    self.progress(len(window) - len(todo))
                    keep = [row for row, _ in found] + todo
                    storing = documents.submit(self.writer.documents.put_many, [(r.metadata_hash, r.document) for r in keep])
                    if waiting is not None:
                        self._dispatch(dispatcher, *waiting)
                    waiting = (todo, found, storing)
                if waiting is not None:
                    self._dispatch(dispatcher, *waiting)
                if self._short_chunk:
                    dispatcher.put(self._short_chunk)
                dispatcher.finish()
            except BaseException:
                dispatcher.abandon()  # Ctrl-C included: nothing more is signed
                raise
            finally:
                lookups.close()
        return self.report

    def _dispatch(self, dispatcher: _Dispatcher, todo: list[Row], found: list[tuple[Row, Any]], storing: Future[None]) -> None:
        storing.result()  # the documents are on disk (raises what writing them raised)
        for row, log in found:  # reported (and so marked anchored) once their documents are held
            self.settled([row], "already_registered", "0x" + bytes(log["transactionHash"]).hex(), log["blockNumber"])
        # A window's last rows wait for the next window's to fill their chunk: transactions
        # stay full whatever the window and chunk sizes (their documents are already held).
        rows = self._short_chunk + todo
        full = len(rows) - len(rows) % self.chunk_size
        for start in range(0, full, self.chunk_size):
            dispatcher.put(rows[start : start + self.chunk_size])
        self._short_chunk = rows[full:]

    def _looked_up(
        self, batches: Iterable[BatchCreate], lookups: _LookAhead
    ) -> Iterator[tuple[list[Row], list[Row], Future[tuple[dict[bytes, Any], set[bytes]]]]]:
        """Each window, its rows not seen before in the input, and their look-up, which
        runs in a thread while the next window is read and prepared: the look-up waits on
        the chain, and preparing needs this process's CPU."""
        ahead = None
        for window in windows(batches, WINDOW_ROWS, first=self.chunk_size):
            fresh = self._first_seen(window)
            looking = lookups.submit([row.batch_id for row in fresh])
            if ahead is not None:
                yield ahead
            ahead = (window, fresh, looking)
        if ahead is not None:
            yield ahead

    def _first_seen(self, window: list[Row]) -> list[Row]:
        """The window's rows whose lot the input has not held before; the others fail."""
        fresh: list[Row] = []
        for row in window:
            first = self._seen.setdefault(row.batch_id, row.index)
            if first != row.index:
                self.fail(row.index, f"lot {row.batch.lot} of GTIN {row.batch.gtin} appears twice ({self.row_label(first)})")
            else:
                fresh.append(row)
        return fresh

    def _sort(self, fresh: list[Row], found: dict[bytes, Any], unreadable: set[bytes]) -> tuple[list[Row], list[tuple[Row, Any]]]:
        """Of rows new to the input and what the look-up found of them: the rows to send,
        and the rows already registered with this content (with their registration's
        log); the others are reported failed here."""
        todo: list[Row] = []
        registered: list[tuple[Row, Any]] = []
        for row in fresh:
            log = found.get(row.batch_id)
            if row.batch_id in unreadable:
                # Held, but not told how: never sent (its chunk would revert), never guessed.
                self.fail(
                    row.index,
                    f"lot {row.batch.lot} of GTIN {row.batch.gtin} is registered, but the node did not return its "
                    "registration event (its logs may lag behind): run the import again in a minute",
                )
                continue
            if log is None:
                todo.append(row)
                continue
            difference = self.writer._compare(row.batch, row.metadata_hash, log)
            if difference:
                self.fail(row.index, str(self.writer._conflict(row.batch, log, difference)))
            else:
                registered.append((row, log))
        return self._licensed(todo), registered

    def _licensed(self, rows: list[Row]) -> list[Row]:
        """The rows of GTINs the contract lets the signer register: the first row of each
        new GTIN is simulated. A signer who may not register at all gets the contract's
        reason raised before anything is sent; an unlicensed GTIN's rows fail with its
        sentence, so one such GTIN cannot sink the transactions of the others. The contract
        alone decides (its licence views are not part of its ABI)."""
        for row in rows:
            gtin = row.batch.gtin
            if gtin in self._gtin_refusal:
                continue
            call = self.writer.contract.functions.registerBatch(row.batch.contract_input(row.metadata_hash))
            try:
                self.writer._simulate(call)
                self._gtin_refusal[gtin] = None
            except ContractRevertError as exc:
                if exc.error_name not in ("ProvenanceNotLicensed", "ProvenanceInvalidGtin"):
                    raise
                self._gtin_refusal[gtin] = str(exc)
        kept = []
        for row in rows:
            refusal = self._gtin_refusal[row.batch.gtin]
            if refusal is None:
                kept.append(row)
            else:
                self.fail(row.index, refusal)
        return kept

    def fail(self, index: int, reason: str) -> None:
        """Report row `index` as not registered, for `reason`."""
        self.report.failed.append((index, reason))

    def settled(self, rows: Sequence[Row], status: str, tx_hash: str, block: int) -> None:
        """Report `rows` as registered (or found already registered) by `tx_hash`."""
        report = self.report
        if status == "registered":
            report.registered_count += len(rows)
        else:
            report.already_registered_count += len(rows)
        if report.keep_results:
            target = report.registered if status == "registered" else report.already_registered
            target.extend((row.index, self._result(row, status, tx_hash, block)) for row in rows)
        if self.on_settled is not None:
            self.on_settled([row.metadata_hash for row in rows])

    def _result(self, row: Row, status: str, tx_hash: str, block: int) -> RegistrationResult:
        batch = row.batch
        # Built without validation: every field comes from a validated batch or the chain.
        return RegistrationResult.model_construct(
            batch_id="0x" + row.batch_id.hex(),
            gtin=batch.gtin,
            lot=batch.lot,
            status=status,
            tx_hash=tx_hash,
            block_number=block,
            url=DigitalLink(batch.gtin, batch.lot).url(self._base_url),
            metadata_hash="0x" + row.metadata_hash.hex(),
        )


@dataclass
class _Flight:
    rows: list[Row]
    transaction: dict[str, Any] | Pending  # a node account's transaction, or the sender's signed record
    tx_hash: bytes = b""  # a node-signed transaction's hash, once sent


class _Dispatcher:
    """Three threads joined by bounded queues, so the chain is never kept waiting:

    - **sign**: takes the chunks the main thread hands over, builds each transaction and
      signs it with the next nonce (recorded in the outbox first, for a local key);
    - **send**: sends them in nonce order, back to back (the local chain applies writes one
      at a time: the next one is ready the moment the last is mined);
    - **settle**: sees them mined, up to MAX_IN_FLIGHT behind, and reports the rows: on
      the local chain from each one's last BatchRegistered event, else (and for a
      transaction without its event: reverted, or replaced) from its receipt.

    A failure in any of them stops the others and is raised in the main thread. What was
    signed is still sent (it is in the outbox: a later run would send it anyway), unless
    sending itself failed.
    """

    def __init__(self, registrar: BulkRegistrar) -> None:
        self.registrar = registrar
        self.writer = registrar.writer
        self.chunks: Queue[list[Row] | None] = Queue(maxsize=QUEUED_CHUNKS)
        settings = self.writer.connection.settings
        on_local_chain = settings.is_local_chain and not settings.network
        # Grouped sends are signed before the group's earlier ones are mined: on a chain
        # that charges fees and mines each alone (a plain anvil), the later ones would be
        # signed below a base fee their predecessors raised. The local chain charges none.
        grouped = on_local_chain and FeePolicy().base_fee(self.writer.w3) == 0
        self.group_size = settings.send_batch_size or (SEND_GROUP_LOCAL if grouped else SEND_GROUP_NETWORK)
        self.signed: Queue[_Flight | None] = Queue(maxsize=self.group_size)
        self.sent: Queue[_Flight | None] = Queue(maxsize=MAX_IN_FLIGHT)
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        #: The nonce of the transaction the node refused, when sending failed.
        self.unsent_from: int | None = None
        self._settled = 0
        self._fees: dict[str, int] | None = None
        self._fee_reading: tuple[float, Fees] | None = None
        #: On the local chain, the first block the settle stage looks for events in (its
        #: logs never lag behind its blocks; a network's may, and its receipts are read).
        self._logs_from: int | None = self.writer.w3.eth.block_number if on_local_chain else None
        self._registered_topic = default_decoder().topics_by_name()["BatchRegistered"]
        self.threads = [
            threading.Thread(target=self._guard, args=(stage,), name=f"bulk-{stage.__name__.strip('_')}", daemon=True)
            for stage in (self._sign_stage, self._send_stage, self._settle_stage)
        ]
        for thread in self.threads:
            thread.start()

    # ---------------------------------------------------------------- main thread

    def put(self, rows: list[Row]) -> None:
        """Hand a chunk over (waits while QUEUED_CHUNKS wait); raises what failed in a stage."""
        self._put(self.chunks, rows, self.threads[0])
        if self.error is not None:
            raise self.error

    def finish(self) -> None:
        """Wait until every chunk is sent and settled; raises what failed in a stage."""
        self._put(self.chunks, None, self.threads[0])
        for thread in self.threads:
            thread.join()
        self._forget_unsent()
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        """Stop signing (the main thread failed); what was signed is sent and settled."""
        self.stopping.set()
        self._put(self.chunks, None, self.threads[0])
        for thread in self.threads:
            thread.join()
        self._forget_unsent()

    def _forget_unsent(self) -> None:
        """After sending failed, forget every nonce from the refused one on (the sign stage
        may have signed more meanwhile): the next write asks the node again."""
        if self.unsent_from is None:
            return
        writer = self.writer
        if writer.sender is not None:
            if writer.sender.outbox is not None:
                writer.sender.outbox.drop_from(self.unsent_from)
            writer.sender.forget_nonce()
        writer._nonce = None

    def _put(self, queue: Queue[Any], item: Any, consumer: threading.Thread) -> None:
        """Put `item`, waiting for room as long as `consumer` runs: a signed transaction is
        never dropped while the send stage can still send it."""
        while True:
            try:
                queue.put(item, timeout=0.1)
                return
            except Full:
                if not consumer.is_alive():
                    return

    # ---------------------------------------------------------------- stages

    def _guard(self, stage: Callable[[], None]) -> None:
        try:
            stage()
        except BaseException as exc:  # handed to the main thread, which raises it
            if self.error is None:
                self.error = exc
            self.stopping.set()
            self._drain_after(stage)

    def _drain_after(self, stage: Callable[[], None]) -> None:
        """Unblock the stages before a failed one and tell the ones after it to end."""
        upstream: Queue[Any]
        downstream: Queue[Any] | None
        if stage == self._sign_stage:
            upstream, downstream = self.chunks, self.signed
        elif stage == self._send_stage:
            upstream, downstream = self.signed, self.sent
        else:
            upstream, downstream = self.sent, None
        if downstream is not None:
            self._put(downstream, None, self.threads[2] if downstream is self.sent else self.threads[1])
        while True:
            try:
                if upstream.get(timeout=0.1) is None:
                    return
            except Empty:
                if not any(t.is_alive() for t in self.threads if t is not threading.current_thread()):
                    return

    def _sign_stage(self) -> None:
        while (rows := self.chunks.get()) is not None:
            if self.stopping.is_set():
                continue  # drain: nothing more is signed
            self._put(self.signed, _Flight(rows, self._sign(rows)), self.threads[1])
        self._put(self.signed, None, self.threads[1])

    def _send_stage(self) -> None:
        ended = False
        while not ended and (flight := self.signed.get()) is not None:
            # With it, the transactions signed meanwhile: one request, and on the local
            # chain one block.
            group, ended = self._group_after(flight)
            try:
                self._send(group)
            except Exception:
                # The node took the group's transactions before the one it refused: they
                # are settled and reported before the run fails.
                self._hand_over([sent for sent in group if self._taken(sent)])
                raise
            self._hand_over(group)
        self._put(self.sent, None, self.threads[2])

    def _hand_over(self, flights: list[_Flight]) -> None:
        """Count sent transactions and hand them to the settle stage."""
        for sent in flights:
            self.registrar.report.transactions += 1
            self._put(self.sent, sent, self.threads[2])

    def _taken(self, flight: _Flight) -> bool:
        """Whether the node took a transaction of a group it refused part of."""
        if isinstance(flight.transaction, Pending):
            return self.unsent_from is not None and flight.transaction.nonce < self.unsent_from
        return bool(flight.tx_hash)

    def _group_after(self, first: _Flight) -> tuple[list[_Flight], bool]:
        """`first` and the transactions signed after it, up to the group size, waiting up
        to GROUP_WAIT for them; and whether the input ended. On the local chain a group is
        one block, and each block costs a state root that grows with the ledger."""
        group = [first]
        deadline = time.monotonic() + GROUP_WAIT
        while len(group) < self.group_size:
            try:
                more = self.signed.get(timeout=max(0.0, deadline - time.monotonic()))
            except Empty:
                break
            if more is None:
                return group, True
            group.append(more)
        return group, False

    def _settle_stage(self) -> None:
        ended = False
        while not ended and (flight := self.sent.get()) is not None:
            flights = [flight]
            while True:  # with the ones sent meanwhile: their receipts in one request
                try:
                    more = self.sent.get_nowait()
                except Empty:
                    break
                if more is None:
                    ended = True
                    break
                flights.append(more)
            known: list[dict[str, Any] | None] = (
                self._mined_by_logs(flights) if self._logs_from is not None else [None] * len(flights)
            )
            unknown = [index for index, receipt in enumerate(known) if receipt is None]
            if unknown:
                receipts = mined_receipts(self.writer.w3, [self._hash(flights[index]) for index in unknown])
                for index, receipt in zip(unknown, receipts, strict=True):
                    known[index] = receipt
            for each, receipt in zip(flights, known, strict=True):
                self._settle(each, receipt)

    def _mined_by_logs(self, flights: list[_Flight]) -> list[dict[str, Any] | None]:
        """On the local chain, the flights whose last row's BatchRegistered event is on
        chain, emitted by that very transaction, as lean receipts (status 1); None for the
        others, whose receipts are then read. A transaction registers all its rows or none,
        so that one event shows them all: a receipt holds 480 events (~300 KB of JSON for
        the node to write and this client to read, the bulk path's costliest read)."""
        assert self._logs_from is not None
        query = {
            "address": self.writer.connection.address,
            "fromBlock": hex(self._logs_from),
            "toBlock": "latest",
            "topics": [self._registered_topic, ["0x" + flight.rows[-1].batch_id.hex() for flight in flights]],
        }
        try:
            logs = rpc_call(self.writer.w3, "eth_getLogs", [query])
        except (ChainError, RpcError):
            return [None] * len(flights)
        emitted = {bytes.fromhex(log["topics"][1][2:]): log for log in logs if not log.get("removed")}
        known: list[dict[str, Any] | None] = []
        for flight in flights:
            log, tx_hash = emitted.get(flight.rows[-1].batch_id), self._hash(flight)
            if log is None or bytes.fromhex(log["transactionHash"][2:]) != tx_hash:
                known.append(None)
                continue
            block = int(log["blockNumber"], 16)
            known.append(
                {"status": 1, "blockNumber": block, "gasUsed": None, "transactionHash": tx_hash, "contractAddress": None}
            )
            # A later nonce is never mined in an earlier block: the next look starts here.
            self._logs_from = max(self._logs_from, block)
        return known

    @staticmethod
    def _hash(flight: _Flight) -> bytes:
        return flight.transaction.tx_hash if isinstance(flight.transaction, Pending) else flight.tx_hash

    # ---------------------------------------------------------------- one transaction

    def _sign(self, rows: list[Row]) -> dict[str, Any] | Pending:
        writer = self.writer
        payload = {
            "to": writer.connection.address,
            "data": "0x" + register_batches_calldata(rows).hex(),
            "value": 0,
            "gas": min(TX_GAS_CAP, BULK_CALL_OVERHEAD + GAS_PER_BULK_BATCH * len(rows)),
        }
        if writer.sender is not None:
            return writer.sender.prepare(payload, self._current_fees(writer.sender))
        if self._fees is None:
            self._fees = writer._fees()
        return {
            "from": writer.signer.address,
            **payload,
            "nonce": writer._next_nonce(),
            "chainId": writer.connection.settings.chain_id,
            **self._fees,
        }

    def _current_fees(self, sender: TransactionSender) -> Fees:
        """Fees within the caps: read for each transaction (they move while an import runs),
        except zero fees, read again once FEE_READING_AGE old."""
        now = time.monotonic()
        reading = self._fee_reading
        if reading is None or reading[1].max_fee != 0 or now - reading[0] >= FEE_READING_AGE:
            reading = self._fee_reading = (now, sender.policy.initial(sender.w3))
        return reading[1]

    def _send(self, group: list[_Flight]) -> None:
        """Send a group of signed transactions (in nonce order) in one request."""
        writer = self.writer
        prepared = [flight.transaction for flight in group if isinstance(flight.transaction, Pending)]
        if prepared:
            assert writer.sender is not None and len(prepared) == len(group)
            try:
                writer.sender.send_prepared_many(prepared)
            except SendRefused as exc:
                self.unsent_from = exc.nonce  # refused outright: it and every later one not taken
                raise
            return
        at_node = [flight.transaction for flight in group if not isinstance(flight.transaction, Pending)]
        try:
            if len(at_node) == 1:
                group[0].tx_hash = writer.signer.send(writer.w3, at_node[0])
                return
            answers = rpc_answers(writer.w3, "eth_sendTransaction", [[_json_transaction(tx)] for tx in at_node])
        except Exception:
            self.unsent_from = int(at_node[0]["nonce"])  # the node may not have taken any
            raise
        for flight, answer in zip(group, answers, strict=True):
            if isinstance(answer, RpcError):
                self.unsent_from = int(flight.transaction["nonce"])  # type: ignore[index]  # a node's dict
                raise answer
            flight.tx_hash = bytes.fromhex(str(answer)[2:])

    def _trim_outbox(self, mined: int) -> None:
        """Forget the outbox's records up to `mined` every OUTBOX_TRIM transactions: each
        holds its ~300 KB transaction, and the next command reads the file whole."""
        self._settled += 1
        outbox = self.writer.sender.outbox if self.writer.sender is not None else None
        if outbox is not None and self._settled % OUTBOX_TRIM == 0:
            outbox.keep_from(mined + 1)  # settled in nonce order: every earlier one is mined

    def _settle(self, flight: _Flight, known: dict[str, Any] | None) -> None:
        """Report a transaction's rows from its receipt (`known`: read already, else waited for)."""
        writer = self.writer
        if isinstance(flight.transaction, Pending):
            assert writer.sender is not None
            receipt = writer.sender.wait(flight.transaction, known=known)
            tx_hash = receipt["transactionHash"]  # the version mined (a replacement has another hash)
            self._trim_outbox(flight.transaction.nonce)
        else:
            tx_hash = flight.tx_hash
            receipt = known or writer._lean_receipt(tx_hash)
        if receipt["status"] == 1:
            self.registrar.settled(flight.rows, "registered", "0x" + bytes(tx_hash).hex(), receipt["blockNumber"])
        else:
            call = writer.contract.functions.registerBatches([r.batch.contract_input(r.metadata_hash) for r in flight.rows])
            reason = str(writer._explain_failure(call, receipt))
            for row in flight.rows:
                self.registrar.fail(row.index, reason)
        self.registrar.progress(len(flight.rows))
