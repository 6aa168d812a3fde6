"""Spam checks on shoppers' feedback that need no third party and keep nothing personal.

* **Form tokens** (`FormTokens`): the form carries `issued.mac`, an HMAC over the time (ms) it was
  served and the lot, under a key kept in the data directory (0600) and shared by the web
  workers. A token sent back sooner than the minimum fill time (bots post at once) or after
  it expired, or for another lot, is refused. No server state per form.
* **Rate limit** (`RateLimiter`): posts per client (an IPv6 client by its /64) per hour,
  counted in memory under HMAC(secret, client address). The secret is random, lives only in this process's memory
  and is replaced every hour, when the counts are dropped: no address, nor anything that
  could be matched to one later, is ever stored or logged. Each worker counts on its own,
  so with N workers a client may post up to N times the limit.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

#: How long a served form stays good.
TOKEN_LIFETIME_SECONDS = 2 * 3600
RATE_WINDOW_SECONDS = 3600


class TokenProblem(ValueError):
    """Why a form token is refused (`too_fast`, `expired`, `invalid`)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _load_key(path: Path) -> bytes:
    """The form key at `path`, created (0600, exclusively: workers race at start) when absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker is writing it
            key = path.read_bytes()
            if len(key) == 32:
                return key
            time.sleep(0.02)
        raise
    key = secrets.token_bytes(32)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key)
        file.flush()
        os.fsync(file.fileno())
    return key


class FormTokens:
    """Issues and checks the feedback form's tokens."""

    def __init__(self, key_file: Path, min_fill_seconds: float) -> None:
        self._key = _load_key(key_file)
        self.min_fill_seconds = min_fill_seconds

    def _mac(self, issued: int, batch_id: str) -> str:
        return hmac.new(self._key, f"{issued}|{batch_id.lower()}".encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, batch_id: str, now: float | None = None) -> str:
        """A token for a form about `batch_id`, served now."""
        issued = int((time.time() if now is None else now) * 1000)  # milliseconds: fill times are seconds
        return f"{issued}.{self._mac(issued, batch_id)}"

    def check(self, token: str, batch_id: str, now: float | None = None) -> None:
        """Raise TokenProblem unless `token` was issued here for `batch_id`, at least the
        minimum fill time and at most the lifetime ago."""
        issued_text, _, mac = token.partition(".")
        if not (issued_text.isascii() and issued_text.isdigit()) or len(issued_text) > 15:  # "²" is a digit int() refuses
            raise TokenProblem("invalid")
        issued = int(issued_text)
        if not hmac.compare_digest(mac, self._mac(issued, batch_id)):
            raise TokenProblem("invalid")
        age = (time.time() if now is None else now) - issued / 1000
        if age > TOKEN_LIFETIME_SECONDS:
            raise TokenProblem("expired")
        if age < self.min_fill_seconds:
            raise TokenProblem("too_fast")


def client_network(host: str) -> str:
    """What the rate limit counts a client as: its IPv4 address, or its IPv6 address's /64
    (a household or a server is given a whole /64, so counting single IPv6 addresses would
    let one client post under 2^64 names)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass
class RateLimiter:
    """Fixed hourly windows of at most `limit` posts per client; a window ends when the
    secret is replaced."""

    limit: int
    window: float = RATE_WINDOW_SECONDS
    _secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    _window_end: float = field(default=0.0, repr=False)
    _counts: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, client: str, now: float | None = None) -> int | None:
        """Count a post of `client` (an address: IPv6 ones by their /64); None when allowed,
        else the seconds until it may post again."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            if moment >= self._window_end:
                self._secret = secrets.token_bytes(32)  # the old one is gone: nothing links windows
                self._counts.clear()
                self._window_end = moment + self.window
            key = hmac.new(self._secret, client_network(client).encode(), hashlib.sha256).hexdigest()
            used = self._counts.get(key, 0)
            if used >= self.limit:
                return max(1, int(self._window_end - moment + 0.999))
            self._counts[key] = used + 1
            return None
