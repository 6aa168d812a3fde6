"""GS1 Core Business Vocabulary (CBV 2.0) business steps, as recorded on the ledger."""

from __future__ import annotations

from ledger.errors import InvalidInputError

BUSINESS_STEPS: frozenset[str] = frozenset(
    [
        "accepting",
        "arriving",
        "assembling",
        "collecting",
        "commissioning",
        "consigning",
        "creating_class_instance",
        "cycle_counting",
        "decommissioning",
        "departing",
        "destroying",
        "disassembling",
        "dispensing",
        "encoding",
        "entering_exiting",
        "holding",
        "inspecting",
        "installing",
        "killing",
        "loading",
        "other",
        "packing",
        "picking",
        "receiving",
        "removing",
        "repackaging",
        "repairing",
        "replacing",
        "reserving",
        "retail_selling",
        "sampling",
        "sensor_reporting",
        "shipping",
        "staging_outbound",
        "stock_taking",
        "stocking",
        "storing",
        "transporting",
        "unloading",
        "unpacking",
        "void_shipping",
    ]
)

#: The CBV URI prefix of business steps (EPCIS 2.0 accepts the bare word too).
BIZSTEP_URI = "https://ref.gs1.org/cbv/BizStep-"


def check_business_step(step: str) -> str:
    """`step` as a CBV 2.0 business step word, or an error listing the vocabulary."""
    word = step.strip().lower().removeprefix(BIZSTEP_URI.lower()).removeprefix("urn:epcglobal:cbv:bizstep:")
    if word not in BUSINESS_STEPS:
        raise InvalidInputError(f"{step!r} is not a CBV business step; use one of: {', '.join(sorted(BUSINESS_STEPS))}")
    return word
