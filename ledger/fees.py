"""Sending transactions on a network whose fees move: EIP-1559 fees within caps, stuck
transactions replaced, lost replies treated as "maybe sent", nonces recovered after a crash.

- **Fees** (:class:`FeePolicy`): maxPriorityFeePerGas is the node's suggestion, capped by
  `max_priority_fee_per_gas`; maxFeePerGas is the latest base fee times FEE_MARGIN plus
  that tip, capped by `max_fee_per_gas`. When the base fee plus the tip is already above
  the cap, the write is refused with one sentence (:class:`FeeCapError`): nothing is
  signed, and the operator raises the cap or waits for calmer fees.
- **Replacement**: a transaction not mined while the base fee is above its maxFeePerGas
  (or dropped by the node for that reason) is signed again with the same nonce and both
  fee fields raised by REPLACEMENT_BUMP (12.5%: geth, anvil and most providers need at
  least 10% on both). When the cap leaves no room for a replacement, the client keeps
  waiting for the one it sent, until its timeout.
- **Maybe sent**: a transaction's hash is computed here from its signed bytes, so a lost
  reply to eth_sendRawTransaction costs nothing: the client looks the hash up and sends the
  same bytes again until it is mined or replaced; never the same content under a new nonce.
- **Crash recovery** (:class:`Outbox`): each signed transaction is written (fsync) to
  `<data dir>/transactions/<chain id>-<address>.jsonl` before it is sent. A client that starts
  again first sends again what is still outstanding (the same bytes, replaced if stuck) and
  waits for it to be mined; only then does it read what is on chain and take new nonces.
  So a bulk import re-run after a crash finds the lots of its unfinished transactions on
  chain and skips them (registrations are idempotent by batch id).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from eth_utils.address import to_checksum_address
from web3 import Web3

from ledger.errors import ChainError, LedgerError, RpcError
from ledger.hashing import keccak256 as keccak
from ledger.rpc import mined_receipt, rpc_call

if TYPE_CHECKING:
    from web3.types import RPCEndpoint

    from ledger.config import Settings

GWEI = 10**9
#: maxFeePerGas = base fee x FEE_MARGIN + tip: room for the base fee to rise 12.5% a block
#: for about six full blocks before a transaction needs replacing.
FEE_MARGIN = 2
#: Raise of both fee fields when replacing: nodes need >= 10% on each.
REPLACEMENT_BUMP = 0.125
#: Messages nodes use for "this transaction is already in my pool" (a resend of the same bytes).
ALREADY_KNOWN = ("already known", "known transaction", "already imported", "already in the mempool", "alreadyknown")
#: ... for "the nonce was used": by this transaction (mined) or by another one.
NONCE_USED = ("nonce too low", "nonce has already been used", "oldnonce", "invalid nonce")
#: ... for "the fees are too low for the pool or the next block": replace with higher fees.
UNDERPRICED = (
    "underpriced",
    "less than block base fee",
    "fee cap less than block base fee",
    "max fee per gas less than",
    "feetoolow",
    "fee too low",
)


class FeeCapError(ChainError):
    """The network needs more than the configured fee cap."""


def gwei(wei: int) -> str:
    """Wei as a short gwei figure for messages."""
    return f"{wei / GWEI:.4g} gwei"


@dataclass(frozen=True)
class Fees:
    """The two EIP-1559 fee fields, in wei."""

    max_fee: int
    tip: int

    def fields(self) -> dict[str, int]:
        """As transaction fields."""
        return {"maxFeePerGas": self.max_fee, "maxPriorityFeePerGas": self.tip}


@dataclass
class FeePolicy:
    """EIP-1559 fees within caps (wei; None: no cap)."""

    max_fee_cap: int | None = None
    tip_cap: int | None = None
    margin: int = FEE_MARGIN
    bump: float = REPLACEMENT_BUMP

    @classmethod
    def from_settings(cls, settings: Settings) -> FeePolicy:
        """The caps of the settings (gwei there)."""

        def to_wei(gwei: float | None) -> int | None:
            return None if gwei is None else int(round(gwei * GWEI))

        return cls(to_wei(settings.max_fee_per_gas), to_wei(settings.max_priority_fee_per_gas))

    def base_fee(self, w3: Web3) -> int:
        """The latest block's base fee (0 on chains without one)."""
        # Raw: web3's formatting of the block cost more than the round trip (the bulk path
        # asks once a transaction).
        block = rpc_call(w3, "eth_getBlockByNumber", ["latest", False]) or {}
        return int(block.get("baseFeePerGas") or "0x0", 16)

    def suggested_tip(self, w3: Web3, base_fee: int) -> int:
        """The node's tip, within the cap. A chain with a zero base fee (the local one, many
        consortium chains) takes zero-fee transactions, so accounts need no funding there."""
        if base_fee == 0:
            return 0
        tip = int(w3.eth.max_priority_fee)
        return tip if self.tip_cap is None else min(tip, self.tip_cap)

    def initial(self, w3: Web3) -> Fees:
        """Fees for a new transaction; FeeCapError when the cap cannot cover the base fee."""
        base = self.base_fee(w3)
        tip = self.suggested_tip(w3, base)
        if self.max_fee_cap is not None and base + tip > self.max_fee_cap:
            raise FeeCapError(
                f"the network's base fee is {gwei(base)} (plus a {gwei(tip)} tip), above the fee cap of "
                f"{gwei(self.max_fee_cap)} (max_fee_per_gas): raise the cap or try again when fees are lower"
            )
        max_fee = base * self.margin + tip
        if self.max_fee_cap is not None:
            max_fee = min(max_fee, self.max_fee_cap)
        return Fees(max_fee, tip)

    def replacement(self, old: Fees, w3: Web3) -> Fees | None:
        """Fees replacing `old` (both fields raised by at least `bump`, and enough for the
        current base fee), or None when the caps leave no room for a replacement."""
        base = self.base_fee(w3)
        tip = max(_raised(old.tip, self.bump), self.suggested_tip(w3, base))
        if self.tip_cap is not None and tip > self.tip_cap:
            return None
        max_fee = max(_raised(old.max_fee, self.bump), base * self.margin + tip)
        if self.max_fee_cap is not None and max_fee > self.max_fee_cap:
            max_fee = self.max_fee_cap
            if max_fee < _raised(old.max_fee, self.bump) or max_fee < base + tip:
                return None
        return Fees(max_fee, min(tip, max_fee))


