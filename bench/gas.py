"""Gas per ledger operation, measured on a fresh local anvil (`make bench-gas`).

Prints a table (with the targets and the anchors we compare against) and writes
bench/results/gas.json: {operation: gas used}. Never passes or fails: it measures.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account
from web3 import Web3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.artifacts import load_artifact  # noqa: E402
from ledger.chain import LocalChain, connect, free_loopback_port  # noqa: E402
from ledger.config import Settings  # noqa: E402
from ledger.deploy import deploy_ledger  # noqa: E402
from ledger.models import AttestationCreate  # noqa: E402
from ledger.signers import LocalKeySigner  # noqa: E402
from ledger.writer import sign_attestation  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "gas.json"
TX_GAS_CAP = 16_777_216  # EIP-7825 per-transaction cap
GTIN = 9506000134352
YEAR = 365 * 24 * 3600

# operation: (target, anchor description); None where the issue sets no target.
TARGETS = {
    "registerBatch": (55_000, "tutorial supply-chain contract storing a struct of strings: ~169,000"),
    "registerBatches (per batch, 50 in one call)": (30_000, None),
    "attest": (60_000, "EAS attest(): 319,546"),
    "revokeAttestation": (35_000, "EAS revoke(): 77,318"),
    "custody hand-over (transfer + accept)": (70_000, None),
}


def b32(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


def lot(text: str) -> bytes:
    return text.encode().ljust(20, b"\0")


def batch(lot_text: str, quantity: int = 60_000) -> tuple:
    return (GTIN, lot(lot_text), quantity, b"KGM", Web3.keccak(text=f"metadata {lot_text}"))


def largest_bulk_under_cap(per_batch: float, overhead: float) -> int:
    """How many registrations fit one transaction under the EIP-7825 cap, with 5% headroom."""
    return int((TX_GAS_CAP * 0.95 - overhead) // per_batch)


def main() -> int:
    measured: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
        with LocalChain(settings):
            w3 = connect(settings.rpc_url)
            admin, farm, coop, certifier, anyone = w3.eth.accounts[:5]
            deployment = deploy_ledger(w3, admin, 2 * 24 * 3600)
            measured["deploy"] = w3.eth.get_transaction_receipt(deployment.tx_hash)["gasUsed"]
            ledger = w3.eth.contract(address=deployment.address, abi=load_artifact().abi)

            def gas(call, sender) -> int:
                receipt = w3.eth.wait_for_transaction_receipt(
                    call.transact({"from": sender, "gas": TX_GAS_CAP}), poll_latency=0.01
                )
                assert receipt["status"] == 1, f"{call.fn_name} reverted"
                return receipt["gasUsed"]

            signer = Account.create()
            measured["registerActor"] = gas(
                ledger.functions.registerActor(farm, "Finca La Esperanza", b"CO", b32("p")), admin
            )
            for account, name in ((coop, "Cooperativa Alto Huila"), (certifier, "EthicCert Labs"),
                                  (signer.address, "Delegating Certifier")):  # fmt: skip
                gas(ledger.functions.registerActor(account, name, b"CO", b32("p")), admin)
            measured["grantRole (supplier)"] = gas(
                ledger.functions.grantRole(ledger.functions.SUPPLIER_ROLE().call(), farm), admin
            )
            gas(ledger.functions.grantRole(ledger.functions.SUPPLIER_ROLE().call(), coop), admin)
            measured["accreditCertifier"] = gas(ledger.functions.accreditCertifier(certifier, b32("FAIRTRADE")), admin)
            gas(ledger.functions.accreditCertifier(signer.address, b32("FAIRTRADE")), admin)

            measured["registerBatch"] = gas(ledger.functions.registerBatch(batch("L-0001")), farm)
            bulk50 = gas(ledger.functions.registerBatches([batch(f"B50-{i:05d}") for i in range(50)]), farm)
            measured["registerBatches (per batch, 50 in one call)"] = bulk50 // 50
            per_batch_200 = gas(ledger.functions.registerBatches([batch(f"B200-{i:05d}") for i in range(200)]), farm) / 200
            fit = largest_bulk_under_cap(per_batch_200, 30_000)
            big = gas(ledger.functions.registerBatches([batch(f"BIG-{i:05d}") for i in range(fit)]), farm)
            measured[f"registerBatches ({fit} in one call, total)"] = big
            measured[f"registerBatches (per batch, {fit} in one call)"] = big // fit

            subject = ledger.functions.batchIdOf(GTIN, lot("L-0001")).call()
            transfer = gas(ledger.functions.transferCustody(subject, coop), farm)
            accept = gas(ledger.functions.acceptCustody(subject), coop)
            measured["transferCustody"] = transfer
            measured["acceptCustody"] = accept
            measured["custody hand-over (transfer + accept)"] = transfer + accept
            measured["recordStep"] = gas(
                ledger.functions.recordStep(subject, b32("receiving"), "Neiva, Huila, CO", b32("d")), coop
            )
            inputs = [ledger.functions.batchIdOf(GTIN, lot(f"B50-{i:05d}")).call() for i in range(3)]
            measured["transform (split 1 to 2)"] = gas(
                ledger.functions.transform(0, [(inputs[0], 60_000)], [batch("S-A", 30_000), batch("S-B", 30_000)], b32("d")),
                farm,
            )
            measured["transform (merge 2 to 1)"] = gas(
                ledger.functions.transform(1, [(inputs[1], 60_000), (inputs[2], 60_000)], [batch("M-1", 120_000)], b32("d")),
                farm,
            )
            measured["recallBatch"] = gas(ledger.functions.recallBatch(subject, b32("reason")), farm)

            until = int(time.time()) + YEAR
            request = (0, subject, b32("FAIRTRADE"), 0, until, b32("evidence"))
            measured["attest"] = gas(ledger.functions.attest(request), certifier)
            uid = ledger.functions.attestationUid(certifier, request[:3] + (w3.eth.get_block("latest")["timestamp"],) + request[4:]).call()
            measured["revokeAttestation"] = gas(ledger.functions.revokeAttestation(uid, b32("reason")), certifier)

            deadline = int(time.time()) + 3600
            signed = sign_attestation(
                LocalKeySigner(signer), w3.eth.chain_id, deployment.address,
                AttestationCreate(subject_kind=0, subject="0x" + bytes(subject).hex(), claim="FAIRTRADE",
                                  valid_until=until, evidence_hash="0x" + b32("evidence 2").hex()),
                nonce=0, deadline=deadline,
            )  # fmt: skip
            signature = bytes.fromhex(signed.signature[2:])
            measured["attestBySig"] = gas(
                ledger.functions.attestBySig(request[:5] + (b32("evidence 2"),), signer.address, deadline, signature),
                anyone,
            )

    print_table(measured)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(measured, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


def print_table(measured: dict[str, int]) -> None:
    """Markdown table: operation, gas, target, met?, anchor."""
    print("| operation | gas used | target | met | anchor |")
    print("|---|---:|---:|---|---|")
    for operation, used in measured.items():
        target, anchor = TARGETS.get(operation, (None, None))
        met = "" if target is None else ("yes" if used <= target else f"no (+{used - target:,})")
        print(f"| {operation} | {used:,} | {'' if target is None else f'{target:,}'} | {met} | {anchor or ''} |")


if __name__ == "__main__":
    sys.exit(main())
