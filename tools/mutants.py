"""Mutation check of the ledger contract: do the contract tests notice when a rule is broken?

`make mutants` (or `python tools/mutants.py`) applies each mutation below, one at a time, to a
copy of contracts/ProvenanceLedger.sol in a temporary copy of the project, compiles it and runs
`brownie test tests/contracts -x` there on a chain of its own. A mutant is *killed* when a test
fails (the table names the first one) and *survives* when every test passes. See
docs/MUTANTS.md for what the check is for and why each known survivor survives.

Each mutation is a (name, exact source snippet, replacement) triple. A snippet that is not in
the contract exactly once stops the run before anything is built (exit 2), so a mutant never
silently stops mutating anything when the contract is edited: fix the snippet instead.

Isolation, because other people run tests on this machine at the same time:
- /work/main/contracts (this checkout) is only read; the mutated file lives in the copy, which
  also has its own build/ folder and its own copy of tools/solc.js (solc.js resolves imports
  against the folder it lives in);
- the chain is brownie's network `mutants-chain` (added to ~/.brownie/network-config.yaml when
  absent), launched by brownie on a free port chosen per run and written into the copy's
  brownie-config.yaml. Port 8545, which `make test` uses, is never used, and a run that finds
  brownie attached to an existing chain instead of launching its own stops at once.

Exit codes: 0 when the baseline passes and every mutant ran, whatever survived (the printed
list of survivors, with their reasons from docs/MUTANTS.md, is the result); 2 for a broken
set-up (a snippet not found, the unmutated contract failing its tests, a mutant that does not
compile, brownie attached to a chain it did not launch).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = Path("contracts/ProvenanceLedger.sol")
NETWORK = "mutants-chain"
FORBIDDEN_PORTS = {8545, 8546}  # `make test`'s chain and provenance-local
DOC = ROOT / "docs" / "MUTANTS.md"
DEFAULT_TIMEOUT = 900  # seconds per run: a survivor runs the whole suite


class Mutant(NamedTuple):
    """One deliberate bug: replace `snippet` (exactly once in the contract) by `replacement`."""

    name: str
    snippet: str
    replacement: str


# Grouped by the rule each one breaks. Snippets are kept to one statement where possible so
# that unrelated edits of the contract leave them intact.
MUTANTS: list[Mutant] = [
    # --- access control: a removed onlyRole modifier
    Mutant(
        "root-licence-by-anyone",
        "if (hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {",
        "if (true) {",
    ),
    Mutant(
        "voidBatch-no-onlyRole",
        "function voidBatch(bytes32 batchId, string calldata reason) external onlyRole(DEFAULT_ADMIN_ROLE) {",
        "function voidBatch(bytes32 batchId, string calldata reason) external {",
    ),
    Mutant(
        "reviewRecall-no-onlyRole",
        "function reviewRecall(bytes32 batchId, bool upheld, string calldata reason)\n"
        "        external\n        onlyRole(DEFAULT_ADMIN_ROLE)\n",
        "function reviewRecall(bytes32 batchId, bool upheld, string calldata reason)\n        external\n",
    ),
    Mutant(
        "approveProfileUpdate-no-onlyRole",
        "function approveProfileUpdate(address account, string calldata name, bytes2 country, bytes32 metadataHash)\n"
        "        external\n        onlyRole(DEFAULT_ADMIN_ROLE)\n",
        "function approveProfileUpdate(address account, string calldata name, bytes2 country, bytes32 metadataHash)\n"
        "        external\n",
    ),
    Mutant(
        "grantRole-any-role",
        "if (role != SUPPLIER_ROLE && role != DEFAULT_ADMIN_ROLE) revert ProvenanceRoleNotGrantable(role);",
        "",
    ),
    # --- GS1 licences
    Mutant(
        "licence-check-removed",
        "if (!_isLicensed(actor, gtin)) revert ProvenanceNotLicensed(gtin, _actorAddresses[actor.id]);",
        "",
    ),
    Mutant(
        "bulk-checks-first-gtin-only",
        "if (inputs[i].gtin != checkedGtin) {",
        "if (i == 0) {",
    ),
    Mutant(
        "licence-of-another-organisation-counts",
        "if (licence.licenseeId == actor.id && _inForce(licence)) return true;",
        "if (_inForce(licence)) return true;",
    ),
    Mutant(
        "root-licence-overlap-allowed",
        "if (outer.licenseeId != 0 && outer.parentKey == 0) {",
        "if (false) {",
    ),
    Mutant(
        "root-licence-around-another-allowed",
        "if (_licences[key].innerRoots != 0) revert ProvenanceLicenceOverlaps(prefixLength, prefix, address(0));",
        "",
    ),
    Mutant(
        "withdrawn-root-still-blocks-nesting",
        "--_licences[(_prefixOf(prefix, prefixLength, length) << 4) | length].innerRoots;",
        "",
    ),
    Mutant(
        "sub-licensee-may-sub-license",
        "if (parent.licenseeId == grantor.id && parent.parentKey == 0) {",
        "if (parent.licenseeId == grantor.id) {",
    ),
    Mutant(
        "sub-licence-outlives-root",
        "return _licences[licence.parentKey].serial == licence.parentSerial;",
        "return true;",
    ),
    Mutant(
        "withdrawLicence-anyone",
        "if (licence.grantorId == 0 || senderId != licence.grantorId) {",
        "if (licence.grantorId == 0) {",
    ),
    Mutant(
        "withdrawn-root-stays-cached",
        "if (_actors[licensee].rootLicence == key) _actors[licensee].rootLicence = 0;",
        "",
    ),
    Mutant(
        "licence-event-drops-parent-key",
        "emit LicenceGranted(key, licensee, msg.sender, prefixLength, prefix, parentKey);",
        "emit LicenceGranted(key, licensee, msg.sender, prefixLength, prefix, 0);",
    ),
    # --- batches and lots
    Mutant(
        "cset82-check-removed",
        "if (!_isValidLot(input.lot)) revert ProvenanceInvalidLot(input.lot);",
        "",
    ),
    Mutant(
        "gtin-check-digit-ignored",
        "valid := eq(mod(sub(10, mod(sum, 10)), 10), mod(gtin, 10))",
        "valid := 1",
    ),
    Mutant(
        "duplicate-lot-accepted",
        "if (existing != 0) {",
        "if (false) {",
    ),
    Mutant(
        "voided-batch-consumed",
        "if (batch.status == BatchStatus.Voided) revert ProvenanceBatchVoided(batchId);\n"
        "        // Ensure only the holder consumes",
        "// Ensure only the holder consumes",
    ),
    Mutant(
        "void-keeps-pending-hand-over",
        "_withByte(word & ~(ID_MASK << PENDING_SHIFT), STATUS_SHIFT, uint8(BatchStatus.Voided))",
        "_withByte(word, STATUS_SHIFT, uint8(BatchStatus.Voided))",
    ),
    Mutant(
        "consume-all-off-by-one",
        "if (quantity > batch.remainingQuantity) {",
        "if (quantity >= batch.remainingQuantity) {",
    ),
    # --- custody
    Mutant(
        "second-hand-over-while-pending",
        "if (pendingId != 0) revert ProvenanceTransferPending(batchId, _actorAddresses[pendingId]);",
        "",
    ),
    Mutant(
        "accept-by-anyone",
        "if (sender.id != pendingId) {",
        "if (false) {",
    ),
    # --- recalls
    Mutant(
        "recall-by-any-organisation",
        "senderId == 0 || senderId != (word & ID_MASK)",
        "senderId == 0",
    ),
    Mutant(
        "supplier-recalls-again-after-withdrawal",
        "\n                    || RecallState(uint8(word >> RECALL_SHIFT)) == RecallState.Withdrawn",
        "",
    ),
    Mutant(
        "upheld-recall-reviewed-again",
        "!= RecallState.Recalled) revert ProvenanceNoRecallToReview(batchId);",
        "== RecallState.None) revert ProvenanceNoRecallToReview(batchId);",
    ),
    Mutant(
        "withdrawn-recall-still-blocks",
        "return recall == RecallState.Recalled || recall == RecallState.Upheld;",
        "return recall != RecallState.None;",
    ),
    Mutant(
        "reason-length-off-by-one",
        "if (bytes(reason).length == 0 || bytes(reason).length > MAX_REASON_LENGTH) {",
        "if (bytes(reason).length == 0 || bytes(reason).length >= MAX_REASON_LENGTH) {",
    ),
    Mutant(
        "recall-event-drops-reason-hash",
        "emit BatchRecalled(batchId, msg.sender, reason, reasonHash);",
        "emit BatchRecalled(batchId, msg.sender, reason, bytes32(0));",
    ),
    # --- certification rules
    Mutant(
        "accreditation-check-removed",
        "if (!_hasAccreditationBit(actor, claimType.id)) revert ProvenanceNotAccredited(issuer, request.claim);",
        "",
    ),
    Mutant(
        "separation-of-duties-removed",
        "actor.id == (word & ID_MASK) || actor.id == ((word >> CUSTODIAN_SHIFT) & ID_MASK)\n"
        "                    || actor.id == ((word >> PENDING_SHIFT) & ID_MASK)",
        "false",
    ),
    Mutant(
        "separation-of-duties-ignores-pending-custodian",
        "\n                    || actor.id == ((word >> PENDING_SHIFT) & ID_MASK)",
        "",
    ),
    Mutant(
        "self-attestation-allowed",
        "if (subjectAccount == issuer) {",
        "if (false) {",
    ),
    Mutant(
        "backdating-bound-removed",
        "if (uint256(validFrom) + claimType.maxBackdating < now_) {",
        "if (false) {",
    ),
    Mutant(
        "backdating-bound-off-by-one",
        "if (uint256(validFrom) + claimType.maxBackdating < now_) {",
        "if (uint256(validFrom) + claimType.maxBackdating <= now_) {",
    ),
    Mutant(
        "valid-from-before-registration",
        "if (validFrom < registeredAt) revert ProvenanceValidFromTooEarly(validFrom, registeredAt);",
        "",
    ),
    Mutant(
        "voided-batch-attested",
        "if (BatchStatus(uint8(word >> STATUS_SHIFT)) == BatchStatus.Voided) {\n"
        "                revert ProvenanceBatchVoided(request.subject);\n            }",
        "",
    ),
    Mutant(
        "empty-validity-window-accepted",
        "(request.validUntil != 0 && request.validUntil <= validFrom)",
        "(request.validUntil != 0 && request.validUntil < validFrom)",
    ),
    Mutant(
        "expiry-off-by-one",
        "if (slot.validUntil != 0 && now_ >= slot.validUntil) return AttestationStatus.Expired;",
        "if (slot.validUntil != 0 && now_ > slot.validUntil) return AttestationStatus.Expired;",
    ),
    Mutant(
        "deactivated-issuer-still-vouches",
        "if (!issuer.active || !_hasAccreditationBit(issuer, slot.claimTypeId)) {",
        "if (!_hasAccreditationBit(issuer, slot.claimTypeId)) {",
    ),
    Mutant(
        "revoke-by-anyone",
        "if (_actors[msg.sender].id != attestation.issuerId && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {",
        "if (false) {",
    ),
    # --- delegated attestations
    Mutant(
        "signature-deadline-flipped",
        "if (_time() > deadline) revert ProvenanceSignatureExpired(deadline);",
        "if (_time() < deadline) revert ProvenanceSignatureExpired(deadline);",
    ),
    Mutant(
        "signed-in-future-accepted",
        "if (signedAt > _time()) revert ProvenanceSignedInFuture(signedAt);",
        "",
    ),
    Mutant(
        "nonce-not-consumed",
        "_nonces[issuer]++, // consuming the nonce is what makes a replay fail",
        "_nonces[issuer],",
    ),
    Mutant(
        "invalidateNonces-off-by-one",
        "if (nextNonce <= current ||",
        "if (nextNonce < current ||",
    ),
    Mutant(
        "invalidateNonces-unbounded-step",
        " || nextNonce - current > type(uint32).max",
        "",
    ),
    # --- names and profiles
    Mutant(
        "approve-other-than-requested",
        "if (requested == 0 || requested != keccak256(abi.encode(name, country, metadataHash))) {",
        "if (requested == 0) {",
    ),
    Mutant(
        "duplicate-name-accepted",
        "if (holder != 0 && holder != actorId) revert ProvenanceNameTaken(_actorAddresses[holder]);",
        "",
    ),
    Mutant(
        "names-case-sensitive",
        "folded[length++] = bytes1(uint8(char) + 32);",
        "folded[length++] = char;",
    ),
]


# The test module most likely to kill each mutant runs first; the others follow in their
# usual order, so every test still runs for a survivor. Only speed depends on this (with -x a
# killed mutant stops at its first failure): a missing or stale entry costs time, not
# correctness.
FIRST_MODULE: dict[str, str] = {
    "root-licence-by-anyone": "test_licences.py",
    "root-licence-around-another-allowed": "test_licences.py",
    "withdrawn-root-still-blocks-nesting": "test_licences.py",
    "voidBatch-no-onlyRole": "test_void.py",
    "reviewRecall-no-onlyRole": "test_recalls.py",
    "approveProfileUpdate-no-onlyRole": "test_actors_and_roles.py",
    "grantRole-any-role": "test_certification_rules.py",
    "licence-check-removed": "test_licences.py",
    "bulk-checks-first-gtin-only": "test_licences.py",
    "licence-of-another-organisation-counts": "test_licences.py",
    "root-licence-overlap-allowed": "test_licences.py",
    "sub-licensee-may-sub-license": "test_licences.py",
    "sub-licence-outlives-root": "test_licences.py",
    "withdrawLicence-anyone": "test_licences.py",
    "withdrawn-root-stays-cached": "test_licences.py",
    "licence-event-drops-parent-key": "test_licences.py",
    "void-keeps-pending-hand-over": "test_void.py",
    "empty-validity-window-accepted": "test_attestations.py",
    "expiry-off-by-one": "test_attestations.py",
    "deactivated-issuer-still-vouches": "test_attestations.py",
    "cset82-check-removed": "test_lots_and_quantities.py",
    "gtin-check-digit-ignored": "test_batches.py",
    "duplicate-lot-accepted": "test_batches.py",
    "voided-batch-consumed": "test_void.py",
    "consume-all-off-by-one": "test_transformations.py",
    "second-hand-over-while-pending": "test_custody.py",
    "accept-by-anyone": "test_custody.py",
    "recall-by-any-organisation": "test_batches.py",
    "supplier-recalls-again-after-withdrawal": "test_recalls.py",
    "upheld-recall-reviewed-again": "test_recalls.py",
    "withdrawn-recall-still-blocks": "test_recalls.py",
    "reason-length-off-by-one": "test_recalls.py",
    "recall-event-drops-reason-hash": "test_recalls.py",
    "accreditation-check-removed": "test_attestations.py",
    "separation-of-duties-removed": "test_certification_rules.py",
    "separation-of-duties-ignores-pending-custodian": "test_certification_rules.py",
    "self-attestation-allowed": "test_certification_rules.py",
    "backdating-bound-removed": "test_certification_rules.py",
    "backdating-bound-off-by-one": "test_certification_rules.py",
    "valid-from-before-registration": "test_certification_rules.py",
    "voided-batch-attested": "test_void.py",
    "revoke-by-anyone": "test_attestations.py",
    "signature-deadline-flipped": "test_signatures.py",
    "signed-in-future-accepted": "test_signatures.py",
    "nonce-not-consumed": "test_signatures.py",
    "invalidateNonces-off-by-one": "test_signatures.py",
    "invalidateNonces-unbounded-step": "test_signatures.py",
    "approve-other-than-requested": "test_names.py",
    "duplicate-name-accepted": "test_names.py",
    "names-case-sensitive": "test_names.py",
}


def ordered_test_modules(sandbox: Path, name: str) -> list[str]:
    """The contract test modules, the one most likely to kill mutant `name` first."""
    modules = sorted(path.name for path in (sandbox / "tests" / "contracts").glob("test_*.py"))
    first = FIRST_MODULE.get(name)
    if first in modules:
        modules.remove(first)
        modules.insert(0, first)
    return [f"tests/contracts/{module}" for module in modules]


@dataclass
class Outcome:
    """What one run (the baseline or a mutant) did."""

    name: str
    verdict: str  # "passed" (baseline) / "survived", "killed", "error"
    detail: str  # the killing test, or what went wrong
    seconds: float


# ------------------------------------------------------------------ checking the mutants


def check_snippets(source: str, mutants: list[Mutant]) -> list[str]:
    """Problems with the mutant definitions against `source`; empty when all apply."""
    problems = []
    names = [mutant.name for mutant in mutants]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{name}: defined more than once")
    for mutant in mutants:
        count = source.count(mutant.snippet)
        if count != 1:
            where = "not found" if count == 0 else f"found {count} times (make it unique)"
            problems.append(f"{mutant.name}: snippet {where}: {mutant.snippet!r}")
        if mutant.snippet == mutant.replacement:
            problems.append(f"{mutant.name}: the replacement is the snippet itself")
    return problems


def apply(source: str, mutant: Mutant) -> str:
    """The contract with one mutation applied (the snippet was checked to occur once)."""
    return source.replace(mutant.snippet, mutant.replacement, 1)


# ------------------------------------------------------------------ the sandbox project


def free_port() -> int:
    """A loopback port nothing listens on, never one of the ports other test runs use."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in FORBIDDEN_PORTS:
            return port


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def brownie_env(project: Path, sandbox: Path) -> dict[str, str]:
    """Environment for brownie in the sandbox: the project's toolchain, the sandbox's solc."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(project / ".venv/toolchain/bin"), str(project / ".venv/bin"), env.get("PATH", "")])
    env["SOLCX_BINARY_PATH"] = str(sandbox / ".solcx")
    return env


def ensure_network(project: Path) -> None:
    """Add brownie's `mutants-chain` development network when it is missing.

    Its port here is a placeholder: every run sets a free one in the sandbox's config. The
    other launch settings copy brownie's `development` network (base fee 0 in particular,
    which the tests' zero-gas-price transactions need).
    """
    config_file = Path.home() / ".brownie" / "network-config.yaml"
    config = yaml.safe_load(config_file.read_text()) if config_file.exists() else {}
    development = config.get("development", [])
    if any(network.get("id") == NETWORK for network in development):
        return
    settings = {"accounts": 10, "base_fee": 0, "gas_limit": 12_000_000, "port": 8555}
    command = [
        "brownie",
        "networks",
        "add",
        "development",
        NETWORK,
        "cmd=anvil",
        "host=http://127.0.0.1",
        *(f"{k}={v}" for k, v in settings.items()),
    ]
    env = brownie_env(project, project)
    result = subprocess.run(command, cwd=tempfile.gettempdir(), env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"could not add brownie network {NETWORK}:\n{result.stdout}{result.stderr}")
    print(f"added brownie network {NETWORK} to {config_file}")


def development_cmd_settings() -> dict:
    """cmd_settings of brownie's `development` network (what `make test` launches anvil with)."""
    config_file = Path.home() / ".brownie" / "network-config.yaml"
    config = yaml.safe_load(config_file.read_text())
    for network in config.get("development", []):
        if network.get("id") == "development":
            return dict(network.get("cmd_settings") or {})
    return {"accounts": 10, "base_fee": 0, "gas_limit": 12_000_000}


