"""What a proof page says: one transaction's ledger events told in plain words (what was
recorded, by whom, when), where it is recorded (transaction, block, network, contract)
and how anyone can check it, as plain data for `proof.html`.

The JSON behind it stays at `/api/v1/transactions/{hash}` for programs; this page is for
people, one link before it. Every string stays as it came from the chain or the metadata;
the template escapes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from api.views import KIND_TITLES, STEP_TITLES, claim_name, quantity_text
from ledger.config import Settings
from ledger.conversions import SUBJECT_KINDS, address_of_subject
from ledger.indexer.store import IndexFreshness
from ledger.queries import ReadModel
from ledger.records import (
    AttestationRevoked,
    Attested,
    Batch,
    BatchRecalled,
    BatchRegistered,
    BatchVoided,
    CustodyTransferAccepted,
    CustodyTransferCancelled,
    CustodyTransferProposed,
    EventData,
    RecallReviewed,
    StepRecorded,
    TransactionEvent,
    TransformationRecorded,
)
from ledger.units import unit_name

#: The chain id of the local chain `make run` starts (anvil's).
LOCAL_CHAIN_ID = 31337


@dataclass(frozen=True)
class Network:
    """Which ledger a page reads: the network's name as people say it, its chain id, the
    ledger contract, and its block explorer (if the network profile names one)."""

    name: str
    chain_id: int
    contract: str | None
    explorer_url: str | None

    def explorer_link(self, tx_hash: str) -> str | None:
        """The explorer's page of `tx_hash`, or None without an explorer."""
        return f"{self.explorer_url}/tx/{tx_hash}" if self.explorer_url else None


def network_of(settings: Settings, freshness: IndexFreshness | None) -> Network:
    """The network the index reads (its chain id and contract when built, else the
    settings'), named: "local demo chain" for the local chain's id, else the network
    profile's name, else by its chain id."""
    chain_id = freshness.chain_id if freshness else settings.chain_id
    contract = freshness.contract if freshness else settings.contract_address
    if chain_id == LOCAL_CHAIN_ID:
        name = "local demo chain"
    elif settings.network:
        name = settings.network
    else:
        name = f"the chain with id {chain_id}"
    return Network(name, chain_id, contract, settings.explorer_url)


def unit_phrase(code: str) -> str:
    """A unit's UN/ECE Recommendation 20 name with its code ("kilogram (KGM)"); a code
    outside the list (anyone can put any bytes on chain) as it is."""
    name = unit_name(code)
    return f"{name} ({code})" if name else code


