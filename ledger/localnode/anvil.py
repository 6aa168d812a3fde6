"""The anvil process behind the durable node, on a loopback port of its own, and a small
JSON-RPC client for it (standard library only: the node starts in a fraction of a second)."""

from __future__ import annotations

import ctypes
import http.client
import json
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

#: anvil's block gas limit, given at start (its default, so earlier chains keep their
#: genesis). The node mines a block of several sends under a limit raised to hold them all,
#: then sets this one back.
BLOCK_GAS_LIMIT = 30_000_000
#: prctl(2) option: the signal a child gets when its parent dies.
PR_SET_PDEATHSIG = 1


class RpcError(Exception):
    """anvil answered a request with a JSON-RPC error, or could not be reached."""


def _die_with_parent() -> None:
    """In the child before exec: if the node is killed (even with SIGKILL), anvil dies too,
    so a crash never leaves a chain running that nothing journals."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Anvil:
    """One anvil process on a private loopback port, and requests to it."""

    def __init__(self, binary: Path, chain_id: int, log: IO[bytes]) -> None:
        self.binary = binary
        self.chain_id = chain_id
        self.log = log
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._local = threading.local()

    def start(
        self,
        genesis_timestamp: int | None,
        state_file: Path | None = None,
        timeout: float = 300.0,
    ) -> None:
        """Start anvil, on a new chain at genesis or on the state in `state_file` (anvil's
        JSON; a file, since anvil_loadState refuses a request body the size of a real
        ledger's state), and wait until it answers."""
        self.port = free_port()
        args = [
            str(self.binary),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            # Zero base fee: local transactions need no gas price juggling.
            "--block-base-fee-per-gas", "0",
            # anvil's default, said aloud: a block of several sends is mined under a raised
            # limit and this one is set back after (DurableNode._mine_block_of_sends).
            "--gas-limit", str(BLOCK_GAS_LIMIT),
            # Twenty unlocked dev accounts: enough organisations for the demo, no keys here.
            "--accounts", "20",
        ]  # fmt: skip
        if genesis_timestamp is not None:
            args += ["--timestamp", str(genesis_timestamp)]
        if state_file is not None:
            args += ["--load-state", str(state_file)]
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RpcError(f"anvil exited at start (code {self.process.returncode})")
            try:
                self.call("eth_chainId", [])
                return
            except RpcError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RpcError(f"anvil did not answer within {timeout:.0f}s") from None
                time.sleep(0.05)

    def alive(self) -> bool:
        """Whether the anvil process still runs."""
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop anvil (its state is ours to save, not its own: SIGKILL is fine)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None or getattr(self._local, "port", None) != self.port:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            self._local.connection, self._local.port = connection, self.port
        return connection

    def post(self, body: bytes) -> tuple[int, bytes]:
        """Send a raw JSON-RPC body; (HTTP status, raw response body)."""
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request("POST", "/", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                self._local.connection = None
                if attempt == 2 or not self.alive():
                    raise RpcError(f"the chain process does not answer: {exc}") from exc
        raise AssertionError("unreachable")

    def request(self, method: str, params: list[Any], request_id: Any = 1) -> dict[str, Any]:
        """One JSON-RPC request; the whole response object (result or error)."""
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode()
        _status, raw = self.post(body)
        try:
            response: dict[str, Any] = json.loads(raw)
        except ValueError as exc:
            raise RpcError(f"{method}: the chain answered something that is not JSON") from exc
        return response

    def call(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC request's result; RpcError on an error answer."""
        response = self.request(method, params)
        if "error" in response:
            error = response["error"]
            raise RpcError(f"{method}: {error.get('message', error) if isinstance(error, dict) else error}")
        return response.get("result")

    def head(self) -> tuple[int, int]:
        """Number and timestamp of the newest block."""
        block = self.call("eth_getBlockByNumber", ["latest", False])
        return int(block["number"], 16), int(block["timestamp"], 16)

    def wait_mined(self, tx_hash: str, timeout: float = 120.0) -> bool:
        """Wait until a transaction anvil accepted under automine is in a block: True; False
        when the pool holds it queued (behind a missing nonce). Both are states of the chain,
        not of timing, so a replay decides the same; a transaction on its way into a block is
        waited for. RpcError if it is neither mined nor queued after `timeout`."""
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while True:
            # The transaction, not its receipt: a receipt of 480 registrations is ~300 KB.
            found = self.call("eth_getTransactionByHash", [tx_hash])
            if found is not None and found.get("blockNumber") is not None:
                return True
            if pause >= 0.002 and self._queued(tx_hash):
                return False
            if time.monotonic() > deadline:
                raise RpcError(f"transaction {tx_hash} was not mined within {timeout:.0f}s")
            time.sleep(pause)
            pause = min(pause * 2, 0.02)

    def _queued(self, tx_hash: str) -> bool:
        """Whether the pool holds `tx_hash` among the transactions it cannot mine yet."""
        queued = (self.call("txpool_content", []) or {}).get("queued") or {}
        return any(
            isinstance(tx, dict) and str(tx.get("hash", "")).lower() == tx_hash.lower()
            for by_nonce in queued.values()
            if isinstance(by_nonce, dict)
            for tx in by_nonce.values()
        )


def _int(value: Any) -> int:
    """A JSON-RPC quantity given as a number or a hex string."""
    return int(value, 16) if isinstance(value, str) and value.startswith("0x") else int(value)
