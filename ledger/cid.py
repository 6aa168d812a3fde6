"""IPFS content identifiers for documents, derived from the sha256 the chain anchors.

A CIDv1 with the `raw` codec (0x55) and a sha2-256 multihash (0x12, 32 bytes) wraps the
very digest the ledger anchors, so any IPFS gateway can serve a document by a name the
chain already fixes: no extra on-chain data. Text form: multibase base32, lower case,
no padding, prefix `b` (what gateways print, e.g. `bafkrei...`).
"""

from __future__ import annotations

import base64

#: CID version 1, multicodec `raw`, multihash `sha2-256` of length 32 (all one-byte varints).
_RAW_SHA256_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])


def cid_of_digest(digest: bytes) -> str:
    """The base32 CIDv1 (raw codec, sha2-256) naming the document whose sha256 is `digest`."""
    if len(digest) != 32:
        raise ValueError("a sha256 digest has 32 bytes")
    encoded = base64.b32encode(_RAW_SHA256_PREFIX + digest).decode("ascii").lower().rstrip("=")
    return "b" + encoded


def digest_of_cid(cid: str) -> bytes:
    """The sha256 digest inside a base32 raw sha2-256 CIDv1 (ValueError for any other CID)."""
    if not cid.startswith("b"):
        raise ValueError("only base32 CIDv1 (starting with 'b') are understood")
    body = cid[1:].upper()
    raw = base64.b32decode(body + "=" * (-len(body) % 8))
    if not raw.startswith(_RAW_SHA256_PREFIX) or len(raw) != len(_RAW_SHA256_PREFIX) + 32:
        raise ValueError("not a raw-codec sha2-256 CIDv1")
    return raw[len(_RAW_SHA256_PREFIX) :]
