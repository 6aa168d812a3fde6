"""The EPCIS Event Hash ID (CBV 2.0 section 8.9) of the JSON-LD events `ledger.epcis` writes.

An event's fields are written in the standard's canonical order as `name=value` (lists as
the list's name followed by their elements, sorted), then the user extension fields as
`{namespace}local=value`, sorted; the SHA-256 of that pre-hash string, as an RFC 6920
`ni` URI with the CBV version, is the event's id. Values are normalised first: times in
UTC with milliseconds and a Z, numbers without trailing zeros, bare CBV words as their
Web URI, text trimmed.

Only the fields the exporter emits are known. Any other field is refused with a
`ValueError` naming it: a hash that silently left a field out, or wrote it in the wrong
place, would be a wrong event id that nobody notices.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

CBV = "https://ref.gs1.org/cbv/"
EVENT_TYPES = ("ObjectEvent", "TransformationEvent")
#: Fields that are never part of the hash: the id itself, and the capture system's time.
NOT_HASHED = ("eventID", "recordTime")
_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")

Namespaces = Mapping[str, str]


# ------------------------------------------------------------------ values


def _text(field: str, value: Any) -> str:
    """A scalar as the pre-hash writes it: text trimmed, numbers without trailing zeros."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Through the shortest repr, so 0.1 stays 0.1; normalize drops trailing zeros
        # (12000.0 -> 12000, 26.20 -> 26.2).
        return format(Decimal(repr(value)).normalize(), "f")
    if isinstance(value, str):
        return value.strip()
    raise ValueError(f"EPCIS event hash: {field} holds a {type(value).__name__}, not a text or a number")


def _identifier(field: str, value: Any) -> str:
    """An identifier. EPC URNs would have to become GS1 Digital Links first; the ledger
    writes Digital Links only, so a URN is refused rather than hashed in the wrong form."""
    text = _text(field, value)
    if text.startswith(("urn:epc:id:", "urn:epc:class:", "urn:epc:idpat:")):
        raise ValueError(f"EPCIS event hash: {field} is an EPC URN ({text}); only GS1 Digital Links are supported")
    return text


