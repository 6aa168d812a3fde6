"""`provenance --help`, a group's `--help` and an argument error load none of the heavy
libraries (web3, the eth_* packages, SQLAlchemy, the web stack): a supplier's script that
calls the CLI once per batch should not wait for them where nothing is sent or read.

Each case runs in a fresh interpreter (a module imported by an earlier test would hide a
regression) and reports the modules it ended up with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Top-level packages that only commands doing real work may import.
HEAVY = {
    "web3", "eth_abi", "eth_account", "eth_utils", "eth_keys", "sqlalchemy", "alembic", "fastapi", "starlette",
    "uvicorn", "jinja2", "requests", "aiohttp", "biip", "qrcode",
}  # fmt: skip

# Runs the app as the `provenance` entry point does, then prints (last, on stderr) the exit
# code and which heavy packages are loaded.
PROBE = """
import json, sys
from ledger.cli import app
heavy = set(sys.argv[1].split(","))
try:
    app(sys.argv[2:], prog_name="provenance")
    code = 0
except SystemExit as exit_:
    code = exit_.code
print(json.dumps({"code": code, "heavy": sorted({m for m in sys.modules if m.split(".")[0] in heavy})}), file=sys.stderr)
"""


def probe(*args: str) -> tuple[int, list[str], str, str]:
    """Exit code, heavy modules loaded, stdout and stderr (without the probe's line)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(sorted(HEAVY)), *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    *err_lines, report_line = done.stderr.rstrip("\n").split("\n")
    report = json.loads(report_line)
    return report["code"], report["heavy"], done.stdout, "\n".join(err_lines)


GROUPS = ["account", "actor", "role", "batch", "claim", "licence", "export", "documents"]
COMMANDS = ["run", "deploy", "serve", "index", "history", "lineage", "claims", "audit", "verify", "proof"]


def test_top_level_help_loads_no_heavy_library():
    code, heavy, out, _ = probe("--help")
    assert code == 0
    assert heavy == []
    for name in GROUPS + COMMANDS:
        assert name in out


@pytest.mark.parametrize("group", GROUPS)
def test_group_help_loads_no_heavy_library(group):
    code, heavy, out, _ = probe(group, "--help")
    assert code == 0
    assert heavy == []
    assert "Commands" in out


@pytest.mark.parametrize("command", [["batch", "register"], ["history"], ["serve"], ["claim", "attest"], ["claim", "sign"]])
def test_command_help_loads_no_heavy_library(command):
    code, heavy, out, _ = probe(*command, "--help")
    assert code == 0
    assert heavy == []
    assert "Usage: provenance " + " ".join(command) in out


def test_argument_error_loads_no_heavy_library():
    code, heavy, _, err = probe(
        "batch",
        "register",
        "--gtin",
        "09506000134352",
        "--lot",
        "L-1",
        "--unit",
        "KGM",
        "--product",
        "Green coffee",
        "--quantity",
        "notanumber",
    )
    assert code == 2
    assert heavy == []
    assert "Invalid value for '--quantity'" in err


def test_missing_option_error_loads_no_heavy_library():
    code, heavy, _, err = probe("batch", "register", "--quantity", "5")
    assert code == 2
    assert heavy == []
    assert "Missing option" in err


def test_constants_written_out_for_start_up_agree_with_their_source():
    """The CLI writes out two values its light modules may not import: they must not drift."""
    from ledger.audit import Severity
    from ledger.cli.audit import COLOURS
    from ledger.cli.auditor import DEFAULT_DEPTH
    from ledger.queries import DEFAULT_DEPTH as READ_MODEL_DEPTH

    assert DEFAULT_DEPTH == READ_MODEL_DEPTH
    assert set(COLOURS) == {severity.name for severity in Severity}
