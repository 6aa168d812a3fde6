"""Exit 1 with an explanation when something already listens on a loopback port.

brownie attaches to whatever listens on its port and keeps its state, so a stale chain
would silently feed old state to the tests; refuse instead.
"""

from __future__ import annotations

import socket
import sys


def main(port: int, what: str) -> int:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        if sock.connect_ex(("127.0.0.1", port)) != 0:
            return 0
    print(
        f"127.0.0.1:{port} is already in use, and {what} needs it: brownie would attach to it and "
        f"reuse its state. Stop that process (e.g. `fuser -k {port}/tcp`) and run again.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "this command"))
