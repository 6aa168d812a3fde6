"""The bulk path's shortcuts give the same bytes as the slow, obviously right way.

ledger.bulk prepares each row once with faster code than the rest of the client uses: a
C keccak (ledger.hashing), the standard library's JSON instead of rfc8785 for documents
that allow it, and calldata joined from pre-encoded words instead of eth_abi. Each test
here compares one shortcut with the reference on generated input (hypothesis), edge
values included: Unicode of every kind in the text (controls, quotes, backslashes, emoji,
U+2028, DEL), quantities up to 2^64 - 1, 1- and 20-character lots, 2- and 3-letter units.
Pure computation: no chain.
"""

from __future__ import annotations

import operator
import random
import string
from typing import Any

import pytest
import rfc8785
from eth_abi import encode as abi_encode
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import identifiers
from ledger.bulk import REGISTER_BATCHES, canonical_metadata, prepare, register_batches_calldata
from ledger.documents import canonical_json, metadata_hash
from ledger.errors import InvalidInputError
from ledger.hashing import keccak256
from ledger.identifiers import complete_gtin
from ledger.models import BatchCreate, DocumentRef
from ledger.units import rec20_units

BATCH_INPUTS = "(uint64,bytes20,uint64,bytes3,bytes32)[]"
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
UNITS = sorted(rec20_units())
TWO_LETTER_UNITS = [u for u in UNITS if len(u) == 2]
THREE_LETTER_UNITS = [u for u in UNITS if len(u) == 3]
#: Characters JSON writers get wrong most often.
AWKWARD = list('\x00\x01\x08\t\n\x0b\x0c\r\x1f"\\/\x7f\x80\x9f\u00e9\u2028\u2029\ufeff\uffff\U0001f600\U0010ffff')
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any Unicode scalar value (no surrogates: they are not text), the awkward ones favoured.
texts = st.text(st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(AWKWARD)), min_size=1, max_size=200)
gtins = st.integers(0, 10**13 - 1).map(lambda n: complete_gtin(str(n)))
lots = st.text(st.sampled_from(CSET82), min_size=1, max_size=20)
quantities = st.one_of(st.integers(1, 2**64 - 1), st.sampled_from([1, 2**53 - 1, 2**53, 2**53 + 1, 2**64 - 1]))
units = st.sampled_from(UNITS)
claims = st.lists(
    st.builds(
        operator.add,
        st.sampled_from(string.ascii_uppercase),
        st.text(st.sampled_from(string.ascii_uppercase + string.digits + "_"), max_size=31),
    ),
    max_size=4,
)
references = st.lists(
    st.builds(DocumentRef, name=texts, sha256=st.binary(min_size=32, max_size=32).map(bytes.hex), private=st.booleans()),
    max_size=4,
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(blacklist_categories=("Cs",))),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",))), inner, max_size=3)
    ),
    max_leaves=8,
)
# `extra` keys: non-ASCII ones included, so sorting by UTF-16 code units matters.
extras = st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6), json_values, max_size=4)


@st.composite
def batches(draw: st.DrawFn, with_extra: bool = False) -> BatchCreate:
    return BatchCreate(
        gtin=draw(gtins),
        lot=draw(lots),
        quantity=draw(quantities),
        unit=draw(units),
        product=draw(texts),
        origin=draw(st.none() | texts),
        claims=tuple(draw(claims)),
        documents=tuple(draw(references)),
        extra=draw(extras) if with_extra else {},
    )


def reference_calldata(batch_list: list[BatchCreate]) -> bytes:
    """registerBatches calldata the slow way: eth_abi, BatchCreate.contract_input, rfc8785."""
    inputs = [b.contract_input(metadata_hash(b.metadata_document())) for b in batch_list]
    return keccak(text=REGISTER_BATCHES)[:4] + abi_encode([BATCH_INPUTS], [inputs])


@SETTINGS
@given(st.one_of(st.binary(max_size=64), st.binary(min_size=100, max_size=2000)))
def test_keccak256_is_the_ethereum_keccak_of_any_bytes(data: bytes) -> None:
    assert keccak256(data) == bytes(keccak(data))


@pytest.mark.parametrize("length", [0, 1, 28, 135, 136, 137, 271, 272, 273, 100_000])
def test_keccak256_is_the_ethereum_keccak_around_the_sponge_block_size(length: int) -> None:
    data = random.Random(length).randbytes(length)  # keccak-256 absorbs 136 bytes at a time
    assert keccak256(data) == bytes(keccak(data))


def test_keccak256_of_the_empty_string_is_the_known_digest() -> None:
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


