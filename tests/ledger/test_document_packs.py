"""Documents written in packs (the bulk path) read exactly like documents written as files.

DocumentStore.put_many puts a window's documents into one pack file and indexes them in
documents/packs/index.sqlite (ledger.document_packs). These tests prove, on a real store
in a temporary directory: every reader (get, held, has, size_of, export, the checked
store) finds packed documents; one call writes one pack, a repeated call none; a damaged
file falls back to its packed copy, a damaged pack entry is refused (never returned as
the document); a crash between writing a pack and indexing it leaves nothing readable
and nothing in the way; bulk anchored marks join the marker files; and readers running
while a writer adds packs never see a document before the whole of it is there.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from ledger.documents import CheckedDocumentStore, DamagedDocumentError, DocumentStore


def documents(count: int, tag: str = "doc") -> list[tuple[bytes, bytes]]:
    """`count` (sha256, content) pairs of different sizes (some empty-ish, some large)."""
    out = []
    for i in range(count):
        content = f'{{"{tag}":{i},"pad":"{"x" * (i * 37 % 900)}"}}'.encode()
        out.append((hashlib.sha256(content).digest(), content))
    return out


def packs_of(root: Path) -> list[Path]:
    return sorted((root / "packs").glob("*.pack"))


def files_under(root: Path) -> list[Path]:
    """Every file of the store but the index's own (SQLite's -wal and -shm come and go)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("index.sqlite"))


@pytest.mark.parametrize("store_class", [DocumentStore, CheckedDocumentStore])
def test_put_many_stores_documents_every_reader_finds_in_one_pack_file(store_class: type[DocumentStore], tmp_path: Path) -> None:
    store = store_class(tmp_path / "documents")
    pairs = documents(50)
    store.put_many(pairs)
    assert files_under(store.root) == packs_of(store.root) and len(packs_of(store.root)) == 1
    assert packs_of(store.root)[0].stat().st_size == sum(len(content) for _, content in pairs)
    for i, (digest, content) in enumerate(pairs):
        assert store.get(digest) == content
        assert store.held(digest) == content
        assert store.has(digest) and store.verify(digest)
        assert store.size_of(digest) == len(content)
        target = tmp_path / f"out-{i}"
        store.export(digest, target)
        assert target.read_bytes() == content
    absent = hashlib.sha256(b"never stored").digest()
    assert not store.has(absent) and not store.verify(absent)
    for read in (store.get, store.held, store.size_of):
        with pytest.raises(FileNotFoundError):
            read(absent)


def test_a_second_put_many_of_the_same_documents_writes_no_pack_and_new_ones_go_in_one_more(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "documents")
    pairs = documents(20)
    store.put_many(pairs)
    before = files_under(store.root)
    store.put_many(pairs)
    store.put_many(list(reversed(pairs[:5])))
    assert files_under(store.root) == before
    fresh = documents(3, tag="new")
    store.put_many(pairs + fresh + fresh)  # duplicates within one call: stored once
    (new_pack,) = set(packs_of(store.root)) - set(before)
    assert new_pack.stat().st_size == sum(len(content) for _, content in fresh)
    assert all(store.held(digest) == content for digest, content in pairs + fresh)


def test_put_many_of_nothing_writes_nothing(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "documents")
    store.put_many([])
    assert not (store.root / "packs").exists()


def test_a_damaged_file_is_read_from_its_packed_copy(tmp_path: Path) -> None:
    store = CheckedDocumentStore(tmp_path / "documents")
    (digest, content), *others = documents(4)
    assert store.put_bytes(content) == digest
    store.put_many([(digest, content), *others])
    store.path_of(digest).write_bytes(b'{"tampered":true}')
    assert store.held(digest) == content
    assert store.get(digest) == content
    assert store.verify(digest)


