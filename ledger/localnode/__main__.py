"""`python -m ledger.localnode`: run the durable local chain until SIGTERM or SIGINT.

Exit codes: 0 after a clean stop (state snapshotted), 1 when anvil died under it, 2 when
the saved chain cannot be recovered (the message says what to do).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from ledger.localnode.anvil import Anvil, RpcError
from ledger.localnode.node import DurableNode, NodeError
from ledger.localnode.server import NodeServer, serve_forever


def main(argv: list[str] | None = None) -> int:
    """Recover the chain from its data, serve it, snapshot it on the way out."""
    parser = argparse.ArgumentParser(prog="python -m ledger.localnode", description=__doc__)
    parser.add_argument("--chain-dir", type=Path, required=True, help="journal, snapshots and logs")
    parser.add_argument("--port", type=int, required=True, help="loopback port to serve JSON-RPC on")
    parser.add_argument("--chain-id", type=int, default=31337)
    parser.add_argument("--anvil", type=Path, required=True, help="the anvil binary")
    parser.add_argument("--genesis-timestamp", type=int, default=None, help="time of a new chain's first block")
    parser.add_argument("--snapshot-seconds", type=float, default=30.0, help="snapshot unsaved writes this often")
    parser.add_argument("--snapshot-entries", type=int, default=2000, help="or after this many journal entries")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    args.chain_dir.mkdir(parents=True, exist_ok=True)
    with (args.chain_dir / "anvil.log").open("ab") as log:
        anvil = Anvil(args.anvil, args.chain_id, log)
        node = DurableNode(args.chain_dir, anvil, args.snapshot_seconds, args.snapshot_entries)
        try:
            recovery = node.recover(args.genesis_timestamp)
            node.record(recovery)
            server = NodeServer(args.port, node)
        except (NodeError, RpcError, OSError) as exc:
            print(f"the local chain cannot start: {exc}", file=sys.stderr, flush=True)
            anvil.stop()
            return 2
        print(f"ready on 127.0.0.1:{args.port}: {recovery.sentence()}", flush=True)
        threading.Thread(target=node.run_snapshots, args=(stop,), name="snapshots", daemon=True).start()
        try:
            serve_forever(server, stop)
        except RpcError as exc:
            print(f"the local chain stopped: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            server.server_close()
        # Clean stop: the next start loads this snapshot and replays nothing.
        if node.journal.last_seq > node.snapshot_seq:
            node.snapshot(wait=True)
        node.journal.close()
        anvil.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
