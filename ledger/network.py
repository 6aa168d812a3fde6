"""Talking to a public network's JSON-RPC provider: rate limits, 429s, timeouts, lost replies.

A provider answers 429 when asked too often, times out under load, and sometimes drops a
reply after doing the work. :class:`ResilientHTTPProvider` keeps to a request rate, and
sends a request again after a 429 (waiting what Retry-After says), a timeout, a dropped
connection or a 502/503/504, waiting longer each time (exponential, with jitter, so many
clients do not retry in step).

Sending a request again is safe for every call this client makes: reads are reads, and
every transaction is sent as signed bytes with an explicit nonce, so a second copy is the
same transaction (the node answers "already known", or "nonce too low" once it is mined):
see :mod:`ledger.fees` for how the writer tells those apart.
"""

from __future__ import annotations

import random
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint, RPCResponse

from ledger.errors import ChainError

#: First wait after a failure; doubled each time up to MAX_BACKOFF.
BASE_BACKOFF = 0.25
MAX_BACKOFF = 20.0
#: HTTP statuses that mean "try again later", not "you asked something wrong".
RETRYABLE_STATUS = {429, 502, 503, 504}
#: Attempts at an address where nothing accepts connections before the error is raised.
REFUSED_ATTEMPTS = 3


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Whether the connection itself failed (refused, unknown host), not a reply."""
    text = repr(exc)
    return "NewConnectionError" in text or "NameResolutionError" in text or "Connection refused" in text


class RetriesExhausted(ChainError):
    """The provider kept failing for longer than the client was allowed to wait."""


class RateLimiter:
    """At most `per_second` requests a second across threads (a token bucket of one second)."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next request may go."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Seconds the provider asked to wait (Retry-After: seconds or an HTTP date), if any."""
    if response is None:
        return None
    value: str | None = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Wait before retry `attempt` (0-based): full jitter on an exponential ceiling."""
    ceiling = min(MAX_BACKOFF, BASE_BACKOFF * 2.0**attempt)  # 2.0: int ** int is typed Any (negative powers)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class ResilientHTTPProvider(HTTPProvider):
    """An HTTPProvider that keeps a request rate and retries what a provider may fail
    transiently, for up to `give_up_after` seconds per request.

    `stats` counts what happened (retries by cause), for tests and for the operator.
    """

    def __init__(
        self,
        endpoint_uri: str,
        timeout: float = 30.0,
        requests_per_second: float | None = None,
        give_up_after: float = 180.0,
    ) -> None:
        super().__init__(endpoint_uri, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
        self.limiter = RateLimiter(requests_per_second)
        self.give_up_after = give_up_after
        self.stats: dict[str, int] = {"requests": 0, "429": 0, "timeout": 0, "connection": 0, "5xx": 0}
        self._rng = random.Random()

    def _post(self, request_data: bytes, what: str) -> bytes:
        """POST one request (or batch) with retries; the raw reply."""
        endpoint = self.endpoint_uri
        if endpoint is None:  # set in __init__; HTTPProvider's own type allows None
            raise ChainError("the chain's provider has no URL to send requests to")
        deadline = time.monotonic() + self.give_up_after
        attempt = 0
        while True:
            self.limiter.wait()
            self.stats["requests"] += 1
            wait: float | None = None
            try:
                return self._request_session_manager.make_post_request(endpoint, request_data, **self.get_request_kwargs())
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if status not in RETRYABLE_STATUS:
                    raise
                self.stats["429" if status == 429 else "5xx"] += 1
                wait = retry_after_seconds(exc.response)
                cause: str = f"HTTP {status}"
            except requests.Timeout:
                self.stats["timeout"] += 1
                cause = "a timeout"
            except requests.ConnectionError as exc:
                # Also a reply dropped after the provider did the work: the retry repeats a
                # read, or resends identical signed bytes (same hash, same nonce).
                self.stats["connection"] += 1
                cause = "a dropped connection"
                if _never_connected(exc) and attempt >= REFUSED_ATTEMPTS:
                    # Nothing listens there (a wrong URL, a node down): say so soon.
                    raise
            delay = wait if wait is not None else backoff_delay(attempt, self._rng)
            if time.monotonic() + delay > deadline:
                raise RetriesExhausted(
                    f"the chain's provider at {self.endpoint_uri} kept failing {what} "
                    f"(last: {cause}) for {self.give_up_after:.0f}s; try again later"
                )
            time.sleep(delay)
            attempt += 1

    def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        return self._post(request_data, method)

    def make_batch_request(self, batch_requests: list[tuple[RPCEndpoint, Any]]) -> list[RPCResponse] | RPCResponse:
        """A JSON-RPC batch, retried as a whole: reads, or sends of signed transactions (a
        retry sends the same bytes again, which a node that took them answers 'already known')."""
        from web3._utils.batching import sort_batch_response_by_response_ids

        raw = self._post(self.encode_batch_rpc_request(batch_requests), "a batch request")
        response = self.decode_rpc_response(raw)
        if not isinstance(response, list):
            return response
        return sort_batch_response_by_response_ids(response)


def connect_resilient(rpc_url: str, timeout: float = 30.0, requests_per_second: float | None = None) -> Web3:
    """web3 over a :class:`ResilientHTTPProvider`."""
    return Web3(ResilientHTTPProvider(rpc_url, timeout=timeout, requests_per_second=requests_per_second))
