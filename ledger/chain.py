"""The local chain: an anvil process whose state persists in the data directory.

anvil's `--state FILE` loads the file at start and writes it back on a clean exit, and
`--state-interval` also writes it periodically, so a crash loses seconds at most. The
process is started and stopped by PID: never through npm's node wrapper, whose death would
orphan the chain, and never by attaching silently to something already on the port.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from web3 import HTTPProvider, Web3

from ledger.config import Settings
from ledger.errors import ChainError, PortInUseError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STATE_INTERVAL_SECONDS = 5


def find_anvil() -> Path:
    """Path of the native anvil binary: `$PROVENANCE_ANVIL`, the project's npm install, or PATH."""
    explicit = os.environ.get("PROVENANCE_ANVIL")
    if explicit:
        return Path(explicit)
    for candidate in sorted(PROJECT_ROOT.glob("node_modules/@foundry-rs/anvil-*/bin/anvil")):
        return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise ChainError("anvil is not installed: run `make run` (or `npm ci`) in the project directory")


def port_is_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def free_loopback_port() -> int:
    """A loopback TCP port nobody listens on right now (for tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_is_alive(pid: int) -> bool:
    """Whether a process with this PID exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def connect(rpc_url: str, timeout: float = 30.0) -> Web3:
    """A web3 connection to `rpc_url`."""
    return Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))


class LocalChain:
    """An anvil process with persisted state, owned by this object (started and stopped by PID)."""

    def __init__(self, settings: Settings, anvil: Path | None = None) -> None:
        self.settings = settings
        self.anvil = anvil or find_anvil()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def state_file(self) -> Path:
        """anvil's state dump: blocks, transactions, receipts, logs."""
        return self.settings.chain_dir / "state.json"

    @property
    def pid_file(self) -> Path:
        """Record of the running anvil, to recognise a stale one later."""
        return self.settings.chain_dir / "anvil.pid"

    @property
    def log_file(self) -> Path:
        """anvil's own output."""
        return self.settings.chain_dir / "anvil.log"

    def _refuse_occupied_port(self) -> None:
        host, port = self.settings.rpc_host, self.settings.rpc_port
        if not port_is_open(host, port):
            return
        try:
            record = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            record = {}
        pid = record.get("pid")
        if pid and record.get("port") == port and pid_is_alive(pid):
            raise PortInUseError(
                f"a local chain started earlier from {self.settings.data_dir} is still running "
                f"(anvil pid {pid} on {host}:{port}). It was not stopped cleanly; stop it with "
                f"`kill {pid}` (its state is saved on exit), then run again."
            )
        raise PortInUseError(
            f"another program already listens on {host}:{port}. The ledger will not attach to a "
            f"chain it did not start: stop that program, or choose another port with "
            f"PROVENANCE_RPC_URL=http://127.0.0.1:<port>."
        )

    def start(self, timeout: float = 30.0, genesis_timestamp: int | None = None) -> None:
        """Start anvil on the settings' host and port, loading the saved state if any.

        `genesis_timestamp` dates a brand-new chain's first block (e.g. months back, so a
        demo history can be spread over realistic dates); a saved state keeps its own time.
        """
        if self.settings.rpc_host not in ("127.0.0.1", "localhost"):
            raise ChainError(
                f"the local chain only listens on loopback; {self.settings.rpc_url} points elsewhere "
                "(for a remote chain, do not start a local one)"
            )
        self._refuse_occupied_port()
        self.settings.chain_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(self.anvil),
            "--host", "127.0.0.1",
            "--port", str(self.settings.rpc_port),
            "--chain-id", str(self.settings.chain_id),
            "--state", str(self.state_file),
            "--state-interval", str(STATE_INTERVAL_SECONDS),
            # Zero base fee: local transactions need no gas price juggling.
            "--block-base-fee-per-gas", "0",
            # Twenty unlocked dev accounts: enough organisations for the demo, no keys here.
            "--accounts", "20",
        ]  # fmt: skip
        if genesis_timestamp is not None and not self.state_file.exists():
            args += ["--timestamp", str(genesis_timestamp)]
        log = self.log_file.open("ab")
        # A session of its own: a Ctrl-C in the terminal reaches us, and we stop anvil in
        # order (so it writes its state) instead of racing it.
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.pid_file.write_text(json.dumps({"pid": self.process.pid, "port": self.settings.rpc_port}))
        deadline = time.monotonic() + timeout
        w3 = connect(self.settings.rpc_url, timeout=2)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._forget_pid()
                raise ChainError(f"anvil exited at start (code {self.process.returncode}); see {self.log_file}")
            try:
                if w3.eth.chain_id == self.settings.chain_id:
                    return
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.1)
        self.stop()
        raise ChainError(f"anvil did not answer within {timeout:.0f}s; see {self.log_file}")

    def stop(self, timeout: float = 60.0) -> None:
        """Stop anvil with SIGTERM (it saves its state), then SIGKILL if it hangs."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._forget_pid()

    def _forget_pid(self) -> None:
        try:
            self.pid_file.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "LocalChain":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
