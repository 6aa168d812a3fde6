"""Indexing throughput and query latency (`make bench-index`).

In one run on one fresh anvil: (1) a product six transformations deep with claims;
(2) 1,000 batches, index, time the product's journey + claims query; (3) up to 100,000
events in all, time a naive indexer (web3 `get_logs` from block 0, each log decoded by
web3 and inserted with its own commit) against the project's scanner on the same logs;
(4) time the same query with 100,000 batches in the store. Prints a table, writes
bench/results/index.json. Never passes or fails on time.

`--events N` changes the total (results are then not written), `--skip-naive` leaves the
naive baseline out, `--profile` prints where the scanner's time goes (cProfile, top 25).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sqlite3
import statistics
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
from ledger.documents import DocumentStore  # noqa: E402
from ledger.identifiers import complete_gtin  # noqa: E402
from ledger.indexer.scanner import Scanner  # noqa: E402
from ledger.indexer.store import IndexStore  # noqa: E402
from ledger.models import AttestationCreate, BatchCreate, LicenceScope, SubjectKind, TransformationKind  # noqa: E402
from ledger.queries import ReadModel  # noqa: E402
from ledger.signers import LocalKeySigner, NodeAccountSigner  # noqa: E402
from ledger.writer import LedgerWriter, hex0x  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "index.json"
TOTAL_EVENTS = 100_000
SMALL = 1_000
QUERY_RUNS = 200
GTIN = complete_gtin("0950600013435")


def deep_product(admin: LedgerWriter, maker: LedgerWriter, certifier: LedgerWriter) -> str:
    """Three raw lots, then six processing steps; claims on the raw lots. Returns the product id."""
    raws = [BatchCreate(gtin=GTIN, lot=f"RAW-{i}", quantity=1_000, unit="KGM", product="Raw") for i in range(3)]
    for raw in raws:
        maker.register_batch(raw)
        request = AttestationCreate(subject_kind=SubjectKind.BATCH, subject=hex0x(raw.batch_id), claim="FAIRTRADE")
        certifier.attest(request)
    inputs = [(r.batch_id, r.quantity) for r in raws]
    product = None
    for level in range(6):
        product = BatchCreate(gtin=GTIN, lot=f"DEEP-{level}", quantity=2_000, unit="KGM", product=f"Level {level}")
        maker.transform(TransformationKind.PROCESSING, inputs, [product])
        inputs = [(product.batch_id, product.quantity)]
    assert product is not None
    return hex0x(product.batch_id)


def time_query(model: ReadModel, product: str, at: int) -> float:
    """Median milliseconds of history + claims + coverage of the deep product."""
    samples = []
    for _ in range(QUERY_RUNS):
        start = time.perf_counter()
        model.history(product)
        model.claims(product, at)
        model.coverage(product, at)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def naive_index(conn: LedgerConnection, path: Path) -> tuple[int, float]:
    """web3 get_logs from block 0, each event decoded by web3 and inserted with its own commit."""
    db = sqlite3.connect(path)
    db.execute(
        "create table events (tx_hash text, log_index int, block int, name text, args text, primary key (tx_hash, log_index))"
    )
    start = time.perf_counter()
    logs = conn.w3.eth.get_logs({"address": conn.address, "fromBlock": 0, "toBlock": "latest"})
    events = {
        event.abi["name"]: event
        for event in [getattr(conn.contract.events, e["name"])() for e in conn.contract.abi if e["type"] == "event"]
    }
    count = 0
    for log in logs:
        for event in events.values():
            try:
                decoded = event.process_log(log)
            except Exception:  # noqa: BLE001 - not this event
                continue
            db.execute(
                "insert into events values (?,?,?,?,?)",
                (
                    decoded["transactionHash"].hex(),
                    decoded["logIndex"],
                    decoded["blockNumber"],
                    decoded["event"],
                    json.dumps(dict(decoded["args"]), default=str),
                ),
            )
            db.commit()
            count += 1
            break
    return count, time.perf_counter() - start


def options() -> argparse.Namespace:
    """The command line (all optional: `make bench-index` runs the defaults)."""
    parser = argparse.ArgumentParser(description="Index throughput and query latency.")
    parser.add_argument("--events", type=int, default=TOTAL_EVENTS, help="events on the chain in all")
    parser.add_argument("--skip-naive", action="store_true", help="leave the naive baseline out")
    parser.add_argument("--profile", action="store_true", help="print the scanner's cProfile (slower)")
    return parser.parse_args()


def main() -> int:
    args = options()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        settings = Settings(data_dir=tmpdir / "data", rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
        with LocalChain(settings):
            w3 = connect(settings.rpc_url)
            ensure_deployed(w3, settings.deployment_file, settings.admin_transfer_delay)
            conn = LedgerConnection.open(settings)
            admin = LedgerWriter(conn, NodeAccountSigner(w3.eth.accounts[0]))
            bulk_key = Account.create()
            for address, name in (
                (w3.eth.accounts[1], "Deep Maker"),
                (bulk_key.address, "Bulk Farm"),
                (w3.eth.accounts[2], "Cert"),
            ):
                admin.register_actor(address, name, "CO")
            admin.grant_supplier(w3.eth.accounts[1])
            admin.grant_supplier(bulk_key.address)
            admin.accredit(w3.eth.accounts[2], "FAIRTRADE")
            maker = LedgerWriter(conn, NodeAccountSigner(w3.eth.accounts[1]))
            # Only a GTIN's licensee registers its lots: the maker holds the prefix and
            # sub-licenses the GTIN to the bulk farm.
            admin.grant_licence(w3.eth.accounts[1], LicenceScope.company_prefix(GTIN[1:13]))
            maker.sub_license(bulk_key.address, LicenceScope.single_gtin(GTIN))
            product = deep_product(admin, maker, LedgerWriter(conn, NodeAccountSigner(w3.eth.accounts[2])))
            bulk = LedgerWriter(conn, LocalKeySigner(bulk_key))
            bulk.register_batches(
                [BatchCreate(gtin=GTIN, lot=f"S-{i:06d}", quantity=10, unit="KGM", product="Coffee") for i in range(SMALL)]
            )
            documents = DocumentStore(settings.documents_dir)

            store = IndexStore.open(None, tmpdir / "small")
            Scanner(w3, conn.address, conn.deploy_block, store).sync()
            at = w3.eth.get_block("latest")["timestamp"]
            small_ms = time_query(ReadModel(store, documents), product, at)

            print(f"writing up to {args.events:,} events on anvil...", file=sys.stderr)
            existing = len(w3.eth.get_logs({"address": conn.address, "fromBlock": 0}))
            rows = args.events - existing
            bulk.register_batches(
                [BatchCreate(gtin=GTIN, lot=f"L-{i:06d}", quantity=10, unit="KGM", product="Coffee") for i in range(rows)]
            )

            naive_count, naive_seconds = (0, 0.0) if args.skip_naive else naive_index(conn, tmpdir / "naive.sqlite")
            big = IndexStore.open(None, tmpdir / "big")
            profile = cProfile.Profile() if args.profile else None
            start = time.perf_counter()
            if profile:
                profile.enable()
            report = Scanner(w3, conn.address, conn.deploy_block, big).sync()
            if profile:
                profile.disable()
            scan_seconds = time.perf_counter() - start
            big_ms = time_query(ReadModel(big, documents), product, at)

    if profile:
        pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    naive_rate = naive_count / naive_seconds if naive_seconds else 0.0
    scan_rate = report.events_added / scan_seconds
    results = {
        "events": report.events_added,
        "naive": {"events": naive_count, "seconds": round(naive_seconds, 2), "events_per_second": round(naive_rate)},
        "scanner": {"events": report.events_added, "seconds": round(scan_seconds, 2), "events_per_second": round(scan_rate)},
        "speedup": round(scan_rate / naive_rate, 1) if naive_rate else None,
        "query_ms": {"batches_1000": round(small_ms, 3), "batches_100000": round(big_ms, 3), "ratio": round(big_ms / small_ms, 2)},
    }  # fmt: skip
    print("| measure | naive | scanner | ratio |")
    print("|---|---:|---:|---:|")
    print(
        f"| events indexed per second ({results['events']:,} events) | {results['naive']['events_per_second']:,} | {results['scanner']['events_per_second']:,} | {results['speedup']}x |"
    )
    print(
        f"| journey + claims + coverage, 6 transformations deep (median ms) | 1,000 batches | {results['events']:,} events | ratio |"
    )
    print(
        f"| | {results['query_ms']['batches_1000']} | {results['query_ms']['batches_100000']} | {results['query_ms']['ratio']}x |"
    )
    if args.events != TOTAL_EVENTS or args.skip_naive or args.profile:
        print("not written: only the default run (`make bench-index`) updates the results", file=sys.stderr)
        return 0
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
