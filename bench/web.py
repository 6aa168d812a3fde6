"""Product page throughput and latency (`make bench-api`).

In one run: a fresh anvil with the demo, filled to 1,000 batches and indexed; the app
served as `provenance run` serves it (uvicorn, 2 workers, uvloop + httptools). wrk (64
connections) loads the demo coffee bag's page, then the same HTML as a static file from
the same server (the baseline). The page's uncached build time is measured in process.
Then the ledger grows to 100,000 batches, is indexed, and the page is measured again.
Prints a table, writes bench/results/api.json. Never passes or fails on time.

BENCH_BASELINE_TREE=<a copy of the project, e.g. before a change> also serves the page
with that copy's code (a second server, same index, same run) and measures it right after
this tree's page at each size, so a change is compared under the same conditions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from eth_account import Account

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.views import PageContext, product_view  # noqa: E402
from ledger.chain import LocalChain, connect, free_loopback_port  # noqa: E402
from ledger.cli.web import WebServer  # noqa: E402
from ledger.config import Settings  # noqa: E402
from ledger.connection import LedgerConnection  # noqa: E402
from ledger.demo import DEMO_BAG, demo_genesis_timestamp, seed_demo  # noqa: E402
from ledger.deploy import ensure_deployed  # noqa: E402
from ledger.documents import DocumentStore  # noqa: E402
from ledger.identifiers import complete_gtin, digital_link  # noqa: E402
from ledger.indexer.scanner import Scanner  # noqa: E402
from ledger.indexer.store import IndexStore  # noqa: E402
from ledger.models import BatchCreate, LicenceScope  # noqa: E402
from ledger.queries import ReadModel  # noqa: E402
from ledger.signers import LocalKeySigner, NodeAccountSigner  # noqa: E402
from ledger.writer import LedgerWriter  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "api.json"
SMALL, LARGE = 1_000, 100_000
CONNECTIONS, THREADS, SECONDS = 64, 2, 10
BUILD_RUNS = 30
BASELINE_TREE = os.environ.get("BENCH_BASELINE_TREE")
FILLER_GTIN = complete_gtin("0950600013499")


def wrk(url: str) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms) of `url` under wrk's load."""
    out = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if re.search(r"Non-2xx or 3xx responses", out):
        raise SystemExit(f"wrk saw error responses from {url}:\n{out}")

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"requests_per_second": round(rps), "p50_ms": round(ms("50%"), 2), "p99_ms": round(ms("99%"), 2)}


def serve_from(tree: str, settings: Settings, port: int) -> WebServer:
    """The bench app served with the code of `tree`: uvicorn (`python -m`) imports from
    its working directory first, so the child starts there."""
    server = WebServer(
        settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"}),
        "127.0.0.1",
        port,
        workers=2,
        app="bench.api_app:create_app",
    )
    here = os.getcwd()
    os.chdir(tree)
    try:
        server.start()
    finally:
        os.chdir(here)
    return server


def build_ms(settings: Settings, context: PageContext) -> float:
    """Median time to build the demo page's data from the index, no cache (in process)."""
    store = IndexStore.open(settings.database_url, settings.data_dir)
    model = ReadModel(store, DocumentStore(settings.documents_dir))
    link = digital_link(*DEMO_BAG)
    batch = model.batch_by_gtin_lot(link.gtin, link.lot)
    assert batch is not None
    times = []
    for _ in range(BUILD_RUNS):
        start = time.perf_counter()
        product_view(model, model.batch_by_gtin_lot(link.gtin, link.lot) or batch, link, context, int(time.time()))
        times.append((time.perf_counter() - start) * 1000)
    store.dispose()
    return statistics.median(times)


def grow_to(writer: LedgerWriter, model_count: int, target: int) -> None:
    """Register filler lots until the ledger holds `target` batches."""
    missing = target - model_count
    if missing > 0:
        print(f"registering {missing:,} batches...", file=sys.stderr)
        writer.register_batches(
            [
                BatchCreate(gtin=FILLER_GTIN, lot=f"F-{model_count + i:07d}", quantity=10, unit="KGM", product="Filler lot")
                for i in range(missing)
            ]
        )


