"""Fuzz the whole API from its own OpenAPI document with schemathesis: no input may
produce a server error."""

from __future__ import annotations

import subprocess

import pytest
from apisite import OUTPUT, ROOT

SCHEMATHESIS = ROOT / ".venv" / "toolchain" / "fuzz" / "bin" / "schemathesis"


def test_no_request_generated_from_the_openapi_schema_causes_a_server_error(live_server):
    if not SCHEMATHESIS.exists():
        pytest.fail(f"{SCHEMATHESIS} is missing: run `make install` (tools/bootstrap.sh installs the fuzzer)")
    report = OUTPUT / "schemathesis.txt"
    report.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{live_server}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "60",
            "--workers",
            "2",
            "--seed",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=OUTPUT,
    )
    report.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, f"schemathesis found server errors (full report: {report}):\n{result.stdout[-6000:]}"
    assert "operations" in result.stdout.lower() or "passed" in result.stdout.lower()
