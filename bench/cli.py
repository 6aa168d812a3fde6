"""How long the `provenance` command takes to start, beside `pip --version` and `python -c pass`.

`make bench-cli`. Measures, as the wall time of a child process (what a supplier's script
that calls the CLI once per batch waits for): `provenance --help`, an argument error
(`batch register --quantity notanumber`), and one `batch register` on a fresh local chain
this bench starts itself (anvil on a free loopback port, the ledger deployed, one supplier
licensed for one GTIN; every registration is a new lot, so each one sends a transaction and
waits for its receipt). The commands run round-robin, `--repeat` times after one warm-up
round, so a busy moment of the machine hits them all alike; the median of each is
reported with its ratio to `pip --version`. Prints a table, writes bench/results/cli.json
and the table into docs/BENCHMARKS.md. Never passes or fails on time.

`BENCH_BASELINE_TREE=<copy of the tree before a change> make bench-cli` also runs the same
three commands from that tree (`python -m ledger.cli` with it first on PYTHONPATH), in the
same rounds, against the same chain.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.chain import LocalChain, connect, free_loopback_port  # noqa: E402
from ledger.config import Settings  # noqa: E402
from ledger.connection import LedgerConnection  # noqa: E402
from ledger.deploy import ensure_deployed  # noqa: E402
from ledger.identifiers import complete_gtin  # noqa: E402
from ledger.models import LicenceScope  # noqa: E402
from ledger.signers import NodeAccountSigner  # noqa: E402
from ledger.writer import LedgerWriter  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "cli.json"
DOC = ROOT / "docs" / "BENCHMARKS.md"
GTIN = complete_gtin("0950600013437")
#: Targets of issue 12: `--help` within 2x `pip --version`; one registration end to end.
HELP_RATIO_TARGET = 2.0
BAD_ARGUMENT = ["batch", "register", "--quantity", "notanumber"]
REGISTER_SECONDS_TARGET = 0.5
#: Packages whose import cost `python -X importtime` reports for one registration: what a
#: write pays for before its first RPC call (each counts what it loads first).
IMPORTS = ["typer", "rich.console", "pydantic", "biip", "web3", "eth_account", "eth_abi", "requests", "aiohttp", "ledger.cli"]


#: The floor of any typer CLI: an app of two commands, its --help rendered the same way.
BARE_TYPER_APP = """
import typer
app = typer.Typer()
@app.command()
def first(count: int) -> None: ...
@app.command()
def second(count: int) -> None: ...
app()
"""


def executable(name: str) -> str:
    """`name` from this interpreter's environment (the venv's console scripts)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed in this environment: run `make install`")
    return found


def run(command: list[str], env: dict[str, str], expect: int, cwd: str) -> float:
    """Wall time of one child process; its exit code must be `expect`. `cwd` is outside the
    tree: `python -m` puts the working directory first on sys.path, and a baseline tree on
    PYTHONPATH must not be shadowed by this one."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=cwd)
    seconds = time.perf_counter() - start
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}, expected {expect}:\n{done.stderr}")
    return seconds


def prepare_supplier(settings: Settings) -> str:
    """Deploy the ledger and make the chain's account 1 a supplier licensed for GTIN."""
    w3 = connect(settings.rpc_url)
    ensure_deployed(w3, settings.deployment_file, settings.admin_transfer_delay)
    conn = LedgerConnection.open(settings)
    admin = LedgerWriter(conn, NodeAccountSigner(w3.eth.accounts[0]))
    supplier = w3.eth.accounts[1]
    admin.register_actor(supplier, "Bench Farm", "CO")
    admin.grant_supplier(supplier)
    admin.grant_licence(supplier, LicenceScope.single_gtin(GTIN))
    return "node:1"


def import_costs(command: list[str], env: dict[str, str], cwd: str) -> dict[str, float]:
    """Milliseconds (cumulative, as `-X importtime` counts them) of the IMPORTS packages."""
    done = subprocess.run([sys.executable, "-X", "importtime", *command], env=env, capture_output=True, text=True, cwd=cwd)
    costs: dict[str, float] = {}
    total = 0
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name, micros = parts[2].strip(), int(parts[1])
        if name in IMPORTS:
            costs[name] = round(micros / 1000, 1)
        if parts[2].startswith(" ") and not parts[2].startswith("  "):  # a top-level import
            total += micros
    return {**{name: costs.get(name, 0.0) for name in IMPORTS}, "all imports": round(total / 1000, 1)}


def registration(program: list[str], account: str, lot: str) -> list[str]:
    """`batch register` of a new lot of GTIN, as a supplier's script would call it."""
    return [
        *program,
        "batch",
        "register",
        "--account",
        account,
        "--gtin",
        GTIN,
        "--lot",
        lot,
        "--quantity",
        "60000",
        "--unit",
        "KGM",
        "--product",
        "Green coffee, washed Caturra",
    ]