def test_a_damaged_file_without_a_packed_copy_is_refused(tmp_path: Path) -> None:
    store = CheckedDocumentStore(tmp_path / "documents")
    store.put_many(documents(2))
    digest = store.put_bytes(b"only as a file")
    store.path_of(digest).write_bytes(b"only as a fil")
    with pytest.raises(DamagedDocumentError):
        store.held(digest)
    assert not store.verify(digest)


def test_export_of_a_document_whose_file_is_damaged_writes_the_packed_copy(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "documents")
    (digest, content), *_ = documents(1)
    store.put_bytes(content)
    store.put_many([(digest, content)])
    store.path_of(digest).write_bytes(b"damaged")
    assert store.verify(digest)  # what `provenance documents export` checks first
    store.export(digest, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == content


def test_a_damaged_pack_entry_is_refused_never_returned_as_the_document(tmp_path: Path) -> None:
    store = CheckedDocumentStore(tmp_path / "documents")
    pairs = documents(10)
    store.put_many(pairs)
    (pack,) = packs_of(store.root)
    damaged_digest, damaged_content = pairs[4]
    location = store.packs.location(damaged_digest)
    assert location is not None and location[0] == pack
    raw = bytearray(pack.read_bytes())
    raw[location[1] + location[2] // 2] ^= 0x01
    pack.write_bytes(bytes(raw))
    with pytest.raises(DamagedDocumentError):
        store.held(damaged_digest)
    with pytest.raises(FileNotFoundError):
        store.get(damaged_digest)
    assert not store.verify(damaged_digest)
    # The unchecked reader gives the bytes as they are (for `provenance verify` to report).
    assert DocumentStore(store.root).get(damaged_digest) != damaged_content
    # The pack's other documents are intact and still read.
    assert all(store.get(d) == c for d, c in pairs if d != damaged_digest)


def test_a_truncated_pack_is_refused_for_the_documents_it_lost(tmp_path: Path) -> None:
    store = CheckedDocumentStore(tmp_path / "documents")
    pairs = documents(10)
    store.put_many(pairs)
    (pack,) = packs_of(store.root)
    last_digest, last_content = pairs[-1]
    with open(pack, "r+b") as handle:
        handle.truncate(pack.stat().st_size - 1)
    with pytest.raises(FileNotFoundError):
        store.held(last_digest)
    with pytest.raises(FileNotFoundError):
        DocumentStore(store.root).get(last_digest)
    assert store.held(pairs[0][0]) == pairs[0][1]


@pytest.mark.parametrize("leftover", ["unindexed pack", "partial pack"])
@pytest.mark.parametrize("index_exists", [False, True])
def test_a_crash_between_writing_a_pack_and_indexing_it_is_harmless(tmp_path: Path, leftover: str, index_exists: bool) -> None:
    store = CheckedDocumentStore(tmp_path / "documents")
    if index_exists:
        store.put_many(documents(3, tag="earlier"))
    pairs = documents(8)
    # What PackIndex.add leaves when killed before its index transaction commits.
    store.packs.folder.mkdir(parents=True, exist_ok=True)
    name = "0123456789abcdef.pack"
    path = store.packs.folder / (name if leftover == "unindexed pack" else f".{name}.partial")
    path.write_bytes(b"".join(content for _, content in pairs)[: None if leftover == "unindexed pack" else 100])
    for digest, _ in pairs:
        assert not store.has(digest) and not store.verify(digest)
        with pytest.raises(FileNotFoundError):
            store.get(digest)
        with pytest.raises(FileNotFoundError):
            store.size_of(digest)
    store.put_many(pairs)  # the re-run
    for digest, content in pairs:
        assert store.get(digest) == content and store.size_of(digest) == len(content)


def test_anchored_here_is_the_sorted_union_of_marker_files_and_bulk_marks(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "documents")
    assert store.anchored_here() == []
    store.mark_anchored_many([])
    assert store.anchored_here() == [] and not (store.root / "packs").exists()
    digests = [hashlib.sha256(bytes([i])).digest() for i in range(8)]
    for digest in digests[:3]:
        store.mark_anchored(digest)
    assert store.anchored_here() == sorted(digests[:3])
    store.mark_anchored_many(digests[2:6])
    store.mark_anchored_many(iter(digests[5:]))  # any iterable; marks twice are one
    assert store.anchored_here() == sorted(digests)
    assert len(list((store.root / "anchored").iterdir())) == 3  # bulk marks are no files


def test_readers_never_see_a_packed_document_before_all_of_it_is_there(tmp_path: Path) -> None:
    store = CheckedDocumentStore(tmp_path / "documents")
    unchecked = DocumentStore(store.root)
    store.put_many(documents(1, tag="first"))  # the index exists (see the next test)
    # Large documents (up to ~64 KB): writing a pack takes long enough to be caught at it.
    windows = [
        [(hashlib.sha256(c).digest(), c) for c in (f"w{w}-{i}:".encode() * (1 + (w * 40 + i) * 797 % 9000) for i in range(40))]
        for w in range(12)
    ]
    failures: list[str] = []
    # Each window is written only once every reader is polling for it: readers are at
    # work while the pack is written and indexed, not after.
    ready = threading.Barrier(5, timeout=60)

    def read() -> None:
        try:
            for window in windows:
                ready.wait()
                while not unchecked.has(window[0][0]):
                    pass
                # The index names the pack's first document: the whole window must be
                # there in full, from this moment on.
                for digest, content in window:
                    if not unchecked.has(digest):
                        failures.append(f"{digest.hex()}: indexed after the first of its pack")
                        continue
                    got = unchecked.get(digest)
                    if got != content:
                        failures.append(f"{digest.hex()}: {len(got)} bytes instead of {len(content)}")
                    if store.held(digest) != content or store.size_of(digest) != len(content):
                        failures.append(f"{digest.hex()}: checked read differs")
        except Exception as exc:  # any failure in a reader fails the test
            failures.append(f"{type(exc).__name__}: {exc}")
            ready.abort()

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    try:
        for window in windows:
            ready.wait()
            store.put_many(window)
    except threading.BrokenBarrierError:
        pass  # a reader failed: its failure is recorded
    finally:
        for reader in readers:
            reader.join(timeout=60)
    assert failures == []
    assert all(store.held(digest) == content for window in windows for digest, content in window)


def test_a_reader_during_the_first_put_many_finds_no_document_rather_than_failing(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "documents")
    # The state the first writer is in between sqlite3.connect (which creates the file)
    # and its CREATE TABLE: an index file with no tables yet.
    store.packs.folder.mkdir(parents=True)
    store.packs.index_path.touch()
    digest = hashlib.sha256(b"x").digest()
    assert not store.has(digest)


def test_a_copy_of_the_index_file_alone_holds_what_was_written_while_a_store_is_open(tmp_path):
    """The index keeps its connection open between calls; every write still ends with the
    write-ahead log moved into index.sqlite, so a backup that copies that file alone (and a
    restore that replaces it) sees every entry. Found by review: before, the copy was empty."""
    import hashlib
    import shutil
    import sqlite3

    from ledger.document_packs import PackIndex

    index = PackIndex(tmp_path / "store")
    documents = [(hashlib.sha256(b"%d" % i).digest(), b"%d" % i) for i in range(300)]
    index.add(documents)
    index.mark_anchored([digest for digest, _ in documents[:10]])
    assert index.intact([documents[0][0]]) == {documents[0][0]}  # the connection stays open
    backup = tmp_path / "backup.sqlite"
    shutil.copyfile(index.index_path, backup)
    copy = sqlite3.connect(backup)
    try:
        assert copy.execute("SELECT count(*) FROM packed").fetchone()[0] == 300
        assert copy.execute("SELECT count(*) FROM anchored").fetchone()[0] == 10
    finally:
        copy.close()
