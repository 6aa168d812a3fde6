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

from api.formats import number_text
from api.i18n import N_, _
from api.views import STEP_TITLES, amount_of, claim_name, kind_title, quantity_text
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
        name = _("local demo chain")
    elif settings.network:
        name = settings.network
    else:
        name = _("the chain with id %(chain_id)s") % {"chain_id": chain_id}
    return Network(name, chain_id, contract, settings.explorer_url)


#: The units people meet most, by name in the page's language; the rest of Recommendation
#: 20 by its English name (ledger.units).
UNIT_WORDS = {
    "KGM": N_("kilogram"), "GRM": N_("gram"), "TNE": N_("tonne"), "LTR": N_("litre"), "MLT": N_("millilitre"),
    "H87": N_("piece"), "EA": N_("each"), "MTR": N_("metre"),
}  # fmt: skip


def unit_phrase(code: str) -> str:
    """A unit's UN/ECE Recommendation 20 name with its code ("kilogram (KGM)"); a code
    outside the list (anyone can put any bytes on chain) as it is."""
    name = _(UNIT_WORDS[code]) if code in UNIT_WORDS else unit_name(code)
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
            return _("lot %(batch_id)s") % {"batch_id": batch_id}
        product = batch.product or _("product %(gtin)s") % {"gtin": batch.gtin}
        return _("%(product)s, lot %(lot)s") % {"product": product, "lot": batch.lot}

    def amount(self, batch_id: str, quantity: int, unit: str | None = None) -> str:
        """ "13,000 kg of <lot name>" (`unit`: the event's, else the lot's)."""
        batch = self.get(batch_id)
        if unit is not None:
            return amount_of(quantity_text(quantity, unit), self.name(batch_id))
        return amount_of(quantity_text(quantity, batch.unit) if batch else number_text(quantity), self.name(batch_id))


def _with_reason(sentence: str, reason: str) -> str:
    return _("%(sentence)s. Reason given: %(reason)s") % {"sentence": sentence, "reason": reason} if reason else sentence


#: The ledger's other events in words (an organisation's registration, an accreditation
#: or other role, a licence...): what a proof page says of them.
EVENT_WORDS = {
    "ActorRegistered": N_("Organisation registered"),
    "ActorDeactivated": N_("Organisation deactivated"),
    "ActorReactivated": N_("Organisation reactivated"),
    "ActorProfileUpdateRequested": N_("Change of an organisation's profile requested"),
    "ActorProfileUpdated": N_("Organisation's profile updated"),
    "ClaimTypeDefined": N_("Claim type defined"),
    "LicenceGranted": N_("GS1 licence granted"),
    "LicenceWithdrawn": N_("GS1 licence withdrawn"),
    "RoleGranted": N_("Role granted (an accreditation or a permission)"),
    "RoleRevoked": N_("Role revoked (an accreditation or a permission)"),
    "RoleAdminChanged": N_("Role administrator changed"),
    "MaxBackdatingSet": N_("Longest backdating allowed set"),
    "NoncesInvalidated": N_("Signature numbers invalidated"),
    "DefaultAdminTransferScheduled": N_("Hand-over of the ledger's admin role scheduled"),
    "DefaultAdminTransferCanceled": N_("Hand-over of the ledger's admin role cancelled"),
    "DefaultAdminDelayChangeScheduled": N_("Change of the admin hand-over delay scheduled"),
    "DefaultAdminDelayChangeCanceled": N_("Change of the admin hand-over delay cancelled"),
    "EIP712DomainChanged": N_("Signature domain changed"),
    "Anchored": N_("Feedback log anchored"),
}


def _sentence(data: EventData, lots: _Lots, names: dict[str, str], event_name: str) -> str:
    """What one event recorded, in plain words."""
    match data:
        case BatchRegistered():
            return _("Registered %(amount)s") % {"amount": lots.amount(data.batch_id, data.quantity, data.unit)}
        case StepRecorded():
            step = _(STEP_TITLES[data.biz_step]) if data.biz_step in STEP_TITLES else words_of(data.biz_step)
            what = {"step": step, "lot": lots.name(data.batch_id), "place": data.location}
            return (_("%(step)s: %(lot)s at %(place)s") if data.location else _("%(step)s: %(lot)s")) % what
        case CustodyTransferProposed():
            return _("Offered %(lot)s to %(organisation)s") % {
                "lot": lots.name(data.batch_id),
                "organisation": _who(data.to, names),
            }
        case CustodyTransferAccepted():
            return _("Took over %(lot)s from %(organisation)s") % {
                "lot": lots.name(data.batch_id),
                "organisation": _who(data.sender, names),
            }
        case CustodyTransferCancelled():
            return _("Withdrew the offer of %(lot)s to %(organisation)s") % {
                "lot": lots.name(data.batch_id),
                "organisation": _who(data.to, names),
            }
        case TransformationRecorded():
            inputs = "; ".join(lots.amount(batch_id, quantity) for batch_id, quantity in data.inputs)
            outputs = "; ".join(lots.name(batch_id) for batch_id in data.outputs)
            return _("%(kind)s %(inputs)s into %(outputs)s") % {
                "kind": kind_title(data.kind),
                "inputs": inputs,
                "outputs": outputs,
            }
        case BatchRecalled():
            return _with_reason(_("Recalled %(lot)s") % {"lot": lots.name(data.batch_id)}, data.reason)
        case RecallReviewed():
            sentence = _("Upheld the recall of %(lot)s") if data.upheld else _("Withdrew the recall of %(lot)s")
            return _with_reason(sentence % {"lot": lots.name(data.batch_id)}, data.reason)
        case BatchVoided():
            return _with_reason(_("Voided %(lot)s as registered in error") % {"lot": lots.name(data.batch_id)}, data.reason)
        case Attested():
            return _("Certified %(claim)s for %(subject)s") % {
                "claim": claim_name(data.claim),
                "subject": _subject(data, lots, names),
            }
        case AttestationRevoked():
            return _with_reason(_("Revoked the certificate %(uid)s") % {"uid": data.uid}, data.reason)
    return _(EVENT_WORDS[event_name]) if event_name in EVENT_WORDS else words_of(event_name)


def _subject(data: Attested, lots: _Lots, names: dict[str, str]) -> str:
    """What a claim is about: a lot, or an organisation."""
    kind = SUBJECT_KINDS[data.subject_kind] if 0 <= data.subject_kind < len(SUBJECT_KINDS) else "batch"
    if kind == "actor":
        return _("the organisation %(organisation)s") % {"organisation": _who(_organisation(data.subject), names)}
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


#: A transformation's kind as one word (the proof page's "Kind" line).
TRANSFORMATION_KINDS = {"merge": N_("merge"), "split": N_("split"), "processing": N_("processing")}


def _details(data: EventData) -> list[tuple[str, str]]:
    """Facts of an event worth a line of their own (units by name, validity)."""
    match data:
        case BatchRegistered():
            return [
                (_("Quantity"), f"{number_text(data.quantity)} {unit_phrase(data.unit)}"),
                (_("GTIN"), str(data.gtin).zfill(14)),
            ]
        case TransformationRecorded():
            return [(_("Kind"), _(TRANSFORMATION_KINDS[data.kind]) if data.kind in TRANSFORMATION_KINDS else data.kind)]
        case Attested():
            return [(_("Claim"), claim_name(data.claim)), (_("Certificate id"), data.uid)]
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
