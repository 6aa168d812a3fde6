"""Fixtures for the client tests: free loopback ports and `provenance run` processes."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# A new ledger on a chain of its own, per test (defined with the index-truth tests; the
# follower and prefetch tests use it too).
from test_index_truth import fresh  # noqa: F401 - a fixture, registered by being here

from ledger.chain import free_loopback_port

ROOT = Path(__file__).resolve().parents[2]


class RunProcess:
    """A `provenance run` child process and what it printed (read by a thread, so a
    silent child never blocks the test past its timeout)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Read output until a line matches `pattern`; fail with everything read otherwise."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            match = regex.search(line)
            if match:
                return match
        raise AssertionError(f"no line matched {pattern!r}; output:\n" + "\n".join(self.lines))

    def stop(self, sig: int | None = signal.SIGINT, timeout: float = 60.0) -> int:
        """Send `sig` (None: send nothing, the process is exiting by itself) and wait for
        the exit code, keeping the remaining output."""
        if sig is not None and self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        while True:
            try:
                line = self._queue.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return code


@pytest.fixture
def chain_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a `provenance run` on a private data directory and port."""
    env = dict(os.environ)
    env.update(
        PROVENANCE_DATA_DIR=str(tmp_path / "data"),
        PROVENANCE_RPC_URL=f"http://127.0.0.1:{free_loopback_port()}",
        PROVENANCE_WEB_PORT=str(free_loopback_port()),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def start_run(chain_env: dict[str, str]) -> Iterator:
    """Start `provenance run` processes; any left running are stopped at the end."""
    started: list[RunProcess] = []

    def start(*args: str) -> RunProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger.cli", "run", *args],
            cwd=ROOT,
            env=chain_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        run = RunProcess(process)
        started.append(run)
        return run

    yield start
    for run in started:
        if run.process.poll() is None:
            run.stop(signal.SIGTERM)


@dataclass
class LocalLedger:
    """A running local chain with a deployed ledger, and the environment that points at it."""

    env: dict[str, str]
    rpc_url: str
    data_dir: Path
    address: str

    def web3(self):
        from web3 import Web3

        return Web3(Web3.HTTPProvider(self.rpc_url))

    def block_number(self) -> int:
        return self.web3().eth.block_number


@pytest.fixture(scope="module")
def local_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLedger]:
    """A fresh anvil (deployed ledger, no demo) shared by a module's tests."""
    from ledger.chain import LocalChain, connect
    from ledger.config import Settings
    from ledger.deploy import ensure_deployed

    data_dir = tmp_path_factory.mktemp("ledger-data")
    rpc_url = f"http://127.0.0.1:{free_loopback_port()}"
    settings = Settings(data_dir=data_dir, rpc_url=rpc_url)
    chain = LocalChain(settings)
    chain.start()
    try:
        deployment, _, _ = ensure_deployed(connect(rpc_url), settings.deployment_file, settings.admin_transfer_delay)
        env = {
            "PROVENANCE_DATA_DIR": str(data_dir),
            "PROVENANCE_RPC_URL": rpc_url,
            "PROVENANCE_KEYSTORE_PASSWORD": "correct horse battery",
        }
        yield LocalLedger(env, rpc_url, data_dir, deployment.address)
    finally:
        chain.stop()


@pytest.fixture
def rewind(local_ledger: LocalLedger) -> Iterator[None]:
    """Revert the chain to its state before the test (anvil snapshots), keeping its clock
    on the wall clock's time (a revert also rewinds anvil's clock, and signed attestations
    carry the wall clock's signing time, which must not lie in the chain's future)."""
    w3 = local_ledger.web3()
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    yield
    w3.provider.make_request("evm_revert", [snapshot])
    w3.provider.make_request("evm_setTime", [int(time.time())])


@pytest.fixture
def cli(local_ledger: LocalLedger, rewind: None, monkeypatch: pytest.MonkeyPatch):
    """Run `provenance ...` in process against the local ledger; returns (exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    from ledger.cli import app

    for key in [k for k in os.environ if k.startswith("PROVENANCE_")]:
        monkeypatch.delenv(key)
    for key, value in local_ledger.env.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL for the index tests (see tests/ledger/postgres.py)."""
    from postgres import MACHINE_URL, PrivateCluster, answers

    explicit = os.environ.get("PROVENANCE_TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    if answers(MACHINE_URL) and not os.environ.get("PROVENANCE_TEST_PRIVATE_POSTGRES"):
        yield MACHINE_URL
        return
    # Not under pytest's tmp dir: its parent is private to our user, and PostgreSQL runs
    # as its own account when we are root.
    directory = Path(tempfile.mkdtemp(prefix="provenance-pg-"))
    try:
        cluster = PrivateCluster(directory).start()
    except Exception as exc:  # noqa: BLE001
        shutil.rmtree(directory, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        pytest.fail(f"could not start a PostgreSQL for the tests: {exc} {detail.decode(errors='replace')}")
    try:
        yield cluster.url
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