def make_sandbox(project: Path) -> Path:
    """A throwaway copy of what `brownie test tests/contracts` needs; the big trees are links."""
    sandbox = Path(tempfile.mkdtemp(prefix="provenance-mutants-"))
    shutil.copytree(project / "contracts", sandbox / "contracts")
    (sandbox / "tests").mkdir()
    shutil.copytree(
        project / "tests" / "contracts",
        sandbox / "tests" / "contracts",
        ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"),
    )
    for name in ("tests/conftest.py", "tests/__init__.py", "pyproject.toml"):
        if (project / name).exists():
            shutil.copy2(project / name, sandbox / name)
    # solc.js resolves imports against its own folder's parent: a copy, so the sandbox's
    # contracts are the ones compiled, never this checkout's.
    (sandbox / "tools").mkdir()
    shutil.copy2(project / "tools" / "solc.js", sandbox / "tools" / "solc.js")
    (sandbox / ".solcx").mkdir()
    for compiler in (project / ".venv" / "toolchain" / "solcx").glob("solc-v*"):
        (sandbox / ".solcx" / compiler.name).symlink_to(sandbox / "tools" / "solc.js")
    (sandbox / "node_modules").symlink_to(project / "node_modules")
    (sandbox / ".venv").symlink_to(project / ".venv")
    return sandbox


