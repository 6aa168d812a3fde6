"""The write-ahead journal of the local chain: every state-changing JSON-RPC request,
appended and fsynced before the chain sees it.

Entries live in segment files named by their first sequence number (`000000000042.log`),
one line each: a CRC-32 of the JSON text, a space, the JSON text. A segment starts at each
snapshot, so the entries a snapshot does not hold are the segments after it. A crash can
tear only the line being appended; that line was never forwarded to the chain (the node
forwards after the fsync), so reading stops there and the tail is cut off before the next
append.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

SEGMENT_SUFFIX = ".log"


@dataclass(frozen=True)
class Entry:
    """One journalled request: its sequence number, the JSON-RPC method and params, and
    the block timestamp the node chose for the block it mines (None: the request mines
    nothing, or its client chose the time)."""

    seq: int
    method: str
    params: list[Any]
    timestamp: int | None = None

    def line(self) -> bytes:
        """The entry as one journal line (checksum, space, JSON, newline)."""
        record: dict[str, Any] = {"seq": self.seq, "method": self.method, "params": self.params}
        if self.timestamp is not None:
            record["ts"] = self.timestamp
        text = json.dumps(record, separators=(",", ":")).encode()
        return b"%08x %s\n" % (zlib.crc32(text), text)

    @classmethod
    def parse(cls, line: bytes) -> Entry | None:
        """The entry a line holds, or None for a torn or damaged line."""
        if not line.endswith(b"\n") or len(line) < 10 or line[8:9] != b" ":
            return None
        text = line[9:-1]
        try:
            if int(line[:8], 16) != zlib.crc32(text):
                return None
            record = json.loads(text)
            return cls(int(record["seq"]), str(record["method"]), list(record["params"]), record.get("ts"))
        except (ValueError, KeyError, TypeError):
            return None


def _open_unbuffered(path: Path) -> BinaryIO:
    """A segment opened for appending with no buffer of our own: what `append` writes is
    on its way to the disk or refused, never kept back to be written later."""
    return path.open("ab", buffering=0)


def fsync_directory(directory: Path) -> None:
    """Make a file's creation, rename or removal in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """Append-only, fsynced segments of journalled requests in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = None
        self.last_seq = 0
        #: A failed append left part of its line behind: entries after it would not replay.
        self._torn = False

    def segments(self) -> list[tuple[int, Path]]:
        """(first sequence number, path) of each segment, oldest first."""
        found = []
        for path in self.directory.glob("*" + SEGMENT_SUFFIX):
            try:
                found.append((int(path.stem), path))
            except ValueError:
                continue
        return sorted(found)

    def entries_after(self, seq: int) -> Iterator[Entry]:
        """Every intact entry with a sequence number above `seq`, in order, stopping at the
        first torn or damaged line (nothing after it was ever forwarded)."""
        segments = self.segments()
        for index, (_first, path) in enumerate(segments):
            following = segments[index + 1][0] if index + 1 < len(segments) else None
            if following is not None and following <= seq + 1:
                continue  # wholly at or below `seq`
            with path.open("rb") as handle:
                for line in handle:
                    entry = Entry.parse(line)
                    if entry is None:
                        return
                    if entry.seq > seq:
                        yield entry

    def open_for_append(self, last_seq: int) -> None:
        """Get ready to append after entry `last_seq` (the last one recovered): a torn
        tail left by a crash is cut off, so new entries follow intact ones."""
        self.last_seq = last_seq
        segments = self.segments()
        if not segments:
            self.rotate()
            return
        path = segments[-1][1]
        good = 0
        with path.open("rb") as handle:
            for line in handle:
                if Entry.parse(line) is None:
                    break
                good += len(line)
        if good != path.stat().st_size:
            with path.open("r+b") as handle:
                handle.truncate(good)
                handle.flush()
                os.fsync(handle.fileno())
        self._file = _open_unbuffered(path)

    def rotate(self) -> None:
        """Start a new segment for the entries after `last_seq` (called at each snapshot)."""
        if self._file is not None:
            self._file.close()
        path = self.directory / f"{self.last_seq + 1:012d}{SEGMENT_SUFFIX}"
        self._file = _open_unbuffered(path)
        fsync_directory(self.directory)

    def append(self, method: str, params: list[Any], timestamp: int | None) -> Entry:
        """Write the next entry and fsync it; only then may the request reach the chain."""
        assert self._file is not None, "open_for_append first"
        if self._torn:
            raise OSError("a failed journal write could not be cut off; restart the chain to recover")
        entry = Entry(self.last_seq + 1, method, params, timestamp)
        fd = self._file.fileno()
        position = os.lseek(fd, 0, os.SEEK_END)
        try:
            line = memoryview(entry.line())
            while line:
                line = line[os.write(fd, line) :]
            os.fsync(fd)
        except OSError:
            # A full disk or an I/O error: cut the partial line off, or every entry
            # appended after it would sit behind a torn line and never be replayed. The
            # file is unbuffered, so no copy of the refused line waits in memory to be
            # written ahead of the next entry.
            try:
                os.ftruncate(fd, position)
            except OSError:
                self._torn = True  # the partial line stays: no entry may follow it
            raise
        self.last_seq = entry.seq
        return entry

    def prune_through(self, seq: int) -> None:
        """Delete the segments whose every entry is at or below `seq` (held by a snapshot
        that is no longer the oldest one needed)."""
        segments = self.segments()
        removed = False
        for index, (_first, path) in enumerate(segments[:-1]):
            if segments[index + 1][0] <= seq + 1:
                path.unlink()
                removed = True
        if removed:
            fsync_directory(self.directory)

    def close(self) -> None:
        """Close the open segment."""
        if self._file is not None:
            self._file.close()
            self._file = None
