"""Independent verification: what the index says about a lot is what the chain says.

`ChainLineage` reads a lot's events and those of its ancestors straight from a node
(eth_getLogs by indexed batch id, transaction receipts for transformations), following
the lineage on chain, never through the index. `verify_against_index` compares them with
the index and checks the off-chain documents in the store against their anchored hashes.
A proof bundle is the chain's events with their raw logs and block hashes; any node can
check it with `verify_bundle`, without the index or the data directory.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from web3 import Web3

from ledger.documents import DocumentStore, enveloped_evidence
from ledger.errors import ChainError, InvalidInputError
from ledger.indexer.decoding import LogDecoder
from ledger.models import metadata_mismatch
from ledger.queries import ReadModel
from ledger.records import AttestationRevoked, HistoryEvent
from ledger.rpc import rpc_call

BUNDLE_FORMAT = "provenance-ledger/proof/1"
_BATCH_TOPIC_EVENTS = (
    "BatchRegistered",
    "CustodyTransferProposed",
    "CustodyTransferAccepted",
    "CustodyTransferCancelled",
    "StepRecorded",
    "BatchRecalled",
    "RecallReviewed",
    "BatchVoided",
)
ZERO = "0x" + "00" * 32


def _signature_topics() -> dict[str, str]:
    return LogDecoder().topics_by_name()


@dataclass
class ChainEvent:
    """A ledger event as the chain holds it."""

    name: str
    args: dict[str, Any]
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    topics: list[str]
    data: str

    @property
    def key(self) -> tuple[str, int]:
        return (self.tx_hash, self.log_index)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "args": self.args,
            "tx_hash": self.tx_hash,
            "log_index": self.log_index,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "topics": self.topics,
            "data": self.data,
        }


class ChainLineage:
    """Reads a lot's lineage and its events from a node."""

    def __init__(self, w3: Web3, address: str, from_block: int, to_block: int | None = None, max_range: int = 50_000) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.from_block = from_block
        self.to_block = w3.eth.block_number if to_block is None else to_block
        self.max_range = max_range
        self.decoder = LogDecoder()
        self.topics = _signature_topics()

    def _rpc(self, method: str, params: list[Any]) -> Any:
        return rpc_call(self.w3, method, params)

    def _logs(self, topics: list[Any]) -> list[dict[str, Any]]:
        """eth_getLogs over [from_block, to_block] in ranges a provider accepts."""
        logs: list[dict[str, Any]] = []
        start, span = self.from_block, self.max_range
        while start <= self.to_block:
            end = min(self.to_block, start + span - 1)
            try:
                logs += self._rpc(
                    "eth_getLogs", [{"address": self.address, "fromBlock": hex(start), "toBlock": hex(end), "topics": topics}]
                )
            except ChainError:
                if span == 1:
                    raise
                span = max(1, span // 2)
                continue
            start = end + 1
        return logs

    def _event(self, log: dict[str, Any]) -> ChainEvent | None:
        decoded = self.decoder.decode(log)
        if decoded is None:
            return None
        return ChainEvent(
            decoded[0],
            decoded[1],
            log["transactionHash"],
            int(log["logIndex"], 16),
            int(log["blockNumber"], 16),
            log["blockHash"],
            list(log["topics"]),
            log["data"],
        )

    def registration_block(self, batch_id: str) -> int | None:
        """The block in which the lot was registered, up to `to_block` (None: not by then)."""
        logs = self._logs([self.topics["BatchRegistered"], batch_id.lower()])
        return int(logs[0]["blockNumber"], 16) if logs else None

    def events(self, batch_id: str) -> tuple[set[str], list[ChainEvent]]:
        """The lineage's batch ids (the lot and every input, recursively) and every event
        the index's history holds for them: batch events, transformations, attestations
        about the lots and their revocations, in chain order."""
        ids: set[str] = set()
        frontier = {batch_id.lower()}
        found: dict[tuple[str, int], ChainEvent] = {}
        while frontier:
            ids |= frontier
            parents: set[str] = set()
            for event in self._batch_events(frontier):
                found[event.key] = event
                if event.name == "BatchRegistered":
                    for made in self._transformations_making(event):
                        found[made.key] = made
                        parents |= {b for b, _ in made.args["inputs"]}
            frontier = parents - ids
        for event in self._attestation_events(ids):
            found[event.key] = event
        return ids, sorted(found.values(), key=lambda e: (e.block_number, e.log_index))

    def _batch_events(self, batch_ids: set[str]) -> list[ChainEvent]:
        """The lots' own events (those indexed by batch id), in the order the node returns them."""
        events = (self._event(log) for log in self._logs([None, sorted(batch_ids)]))
        return [e for e in events if e is not None and e.name in _BATCH_TOPIC_EVENTS]

    def _transformations_making(self, registered: ChainEvent) -> list[ChainEvent]:
        """The transformation that made the registered lot (none for a lot registered on
        its own): an output of a transformation is registered in the transformation's own
        transaction, so its receipt holds both."""
        receipt = self._rpc("eth_getTransactionReceipt", [registered.tx_hash])
        ours = (raw for raw in receipt["logs"] if raw["address"].lower() == self.address.lower())
        events = (self._event({**raw, "blockHash": receipt["blockHash"]}) for raw in ours)
        return [
            e
            for e in events
            if e is not None and e.name == "TransformationRecorded" and registered.args["batchId"] in e.args["outputs"]
        ]

    def _attestation_events(self, ids: set[str]) -> list[ChainEvent]:
        """Attestations about the lots, and the revocations of those attestations."""
        attested = [e for e in (self._event(log) for log in self._logs([self.topics["Attested"], None, sorted(ids)])) if e]
        uids = sorted({e.args["uid"] for e in attested})
        if not uids:
            return attested
        revoked = (self._event(log) for log in self._logs([self.topics["AttestationRevoked"], uids]))
        return attested + [e for e in revoked if e]


@dataclass
class Check:
    """One comparison: what was checked and whether it held."""

    what: str
    ok: bool
    detail: str = ""


@dataclass
class VerificationReport:
    """Everything checked, and what did not match."""

    batch_id: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def mismatches(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def add(self, what: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(what, ok, detail))

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "ok": self.ok,
            "checked": len(self.checks),
            "mismatches": [c.__dict__ for c in self.mismatches],
            "notes": self.notes,
            "checks": [c.__dict__ for c in self.checks],
        }


def _describe(e: ChainEvent) -> str:
    return f"{e.name} in transaction {e.tx_hash} (block {e.block_number}, log {e.log_index})"


def _comparable(args: dict[str, Any]) -> str:
    return json.dumps(args, sort_keys=True, default=str).lower()


def require_known_lot(chain: ChainLineage, model: ReadModel, batch_id: str, label: str) -> None:
    """Refuse to verify a lot that neither the chain (up to where the index stands) nor the
    index holds: "0 checks, all passed" would read as a clean bill of health for a lot that
    does not exist. Says whether it is unknown to the ledger or only not indexed yet."""
    if chain.registration_block(batch_id) is not None or model.batch(batch_id) is not None:
        return  # known to one side at least: the comparison itself tells what differs
    head = chain.w3.eth.block_number
    later = ChainLineage(chain.w3, chain.address, chain.to_block + 1, head) if head > chain.to_block else None
    block = later.registration_block(batch_id) if later else None
    if block is not None:
        raise InvalidInputError(
            f"{label} was registered in block {block}, but the index stands at block {chain.to_block}: "
            "run `provenance index` (or wait for the follower), then verify again"
        )
    raise InvalidInputError(
        f"{label} is not on this ledger (batch {batch_id}): check the GTIN and lot, and the ledger you point at"
    )


def verify_against_index(
    chain: ChainLineage, model: ReadModel, documents: DocumentStore | None, batch_id: str
) -> VerificationReport:
    """Compare the lot's lineage events on chain with the index, and the stored documents
    with their anchored hashes. Only blocks the index has reached are compared."""
    report = VerificationReport(batch_id)
    ids, chain_events = chain.events(batch_id)
    indexed = {(e.tx_hash, e.log_index): e for e in model.history(batch_id)}
    revoked_in_index = _revocations_in_index(model, ids)
    seen: set[tuple[str, int]] = set()
    for event in chain_events:
        if event.name == "AttestationRevoked":
            _check_revocation(report, event, revoked_in_index.get(event.args["uid"]))
            continue
        seen.add(event.key)
        _check_indexed_event(report, event, indexed.get(event.key))
    for key, mine in indexed.items():
        if key not in seen and not isinstance(mine.data, AttestationRevoked):
            report.add(f"{mine.name} in transaction {key[0]} (log {key[1]})", False, "in the index but not on the chain")
    if documents is not None:
        _check_lineage_documents(report, documents, chain_events)
    return report


def _revocations_in_index(model: ReadModel, ids: set[str]) -> dict[str, str | None]:
    """The transaction the index says revoked each claim about the lineage's lots (None: not revoked)."""
    now = int(time.time())
    return {claim.uid: claim.revoked_tx_hash for bid in ids for claim in model.claims(bid, now)}


def _check_revocation(report: VerificationReport, event: ChainEvent, in_index: str | None) -> None:
    """A revocation on chain is the one the index holds on the revoked claim (same transaction)."""
    report.add(
        f"revocation {event.args['uid'][:10]}…",
        in_index == event.tx_hash,
        ""
        if in_index == event.tx_hash
        else f"the chain has {_describe(event)}; the index {'has another' if in_index else 'does not know it'}",
    )


def _check_indexed_event(report: VerificationReport, event: ChainEvent, mine: HistoryEvent | None) -> None:
    """An event on chain is in the index with the same name, block and arguments."""
    if mine is None:
        report.add(_describe(event), False, "on the chain but missing from the index")
        return
    problems = []
    if mine.name != event.name:
        problems.append(f"the index calls it {mine.name}")
    if mine.block_number != event.block_number:
        problems.append(f"the index says block {mine.block_number}")
    if _comparable(mine.args) != _comparable(event.args):
        changed = sorted(k for k in event.args if _comparable({k: event.args[k]}) != _comparable({k: mine.args.get(k)}))
        problems.append(f"the index has other values for {', '.join(changed) or 'its arguments'}")
    report.add(_describe(event), not problems, "; ".join(problems))


def _check_lineage_documents(report: VerificationReport, documents: DocumentStore, chain_events: list[ChainEvent]) -> None:
    """Every lot's metadata (and the documents it names) and every attestation's evidence
    that the store holds, against the hashes anchored on chain."""
    for event in chain_events:
        if event.name == "BatchRegistered":
            _check_documents(report, documents, event)
        elif event.name == "Attested" and event.args["evidenceHash"] != ZERO:
            what = f"evidence of attestation {event.args['uid'][:10]}…"
            content = _check_document(report, documents, event.args["evidenceHash"], what)
            private = enveloped_evidence(content) if content is not None else None
            if private is not None:  # the chain anchors an envelope naming the private file
                _check_document(report, documents, "0x" + private.hex(), f"private {what} (named by its envelope)")


def _check_document(report: VerificationReport, documents: DocumentStore, digest_hex: str, what: str) -> bytes | None:
    digest = bytes.fromhex(digest_hex[2:])
    try:
        content = documents.get(digest)
    except FileNotFoundError:
        report.notes.append(f"{what}: not in this data directory's document store, not checked")
        return None
    ok = sha256(content).digest() == digest
    report.add(f"{what} ({digest_hex[:10]}…)", ok, "" if ok else "the stored file no longer matches the hash anchored on chain")
    return content if ok else None


def _check_documents(report: VerificationReport, documents: DocumentStore, registered: ChainEvent) -> None:
    """The lot's metadata document (it must name this lot: anyone can anchor the hash of
    another lot's document), and every document it names."""
    lot = registered.args["lot"]
    content = _check_document(report, documents, registered.args["metadataHash"], f"metadata of lot {lot}")
    if content is None:
        return
    try:
        metadata = json.loads(content)
    except ValueError:
        report.add(f"metadata of lot {lot}", False, "not JSON")
        return
    if not isinstance(metadata, dict):
        report.add(f"metadata of lot {lot}", False, "not a JSON object")
        return
    gtin = f"{int(registered.args['gtin']):014d}"
    problem = metadata_mismatch(metadata, gtin, lot)
    report.add(
        f"metadata of lot {lot} names this lot",
        problem is None,
        "" if problem is None else f"{problem}: these details belong to another lot, not this one",
    )
    if problem is not None:
        return
    for doc in metadata.get("documents", []):
        _check_document(report, documents, "0x" + doc["sha256"], f"document {doc.get('name', '?')} of lot {lot}")


# ---------------------------------------------------------------------- proof bundles


def proof_bundle(chain: ChainLineage, chain_id: int, batch_id: str, gtin: str | None, lot: str | None) -> dict[str, Any]:
    """A self-contained proof of the lot's history, read from the chain."""
    ids, events = chain.events(batch_id)
    docs = []
    for e in events:
        if e.name == "BatchRegistered":
            docs.append({"role": "metadata", "batch_id": e.args["batchId"], "sha256": e.args["metadataHash"]})
        elif e.name == "Attested" and e.args["evidenceHash"] != ZERO:
            docs.append({"role": "evidence", "attestation": e.args["uid"], "sha256": e.args["evidenceHash"]})
    return {
        "format": BUNDLE_FORMAT,
        "chain_id": chain_id,
        "contract": chain.address,
        "batch_id": batch_id.lower(),
        "gtin": gtin,
        "lot": lot,
        "from_block": chain.from_block,
        "as_of_block": chain.to_block,
        "as_of_block_hash": chain.w3.eth.get_block(chain.to_block)["hash"].to_0x_hex(),
        "lineage": sorted(ids),
        "events": [e.as_dict() for e in events],
        "documents": docs,
        "created_at": int(time.time()),
    }


def verify_bundle(w3: Web3, bundle: dict[str, Any]) -> VerificationReport:
    """Check a proof bundle against a node: the chain id, every event's log in its
    transaction receipt (address, topics, data, block hash), and that the chain holds no
    event of the lineage, up to the bundle's block, that the bundle leaves out."""
    if bundle.get("format") != BUNDLE_FORMAT:
        raise InvalidInputError(f"not a proof bundle of this ledger (format {bundle.get('format')!r}, expected {BUNDLE_FORMAT})")
    report = VerificationReport(bundle["batch_id"])
    if not _check_bundle_chain(w3, bundle, report):
        return report  # on another chain nothing else can match
    _check_bundle_events(w3, bundle, report)
    _check_bundle_completeness(w3, bundle, report)
    return report


def _check_bundle_chain(w3: Web3, bundle: dict[str, Any], report: VerificationReport) -> bool:
    """The node is on the bundle's chain (False: stop here), and its block at the bundle's
    height has the bundle's hash."""
    chain_id = w3.eth.chain_id
    report.add(
        "chain id",
        chain_id == bundle["chain_id"],
        "" if chain_id == bundle["chain_id"] else f"the node is on chain {chain_id}, the bundle on {bundle['chain_id']}",
    )
    if chain_id != bundle["chain_id"]:
        return False
    anchor = w3.eth.get_block(bundle["as_of_block"])["hash"].to_0x_hex()
    report.add(
        f"block {bundle['as_of_block']}",
        anchor == bundle["as_of_block_hash"],
        "" if anchor == bundle["as_of_block_hash"] else "the node's block has another hash (another chain, or reorganised)",
    )
    return True


def _check_bundle_events(w3: Web3, bundle: dict[str, Any], report: VerificationReport) -> None:
    """Each of the bundle's events against its log in the node's transaction receipt
    (one receipt request per transaction)."""
    decoder = LogDecoder()
    receipts: dict[str, Any] = {}
    for e in bundle["events"]:
        what = f"{e['name']} in transaction {e['tx_hash']} (block {e['block_number']}, log {e['log_index']})"
        if e["tx_hash"] not in receipts:
            receipts[e["tx_hash"]] = rpc_call(w3, "eth_getTransactionReceipt", [e["tx_hash"]])
        receipt = receipts[e["tx_hash"]]
        if receipt is None:
            report.add(what, False, "the node knows no such transaction")
            continue
        problems = _bundle_event_problems(decoder, bundle["contract"], e, receipt)
        report.add(what, not problems, "; ".join(problems))


def _bundle_event_problems(decoder: LogDecoder, contract: str, e: dict[str, Any], receipt: dict[str, Any]) -> list[str]:
    """How the receipt's log at the event's index differs from the bundle's event (none: it holds)."""
    log = next((x for x in receipt["logs"] if int(x["logIndex"], 16) == e["log_index"]), None)
    if log is None:
        return ["no log at that index"]
    problems = []
    if log["address"].lower() != contract.lower():
        problems.append("emitted by another contract")
    if [t.lower() for t in log["topics"]] != [t.lower() for t in e["topics"]] or log["data"].lower() != e["data"].lower():
        problems.append("its content differs")
    if receipt["blockHash"].lower() != e["block_hash"].lower() or int(receipt["blockNumber"], 16) != e["block_number"]:
        problems.append("it is in another block")
    decoded = decoder.decode({**log})
    if decoded is None or decoded[0] != e["name"] or _comparable(decoded[1]) != _comparable(e["args"]):
        problems.append("its decoded arguments differ from the bundle's")
    return problems


def _check_bundle_completeness(w3: Web3, bundle: dict[str, Any], report: VerificationReport) -> None:
    """The chain holds no event of the lineage, up to the bundle's block, that the bundle leaves out."""
    chain = ChainLineage(w3, bundle["contract"], bundle["from_block"], bundle["as_of_block"])
    _, on_chain = chain.events(bundle["batch_id"])
    listed = {(e["tx_hash"], e["log_index"]) for e in bundle["events"]}
    missing = [e for e in on_chain if e.key not in listed]
    report.add(
        "completeness", not missing, "" if not missing else "the bundle leaves out " + "; ".join(_describe(e) for e in missing)
    )
