"""Decoding raw `eth_getLogs` entries of the ledger with eth_abi (no web3 formatters:
they cost several times the RPC round trip on large ranges).

This is the ONE place ledger logs are decoded (the index, verification, and the client's
event reads in `ledger.connection`). Solidity `string` arguments accept any bytes, and a
writer sending raw transactions can put bytes that are not UTF-8 into a recall reason or a
name. eth_abi and web3 decode `string` strictly and raise on them, which would hide the
event (a recall!) from every reader. So `string` is decoded as `bytes` (the ABI encoding is
identical) and turned into text with :func:`decode_text`: invalid bytes become U+FFFD and the
argument's name is listed under `INVALID_TEXT` in the decoded arguments, so pages and the
audit can say the text was not valid UTF-8.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import collapse_if_tuple
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3.datastructures import AttributeDict

from ledger.artifacts import load_artifact
from ledger.conversions import INVALID_TEXT as CONVERSIONS_INVALID_TEXT
from ledger.conversions import short_text
from ledger.rpc import rpc_call

#: Key of the decoded arguments listing the `string` arguments whose bytes were not valid
#: UTF-8 text (absent when all were): e.g. {"reason": "contaminated \ufffd", "invalidUtf8": ["reason"]}.
INVALID_TEXT = CONVERSIONS_INVALID_TEXT
# What readers print beside such text.
INVALID_TEXT_NOTE = "this text contains bytes that are not valid UTF-8; they are shown as \ufffd"

# Fields that are short text padded into bytesN on chain.
_TEXT_FIELDS = {"lot", "unit", "country", "claim", "bizStep"}


@lru_cache(maxsize=4096)  # a ledger has few organisations and checksumming is costly
def _checksum(address: str) -> str:
    return to_checksum_address(address)


def decode_text(raw: bytes) -> tuple[str, bool]:
    """(text, valid) of a `string` argument's raw bytes. Invalid UTF-8 sequences become
    U+FFFD. NUL characters are valid UTF-8 but no text column of PostgreSQL can hold them,
    so they become U+FFFD too and count as invalid: an event must never fail to be stored
    because of its text."""
    raw = bytes(raw)
    try:
        text, valid = raw.decode("utf-8"), True
    except UnicodeDecodeError:
        text, valid = raw.decode("utf-8", errors="replace"), False
    if "\x00" in text:
        text, valid = text.replace("\x00", "\ufffd"), False
    return text, valid


def _short_text(raw: bytes) -> str:
    """A bytesN text field (unit, country, business step...): ASCII, trailing NULs dropped;
    other bytes the contract lets through (a unit only needs a first byte, a step only a
    non-zero word) become U+FFFD, NULs inside too (PostgreSQL text cannot hold them)."""
    return short_text(raw)


def _lenient(abi_type: str) -> str:
    """The type to hand eth_abi: `string` read as `bytes` (same encoding, no strict UTF-8)."""
    return "bytes" if abi_type == "string" else abi_type


def _is_static(abi_type: str) -> bool:
    return abi_type in ("address", "bool") or abi_type.startswith(("uint", "bytes")) and abi_type != "bytes"


#: Reads one 32-byte ABI word (64 hex digits) of one argument.
WordReader = Callable[[str], Any]


def _word_reader(abi_type: str, name: str) -> WordReader:
    """A reader of one ABI word of a static type, normalised like `_normalise`; chosen once
    per argument when the decoder is built, so decoding a log runs no type dispatch."""
    if abi_type == "address":
        return lambda word: _checksum("0x" + word[24:])
    if abi_type == "bool":
        return lambda word: word[-1] == "1"
    if abi_type.startswith("uint"):
        return lambda word: int(word, 16)
    digits = 2 * int(abi_type[5:])  # bytesN: left-aligned
    if name in _TEXT_FIELDS:
        return lambda word: _short_text(bytes.fromhex(word[:digits]))
    return lambda word: "0x" + word[:digits]


def _word(abi_type: str, name: str, word: str) -> Any:
    """One 32-byte ABI word (64 hex digits) of a static type, normalised like `_normalise`."""
    return _word_reader(abi_type, name)(word)


class _Plan(NamedTuple):
    """How to decode one event, worked out once from the ABI."""

    name: str
    #: (argument, reader) of each indexed argument, in topic order (all static in the ledger).
    indexed: list[tuple[str, WordReader]]
    #: (argument, reader, first hex digit of its word in `data` after "0x") when every
    #: non-indexed argument is static (the hot path: words sliced, no generic decoder)...
    words: list[tuple[str, WordReader, int]] | None
    #: ...else (argument, ABI type) of each, for eth_abi.
    plain: list[tuple[str, str]]


def _normalise(name: str, abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return _checksum(value)
    if abi_type.endswith("[]"):
        if abi_type == "bytes32[]":
            return ["0x" + bytes(v).hex() for v in value]
        # InputQuantity[]: (bytes32,uint64)
        return [["0x" + bytes(batch).hex(), quantity] for batch, quantity in value]
    if abi_type.startswith("bytes") and abi_type != "bytes":
        raw = bytes(value)
        if name in _TEXT_FIELDS:
            return _short_text(raw)
        return "0x" + raw.hex()
    return value


class LogDecoder:
    """Turns raw logs of the ledger contract into (event name, arguments)."""

    def __init__(self, abi: list[dict[str, Any]] | None = None) -> None:
        self._events: dict[str, tuple[str, list[tuple[str, str, bool]]]] = {}
        for item in abi or load_artifact().abi:
            if item.get("type") != "event":
                continue
            fields = [(i["name"], collapse_if_tuple(i), i["indexed"]) for i in item["inputs"]]
            signature = f"{item['name']}({','.join(t for _, t, _ in fields)})"
            self._events["0x" + keccak(text=signature).hex()] = (item["name"], fields)
        self._plans = {topic: _plan(name, fields) for topic, (name, fields) in self._events.items()}

    @property
    def topics(self) -> list[str]:
        """topic0 of every event the ledger emits."""
        return list(self._events)

    def name_of(self, topic: str) -> str | None:
        """The event name of a signature topic, or None when this ABI does not know it."""
        entry = self._events.get(topic)
        return entry[0] if entry else None

    def filter_topics(self, event: str, argument_filters: dict[str, Any]) -> list[Any]:
        """eth_getLogs topics selecting `event` with indexed arguments equal to the filters
        (a list or tuple value matches any of its items), as web3's argument_filters do."""
        topic = self.topics_by_name().get(event)
        if topic is None:
            raise ValueError(f"the ledger emits no event {event!r}")
        fields = self._events[topic][1]
        indexed = {n: t for n, t, i in fields if i}
        unknown = set(argument_filters) - set(indexed)
        if unknown:
            raise ValueError(f"{event} has no indexed argument {', '.join(sorted(unknown))}")
        topics: list[Any] = [topic]
        for field_name, abi_type in indexed.items():
            wanted = argument_filters.get(field_name)
            if wanted is None:
                topics.append(None)
                continue
            values = list(wanted) if isinstance(wanted, (list, tuple)) else [wanted]
            encoded = ["0x" + abi_encode([abi_type], [v]).hex() for v in values]
            topics.append(encoded if len(encoded) > 1 else encoded[0])
        while topics and topics[-1] is None:
            topics.pop()
        return topics

    def topics_by_name(self) -> dict[str, str]:
        """Each event's signature topic (topic 0), by event name."""
        return {name: topic for topic, (name, _) in self._events.items()}

    def decode(self, log: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """(name, args) of a raw log, or None for a topic this ABI does not know."""
        topics = log["topics"]
        plan = self._plans.get(topics[0])
        if plan is None:
            return None
        args: dict[str, Any] = {}
        for (field_name, read), topic in zip(plan.indexed, topics[1:], strict=False):  # lenient: topics are not counted
            args[field_name] = read(topic[2:])
        data = log["data"]
        if plan.words is not None:
            # The hot path (BatchRegistered, custody, steps without strings...): slice words
            # instead of running the generic decoder, which costs 3x the whole RPC round trip.
            for field_name, read, start in plan.words:
                args[field_name] = read(data[start : start + 64])
        else:
            values = abi_decode([_lenient(t) for _, t in plan.plain], bytes.fromhex(data[2:]))
            invalid = []
            for (field_name, abi_type), value in zip(plan.plain, values, strict=True):
                if abi_type == "string":
                    value, valid = decode_text(value)
                    if not valid:
                        invalid.append(field_name)
                args[field_name] = _normalise(field_name, abi_type, value)
            if invalid:
                args[INVALID_TEXT] = invalid
        return plan.name, args

    def decode_native(self, log: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """(name, args) of a raw log with web3's argument types (bytesN as bytes, tuples as
        tuples, checksummed addresses), `string` arguments decoded leniently as in `decode`
        (with `INVALID_TEXT` when some were not valid UTF-8). For code written against
        web3's `get_logs`, which raises on such logs."""
        topics = [t if isinstance(t, str) else "0x" + bytes(t).hex() for t in log["topics"]]
        entry = self._events.get(topics[0]) if topics else None
        if entry is None:
            return None
        name, fields = entry
        args: dict[str, Any] = {}
        invalid = []
        indexed = [(n, t) for n, t, i in fields if i]
        plain = [(n, t) for n, t, i in fields if not i]
        # Indexed arguments of the ledger are all static: one word each in the topics.
        for (field_name, abi_type), topic in zip(indexed, topics[1:], strict=False):  # lenient, as in decode
            (args[field_name],) = abi_decode([abi_type], bytes.fromhex(topic[2:]))
        data = log["data"]
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
        values = abi_decode([_lenient(t) for _, t in plain], raw) if plain else ()
        for (field_name, abi_type), value in zip(plain, values, strict=True):
            if abi_type == "string":
                value, valid = decode_text(value)
                if not valid:
                    invalid.append(field_name)
            args[field_name] = value
        for field_name, abi_type, _ in fields:
            if abi_type == "address":
                args[field_name] = _checksum(args[field_name])
        if invalid:
            args[INVALID_TEXT] = invalid
        return name, args


def _plan(name: str, fields: list[tuple[str, str, bool]]) -> _Plan:
    """The decoding plan of one event (see `_Plan`)."""
    # Indexed arguments of the ledger are all static: one word each in the topics.
    indexed = [(n, _word_reader(t, n)) for n, t, i in fields if i]
    plain = [(n, t) for n, t, i in fields if not i]
    words = None
    if plain and all(_is_static(t) for _, t in plain):
        words = [(n, _word_reader(t, n), 2 + 64 * position) for position, (n, t) in enumerate(plain)]
    elif not plain:
        words = []
    return _Plan(name, indexed, words, plain)


@lru_cache(maxsize=1)
def default_decoder() -> LogDecoder:
    """A decoder for the artifact's ABI, built once."""
    return LogDecoder()


def read_logs(
    w3: Any, address: str, event: str, from_block: int, to_block: int | str = "latest", **argument_filters: Any
) -> list[Any]:
    """web3's `contract.events.<event>.get_logs(...)` for the ledger, decoded leniently
    (see the module docstring): AttributeDicts with event, args, blockNumber, logIndex,
    transactionHash, blockHash, transactionIndex and address, in chain order. A `string`
    argument that was not valid UTF-8 holds U+FFFD and is named in args[INVALID_TEXT]."""
    if any(isinstance(v, (list, tuple)) and not v for v in argument_filters.values()):
        return []  # "any of none" matches nothing (an empty topic list would match everything)
    decoder = default_decoder()
    topics = decoder.filter_topics(event, argument_filters)
    query = {
        "address": _checksum(address),
        "fromBlock": hex(from_block),
        "toBlock": to_block if isinstance(to_block, str) else hex(to_block),
        "topics": topics,
    }
    found = []
    for log in rpc_call(w3, "eth_getLogs", [query]):
        decoded = decoder.decode_native(log)
        if decoded is None or decoded[0] != event:
            continue
        found.append(
            AttributeDict(
                {
                    "event": event,
                    "args": AttributeDict(decoded[1]),
                    "address": _checksum(log["address"]),
                    "blockNumber": int(log["blockNumber"], 16),
                    "logIndex": int(log["logIndex"], 16),
                    "transactionIndex": int(log["transactionIndex"], 16),
                    "transactionHash": HexBytes(log["transactionHash"]),
                    "blockHash": HexBytes(log["blockHash"]),
                }
            )
        )
    found.sort(key=lambda log: (log["blockNumber"], log["logIndex"]))
    return found