def _time(field: str, value: Any) -> str:
    """An xsd:dateTimeStamp in UTC, rounded to the millisecond, with a Z."""
    try:
        moment = datetime.fromisoformat(_text(field, value).replace("Z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"EPCIS event hash: {field} is not a date and time: {value!r}") from error
    if moment.tzinfo is None:
        raise ValueError(f"EPCIS event hash: {field} has no time zone: {value!r}")
    milliseconds = (moment.microsecond + 500) // 1000  # half up
    moment = moment.replace(microsecond=0) + timedelta(milliseconds=milliseconds)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _vocabulary(prefix: str, urn_prefix: str) -> Callable[[str, Any], str]:
    """A CBV vocabulary value: a bare word becomes `https://ref.gs1.org/cbv/<prefix><word>`,
    its CBV 1.x URN the same URI; any other URI (a user vocabulary) stays as written."""

    def expand(field: str, value: Any) -> str:
        text = _text(field, value)
        if text.startswith(urn_prefix):
            return CBV + prefix + text.removeprefix(urn_prefix)
        if ":" in text:
            return text
        if not text:
            raise ValueError(f"EPCIS event hash: {field} is empty")
        return CBV + prefix + text

    return expand


_biz_step = _vocabulary("BizStep-", "urn:epcglobal:cbv:bizstep:")
_disposition = _vocabulary("Disp-", "urn:epcglobal:cbv:disp:")
_source_type = _vocabulary("SDT-", "urn:epcglobal:cbv:sdt:")


# ------------------------------------------------------------------ fields


def _scalar(writer: Callable[[str, Any], str]) -> Callable[[str, Any, Namespaces], str]:
    def write(field: str, value: Any, namespaces: Namespaces) -> str:
        return f"{field}={writer(field, value)}"

    return write


def _certification_info(field: str, value: Any, namespaces: Namespaces) -> str:
    """One URI or a list of them: each `certificationInfo=<uri>`, sorted."""
    values = value if isinstance(value, list) else [value]
    return "".join(sorted(f"{field}={_identifier(field, v)}" for v in values))


def _epc_list(field: str, value: Any, namespaces: Namespaces) -> str:
    if not isinstance(value, list):
        raise ValueError(f"EPCIS event hash: {field} is not a list")
    # An empty list is no list at all (nothing to write, so the name is left out too).
    elements = sorted(f"epc={_identifier(field, epc)}" for epc in value)
    return field + "".join(elements) if elements else ""


def _quantity_list(field: str, value: Any, namespaces: Namespaces) -> str:
    """Each element `quantityElement` + its epcClass, quantity, uom in that order; sorted."""
    if not isinstance(value, list):
        raise ValueError(f"EPCIS event hash: {field} is not a list")
    elements = []
    for element in value:
        if not isinstance(element, dict) or "epcClass" not in element:
            raise ValueError(f"EPCIS event hash: an element of {field} has no epcClass")
        unknown = sorted(set(element) - {"epcClass", "quantity", "uom"})
        if unknown:
            raise ValueError(f"EPCIS event hash: {field} element field {unknown[0]!r} is not supported")
        text = f"quantityElementepcClass={_identifier(field + '.epcClass', element['epcClass'])}"
        if "quantity" in element:
            text += f"quantity={_text(field + '.quantity', element['quantity'])}"
        if "uom" in element:
            text += f"uom={_text(field + '.uom', element['uom'])}"
        elements.append(text)
    return field + "".join(sorted(elements)) if elements else ""


def _party_list(field: str, value: Any, namespaces: Namespaces) -> str:
    """sourceList/destinationList: each element `type=<SDT URI>` then `source=<id>`
    (or `destination=`), sorted, as GS1's CBV 2.0 vectors write them."""
    key = field.removesuffix("List")
    if not isinstance(value, list):
        raise ValueError(f"EPCIS event hash: {field} is not a list")
    elements = []
    for element in value:
        if not isinstance(element, dict) or set(element) != {"type", key}:
            fields = sorted(element) if isinstance(element, dict) else element
            raise ValueError(f"EPCIS event hash: an element of {field} must have exactly type and {key}, not {fields}")
        elements.append(f"type={_source_type(field + '.type', element['type'])}{key}={_identifier(field, element[key])}")
    return field + "".join(sorted(elements)) if elements else ""


def _extension(key: str, value: Any, namespaces: Namespaces) -> str:
    """A user extension field `prefix:local` as `{namespace}local=value`."""
    prefix, colon, local = key.partition(":")
    if not colon or prefix not in namespaces or not local:
        raise ValueError(f"EPCIS event hash: field {key!r} is not supported")
    if isinstance(value, (dict, list)):
        # Nested extension elements have their own rules; the ledger writes none.
        raise ValueError(f"EPCIS event hash: extension field {key!r} holds a structure; only texts and numbers are supported")
    return "{" + namespaces[prefix] + "}" + f"{local}={_text(key, value)}"


def _ilmd(field: str, value: Any, namespaces: Namespaces) -> str:
    """Instance/lot master data: its (extension) fields as `{namespace}local=value`, sorted."""
    if not isinstance(value, dict):
        raise ValueError(f"EPCIS event hash: {field} is not an object")
    return field + "".join(sorted(_extension(k, v, namespaces) for k, v in value.items()))


#: The canonical order of CBV 2.0 section 8.9, reduced to the fields the ledger writes;
#: the standard's other fields (parentID, readPoint, bizTransactionList, sensorElementList...)
#: sit between these and are refused, not guessed.
CANONICAL_FIELDS: tuple[tuple[str, Callable[[str, Any, Namespaces], str]], ...] = (
    ("eventTime", _scalar(_time)),
    ("eventTimeZoneOffset", _scalar(_text)),
    ("certificationInfo", _certification_info),
    ("epcList", _epc_list),
    ("quantityList", _quantity_list),
    ("inputQuantityList", _quantity_list),
    ("outputQuantityList", _quantity_list),
    ("action", _scalar(_text)),
    ("transformationID", _scalar(_identifier)),
    ("bizStep", _scalar(_biz_step)),
    ("disposition", _scalar(_disposition)),
    ("sourceList", _party_list),
    ("destinationList", _party_list),
    ("ilmd", _ilmd),
)
_KNOWN = {name for name, _ in CANONICAL_FIELDS}


def pre_hash(event: Mapping[str, Any], namespaces: Namespaces) -> str:
    """The canonical pre-hash string of one JSON-LD event (compacted, as `ledger.epcis`
    writes it). `namespaces` maps the JSON-LD prefixes of extension fields to their IRIs
    (for the ledger's documents `{"pl": ledger.epcis.EXTENSION_NAMESPACE}`).
    Raises ValueError naming a field the algorithm here does not know."""
    event_type = event.get("type")
    if event_type not in EVENT_TYPES:
        raise ValueError(f"EPCIS event hash: event type {event_type!r} is not supported (only {', '.join(EVENT_TYPES)})")
    if not _OFFSET.match(str(event.get("eventTimeZoneOffset", ""))) or "eventTime" not in event:
        raise ValueError("EPCIS event hash: eventTime and eventTimeZoneOffset (+HH:MM) are required")
    fields = {k: v for k, v in event.items() if k not in ("type", *NOT_HASHED)}
    extensions = []
    for key, value in fields.items():
        if key not in _KNOWN:
            extensions.append(_extension(key, value, namespaces))  # refuses anything not prefixed
    canonical = "".join(write(name, fields[name], namespaces) for name, write in CANONICAL_FIELDS if name in fields)
    return f"eventType={event_type}" + canonical + "".join(sorted(extensions))


def event_hash(event: Mapping[str, Any], namespaces: Namespaces) -> str:
    """The EPCIS Event Hash ID: `ni:///sha-256;<hex>?ver=CBV2.0` of the event's pre-hash."""
    digest = hashlib.sha256(pre_hash(event, namespaces).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"
