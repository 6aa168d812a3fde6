"""The scanner asks for the next range while the current one is applied (issue 12): a
prefetched answer is used only if the chain still has the block it ended at, so a range
the chain replaced meanwhile is read again, never applied from the old branch."""

from __future__ import annotations

import threading
from pathlib import Path

from test_index import dump, open_store
from test_index_truth import FreshLedger, lots

from ledger.indexer.scanner import ScanReport


def test_a_prefetched_range_the_chain_replaced_is_read_again(fresh: FreshLedger, tmp_path: Path) -> None:
    fresh.register("P-1")
    store = open_store("sqlite", tmp_path / "index")
    scan = fresh.scanner(store, max_range=2)
    report = ScanReport()
    while scan.step(report):
        pass
    start = fresh.head() + 1
    fresh.rpc("evm_mine")
    fresh.rpc("evm_mine")  # blocks start, start+1: empty, on both branches
    fork = fresh.rpc("evm_snapshot")
    fresh.rpc("evm_mine")
    fresh.rpc("evm_mine")  # the old branch: start+2, start+3 empty
    assert scan.step(report)  # applies start..start+1 and asks for start+2..start+3 meanwhile
    assert scan._next is not None and scan._next[0] == (start + 2, start + 3)
    scan._next[1].result()  # answered from the old branch: no logs
    fresh.rpc("evm_revert", fork)
    fresh.register("NEW-1", "NEW-2")  # the new branch: start+2, start+3 hold registrations
    assert fresh.head() == start + 3
    while scan.step(report):
        pass
    assert lots(store) == {"P-1", "NEW-1", "NEW-2"}
    assert dump(store) == dump(fresh.rebuilt(tmp_path / "rebuilt"))
    store.dispose()


def test_a_sync_in_many_ranges_equals_one_in_a_single_range(fresh: FreshLedger, tmp_path: Path) -> None:
    fresh.register(*[f"M-{i}" for i in range(12)])
    many = open_store("sqlite", tmp_path / "many")
    scan = fresh.scanner(many, max_range=1)
    asked_by: list[str] = []
    get_logs = scan._get_logs

    def counted(start: int, end: int) -> list[dict[str, object]]:
        asked_by.append(threading.current_thread().name)
        return get_logs(start, end)

    scan._get_logs = counted  # type: ignore[method-assign]
    report = scan.sync()
    assert report.ranges > 12
    # Every range after the first was asked for by the worker while the one before was applied.
    assert sum(name.startswith("index-prefetch") for name in asked_by) == report.ranges - 1
    assert dump(many) == dump(fresh.rebuilt(tmp_path / "one"))
    many.dispose()
