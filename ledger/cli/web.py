"""The web server as a child process: uvicorn running the `api` app in worker processes.

The CLI starts it by module name and stops it by PID; `ledger` never imports `api` (the
app reads the ledger's index, not the other way round).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.errors import PortInUseError, WebServerError

if TYPE_CHECKING:
    from ledger.config import Settings

APP = "api.main:create_app"


class WebServer:
    """uvicorn serving the pages and the auditor API on `host:port`, logging to a file."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 2, app: str = APP) -> None:
        self.settings, self.host, self.port, self.workers, self.app = settings, host, port, workers, app
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.settings.data_dir / "web.log"

    @property
    def pid_file(self) -> Path:
        return self.settings.data_dir / "web.pid"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        """The uvicorn command line (uvloop and httptools: they decide throughput).
        X-Forwarded-For is trusted only from the proxies named in FORWARDED_ALLOW_IPS
        (uvicorn's own setting): by default the client is the connection's peer, so a
        client cannot choose the address its uploads are rate-limited under."""
        trust_proxies = [] if os.environ.get("FORWARDED_ALLOW_IPS") else ["--no-proxy-headers"]
        return [
            sys.executable, "-m", "uvicorn", self.app, "--factory",
            "--host", self.host, "--port", str(self.port), "--workers", str(self.workers),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning", *trust_proxies,
        ]  # fmt: skip

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers; refuse an occupied port."""
        probe = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        self.refuse_occupied_port()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_file.open("ab")
        env = {**os.environ, **self.settings.as_env()}
        # A session of its own, like the chain: Ctrl-C reaches us and we stop it in order.
        self.process = subprocess.Popen(self.command(), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.pid_file.write_text(str(self.process.pid))
        import urllib.error  # here, not at the top: `provenance --help` loads this module
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WebServerError(f"the web server exited at start (code {self.process.returncode}); see {self.log_file}")
            try:
                urllib.request.urlopen(f"http://{probe}:{self.port}/api/v1/index", timeout=2).close()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        raise WebServerError(f"the web server did not answer within {timeout:.0f}s; see {self.log_file}")

    def refuse_occupied_port(self) -> None:
        """Say who holds the port: our own earlier server (by PID) or another program."""
        from ledger.chain import pid_is_alive, port_is_open

        probe = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        if not port_is_open(probe, self.port):
            return
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            pid = None
        if pid is not None and pid_is_alive(pid):
            raise PortInUseError(
                f"the web server of an earlier run is still running (pid {pid}) on {self.host}:{self.port}: "
                f"stop it with `kill {pid}`, or serve elsewhere with --port"
            )
        raise PortInUseError(
            f"another program already listens on {self.host}:{self.port}: stop it, or serve elsewhere with --port"
        )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (uvicorn stops its workers), then SIGKILL of the group if it hangs."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.pid_file.unlink(missing_ok=True)