@SETTINGS
@given(batches())
def test_a_prepared_row_holds_the_batch_id_hash_and_canonical_document_of_its_batch(batch: BatchCreate) -> None:
    row = prepare(7, batch)
    document = batch.metadata_document()
    assert row.index == 7 and row.batch is batch
    assert row.batch_id == identifiers.batch_id(batch.gtin, batch.lot) == batch.batch_id
    assert row.document == rfc8785.dumps(document)
    assert row.metadata_hash == metadata_hash(document)
    assert row.encoded == abi_encode(["(uint64,bytes20,uint64,bytes3,bytes32)"], [batch.contract_input(row.metadata_hash)])


@SETTINGS
@given(batches())
def test_canonical_metadata_of_a_plain_batch_document_is_rfc8785_byte_for_byte(batch: BatchCreate) -> None:
    document = batch.metadata_document()
    assert "extra" not in document
    assert canonical_metadata(document) == rfc8785.dumps(document) == canonical_json(document)


@SETTINGS
@given(batches(with_extra=True))
def test_canonical_metadata_of_a_document_with_extra_floats_and_non_ascii_keys_is_rfc8785(batch: BatchCreate) -> None:
    document = batch.metadata_document()
    assert canonical_metadata(document) == rfc8785.dumps(document)
    assert prepare(0, batch).document == rfc8785.dumps(document)


@pytest.mark.parametrize(
    "text",
    ["\x00\x1f\x7f", 'say "hi" \\ back', "line\u2028sep\u2029", "emoji \U0001f600 \ufeff", "tab\tcr\rnl\nff\x0cbs\x08"],
)
def test_canonical_metadata_escapes_controls_quotes_and_separators_as_rfc8785(text: str) -> None:
    batch = BatchCreate(gtin=complete_gtin("950600013435"), lot="L-1", quantity=1, unit="KGM", product=text, origin=text)
    document = batch.metadata_document()
    assert canonical_metadata(document) == rfc8785.dumps(document)


@pytest.mark.parametrize("quantity", [2**53 - 1, 2**53, 2**64 - 1])
def test_quantities_beyond_two_to_the_53_are_decimal_strings_in_the_canonical_document(quantity: int) -> None:
    batch = BatchCreate(gtin=complete_gtin("950600013435"), lot="L-1", quantity=quantity, unit="KGM", product="p")
    expected = str(quantity).encode() if quantity < 2**53 else f'"{quantity}"'.encode()
    assert b'"quantity":' + expected in prepare(0, batch).document
    assert prepare(0, batch).document == rfc8785.dumps(batch.metadata_document())


@SETTINGS
@given(st.sampled_from(["product", "origin", "lot"]), st.text(max_size=5), st.integers(0xD800, 0xDFFF), st.text(max_size=5))
def test_a_lone_surrogate_raises_invalid_input_like_canonical_json_and_never_yields_bytes(
    field: str, before: str, surrogate: int, after: str
) -> None:
    batch = BatchCreate(gtin=complete_gtin("950600013435"), lot="L-1", quantity=1, unit="KGM", product="p", origin="o")
    document: dict[str, Any] = {**batch.metadata_document(), field: before + chr(surrogate) + after}
    with pytest.raises(InvalidInputError) as reference:
        canonical_json(document)
    with pytest.raises(InvalidInputError) as fast:
        canonical_metadata(document)
    assert str(fast.value) == str(reference.value)


def test_a_batch_whose_text_holds_a_lone_surrogate_is_refused_before_it_is_prepared() -> None:
    with pytest.raises(ValueError):
        BatchCreate(gtin=complete_gtin("950600013435"), lot="L-1", quantity=1, unit="KGM", product="a\ud800b")
    # Built without validation (as no caller does), it still raises, never hashes odd bytes.
    unchecked = BatchCreate.model_construct(
        gtin=complete_gtin("950600013435"), lot="L-1", quantity=1, unit="KGM", product="a\ud800b", origin=None
    )
    with pytest.raises(InvalidInputError):
        prepare(0, unchecked)


