"""The local chain: anvil behind the durable node (ledger.localnode), whose journal and
snapshots in the data directory make every confirmed write survive a crash.

The node is started and stopped by PID: never through npm's node wrapper, whose death would
orphan the chain, and never by attaching silently to something already on the port. anvil
is the node's child and dies with it, even on SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from web3 import HTTPProvider, Web3

from ledger.config import Settings
from ledger.errors import ChainError, PortInUseError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Snapshot unsaved writes this often (seconds) or after this many journal entries; a
#: restart replays at most that much. Tests lower them to snapshot often.
SNAPSHOT_SECONDS = 30.0
SNAPSHOT_ENTRIES = 2000
#: How long a start may take: loading a large snapshot and replaying its journal.
START_TIMEOUT_SECONDS = 600.0


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
    """The durable local chain (a `python -m ledger.localnode` process with anvil as its
    child), owned by this object: started and stopped by PID."""

    def __init__(
        self,
        settings: Settings,
        anvil: Path | None = None,
        snapshot_seconds: float = SNAPSHOT_SECONDS,
        snapshot_entries: int = SNAPSHOT_ENTRIES,
    ) -> None:
        self.settings = settings
        self.anvil = anvil or find_anvil()
        self.snapshot_seconds = snapshot_seconds
        self.snapshot_entries = snapshot_entries
        self.process: subprocess.Popen[bytes] | None = None
        #: What the last start rebuilt ("restored to block N; replayed K transactions").
        self.recovery: dict[str, Any] = {}

    @property
    def state_dir(self) -> Path:
        """The chain's journal and snapshots."""
        return self.settings.chain_dir

    @property
    def pid_file(self) -> Path:
        """Record of the running node, to recognise a stale one later."""
        return self.settings.chain_dir / "node.pid"

    @property
    def log_file(self) -> Path:
        """The node's own output (recovery, errors)."""
        return self.settings.chain_dir / "node.log"

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
                f"(chain pid {pid} on {host}:{port}). It was not stopped cleanly; stop it with "
                f"`kill {pid}` (nothing confirmed is lost either way), then run again."
            )
        raise PortInUseError(
            f"another program already listens on {host}:{port}. The ledger will not attach to a "
            f"chain it did not start: stop that program, or choose another port with "
            f"PROVENANCE_RPC_URL=http://127.0.0.1:<port>."
        )

    def start(self, timeout: float = START_TIMEOUT_SECONDS, genesis_timestamp: int | None = None) -> None:
        """Start the node on the settings' host and port: it rebuilds the saved chain (newest
        good snapshot plus the journal after it) before it answers; `self.recovery` says what
        it restored.

        `genesis_timestamp` dates a brand-new chain's first block (e.g. months back, so a
        demo history can be spread over realistic dates); a saved chain keeps its own.
        """
        if self.settings.rpc_host not in ("127.0.0.1", "localhost"):
            raise ChainError(
                f"the local chain only listens on loopback; {self.settings.rpc_url} points elsewhere "
                "(for a remote chain, do not start a local one)"
            )
        self._refuse_occupied_port()
        self.settings.chain_dir.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable, "-m", "ledger.localnode",
            "--chain-dir", str(self.state_dir),
            "--port", str(self.settings.rpc_port),
            "--chain-id", str(self.settings.chain_id),
            "--anvil", str(self.anvil),
            "--snapshot-seconds", str(self.snapshot_seconds),
            "--snapshot-entries", str(self.snapshot_entries),
        ]  # fmt: skip
        if genesis_timestamp is not None:
            args += ["--genesis-timestamp", str(genesis_timestamp)]
        recovery_file = self.state_dir / "recovery.json"
        recovery_file.unlink(missing_ok=True)
        log = self.log_file.open("ab")
        # A session of its own: a Ctrl-C in the terminal reaches us, and we stop the node
        # in order (it snapshots) instead of racing it.
        self.process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))},
        )
        log.close()
        self.pid_file.write_text(json.dumps({"pid": self.process.pid, "port": self.settings.rpc_port}))
        deadline = time.monotonic() + timeout
        w3 = connect(self.settings.rpc_url, timeout=2)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._forget_pid()
                raise ChainError(f"the local chain exited at start: {self._last_error()}")
            try:
                if w3.eth.chain_id == self.settings.chain_id:
                    self.recovery = json.loads(recovery_file.read_text()) if recovery_file.exists() else {}
                    return
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.1)
        self.stop()
        raise ChainError(f"the local chain did not answer within {timeout:.0f}s; see {self.log_file}")

    def _last_error(self) -> str:
        """The node's last words (it says why it could not start), or where to look."""
        try:
            lines = [line for line in self.log_file.read_text(errors="replace").splitlines() if "cannot start" in line]
        except OSError:
            lines = []
        return lines[-1].split("cannot start: ", 1)[-1] if lines else f"see {self.log_file}"

    def stop(self, timeout: float = 120.0) -> None:
        """Stop the node with SIGTERM (it snapshots), then SIGKILL if it hangs (the
        journal still holds every write)."""
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

    def kill(self) -> None:
        """SIGKILL the node (and so anvil): a crash, for tests of what survives one."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def _forget_pid(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def __enter__(self) -> LocalChain:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
