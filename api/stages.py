"""The journey as a shopper reads it: a few stages in plain words (grown, gathered,
blended, shipped, roasted, packed), each with its dates, places and who, built from the
page's full log of journey entries (api.views), which stays beside it for anyone who
wants every record.

Pure functions over plain data: nothing here reads the chain or formats HTML.
"""

from __future__ import annotations

from typing import Any

from api.i18n import N_, _
from ledger.errors import InvalidInputError
from ledger.identifiers import digital_link

#: Words that, opening a processed lot's product name, say what the processing was
#: ("Roasted coffee, ..." was roasted), with the stage's title; anything else reads "Processed".
PROCESS_WORDS = {
    "roasted": N_("Roasted"), "ground": N_("Ground"), "milled": N_("Milled"), "baked": N_("Baked"),
    "brewed": N_("Brewed"), "dried": N_("Dried"), "fermented": N_("Fermented"), "smoked": N_("Smoked"),
    "pressed": N_("Pressed"), "distilled": N_("Distilled"), "cured": N_("Cured"),
}  # fmt: skip

#: Business steps (CBV) that move goods between places and hands: a run of them is one stage.
MOVING_STEPS = frozenset({"shipping", "receiving", "loading", "unloading", "transporting", "departing", "arriving"})

#: Transformation kinds (a journey entry's `step`) that start a stage of their own, by stage kind.
_TRANSFORMATION_KINDS = {"merge": "blended", "split": "split", "processing": "processed"}


def place_of(origin: str | None) -> str | None:
    """The region and country of an origin written "farm, town, region, country"
    ("Huila, Colombia"); a shorter origin as it is."""
    parts = [p.strip() for p in (origin or "").split(",") if p.strip()]
    return ", ".join(parts[-2:]) if parts else None


def lot_path(gtin: str | None, lot: str | None) -> str | None:
    """The lot's page (its Digital Link path), or None for a lot the index does not hold
    or whose identifiers are not a valid Digital Link."""
    if not gtin or not lot or lot == "?":
        return None
    try:
        return digital_link(gtin, lot).path()
    except (InvalidInputError, ValueError):  # anyone's strings: no link rather than a broken one
        return None


def _kind(entry: dict[str, Any]) -> str:
    """The stage an entry opens or joins: grown, moved, blended, processed, split, packed,
    recalled, voided, or "step" (a step that joins the stage before it)."""
    step = entry.get("step")  # the CBV step or transformation kind: titles are in the page's language
    if entry["event"] == "BatchRegistered":
        return "grown"
    if entry["event"] == "TransformationRecorded":
        return _TRANSFORMATION_KINDS.get(step or "", "processed")
    if entry["event"] == "CustodyTransferAccepted" or step in MOVING_STEPS:
        return "moved"
    if step == "packing":
        return "packed"
    if entry["event"] in ("BatchRecalled", "BatchVoided"):
        return "recalled" if entry["event"] == "BatchRecalled" else "voided"
    return "step"  # inspected, stored, a recall's review ...: part of the stage it follows


def _processed_title(entry: dict[str, Any]) -> str:
    """ "Roasted" for a processing whose output is "Roasted coffee, ..."; else "Processed"."""
    first = (entry.get("product") or "").split(" ", 1)[0].strip(",").lower()
    return _(PROCESS_WORDS.get(first, N_("Processed")))


def _new_stage(kind: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "entries": [entry]}


def _joins(stage: dict[str, Any], kind: str, entry: dict[str, Any]) -> bool:
    """Whether an entry belongs to the stage before it rather than opening one."""
    last = stage["entries"][-1]
    if kind == "step":
        return True
    if kind == stage["kind"] and kind in ("grown", "moved"):
        return True
    # Packing the lot a processing just made is the same stage: "Packed".
    return kind == "packed" and stage["kind"] in ("processed", "packed") and last["lot"] == entry["lot"]


def journey_stages(entries: list[dict[str, Any]], raw_lots: set[str]) -> list[dict[str, Any]]:
    """The stages of a journey, oldest first, from its full log (`entries`, oldest first;
    `raw_lots`: the lots of the lineage's leaves, which were grown rather than made)."""
    groups: list[dict[str, Any]] = []
    for entry in entries:
        kind = _kind(entry)
        if groups and _joins(groups[-1], kind, entry):
            groups[-1]["entries"].append(entry)
            if kind == "packed":
                groups[-1]["kind"] = "packed"
        else:
            groups.append(_new_stage("step" if kind == "step" else kind, entry))
    return [_stage(g["kind"], g["entries"], raw_lots) for g in groups]


def _unique(values: list[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _gatherer(entries: list[dict[str, Any]], raw_lots: set[str]) -> str | None:
    """Who gathered raw lots, when a run of moves brings several of them to one receiver."""
    receivers = _unique([e["who"] for e in entries if e["event"] == "CustodyTransferAccepted"])
    lots = _unique([e["lot"] for e in entries])
    if len(lots) > 1 and len(receivers) == 1 and all(lot in raw_lots for lot in lots):
        return receivers[0]
    return None


#: Stages whose title is one word, whatever they hold.
_STAGE_TITLES = {"packed": N_("Packed"), "blended": N_("Blended"), "split": N_("Divided into lots"), "recalled": N_("Recalled"), "voided": N_("Voided")}  # fmt: skip


def _title(kind: str, entries: list[dict[str, Any]], raw_lots: set[str]) -> str:
    """The stage in plain words (in the page's language)."""
    first = entries[0]
    if kind == "grown":
        return _("Grown and harvested") if all(e["lot"] in raw_lots for e in entries) else _("Produced")
    if kind == "moved":
        gatherer = _gatherer(entries, raw_lots)
        if gatherer is not None:
            return _("Gathered by %(organisation)s") % {"organisation": gatherer}
        receivers = _unique([e["who"] for e in entries if e["event"] == "CustodyTransferAccepted"])
        return _("Shipped to %(organisation)s") % {"organisation": receivers[-1]} if receivers else _("Shipped")
    if kind == "processed":
        return _processed_title(first)
    if kind in _STAGE_TITLES:
        return _(_STAGE_TITLES[kind])
    return str(first["title"])


def _stage(kind: str, entries: list[dict[str, Any]], raw_lots: set[str]) -> dict[str, Any]:
    """One stage as the page shows it: when (first and last record), where, who, which
    lots (linked to their pages) and how many records of the full log it sums up."""
    grown, title = kind == "grown", _title(kind, entries, raw_lots)
    # A farm's origin reads as its region and country; a step's location as recorded.
    places = _unique([place_of(e["where"]) if grown else e["where"] for e in entries])
    who = _unique([e["who"] for e in entries])
    gatherer = _gatherer(entries, raw_lots) if kind == "moved" else None
    if gatherer is not None:  # where and by whom they were gathered, not each farm's send-off
        places = _unique([e["where"] for e in entries if e.get("step") != "shipping"])
        who = [gatherer]
    lots, seen = [], set()
    for e in entries:
        if e["lot"] and (e["gtin"], e["lot"]) not in seen:
            seen.add((e["gtin"], e["lot"]))
            lots.append({"product": e["product"], "lot": e["lot"], "who": e["who"], "href": lot_path(e["gtin"], e["lot"])})
    return {
        "kind": kind,
        "title": title,
        "started_at": entries[0]["timestamp"],
        "ended_at": entries[-1]["timestamp"],
        "places": places,
        "who": who,
        "lots": lots,
        "detail": next((e["detail"] for e in entries if e["event"] == "TransformationRecorded"), None),
        "records": len(entries),
    }
