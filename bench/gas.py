"""Gas per ledger operation (contract v2), measured on a fresh local anvil (`make bench-gas`).

Prints a table (with the targets and the anchors we compare against) and writes
bench/results/gas.json: {operation: gas used}. Never passes or fails: it measures.

It deploys the artifact the Python client ships (ledger/artifacts/ProvenanceLedger.json,
refreshed by `make artifacts`) and sends plain web3 transactions from anvil's unlocked dev
accounts, so it measures the contract alone, whatever the client does around it. The
EIP-712 signature for attestBySig is made by anvil too (`eth_signTypedData_v4` of an
unlocked account), so no private key appears here; it is checked against an independent
encoding (eth_account) before it is used.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from web3 import Web3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.artifacts import load_artifact  # noqa: E402
from ledger.chain import LocalChain, connect, free_loopback_port  # noqa: E402
from ledger.config import Settings  # noqa: E402
from ledger.deploy import deploy_ledger  # noqa: E402
from ledger.writer import attestation_typed_data  # noqa: E402  (the EIP-712 data the client signs)

RESULTS = ROOT / "bench" / "results" / "gas.json"
TX_GAS_CAP = 16_777_216  # EIP-7825 per-transaction cap
GTIN = 9506000134352  # GS1's example GTIN 09506000134352
COMPANY_PREFIX = (7, 9506000)  # its 7-digit GS1 Company Prefix: the farm's root licence
SUB_PREFIX = (10, 9506000134)  # a range inside it, sub-licensed by the farm to the cooperative
YEAR = 365 * 24 * 3600
CALLDATA_NONZERO_EXTRA = 12  # a non-zero calldata byte costs 16 gas, a zero byte 4 (EIP-2028)
ONE_BATCH = (55_000, "tutorial supply-chain contract storing a struct of strings: ~169,000")

# operation: (target, anchor description); absent where the issue sets no target.
TARGETS: dict[str, tuple[int, str | None]] = {
    "registerBatch (10-char lot)": ONE_BATCH,
    "registerBatch (1-char lot)": (ONE_BATCH[0], None),
    "registerBatch (20-char lot)": (ONE_BATCH[0], None),
    "registerBatch by a sub-licensee (licence + root read)": (ONE_BATCH[0], None),
    "registerBatches (per batch, 50 lots of one GTIN in one call)": (30_000, None),
    "attest": (60_000, "EAS attest(): 319,546"),
    "revokeAttestation": (35_000, "EAS revoke(): 77,318"),
    "custody hand-over (transfer + accept)": (70_000, None),
}
# Rows that are derived, not one transaction's gas: said so in the anchor column.
NOTES: dict[str, str] = {
    "lot length: gas per extra character (1 vs 20 chars)": (
        f"(20-char - 1-char) / 19; {CALLDATA_NONZERO_EXTRA} of it is calldata (non-zero vs zero byte)"
    ),
    "CSET 82 lot check (10-char lot)": (
        "length-dependent part: 10 x (per-character cost - calldata); the check's fixed part "
        "cannot be separated on the deployed contract"
    ),
}

RECALL_REASON = "Aflatoxin B1 above the EU limit in sample 2024-117"


def b32(text: str) -> bytes:
    """A short string left-aligned in 32 bytes (claims, business steps, stand-in hashes)."""
    return text.encode().ljust(32, b"\0")


def lot(text: str) -> bytes:
    """A GS1 lot left-aligned in 20 bytes."""
    return text.encode().ljust(20, b"\0")


def batch(lot_text: str, quantity: int = 60_000, gtin: int = GTIN) -> tuple:
    """A BatchInput tuple."""
    return (gtin, lot(lot_text), quantity, b"KGM", Web3.keccak(text=f"metadata {lot_text}"))


def batch_id(lot_text: str, gtin: int = GTIN) -> bytes:
    """The id the contract derives: keccak256(abi.encodePacked(uint64 gtin, bytes20 lot))."""
    return Web3.keccak(gtin.to_bytes(8, "big") + lot(lot_text))


def largest_bulk_under_cap(per_batch: float, overhead: float) -> int:
    """How many registrations fit one transaction under the EIP-7825 cap, with 5% headroom."""
    return int((TX_GAS_CAP * 0.95 - overhead) // per_batch)


def sign_by_node(w3: Web3, signer: str, typed: dict[str, Any]) -> bytes:
    """Signature of an unlocked node account, checked to recover to `signer`."""
    as_json = json.loads(json.dumps(typed, default=lambda v: "0x" + v.hex()))  # bytes -> hex for the node
    response = w3.provider.make_request("eth_signTypedData_v4", [signer, json.dumps(as_json)])
    if "error" in response:
        raise RuntimeError(f"anvil refused eth_signTypedData_v4: {response['error']}")
    signature = bytes.fromhex(response["result"].removeprefix("0x"))
    recovered = Account.recover_message(encode_typed_data(full_message=typed), signature=signature)
    if recovered != signer:
        raise RuntimeError(f"the node's signature recovers to {recovered}, not {signer}: encodings differ")
    return signature


def measure() -> dict[str, int]:
    """Run every operation once on a fresh chain; gas used per operation."""
    measured: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
        with LocalChain(settings):
            w3 = connect(settings.rpc_url)
            admin, farm, coop, certifier, signer, anyone = w3.eth.accounts[:6]
            deployment = deploy_ledger(w3, admin, 2 * 24 * 3600)
            measured["deploy"] = w3.eth.get_transaction_receipt(deployment.tx_hash)["gasUsed"]
            ledger = w3.eth.contract(address=deployment.address, abi=load_artifact().abi)
            fn = ledger.functions

            def send(call, sender: str) -> dict:
                receipt = w3.eth.wait_for_transaction_receipt(
                    call.transact({"from": sender, "gas": TX_GAS_CAP}), poll_latency=0.01
                )
                if receipt["status"] != 1:
                    try:  # replay as a call: the node then returns the custom error's data
                        call.call({"from": sender}, block_identifier=receipt["blockNumber"] - 1)
                    except Exception as exc:  # noqa: BLE001 - reported, then re-raised below
                        raise RuntimeError(f"{call.fn_name} by {sender} reverted: {exc!r}") from exc
                    raise RuntimeError(f"{call.fn_name} by {sender} reverted")
                return receipt

            def gas(call, sender: str) -> int:
                return send(call, sender)["gasUsed"]

            def now() -> int:
                return w3.eth.get_block("latest")["timestamp"]

            # Organisations, roles, accreditations.
            measured["registerActor"] = gas(fn.registerActor(farm, "Finca La Esperanza", b"CO", b32("p")), admin)
            for account, name in (
                (coop, "Cooperativa Alto Huila"),
                (certifier, "EthicCert Labs"),
                (signer, "Delegating Certifier"),
            ):
                gas(fn.registerActor(account, name, b"CO", b32("p")), admin)
            supplier_role = fn.SUPPLIER_ROLE().call()
            measured["grantRole (supplier)"] = gas(fn.grantRole(supplier_role, farm), admin)
            gas(fn.grantRole(supplier_role, coop), admin)
            measured["accreditCertifier"] = gas(fn.accreditCertifier(certifier, b32("FAIRTRADE")), admin)
            gas(fn.accreditCertifier(signer, b32("FAIRTRADE")), admin)
            measured["requestProfileUpdate"] = gas(fn.requestProfileUpdate("Finca La Esperanza S.A.S.", b"CO", b32("p2")), farm)
            measured["approveProfileUpdate"] = gas(
                fn.approveProfileUpdate(farm, "Finca La Esperanza S.A.S.", b"CO", b32("p2")), admin
            )

            # GS1 licences: the farm holds its company prefix and sub-licenses a range to the coop
            # (grantLicence sent by a root holder cuts a sub-licence; sent by the admin, a root).
            measured["grantLicence (root, 7-digit company prefix)"] = gas(fn.grantLicence(farm, *COMPANY_PREFIX), admin)
            measured["grantLicence (sub-licence by the root holder, 10-digit range)"] = gas(
                fn.grantLicence(coop, *SUB_PREFIX), farm
            )

            # Registrations.
            measured["registerBatch (10-char lot)"] = gas(fn.registerBatch(batch("L-00000001")), farm)
            one = gas(fn.registerBatch(batch("1")), farm)
            twenty = gas(fn.registerBatch(batch("L-2026-11-22-000001A")), farm)
            measured["registerBatch (1-char lot)"] = one
            measured["registerBatch (20-char lot)"] = twenty
            per_char = (twenty - one) / 19
            measured["lot length: gas per extra character (1 vs 20 chars)"] = round(per_char)
            measured["CSET 82 lot check (10-char lot)"] = max(0, round(10 * (per_char - CALLDATA_NONZERO_EXTRA)))
            measured["registerBatch by a sub-licensee (licence + root read)"] = gas(fn.registerBatch(batch("C-00000001")), coop)
            bulk50 = gas(fn.registerBatches([batch(f"B50-{i:06d}") for i in range(50)]), farm)
            measured["registerBatches (per batch, 50 lots of one GTIN in one call)"] = bulk50 // 50
            per_batch_200 = gas(fn.registerBatches([batch(f"B200-{i:05d}") for i in range(200)]), farm) / 200
            fit = largest_bulk_under_cap(per_batch_200, 30_000)
            big = gas(fn.registerBatches([batch(f"BIG-{i:06d}") for i in range(fit)]), farm)
            measured[f"registerBatches ({fit} in one call, total)"] = big
            measured[f"registerBatches (per batch, {fit} in one call)"] = big // fit

            # Custody and steps.
            subject = batch_id("L-00000001")
            transfer = gas(fn.transferCustody(subject, coop), farm)
            accept = gas(fn.acceptCustody(subject), coop)
            measured["transferCustody"] = transfer
            measured["acceptCustody"] = accept
            measured["custody hand-over (transfer + accept)"] = transfer + accept
            measured["recordStep"] = gas(fn.recordStep(subject, b32("receiving"), "Neiva, Huila, CO", b32("d")), coop)

            # Transformations (outputs under the farm's licence).
            inputs = [batch_id(f"B50-{i:06d}") for i in range(3)]
            measured["transform (split 1 to 2)"] = gas(
                fn.transform(0, [(inputs[0], 60_000)], [batch("S-A", 30_000), batch("S-B", 30_000)], b32("d")), farm
            )
            measured["transform (merge 2 to 1)"] = gas(
                fn.transform(1, [(inputs[1], 60_000), (inputs[2], 60_000)], [batch("M-1", 120_000)], b32("d")), farm
            )

            # Recall, its review, voiding.
            recalled = batch_id(f"B50-{10:06d}")
            measured["recallBatch"] = gas(fn.recallBatch(recalled, RECALL_REASON, Web3.keccak(text=RECALL_REASON)), farm)
            measured["reviewRecall (withdrawn)"] = gas(fn.reviewRecall(recalled, False, "Re-test negative"), admin)
            measured["voidBatch"] = gas(fn.voidBatch(batch_id(f"B50-{11:06d}"), "Registered twice by mistake"), admin)

            # Attestations.
            until = now() + YEAR
            request = (0, subject, b32("FAIRTRADE"), 0, until, b32("evidence"))
            receipt = send(fn.attest(request), certifier)
            measured["attest"] = receipt["gasUsed"]
            uid = ledger.events.Attested().process_receipt(receipt)[0]["args"]["uid"]
            reason = "Certificate suspended"
            measured["revokeAttestation"] = gas(fn.revokeAttestation(uid, reason, Web3.keccak(text=reason)), certifier)

            # Delegated attestation: the signer's first signature (its nonce slot goes 0 -> 1).
            signed_at, deadline = now(), now() + 3600
            delegated = (0, subject, b32("FAIRTRADE"), 0, until, b32("evidence 2"))
            message = {
                "issuer": signer, "subjectKind": 0, "subject": bytes(subject), "claim": b32("FAIRTRADE"),
                "validFrom": 0, "validUntil": until, "evidenceHash": b32("evidence 2"),
                "signedAt": signed_at, "nonce": fn.nonces(signer).call(), "deadline": deadline,
            }  # fmt: skip
            signature = sign_by_node(w3, signer, attestation_typed_data(w3.eth.chain_id, ledger.address, message))
            measured["attestBySig (EIP-712 with signedAt, submitted by anyone)"] = gas(
                fn.attestBySig(delegated, signer, signed_at, deadline, signature), anyone
            )
            measured["invalidateNonces"] = gas(fn.invalidateNonces(fn.nonces(signer).call() + 5), signer)
    return measured


def main() -> int:
    measured = measure()
    print_table(measured)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(measured, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


def print_table(measured: dict[str, int]) -> None:
    """Markdown table: operation, gas, target, met (or by how much it is over), anchor."""
    print("| operation | gas used | target | met | anchor |")
    print("|---|---:|---:|---|---|")
    for operation, used in measured.items():
        target, anchor = TARGETS.get(operation, (None, NOTES.get(operation)))
        met = "" if target is None else ("yes" if used <= target else f"no (+{used - target:,})")
        print(f"| {operation} | {used:,} | {'' if target is None else f'{target:,}'} | {met} | {anchor or ''} |")


if __name__ == "__main__":
    sys.exit(main())
