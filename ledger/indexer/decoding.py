"""Decoding raw `eth_getLogs` entries of the ledger with eth_abi (no web3 formatters:
they cost several times the RPC round trip on large ranges)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from eth_utils.abi import collapse_if_tuple

from ledger.artifacts import load_artifact
from ledger.identifiers import lot_from_bytes

# Fields that are short text padded into bytesN on chain.
_TEXT_FIELDS = {"lot", "unit", "country", "claim", "bizStep"}


@lru_cache(maxsize=4096)  # a ledger has few organisations and checksumming is costly
def _checksum(address: str) -> str:
    return to_checksum_address(address)


def _is_static(abi_type: str) -> bool:
    return abi_type in ("address", "bool") or abi_type.startswith(("uint", "bytes")) and abi_type != "bytes"


def _word(abi_type: str, name: str, word: str) -> Any:
    """One 32-byte ABI word (64 hex digits) of a static type, normalised like `_normalise`."""
    if abi_type == "address":
        return _checksum("0x" + word[24:])
    if abi_type == "bool":
        return word[-1] == "1"
    if abi_type.startswith("uint"):
        return int(word, 16)
    size = int(abi_type[5:])  # bytesN: left-aligned
    raw_hex = word[: 2 * size]
    if name in _TEXT_FIELDS:
        return lot_from_bytes(bytes.fromhex(raw_hex))
    return "0x" + raw_hex


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
            return lot_from_bytes(raw)
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

    @property
    def topics(self) -> list[str]:
        """topic0 of every event the ledger emits."""
        return list(self._events)

    def name_of(self, topic: str) -> str | None:
        """The event name of a signature topic, or None when this ABI does not know it."""
        entry = self._events.get(topic)
        return entry[0] if entry else None

    def topics_by_name(self) -> dict[str, str]:
        """Each event's signature topic (topic 0), by event name."""
        return {name: topic for topic, (name, _) in self._events.items()}

    def decode(self, log: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """(name, args) of a raw log, or None for a topic this ABI does not know."""
        topics = log["topics"]
        entry = self._events.get(topics[0])
        if entry is None:
            return None
        name, fields = entry
        indexed = [(n, t) for n, t, i in fields if i]
        plain = [(n, t) for n, t, i in fields if not i]
        args: dict[str, Any] = {}
        # Indexed arguments of the ledger are all static: one word each in the topics.
        for (field_name, abi_type), topic in zip(indexed, topics[1:]):
            args[field_name] = _word(abi_type, field_name, topic[2:])
        data = log["data"][2:]
        if all(_is_static(t) for _, t in plain):
            # The hot path (BatchRegistered, custody, steps without strings...): slice words
            # instead of running the generic decoder, which costs 3x the whole RPC round trip.
            for position, (field_name, abi_type) in enumerate(plain):
                args[field_name] = _word(abi_type, field_name, data[64 * position : 64 * position + 64])
        elif plain:
            values = abi_decode([t for _, t in plain], bytes.fromhex(data))
            for (field_name, abi_type), value in zip(plain, values):
                args[field_name] = _normalise(field_name, abi_type, value)
        return name, args
