"""Document packs that were lost, emptied or mis-indexed never make the store lie or fail:
a re-run packs the documents again, a damaged index leaves the files readable, and an
index row pointing anywhere odd reads as absent (review of issue 14)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ledger.documents import CheckedDocumentStore, DocumentStore, sha256


def _docs(count: int) -> list[tuple[bytes, bytes]]:
    contents = [f'{{"lot":"L-{i}"}}'.encode() for i in range(count)]
    return [(sha256(c), c) for c in contents]


def test_an_emptied_pack_is_not_held_and_is_packed_again(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    docs = _docs(5)
    store.put_many(docs)
    (pack,) = (tmp_path / "packs").glob("*.pack")
    pack.write_bytes(b"")  # a power loss or a careless restore
    assert not store.has(docs[0][0]) and not store.verify(docs[0][0])
    store.put_many(docs)  # the re-run of the import
    assert all(store.held(digest) == content for digest, content in docs)
    assert all(store.has(digest) for digest, _ in docs)


def test_a_damaged_index_leaves_the_files_readable_and_the_packed_documents_absent(tmp_path: Path) -> None:
    store = CheckedDocumentStore(tmp_path)
    filed = store.put_bytes(b"a certificate")
    docs = _docs(3)
    store.put_many(docs)
    index = tmp_path / "packs" / "index.sqlite"
    data = bytearray(index.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # wreck the header and first page
    index.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    store = CheckedDocumentStore(tmp_path)  # a new process
    assert store.held(filed) == b"a certificate" and store.verify(filed)
    assert not store.has(docs[0][0]) and not store.verify(docs[0][0])


def test_an_index_row_pointing_outside_its_pack_folder_or_before_a_file_reads_as_absent(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    docs = _docs(2)
    store.put_many(docs)
    index = tmp_path / "packs" / "index.sqlite"
    outside = tmp_path / "elsewhere.pack"
    outside.write_bytes(docs[0][1])
    with sqlite3.connect(index) as connection:
        connection.execute("UPDATE packed SET offset = -5 WHERE digest = ?", (docs[0][0],))
        connection.execute("UPDATE packed SET pack = '../elsewhere.pack', offset = 0 WHERE digest = ?", (docs[1][0],))
    store = DocumentStore(tmp_path)
    for digest, _ in docs:
        assert not store.has(digest) and not store.verify(digest)