def words_of(event_name: str) -> str:
    """An event's name as words: "ActorRegistered" -> "Actor registered"."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", event_name).capitalize()


class _Lots:
    """The lots a transaction names, each read once from the read model."""

    def __init__(self, model: ReadModel) -> None:
        self.model = model
        self.seen: dict[str, Batch | None] = {}

    def get(self, batch_id: str) -> Batch | None:
        if batch_id not in self.seen:
            self.seen[batch_id] = self.model.batch(batch_id)
        return self.seen[batch_id]

    def name(self, batch_id: str) -> str:
        """ "Green coffee, washed Caturra, lot ESP-2026-07" (the product only from checked
        metadata); a lot the index lacks by its id."""
        batch = self.get(batch_id)
        if batch is None:
            return f"lot {batch_id}"
        product = batch.product or f"product {batch.gtin}"
        return f"{product}, lot {batch.lot}"

    def amount(self, batch_id: str, quantity: int) -> str:
        """ "13,000 kg of <lot name>"."""
        batch = self.get(batch_id)
        return f"{quantity_text(quantity, batch.unit) if batch else f'{quantity:,}'} of {self.name(batch_id)}"


def _with_reason(sentence: str, reason: str) -> str:
    return f"{sentence}. Reason given: {reason}" if reason else sentence


def _sentence(data: EventData, lots: _Lots, names: dict[str, str], event_name: str) -> str:
    """What one event recorded, in plain words."""
    match data:
        case BatchRegistered():
            return f"Registered {quantity_text(data.quantity, data.unit)} of {lots.name(data.batch_id)}"
        case StepRecorded():
            step = STEP_TITLES.get(data.biz_step, words_of(data.biz_step))
            place = f" at {data.location}" if data.location else ""
            return f"{step}: {lots.name(data.batch_id)}{place}"
        case CustodyTransferProposed():
            return f"Offered {lots.name(data.batch_id)} to {_who(data.to, names)}"
        case CustodyTransferAccepted():
            return f"Took over {lots.name(data.batch_id)} from {_who(data.sender, names)}"
        case CustodyTransferCancelled():
            return f"Withdrew the offer of {lots.name(data.batch_id)} to {_who(data.to, names)}"
        case TransformationRecorded():
            inputs = "; ".join(lots.amount(batch_id, quantity) for batch_id, quantity in data.inputs)
            outputs = "; ".join(lots.name(batch_id) for batch_id in data.outputs)
            return f"{KIND_TITLES.get(data.kind, 'Transformed')} {inputs} into {outputs}"
        case BatchRecalled():
            return _with_reason(f"Recalled {lots.name(data.batch_id)}", data.reason)
        case RecallReviewed():
            verdict = "Upheld" if data.upheld else "Withdrew"
            return _with_reason(f"{verdict} the recall of {lots.name(data.batch_id)}", data.reason)
        case BatchVoided():
            return _with_reason(f"Voided {lots.name(data.batch_id)} as registered in error", data.reason)
        case Attested():
            return f"Certified {claim_name(data.claim)} for {_subject(data, lots, names)}"
        case AttestationRevoked():
            return _with_reason(f"Revoked the certificate {data.uid}", data.reason)
    return words_of(event_name)


def _subject(data: Attested, lots: _Lots, names: dict[str, str]) -> str:
    """What a claim is about: a lot, or an organisation."""
    kind = SUBJECT_KINDS[data.subject_kind] if 0 <= data.subject_kind < len(SUBJECT_KINDS) else "batch"
    if kind == "actor":
        return f"the organisation {_who(_organisation(data.subject), names)}"
    return lots.name(data.subject)


def _organisation(subject: str) -> str:
    """The organisation an attestation subject names, as the index keys addresses."""
    return str(Web3.to_checksum_address(address_of_subject(subject)))


def _who(address: str, names: dict[str, str]) -> str:
    """An organisation by its registered name, else by its address."""
    return names.get(address) or names.get(address.lower()) or address


def _doer(data: EventData) -> str | None:
    """Who an event says acted (the supplier, custodian, issuer...), when it says."""
    match data:
        case BatchRegistered():
            return data.supplier
        case StepRecorded():
            return data.actor
        case CustodyTransferProposed() | CustodyTransferCancelled():
            return data.sender
        case CustodyTransferAccepted():
            return data.to
        case TransformationRecorded():
            return data.custodian
        case BatchRecalled() | RecallReviewed() | BatchVoided() | AttestationRevoked():
            return data.by
        case Attested():
            return data.issuer
    return None


def _addresses(data: EventData) -> set[str]:
    """Every organisation an event names (for one name look-up per page)."""
    found = {_doer(data) or ""}
    if isinstance(data, CustodyTransferProposed | CustodyTransferAccepted | CustodyTransferCancelled):
        found |= {data.sender, data.to}
    if isinstance(data, Attested) and data.subject_kind == 1:
        found.add(_organisation(data.subject))
    return {a for a in found if a}


def _details(data: EventData) -> list[tuple[str, str]]:
    """Facts of an event worth a line of their own (units by name, validity)."""
    match data:
        case BatchRegistered():
            return [("Quantity", f"{data.quantity:,} {unit_phrase(data.unit)}"), ("GTIN", str(data.gtin).zfill(14))]
        case TransformationRecorded():
            return [("Kind", data.kind)]
        case Attested():
            return [("Claim", claim_name(data.claim)), ("Certificate id", data.uid)]
    return []


def _fact(event: TransactionEvent, lots: _Lots, names: dict[str, str]) -> dict[str, Any]:
    """One event of the transaction as the page shows it."""
    doer = _doer(event.data) or event.actor
    return {
        "event": event.name,
        "what": _sentence(event.data, lots, names, event.name),
        "by_name": names.get(doer) if doer else None,
        "by_address": doer,
        "details": _details(event.data),
        "log_index": event.log_index,
        "valid": _validity(event.data),
        "unreadable_text": event.invalid_text,
    }


def _validity(data: EventData) -> dict[str, int] | None:
    """A claim's validity window (valid_until 0: open-ended)."""
    if isinstance(data, Attested):
        return {"from": data.valid_from, "until": data.valid_until}
    return None


def _verify_commands(lots: _Lots) -> list[str]:
    """`provenance verify GTIN LOT` for each lot the transaction names (at most a few)."""
    commands = []
    for batch in [b for b in lots.seen.values() if b is not None][:5]:
        commands.append(f"provenance verify {batch.gtin} {_shell_word(batch.lot)}")
    return commands


def _shell_word(text: str) -> str:
    """`text` as one shell word: quoted when it holds anything but safe characters."""
    if re.fullmatch(r"[A-Za-z0-9._/+-]+", text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def proof_view(model: ReadModel, tx_hash: str, network: Network) -> dict[str, Any] | None:
    """The proof page of `tx_hash`, or None when the index knows no ledger event of it."""
    events = model.transaction_events(tx_hash)
    if not events:
        return None
    names = model.actor_names(set().union(*(_addresses(e.data) for e in events)) | {e.actor for e in events if e.actor})
    lots = _Lots(model)
    facts = [_fact(event, lots, names) for event in events]
    tx = tx_hash.lower()
    return {
        "tx_hash": tx,
        "block_number": events[0].block_number,
        "block_hash": events[0].block_hash,
        "timestamp": events[0].timestamp,
        "facts": facts,
        "network": {"name": network.name, "chain_id": network.chain_id, "contract": network.contract},
        "explorer_link": network.explorer_link(tx),
        "json_url": f"/api/v1/transactions/{tx}",
        "verify_commands": _verify_commands(lots),
    }
