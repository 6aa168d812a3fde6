"""brownie run scripts/seed_demo.py --network provenance-local: load the demo data once.

A thin wrapper over `ledger.demo` (`make run` does the same on first start).
"""

from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.demo import seed_demo


def main() -> None:
    loaded = seed_demo(LedgerConnection.open(Settings.from_env()), print)
    print("Demo data loaded." if loaded else "The demo data is already there; nothing written.")