def measure(repeat: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Round-robin wall times of every command, the warm-up round left out."""
    provenance = [executable("provenance")]
    baseline = os.environ.get("BENCH_BASELINE_TREE")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
        with LocalChain(settings):
            account = prepare_supplier(settings)
            env = {**os.environ, **settings.as_env()}
            # name -> (program and arguments, or a function of the round giving them; environment; exit code)
            commands: dict[str, tuple[Any, dict[str, str], int]] = {
                "python -c pass": ([sys.executable, "-c", "pass"], env, 0),
                "pip --version": ([executable("pip"), "--version"], env, 0),
                "bare typer app (2 commands) --help": ([sys.executable, "-c", BARE_TYPER_APP, "--help"], env, 0),
                "provenance --help": ([*provenance, "--help"], env, 0),
                "provenance batch register --quantity notanumber": ([*provenance, *BAD_ARGUMENT], env, 2),
                "provenance batch register (one lot)": (lambda n: registration(provenance, account, f"CLI-{n:04d}"), env, 0),
            }  # fmt: skip
            if baseline:
                before = [sys.executable, "-m", "ledger.cli"]
                before_env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [baseline, env.get("PYTHONPATH")]))}
                commands |= {
                    "before: provenance --help": ([*before, "--help"], before_env, 0),
                    "before: provenance batch register --quantity notanumber": ([*before, *BAD_ARGUMENT], before_env, 2),
                    "before: provenance batch register (one lot)": (lambda n: registration(before, account, f"BASE-{n:04d}"), before_env, 0),
                }  # fmt: skip
            times: dict[str, list[float]] = {name: [] for name in commands}
            for round_ in range(repeat + 1):
                for name, (command, command_env, expect) in commands.items():
                    seconds = run(command(round_) if callable(command) else command, command_env, expect, tmp)
                    if round_:
                        times[name].append(seconds)
            imports = import_costs(["-m", "ledger.cli", *registration([], account, "CLI-IMPORTS")], env, tmp)
    return times, imports


def summarise(times: dict[str, list[float]], imports: dict[str, float]) -> dict[str, object]:
    pip = statistics.median(times["pip --version"])
    rows = {
        name: {
            "median_s": round(statistics.median(values), 3),
            "min_s": round(min(values), 3),
            "ratio_to_pip": round(statistics.median(values) / pip, 2),
        }
        for name, values in times.items()
    }
    help_ratio = rows["provenance --help"]["ratio_to_pip"]
    register = rows["provenance batch register (one lot)"]["median_s"]
    return {
        "repeat": len(times["pip --version"]),
        "commands": rows,
        "targets": {
            "help_ratio_to_pip": {"target": HELP_RATIO_TARGET, "measured": help_ratio, "met": help_ratio <= HELP_RATIO_TARGET},
            "register_seconds": {"target": REGISTER_SECONDS_TARGET, "measured": register, "met": register <= REGISTER_SECONDS_TARGET},
        },
        "register_import_ms": imports,
        "machine": {"cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2), "python": sys.version.split()[0]},
    }  # fmt: skip


def render(results: dict) -> str:
    lines = [
        "| command | median s | fastest s | / `pip --version` |",
        "|---|---:|---:|---:|",
        *(
            f"| `{name}` | {row['median_s']:.3f} | {row['min_s']:.3f} | {row['ratio_to_pip']:.2f}x |"
            for name, row in results["commands"].items()
        ),
        "",
    ]
    targets = results["targets"]
    help_, register = targets["help_ratio_to_pip"], targets["register_seconds"]
    lines.append(
        f"Median of {results['repeat']} runs each (round-robin, after one warm-up round), {results['machine']['cpus']} CPUs, "
        f"load {results['machine']['load_average_1min']} at the end. Targets: `--help` <= {help_['target']}x `pip --version`: "
        f"**{'met' if help_['met'] else 'missed'}** ({help_['measured']}x); one registration <= {register['target']} s: "
        f"**{'met' if register['met'] else 'missed'}** ({register['measured']} s)."
    )
    costs = ", ".join(f"{name} {ms:.0f}" for name, ms in results["register_import_ms"].items())
    lines += [
        "",
        f"Imports of one registration (`-X importtime`, ms, each with what it loads first; requests and aiohttp are "
        f"loaded by web3 and counted in it too): {costs}.",
    ]
    return "\n".join(lines)


def write_into_doc(table: str) -> None:
    text = DOC.read_text()
    block = f"<!-- bench-cli:start -->\n{table}\n<!-- bench-cli:end -->"
    pattern = re.compile(r"<!-- bench-cli:start -->.*?<!-- bench-cli:end -->", re.S)
    DOC.write_text(pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="Measured rounds (after one warm-up round).")
    parser.add_argument("--no-doc", action="store_true", help="Do not write the table into docs/BENCHMARKS.md.")
    args = parser.parse_args()
    results = summarise(*measure(args.repeat))
    table = render(results)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_doc:
        write_into_doc(table)
    print(f"wrote {RESULTS.relative_to(ROOT)}" + ("" if args.no_doc else f" and the table into {DOC.relative_to(ROOT)}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
