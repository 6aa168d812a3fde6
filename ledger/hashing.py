"""keccak-256, as fast as this machine offers it.

eth_utils' keccak goes through eth_hash, which picks pycryptodome when both backends are
installed: about 5 us a call against 1.5 us for pysha3's C extension (safe-pysha3, a
dependency). The bulk path hashes once per row, so the difference is a tenth of its
budget. Both give the same digest (tests/ledger/test_bulk_rows.py compares them).
"""

from __future__ import annotations

from collections.abc import Callable

from eth_utils.crypto import keccak as _eth_keccak


def _eth_utils_keccak(data: bytes) -> bytes:
    return bytes(_eth_keccak(data))


def _pick() -> Callable[[bytes], bytes]:
    try:
        from sha3 import keccak_256  # type: ignore[import-untyped]  # safe-pysha3 has no stubs
    except ImportError:  # pragma: no cover - the package is a dependency; kept for odd installs
        return _eth_utils_keccak

    def pysha3_keccak(data: bytes) -> bytes:
        return bytes(keccak_256(data).digest())

    return pysha3_keccak


#: keccak-256 of `data` (the Ethereum hash, not NIST SHA3-256).
keccak256: Callable[[bytes], bytes] = _pick()
