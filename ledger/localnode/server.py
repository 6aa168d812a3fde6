"""The durable node's JSON-RPC endpoint on the public loopback port: reads go straight to
anvil, writes go through the journal (DurableNode.write)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ledger.localnode.anvil import RpcError
from ledger.localnode.node import DurableNode, groups_into_block, is_read

#: A request body larger than this is refused (anvil's own limit is similar).
MAX_BODY = 256 * 1024 * 1024


def _error(request_id: Any, message: str, code: int = -32603) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class NodeServer(ThreadingHTTPServer):
    """A threaded HTTP server that hands each JSON-RPC request to the node."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, node: DurableNode) -> None:
        self.node = node
        super().__init__(("127.0.0.1", port), _Handler)

    def dispatch(self, body: bytes) -> tuple[int, bytes]:
        """The HTTP status and body answering one JSON-RPC body (a request or a batch)."""
        try:
            message = json.loads(body)
        except ValueError:
            return self.node.anvil.post(body)  # anvil says what is wrong with it
        if isinstance(message, dict):
            if is_read(str(message.get("method", ""))):
                return self.node.anvil.post(body)
            return 200, json.dumps(self._one(message)).encode()
        if isinstance(message, list) and message:
            if all(isinstance(m, dict) and is_read(str(m.get("method", ""))) for m in message):
                return self.node.anvil.post(body)
            if groups_into_block(message):
                return 200, json.dumps(self.node.write_block_of_sends(message)).encode()
            return 200, json.dumps(
                [self._one(m) if isinstance(m, dict) else _error(None, "invalid request", -32600) for m in message]
            ).encode()
        return self.node.anvil.post(body)

    def _one(self, request: dict[str, Any]) -> dict[str, Any]:
        method, params, request_id = str(request.get("method", "")), request.get("params") or [], request.get("id")
        if not isinstance(params, list):
            params = [params]
        try:
            if is_read(method):
                return self.node.anvil.request(method, params, request_id)
            return self.node.write(method, params, request_id)
        except RpcError as exc:
            return _error(request_id, f"the local chain's node could not reach anvil: {exc}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; with Nagle's algorithm on, each answer
    # would wait for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True
    server: NodeServer

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, json.dumps(_error(None, "request too large")).encode())
            return
        body = self.rfile.read(length)
        try:
            status, answer = self.server.dispatch(body)
        except RpcError as exc:
            status, answer = 502, json.dumps(_error(None, f"the local chain's node could not reach anvil: {exc}")).encode()
        self._send(status, answer)

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        """Quiet: one line per request would drown the node's log."""


def serve_forever(server: NodeServer, stop: threading.Event) -> None:
    """Serve until `stop` is set (by a signal), in a thread, so the caller can snapshot after."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="rpc", daemon=True)
    thread.start()
    while not stop.wait(0.5):
        if not server.node.anvil.alive():
            raise RpcError("anvil exited unexpectedly")
    server.shutdown()
    thread.join()