def generated_batches(count: int, seed: int) -> list[BatchCreate]:
    """`count` distinct valid batches, the edge values first: maximum quantity, 20- and
    1-character lots, 2- and 3-letter units, Unicode product names."""
    rng = random.Random(seed)
    edges = [
        dict(lot="A" * 20, quantity=2**64 - 1, unit="KGM"),
        dict(lot="Z", quantity=1, unit=TWO_LETTER_UNITS[0]),
        dict(lot=CSET82[:20], quantity=2**53, unit="H87"),
        dict(lot="_", quantity=2**53 - 1, unit=TWO_LETTER_UNITS[-1]),
    ]
    out: list[BatchCreate] = []
    for i in range(count):
        fields: dict[str, Any] = edges[i] if i < len(edges) else {}
        lot = fields.get("lot") or "".join(rng.choice(CSET82) for _ in range(rng.randint(1, 20)))
        out.append(
            BatchCreate(
                gtin=complete_gtin(str(rng.randrange(10**13))),
                lot=lot,
                quantity=fields.get("quantity", rng.choice([rng.randint(1, 2**64 - 1), rng.randint(1, 10_000)])),
                unit=fields.get("unit", rng.choice(THREE_LETTER_UNITS + TWO_LETTER_UNITS)),
                product="".join(rng.choice(string.ascii_letters + '\u00e9\u2028\\"\x01\U0001f600 ') for _ in range(12)),
                origin=rng.choice([None, "Huila, Colombia", "M\u00fcnchen"]),
            )
        )
    return out


@pytest.mark.parametrize("count", [1, 2, 500])
def test_register_batches_calldata_equals_the_eth_abi_encoding(count: int) -> None:
    batch_list = generated_batches(count, seed=count)
    rows = [prepare(i, b) for i, b in enumerate(batch_list)]
    assert register_batches_calldata(rows) == reference_calldata(batch_list)


@SETTINGS
@given(st.lists(batches(), min_size=1, max_size=4))
def test_register_batches_calldata_equals_the_eth_abi_encoding_for_generated_batches(batch_list: list[BatchCreate]) -> None:
    rows = [prepare(i, b) for i, b in enumerate(batch_list)]
    assert register_batches_calldata(rows) == reference_calldata(batch_list)


@given(
    st.binary(min_size=20, max_size=20),
    st.lists(st.binary(min_size=32, max_size=32), max_size=40),
    st.data(),
)
def test_the_look_up_arguments_and_answer_are_coded_as_eth_abi_codes_them(address: bytes, ids: list[bytes], data: Any) -> None:
    from eth_abi import decode as abi_decode

    from ledger.bulk import _lookup_arguments, _registration_times

    checksum = "0x" + address.hex()
    assert _lookup_arguments(checksum, ids) == abi_encode(["address", "bytes32[]"], [checksum, ids]).hex()
    times = data.draw(st.lists(st.integers(0, 2**64 - 1), min_size=len(ids), max_size=len(ids)))
    answer = abi_encode(["uint64[]"], [times])
    assert _registration_times(answer, len(ids)) == list(abi_decode(["uint64[]"], answer)[0]) == times


def test_a_look_up_answer_of_another_shape_is_refused_not_misread() -> None:
    from ledger.bulk import _registration_times
    from ledger.errors import ChainError

    good = abi_encode(["uint64[]"], [[1, 2, 3]])
    assert _registration_times(good, 3) == [1, 2, 3]
    for bad, count in (
        (good, 2),  # fewer ids asked than answered
        (good + bytes(32), 3),  # a word after the array
        (good[:-1], 3),  # cut short
        (abi_encode(["uint256[]"], [[1, 2**64, 3]]), 3),  # a time wider than uint64
        ((64).to_bytes(32, "big") + good[32:], 3),  # another offset
    ):
        with pytest.raises(ChainError):
            _registration_times(bad, count)


@pytest.mark.parametrize(
    ("rows", "first", "sizes"),
    [
        (10_000, 480, [480, 960, 1920, 2000, 2000, 2000, 640]),
        (700, 480, [480, 220]),
        (5, 480, [5]),
        (4_500, None, [2000, 2000, 500]),
        (6_000, 5_000, [2000, 2000, 2000]),
    ],
)
def test_windows_start_at_one_transaction_double_up_to_the_window_and_keep_every_row_in_order(
    rows: int, first: int | None, sizes: list[int]
) -> None:
    """The first window holds one transaction's rows (so the chain gets it sooner), the
    next ones double up to the window size; no row is lost, repeated or moved."""
    from ledger.bulk import windows

    gtin = complete_gtin("950600013440")
    batches = (BatchCreate(gtin=gtin, lot=f"W{i}", quantity=1 + i, unit="KGM", product="Coffee") for i in range(rows))
    made = list(windows(batches, 2000, first=first))
    assert [len(window) for window in made] == sizes
    assert [row.index for window in made for row in window] == list(range(rows))
    assert [row.batch.lot for window in made for row in window] == [f"W{i}" for i in range(rows)]
