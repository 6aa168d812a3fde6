"""Snapshots of the local chain's whole state (anvil_dumpState: gzipped JSON of accounts,
blocks, transactions and receipts), written atomically and kept a few deep.

A snapshot is written to a temporary file, fsynced, renamed into place and the directory
fsynced, so a crash leaves either the previous set of snapshots or the new one, never a
half-written file under a snapshot's name. Each name carries the journal sequence number
it holds everything up to, and the chain head: `snapshot-000000000042-0000000117.json.gz`.
"""

from __future__ import annotations

import builtins
import gzip
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from ledger.localnode.journal import fsync_directory

NAME = re.compile(r"^snapshot-(\d{12})-(\d{10})\.json\.gz$")
TEMPORARY_SUFFIX = ".tmp"
#: Written in pieces so a large state does not need a second copy in memory at once.
CHUNK = 1 << 20


@dataclass(frozen=True)
class Snapshot:
    """A saved state: the journal entries it holds (up to `seq`), its head block, its file."""

    seq: int
    block: int
    path: Path

    def read(self) -> bytes:
        """The gzipped state, checked whole (gzip's CRC and length) before any of it is used."""
        data = self.path.read_bytes()
        try:
            gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{self.path.name} is damaged: {exc}") from exc
        return data


class SnapshotStore:
    """The snapshots directory: the newest `keep` snapshots."""

    def __init__(self, directory: Path, keep: int = 3) -> None:
        self.directory = directory
        self.keep = keep
        self.directory.mkdir(parents=True, exist_ok=True)

    def list(self) -> list[Snapshot]:
        """Every snapshot, newest first."""
        found = []
        for path in self.directory.iterdir():
            match = NAME.match(path.name)
            if match:
                found.append(Snapshot(int(match.group(1)), int(match.group(2)), path))
        return sorted(found, key=lambda s: s.seq, reverse=True)

    def remove_temporaries(self) -> builtins.list[Path]:  # `list` here is the method above
        """Delete half-written snapshots a crash left behind; returns what was removed."""
        removed = [path for path in self.directory.glob("*" + TEMPORARY_SUFFIX)]
        for path in removed:
            path.unlink()
        return removed

    def write(self, seq: int, block: int, state: bytes) -> Snapshot:
        """Save `state` (gzipped, as anvil_dumpState gives it) atomically; older snapshots
        beyond `keep` are removed afterwards. Returns the new snapshot."""
        final = self.directory / f"snapshot-{seq:012d}-{block:010d}.json.gz"
        temporary = final.with_name(final.name + TEMPORARY_SUFFIX)
        with temporary.open("wb") as handle:
            for start in range(0, len(state), CHUNK):
                handle.write(state[start : start + CHUNK])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        fsync_directory(self.directory)
        for old in self.list()[self.keep :]:
            old.path.unlink()
        return Snapshot(seq, block, final)
