"""Bulk import killed midway (SIGKILL) and re-run: every row registered exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from ledger.artifacts import load_artifact

GTIN = "09506000134352"
ROWS = 3000


def test_import_killed_midway_then_rerun_registers_every_row_once(local_ledger, tmp_path):
    from ledger.config import Settings
    from ledger.connection import LedgerConnection
    from ledger.models import LicenceScope
    from ledger.signers import NodeAccountSigner
    from ledger.writer import LedgerWriter

    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    farm = conn.w3.eth.accounts[1]
    admin = LedgerWriter(conn, NodeAccountSigner(conn.w3.eth.accounts[0]))
    admin.register_actor(farm, "Finca Bulk", "CO")
    admin.grant_supplier(farm)
    admin.grant_licence(farm, LicenceScope.single_gtin(GTIN))

    csv_path = tmp_path / "harvest.csv"
    lines = ["gtin,lot,quantity,unit,product,origin"]
    lines += [f"{GTIN},H-{i:05d},{1 + i % 900},KGM,Green coffee,Huila" for i in range(ROWS)]
    csv_path.write_text("\n".join(lines) + "\n")

    env = {**os.environ, **local_ledger.env, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "ledger.cli",
        "batch",
        "import",
        str(csv_path),
        "--chunk-size",
        "5",
        "--account",
        "node:1",
        "--json",
    ]
    ledger = conn.w3.eth.contract(address=conn.address, abi=load_artifact().abi)

    def registered_ids() -> list[bytes]:
        logs = ledger.events.BatchRegistered.get_logs(from_block=0, argument_filters={"supplier": farm})
        return [bytes(log["args"]["batchId"]) for log in logs]

    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(registered_ids()) < ROWS // 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    landed = len(registered_ids())
    assert 0 < landed < ROWS, f"the import was not caught midway ({landed} of {ROWS} landed)"

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["already_registered"] >= landed - 5  # a chunk may have landed after the count
    assert report["registered"] + report["already_registered"] == ROWS
    assert report["failed"] == 0
    ids = registered_ids()
    assert len(ids) == ROWS
    assert len(set(ids)) == ROWS