def _raised(value: int, bump: float) -> int:
    """`value` raised by `bump`, by at least 1 wei (a node compares strictly)."""
    return value + max(1, math.ceil(value * bump))


def _matches(message: str, phrases: tuple[str, ...]) -> bool:
    lowered = message.lower().replace("_", " ")
    return any(phrase in lowered or phrase in lowered.replace(" ", "") for phrase in phrases)


@dataclass
class Pending:
    """One nonce's transaction: every signed version sent (the last is the current one)."""

    nonce: int
    tx: dict[str, Any]
    fees: Fees
    raws: list[bytes] = field(default_factory=list)
    sent_at: float = field(default_factory=time.monotonic)

    @property
    def hashes(self) -> list[bytes]:
        """Hash of each signed version, computed from its bytes."""
        return [keccak(raw) for raw in self.raws]

    @property
    def tx_hash(self) -> bytes:
        """Hash of the current version."""
        return keccak(self.raws[-1])


class Outbox:
    """Signed transactions not yet known to be mined, on disk (append-only, fsync'd)."""

    def __init__(self, data_dir: Path, chain_id: int, address: str) -> None:
        self.path = Path(data_dir) / "transactions" / f"{chain_id}-{to_checksum_address(address)}.jsonl"
        #: The bulk path appends from one thread and trims from another: a rewrite must not
        #: lose a record appended while it runs.
        self._lock = threading.RLock()

    def read(self) -> list[dict[str, Any]]:
        """Every record, oldest first (a torn last line from a crash is ignored)."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def record(self, pending: Pending) -> None:
        """Write the current version of `pending` before it is sent."""
        with self._lock:
            self._append(pending)

    def _append(self, pending: Pending) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {
                "nonce": pending.nonce,
                "raw": "0x" + pending.raws[-1].hex(),
                "tx": _jsonable(pending.tx),
                "max_fee": pending.fees.max_fee,
                "tip": pending.fees.tip,
            }
        )
        with open(self.path, "a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def drop(self, nonce: int) -> None:
        """Forget the records of `nonce` (a transaction the node refused outright)."""
        self._rewrite(lambda kept: kept != nonce)

    def _rewrite(self, keep: Callable[[int], bool]) -> None:
        """Keep the records whose nonce `keep` accepts, atomically. The
        kept lines are copied as they are: each holds a ~300 KB transaction, and decoding and
        encoding them again cost the bulk path ~60 ms a trim."""
        with self._lock:
            try:
                lines = self.path.read_bytes().split(b"\n")
            except FileNotFoundError:
                return
            kept = []
            for line in lines:
                nonce = _line_nonce(line)
                if nonce is not None and keep(nonce):
                    kept.append(line + b"\n")
            self._write_lines(kept)

    def _write_lines(self, lines: list[bytes]) -> None:
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")  # another process may rewrite too
        with open(temporary, "wb") as handle:
            handle.write(b"".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def drop_from(self, nonce: int) -> None:
        """Forget the records of `nonce` and every later one (never sent), atomically."""
        self._rewrite(lambda kept: kept < nonce)

    def keep_from(self, nonce: int) -> None:
        """Forget records below `nonce` (mined), atomically."""
        self._rewrite(lambda kept: kept >= nonce)


def _line_nonce(line: bytes) -> int | None:
    """The nonce of an outbox line, or None for a line that is not a whole record (torn by a
    crash). Lines are written as `{"nonce": N, ..., "tip": T}`; any other shape is decoded
    in full."""
    head = b'{"nonce": '
    _, tip, last = line.rpartition(b'"tip": ')
    if line.startswith(head) and tip and last.endswith(b"}") and last[:-1].isdigit():  # a whole line ends so
        end = line.find(b",", len(head))
        if end > len(head) and line[len(head) : end].isdigit():
            return int(line[len(head) : end])
    try:
        record = json.loads(line)
        return int(record["nonce"])
    except (ValueError, KeyError, TypeError):
        return None


def _jsonable(tx: dict[str, Any]) -> dict[str, Any]:
    return {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in tx.items()}


class TransactionSender:
    """Signs, sends and sees mined the transactions of one local key (see the module)."""

    def __init__(
        self,
        w3: Web3,
        signer: Any,
        chain_id: int,
        policy: FeePolicy | None = None,
        outbox: Outbox | None = None,
        poll: float = 0.5,
        stuck_after: float = 60.0,
    ) -> None:
        self.w3 = w3
        self.signer = signer
        self.chain_id = chain_id
        self.policy = policy or FeePolicy()
        self.outbox = outbox
        self.poll = poll
        #: Seconds after which a transaction still not mined is replaced with higher fees
        #: even though its maxFeePerGas covers the base fee (a pool that ignores it).
        self.stuck_after = stuck_after
        #: Seconds a transaction may take to be mined before the client gives up (it stays
        #: in the outbox and is sent again by the next command).
        self.timeout = 600.0
        self._nonce: int | None = None
        self._recovered = False
        #: What happened, for tests and reports.
        self.stats: dict[str, int] = {"sent": 0, "resent": 0, "replaced": 0, "recovered": 0}

    # ---------------------------------------------------------------- nonces and recovery

    def recover(self, timeout: float | None = None) -> int:
        """Send again what a previous run left outstanding in the outbox and wait until it is
        mined; the number of transactions recovered. Done once per sender."""
        if self._recovered:
            return 0
        self._recovered = True
        if self.outbox is None:
            return 0
        mined = self.w3.eth.get_transaction_count(self.signer.address, "latest")
        self.outbox.keep_from(mined)
        latest: dict[int, Pending] = {}
        for record in self.outbox.read():
            pending = latest.setdefault(
                record["nonce"], Pending(record["nonce"], record["tx"], Fees(record["max_fee"], record["tip"]))
            )
            pending.raws.append(bytes.fromhex(record["raw"].removeprefix("0x")))
            pending.fees = Fees(record["max_fee"], record["tip"])
        for nonce, pending in list(latest.items()):
            pending.sent_at = 0.0  # long ago: replace at once if stuck
            try:
                self._broadcast(pending)
            except _Underpriced:
                pass  # wait() replaces it
            except ChainError:
                self.outbox.drop(nonce)  # refused outright: it never took its nonce
                del latest[nonce]
        for nonce in sorted(latest):
            self.wait(latest[nonce], timeout)
            self.stats["recovered"] += 1
        return len(latest)

    def next_nonce(self) -> int:
        """The next nonce: what the node counts (pending included), after recovery."""
        self.recover()
        if self._nonce is None:
            self._nonce = self.w3.eth.get_transaction_count(self.signer.address, "pending")
        nonce = self._nonce
        self._nonce += 1
        return nonce

    def forget_nonce(self) -> None:
        """Ask the node for the next nonce again (after a send that certainly failed)."""
        self._nonce = None

    # ---------------------------------------------------------------- sending

    def _sign(self, pending: Pending) -> None:
        tx = {**pending.tx, "nonce": pending.nonce, "chainId": self.chain_id, **pending.fees.fields()}
        tx.pop("from", None)
        pending.raws.append(self.signer.sign(tx))
        if self.outbox is not None:
            self.outbox.record(pending)

    def submit(self, tx: dict[str, Any], fees: Fees | None = None) -> Pending:
        """Sign `tx` (to, data, value, gas) with the next nonce and fees within the caps
        (or `fees`), record it, send it. A lost reply is not an error: :meth:`wait` finds it
        or sends it again."""
        pending = self.prepare(tx, fees)
        self.send_prepared(pending)
        return pending

    def prepare(self, tx: dict[str, Any], fees: Fees | None = None) -> Pending:
        """The first half of :meth:`submit`: `tx` signed with the next nonce and recorded in
        the outbox, not sent yet. Prepared transactions must be sent in nonce order
        (:meth:`send_prepared`): the bulk path signs the next one while this one is sent."""
        fees = fees or self.policy.initial(self.w3)
        pending = Pending(self.next_nonce(), dict(tx), fees)
        self._sign(pending)
        return pending

    def send_prepared(self, pending: Pending) -> None:
        """The second half of :meth:`submit`. When the node refuses the transaction outright
        (no funds, invalid), its nonce was not taken, nor any later prepared one's: they
        leave the outbox, the next nonce is asked of the node again, and ChainError is raised."""
        self.stats["sent"] += 1
        try:
            self._broadcast(pending)
        except _Underpriced:
            pass  # wait() replaces it
        except ChainError:
            if self.outbox is not None:
                self.outbox.drop_from(pending.nonce)
            self.forget_nonce()
            raise

    def send_prepared_many(self, pendings: Sequence[Pending]) -> None:
        """:meth:`send_prepared` for several prepared transactions (in nonce order) in one
        JSON-RPC batch: one round trip, and the local chain mines such a batch as one block.
        On the first refusal, that nonce and every later one leave the outbox (as
        send_prepared does) and ChainError is raised; the ones before it were taken."""
        from web3.providers.base import JSONBaseProvider

        from ledger.network import RetriesExhausted

        provider = self.w3.provider
        responses: Any = None
        if len(pendings) >= 2 and isinstance(provider, JSONBaseProvider):
            requests = [(cast("RPCEndpoint", "eth_sendRawTransaction"), ["0x" + p.raws[-1].hex()]) for p in pendings]
            try:
                responses = provider.make_batch_request(requests)
            except RetriesExhausted:
                self.stats["sent"] += len(pendings)
                return  # maybe sent: wait() looks each up and sends it again
        if not isinstance(responses, list) or len(responses) != len(pendings):
            # One transaction, or a node that does not take batches (it answers one error).
            for pending in pendings:
                try:
                    self.send_prepared(pending)
                except ChainError as exc:
                    raise SendRefused(str(exc), pending.nonce) from exc
            return
        for pending, response in zip(pendings, responses, strict=True):
            self.stats["sent"] += 1
            error: Any = response.get("error")
            if error is None:
                continue
            try:
                self._judge_refusal(str(error.get("message", error) if isinstance(error, dict) else error))
            except _Underpriced:
                continue  # wait() replaces it
            except ChainError as exc:
                if self.outbox is not None:
                    self.outbox.drop_from(pending.nonce)
                self.forget_nonce()
                raise SendRefused(str(exc), pending.nonce) from exc

    def _broadcast(self, pending: Pending) -> None:
        """Send the current version; 'already known' and 'nonce used' are not errors here
        (wait() decides whether the nonce went to this transaction)."""
        from ledger.network import RetriesExhausted

        try:
            rpc_call(self.w3, "eth_sendRawTransaction", ["0x" + pending.raws[-1].hex()])
            return
        except RetriesExhausted:
            return  # maybe sent: wait() looks it up and sends it again
        except RpcError as exc:
            self._judge_refusal(exc.message)

    def _judge_refusal(self, message: str) -> None:
        """Raise what a node's answer to a send means, unless it is no error here: 'already
        known' and 'nonce used' return (wait() decides whether the nonce went to this
        transaction); 'underpriced' raises _Underpriced (wait() replaces it)."""
        if _matches(message, ALREADY_KNOWN) or _matches(message, NONCE_USED):
            return
        if _matches(message, UNDERPRICED):
            raise _Underpriced(message)
        if "insufficient funds" in message.lower():
            raise ChainError(
                f"{self.signer.address} cannot pay for this transaction ({message}): fund the account with the network's currency"
            )
        raise ChainError(f"the node refused the transaction: {message}")

    # ---------------------------------------------------------------- waiting

    def _receipt(self, pending: Pending) -> dict[str, Any] | None:
        # wait() keeps polling until its deadline while no version is mined.
        for tx_hash in reversed(pending.hashes):
            receipt = mined_receipt(self.w3, tx_hash)
            if receipt is not None:
                return receipt
        return None

    def wait(self, pending: Pending, timeout: float | None = None, known: dict[str, Any] | None = None) -> dict[str, Any]:
        """The receipt of whichever version of `pending` was mined, replacing it with higher
        fees while it is stuck below the base fee, and sending it again while the node does
        not know it. `known`: the receipt of its current version, read already."""
        if known is not None:
            return known
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        next_check = time.monotonic() + self.poll
        while True:
            receipt = self._receipt(pending)
            if receipt is not None:
                return receipt
            now = time.monotonic()
            if now > deadline:
                raise LedgerError(
                    f"transaction {'0x' + pending.tx_hash.hex()} (nonce {pending.nonce}) was not mined within "
                    f"{timeout:.0f}s; it stays recorded in the outbox and is sent again by the next command"
                )
            if now >= next_check:
                self._unstick(pending)
                next_check = now + max(self.poll, 1.0)
            time.sleep(self.poll)

    def _unstick(self, pending: Pending) -> None:
        """Replace `pending` when stuck below the base fee or too long unmined; send it again
        when the node has forgotten it; fail when its nonce went to another transaction."""
        if self.w3.eth.get_transaction_count(self.signer.address, "latest") > pending.nonce:
            if self._receipt(pending) is None:
                # Mined between the two reads, or the nonce went to a transaction this
                # sender did not sign. Look once more before saying so.
                time.sleep(self.poll)
                if self._receipt(pending) is None:
                    raise ChainError(
                        f"nonce {pending.nonce} of {self.signer.address} was used by another transaction than "
                        "this client's (another program signs with the same key?)"
                    )
            return
        try:
            known = rpc_call(self.w3, "eth_getTransactionByHash", ["0x" + pending.tx_hash.hex()])
        except RpcError:
            known = None  # as in _receipt: an error answer says nothing about the transaction
        below_base = self.policy.base_fee(self.w3) > pending.fees.max_fee
        too_long = time.monotonic() - pending.sent_at > self.stuck_after
        if not below_base and not too_long:
            if not known:
                self._resend(pending)
            return
        self._replace(pending)

    def _resend(self, pending: Pending) -> None:
        self.stats["resent"] += 1
        try:
            self._broadcast(pending)
        except _Underpriced:
            self._replace(pending)

    def _replace(self, pending: Pending) -> None:
        fees = self.policy.replacement(pending.fees, self.w3)
        if fees is None:
            return  # no room under the cap: keep waiting for the current version
        pending.fees = fees
        pending.sent_at = time.monotonic()
        self._sign(pending)
        self.stats["replaced"] += 1
        with contextlib.suppress(_Underpriced):  # the next check raises it again
            self._broadcast(pending)


class SendRefused(ChainError):
    """The node refused a transaction of a group outright: it and every later nonce of the
    group were not taken (they left the outbox); the ones before it were."""

    def __init__(self, message: str, nonce: int) -> None:
        super().__init__(message)
        self.nonce = nonce


class _Underpriced(ChainError):
    """The node refused a transaction for its fees."""
