"""Batch registrations confirmed per second on anvil: a naive loop against the bulk path.

`make bench-write`. Both run in this one process against one fresh anvil: the naive loop
sends one registration, waits for its receipt, then sends the next (web3's `transact()`,
gas estimated each time); the bulk path is `LedgerWriter.register_batches` (200 per
transaction, locally signed, nonces pipelined, receipts collected afterwards). Prints a
table, writes bench/results/write.json and the table into docs/BENCHMARKS.md. Never
passes or fails on time.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.chain import LocalChain, connect, free_loopback_port  # noqa: E402
from ledger.config import Settings  # noqa: E402
from ledger.connection import LedgerConnection  # noqa: E402
from ledger.deploy import ensure_deployed  # noqa: E402
from ledger.identifiers import complete_gtin  # noqa: E402
from ledger.models import BatchCreate, LicenceScope  # noqa: E402
from ledger.signers import LocalKeySigner, NodeAccountSigner  # noqa: E402
from ledger.writer import LedgerWriter  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "write.json"
DOC = ROOT / "docs" / "BENCHMARKS.md"
NAIVE_N = 300
BULK_N = 10_000
# One GTIN per supplier: a GTIN is licensed to one organisation (ledger v2).
NAIVE_GTIN = complete_gtin("0950600013435")
BULK_GTIN = complete_gtin("0950600013436")


def batches(gtin: str, prefix: str, count: int) -> list[BatchCreate]:
    return [
        BatchCreate(gtin=gtin, lot=f"{prefix}-{i:06d}", quantity=1_000 + i, unit="KGM", product="Green coffee")
        for i in range(count)
    ]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
        with LocalChain(settings):
            w3 = connect(settings.rpc_url)
            ensure_deployed(w3, settings.deployment_file, settings.admin_transfer_delay)
            conn = LedgerConnection.open(settings)
            admin = LedgerWriter(conn, NodeAccountSigner(w3.eth.accounts[0]))
            naive_supplier = w3.eth.accounts[1]
            bulk_account = Account.create()
            for address, name, gtin in (
                (naive_supplier, "Naive Farm", NAIVE_GTIN),
                (bulk_account.address, "Bulk Farm", BULK_GTIN),
            ):
                admin.register_actor(address, name, "CO")
                admin.grant_supplier(address)
                admin.grant_licence(address, LicenceScope.single_gtin(gtin))  # registering needs it

            # Naive: one transaction, wait for its receipt, next.
            naive_rows = batches(NAIVE_GTIN, "N", NAIVE_N)
            store = LedgerWriter(conn, NodeAccountSigner(naive_supplier)).documents
            inputs = [b.contract_input(store.put_json(b.metadata_document())) for b in naive_rows]
            gas_naive = 0
            start = time.perf_counter()
            for item in inputs:
                tx_hash = conn.contract.functions.registerBatch(item).transact({"from": naive_supplier})
                gas_naive += w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)["gasUsed"]
            naive_seconds = time.perf_counter() - start

            # Bulk: the client's path.
            bulk = LedgerWriter(conn, LocalKeySigner(bulk_account))
            bulk_rows = batches(BULK_GTIN, "B", BULK_N)
            start = time.perf_counter()
            report = bulk.register_batches(bulk_rows)
            bulk_seconds = time.perf_counter() - start
            assert len(report.registered) == BULK_N and not report.failed, report.failed[:3]
            hashes = {r.tx_hash for _, r in report.registered}
            gas_bulk = sum(w3.eth.get_transaction_receipt(h)["gasUsed"] for h in hashes)

    naive_rate = NAIVE_N / naive_seconds
    bulk_rate = BULK_N / bulk_seconds
    results = {
        "naive": {"batches": NAIVE_N, "seconds": round(naive_seconds, 3), "per_second": round(naive_rate, 1),
                  "gas_per_batch": gas_naive // NAIVE_N, "transactions": NAIVE_N},
        "bulk": {"batches": BULK_N, "seconds": round(bulk_seconds, 3), "per_second": round(bulk_rate, 1),
                 "gas_per_batch": gas_bulk // BULK_N, "transactions": report.transactions},
        "speedup": round(bulk_rate / naive_rate, 1),
    }  # fmt: skip
    table = render(results)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    write_into_doc(table)
    print(f"wrote {RESULTS.relative_to(ROOT)} and the table into {DOC.relative_to(ROOT)}")
    return 0


def render(results: dict) -> str:
    naive, bulk = results["naive"], results["bulk"]
    lines = [
        "| path | batches | transactions | seconds | confirmed batches/s | gas per batch |",
        "|---|---:|---:|---:|---:|---:|",
        f"| naive loop (send, wait for receipt, next) | {naive['batches']:,} | {naive['transactions']:,} | {naive['seconds']} | {naive['per_second']:,} | {naive['gas_per_batch']:,} |",
        f"| bulk path (200 per tx, pipelined) | {bulk['batches']:,} | {bulk['transactions']:,} | {bulk['seconds']} | {bulk['per_second']:,} | {bulk['gas_per_batch']:,} |",
        "",
        f"Bulk / naive: **{results['speedup']}x** (targets: bulk >= 1,000 batches/s confirmed and >= 20x).",
    ]  # fmt: skip
    return "\n".join(lines)


def write_into_doc(table: str) -> None:
    text = DOC.read_text()
    block = f"<!-- bench-write:start -->\n{table}\n<!-- bench-write:end -->"
    pattern = re.compile(r"<!-- bench-write:start -->.*?<!-- bench-write:end -->", re.S)
    DOC.write_text(pattern.sub(block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n")


if __name__ == "__main__":
    sys.exit(main())