def batch_count(settings: Settings) -> int:
    store = IndexStore.open(settings.database_url, settings.data_dir)
    with store.engine.connect() as conn:
        count = conn.exec_driver_sql("select count(*) from batches").scalar()
    store.dispose()
    return int(count or 0)


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed: `apt-get install wrk` (Debian) and run `make bench-api` again", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        port = free_loopback_port()
        settings = Settings(
            data_dir=tmpdir / "data",
            rpc_url=f"http://127.0.0.1:{free_loopback_port()}",
            public_base_url=f"http://127.0.0.1:{port}",
        )
        static_dir = tmpdir / "static"
        static_dir.mkdir()
        chain = LocalChain(settings)
        chain.start(genesis_timestamp=demo_genesis_timestamp())
        try:
            w3 = connect(settings.rpc_url)
            ensure_deployed(w3, settings.deployment_file, settings.admin_transfer_delay)
            conn = LedgerConnection.open(settings)
            seed_demo(conn)
            admin = LedgerWriter(conn, NodeAccountSigner(w3.eth.accounts[0]))
            filler_key = Account.create()
            admin.register_actor(filler_key.address, "Filler Farm", "CO")
            admin.grant_supplier(filler_key.address)
            admin.grant_licence(filler_key.address, LicenceScope.single_gtin(FILLER_GTIN))
            filler = LedgerWriter(conn, LocalKeySigner(filler_key))

            def index() -> None:
                store = IndexStore.open(settings.database_url, settings.data_dir)
                Scanner(w3, conn.address, conn.deploy_block, store).sync()
                store.dispose()

            index()
            grow_to(filler, batch_count(settings), SMALL)
            index()
            # Pages never call the chain: stop it while measuring, or anvil's periodic
            # state dumps (large at 100,000 batches) compete for the two cores.
            chain.stop()
            page_url = digital_link(*DEMO_BAG).url(settings.public_base_url)
            context = PageContext(settings.public_base_url, 31337, conn.address)
            os.environ["BENCH_STATIC_DIR"] = str(static_dir)
            server = WebServer(settings, "127.0.0.1", port, workers=2, app="bench.api_app:create_app")
            server.start()
            baseline = serve_from(BASELINE_TREE, settings, free_loopback_port()) if BASELINE_TREE else None
            baseline_url = digital_link(*DEMO_BAG).url(baseline.url) if baseline else ""

            def page_of_baseline() -> dict[str, dict[str, float]]:
                if baseline is None:
                    return {}
                urllib.request.urlopen(baseline_url, timeout=30).read()  # the server notices the new cursor
                return {"baseline_page": wrk(baseline_url)}

            try:
                html = urllib.request.urlopen(page_url, timeout=10).read()
                (static_dir / "page.html").write_bytes(html)
                print("measuring with 1,000 batches...", file=sys.stderr)
                small = {
                    "batches": batch_count(settings),
                    "page": wrk(page_url),
                    **page_of_baseline(),
                    "static": wrk(f"{server.url}/baseline/page.html"),
                    "build_ms": round(build_ms(settings, context), 2),
                }
                chain.start()
                grow_to(filler, small["batches"], LARGE)
                index()
                chain.stop()
                urllib.request.urlopen(page_url, timeout=30).read()  # the server notices the new cursor
                print("measuring with 100,000 batches...", file=sys.stderr)
                large = {
                    "batches": batch_count(settings),
                    "page": wrk(page_url),
                    **page_of_baseline(),
                    "build_ms": round(build_ms(settings, context), 2),
                }
            finally:
                server.stop()
                if baseline is not None:
                    baseline.stop()
        finally:
            chain.stop()
    results = {
        "page_bytes": len(html), "connections": CONNECTIONS, "seconds": SECONDS, "workers": 2,
        "small": small, "large": large,
        "page_vs_static": round(small["page"]["requests_per_second"] / small["static"]["requests_per_second"], 2),
        "p99_large_vs_small": round(large["page"]["p99_ms"] / small["page"]["p99_ms"], 2),
        "build_large_vs_small": round(large["build_ms"] / small["build_ms"], 2),
    }  # fmt: skip
    print(render(results))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


def render(r: dict) -> str:
    """The results as a Markdown table."""
    small, large = r["small"], r["large"]
    rows = [
        f"| what ({r['connections']} connections, {r['seconds']} s, {r['workers']} workers) | requests/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
        f"| static file of the same page ({r['page_bytes']:,} bytes), same server | {small['static']['requests_per_second']:,} | {small['static']['p50_ms']} | {small['static']['p99_ms']} |",
        f"| product page, {small['batches']:,} batches in the index | {small['page']['requests_per_second']:,} | {small['page']['p50_ms']} | {small['page']['p99_ms']} |",
        f"| product page, {large['batches']:,} batches in the index | {large['page']['requests_per_second']:,} | {large['page']['p50_ms']} | {large['page']['p99_ms']} |",
        "",
        f"page / static throughput: {r['page_vs_static']}x; p99 at {large['batches']:,} / at {small['batches']:,} batches: {r['p99_large_vs_small']}x",
        f"uncached page build (median of {BUILD_RUNS}, in process): {small['build_ms']} ms at {small['batches']:,} batches, "
        f"{large['build_ms']} ms at {large['batches']:,} ({r['build_large_vs_small']}x)",
    ]  # fmt: skip
    if "baseline_page" in small:
        rows += [
            "",
            f"| product page, same run ({BASELINE_TREE}) | requests/s | p50 ms | p99 ms | this tree / baseline |",
            "|---|---:|---:|---:|---:|",
        ]
        for size in (small, large):
            b, p = size["baseline_page"], size["page"]
            rows.append(
                f"| baseline, {size['batches']:,} batches | {b['requests_per_second']:,} | {b['p50_ms']} | {b['p99_ms']} | "
                f"{p['requests_per_second'] / b['requests_per_second']:.2f}x |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
