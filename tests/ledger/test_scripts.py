"""The brownie scripts are thin `main()` wrappers over `ledger`: run them against a real chain.

(`brownie run ... --network provenance-local` only adds brownie's network plumbing around
the same `main()`; the network points at the fixed port of `make run`'s chain, which a
test must not take from a user.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def script_env(local_ledger, rewind, monkeypatch):
    for key, value in local_ledger.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PROVENANCE_ACCOUNT", raising=False)


def test_deploy_script_reuses_the_deployment(script_env, local_ledger, capsys):
    load("deploy").main()
    assert f"Ledger {local_ledger.address} on chain 31337 (already deployed)" in capsys.readouterr().out


def test_deploy_script_refuses_older_code_unless_asked_to_redeploy(script_env, local_ledger, capsys):
    import json

    from ledger.errors import DeploymentError

    record = local_ledger.data_dir / "deployment.json"
    original = record.read_text()
    try:
        record.write_text(json.dumps({**json.loads(original), "code_hash": "0x" + "00" * 32}))
        with pytest.raises(DeploymentError, match="was deployed from older code"):
            load("deploy").main()
        load("deploy").main("redeploy")
        out = capsys.readouterr().out
        assert "deployed from older code" in out and "(deployed now)" in out
        assert json.loads(record.read_text())["address"] != local_ledger.address
    finally:
        record.write_text(original)  # the module's other tests use the first ledger


def test_seed_demo_then_register_batch_scripts(script_env, monkeypatch, capsys):
    load("seed_demo").main()
    assert "Demo data loaded." in capsys.readouterr().out
    load("seed_demo").main()
    assert "already there; nothing written" in capsys.readouterr().out
    from ledger.demo import GREEN_COFFEE  # sub-licensed to Finca La Esperanza by its cooperative

    monkeypatch.setenv("PROVENANCE_ACCOUNT", "node:1")  # Finca La Esperanza in the demo
    load("register_batch").main(GREEN_COFFEE, "L-SCRIPT", "100", "KGM", "Green coffee")
    out = capsys.readouterr().out
    assert "registered: 0x" in out
    assert f"page http://127.0.0.1:8000/01/{GREEN_COFFEE}/10/L-SCRIPT" in out