def write_config(project: Path, sandbox: Path, port: int) -> None:
    """The project's brownie-config.yaml, with `mutants-chain` launched on `port`."""
    config = yaml.safe_load((project / "brownie-config.yaml").read_text()) or {}
    settings = development_cmd_settings()
    settings["port"] = port
    config.setdefault("networks", {})[NETWORK] = {"cmd_settings": settings}
    (sandbox / "brownie-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


# ------------------------------------------------------------------ running one mutant

# Node ids may hold spaces (parametrised ids); pytest appends " - message" when it has one.
FAILED_TEST = re.compile(r"^(?:FAILED|ERROR) (tests/.+?)(?: - .*)?$", re.MULTILINE)
LAUNCHED = re.compile(r"Launching 'anvil[^']*--port (\d+)")


class SetupError(Exception):
    """The run cannot be trusted (not a verdict about a mutant)."""


def run_tests(project: Path, sandbox: Path, source: str, name: str, timeout: float, log_dir: Path) -> Outcome:
    """Write `source` into the sandbox, run the contract tests there, read the verdict."""
    (sandbox / CONTRACT).write_text(source)
    port = free_port()
    if port_in_use(port):  # taken between the check and now: brownie would attach to it
        port = free_port()
    write_config(project, sandbox, port)
    modules = ordered_test_modules(sandbox, name)
    command = ["brownie", "test", *modules, "-x", "--network", NETWORK, "-p", "no:cacheprovider"]
    started = time.monotonic()
    # A session of its own, so a timeout ends brownie and the anvil it launched, and nothing else.
    process = subprocess.Popen(
        command,
        cwd=sandbox,
        env=brownie_env(project, sandbox),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        timed_out = True
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    seconds = time.monotonic() - started
    (log_dir / f"{name}.log").write_text(output)

    if "Attached to local RPC client" in output:
        raise SetupError(f"{name}: brownie attached to a chain it did not launch; see {log_dir / name}.log")
    if "CompilerError" in output:
        return Outcome(name, "error", "does not compile", seconds)
    launched = LAUNCHED.search(output)
    if launched and int(launched.group(1)) != port:
        raise SetupError(f"{name}: brownie launched anvil on port {launched.group(1)}, not {port}")
    if timed_out:
        return Outcome(name, "killed", f"timeout after {timeout:.0f}s", seconds)
    if not launched:
        raise SetupError(f"{name}: brownie did not launch its own chain; see {log_dir / name}.log")
    if process.returncode == 0:
        return Outcome(name, "survived", "", seconds)
    failed = FAILED_TEST.search(output)
    if process.returncode == 1 and failed:
        return Outcome(name, "killed", failed.group(1), seconds)
    tail = " | ".join(line for line in output.strip().splitlines()[-3:])
    return Outcome(name, "error", f"brownie exited {process.returncode}: {tail[:200]}", seconds)


# ------------------------------------------------------------------ reporting


def written_reasons(doc: Path) -> dict[str, str]:
    """Reasons for survivors from docs/MUTANTS.md: lines `- \\`name\\`: reason` under `## Survivors`."""
    if not doc.exists():
        return {}
    reasons: dict[str, str] = {}
    in_section = False
    for line in doc.read_text().splitlines():
        if line.startswith("## "):
            in_section = line[3:].strip().lower().startswith("survivors")
            continue
        match = re.match(r"^[-*] `([^`]+)`:\s*(.+)$", line)
        if in_section and match:
            reasons[match.group(1)] = match.group(2).strip()
    return reasons


def print_table(outcomes: list[Outcome]) -> None:
    print("\n| mutant | result | killed by | seconds |")
    print("|---|---|---|---:|")
    for outcome in outcomes:
        print(f"| {outcome.name} | {outcome.verdict} | {outcome.detail} | {outcome.seconds:.0f} |")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutants (checking their snippets) and exit")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this mutant (repeatable)")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the run of the unmutated contract (only with --only, to iterate faster)"
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per run")
    parser.add_argument("--keep", action="store_true", help="keep the sandbox and its logs")
    parser.add_argument("--project", type=Path, default=ROOT, help=argparse.SUPPRESS)  # for testing this script
    args = parser.parse_args(argv)
    project = args.project.resolve()

    source = (project / CONTRACT).read_text()
    problems = check_snippets(source, MUTANTS)
    problems += [
        f"{name}: in FIRST_MODULE but not a mutant" for name in FIRST_MODULE if name not in {mutant.name for mutant in MUTANTS}
    ]
    if problems:
        print(f"{len(problems)} mutant(s) no longer apply to {CONTRACT}; update them in tools/mutants.py:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if args.list:
        for mutant in MUTANTS:
            print(mutant.name)
        print(f"\n{len(MUTANTS)} mutants, all snippets found once in {CONTRACT}")
        return 0
    selected = MUTANTS
    if args.only:
        unknown = sorted(set(args.only) - {mutant.name for mutant in MUTANTS})
        if unknown:
            print(f"unknown mutant(s): {', '.join(unknown)} (see --list)", file=sys.stderr)
            return 2
        selected = [mutant for mutant in MUTANTS if mutant.name in args.only]
    if args.no_baseline and not args.only:
        print("--no-baseline only goes with --only: a full run must show the tests pass unmutated", file=sys.stderr)
        return 2

    # SIGTERM (and SIGINT, which a background job ignores) unwind through the cleanup below,
    # which ends the running brownie and its anvil.
    signal.signal(signal.SIGTERM, _interrupted)
    ensure_network(project)
    sandbox = make_sandbox(project)
    log_dir = sandbox / "logs"
    log_dir.mkdir()
    print(f"sandbox {sandbox}; {len(selected)} mutant(s); each compiles and runs the contract tests (-x)", flush=True)
    outcomes: list[Outcome] = []
    try:
        if not args.no_baseline:
            baseline = run_tests(project, sandbox, source, "baseline (unmutated)", args.timeout, log_dir)
            passed = baseline.verdict == "survived"
            print(f"  baseline: {'passed' if passed else 'FAILED ' + baseline.detail} ({baseline.seconds:.0f}s)", flush=True)
            if not passed:
                args.keep = True
                print(
                    f"\nThe unmutated contract does not pass its tests ({baseline.detail}); mutants would "
                    f"prove nothing. Log: {log_dir}",
                    file=sys.stderr,
                )
                return 2
            outcomes.append(Outcome(baseline.name, "passed", "", baseline.seconds))
        for index, mutant in enumerate(selected, 1):
            outcome = run_tests(project, sandbox, apply(source, mutant), mutant.name, args.timeout, log_dir)
            outcomes.append(outcome)
            print(
                f"  [{index}/{len(selected)}] {mutant.name}: {outcome.verdict} {outcome.detail} ({outcome.seconds:.0f}s)",
                flush=True,
            )
    except SetupError as exc:
        args.keep = True
        print(f"\nstopped: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"sandbox and logs kept in {sandbox}")
        else:
            shutil.rmtree(sandbox, ignore_errors=True)

    print_table(outcomes)
    mutants_run = [o for o in outcomes if o.verdict != "passed"]
    killed = sum(o.verdict == "killed" for o in mutants_run)
    print(f"\n{killed} of {len(mutants_run)} mutants killed")
    errors = [o for o in mutants_run if o.verdict == "error"]
    survivors = [o for o in mutants_run if o.verdict == "survived"]
    if survivors:
        reasons = written_reasons(DOC)
        print(f"\nSurvivors ({len(survivors)}); each needs a written reason in docs/MUTANTS.md:")
        for outcome in survivors:
            reason = reasons.get(outcome.name)
            print(f"  {outcome.name}: {reason or 'NO WRITTEN REASON: add a test that kills it, or a reason'}")
    if errors:
        print("\nMutants that could not be judged (fix the mutant in tools/mutants.py):", file=sys.stderr)
        for outcome in errors:
            print(f"  {outcome.name}: {outcome.detail}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
