"""The read model: what the API and the CLI ask of the index. Never calls the chain.

Every event returned carries its transaction hash, block number, log index and time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, text

from ledger.conversions import AccreditationPeriod, Moment, accredited_at, end_of_second, subject_key
from ledger.documents import DocumentStore
from ledger.identifiers import batch_id as derive_batch_id
from ledger.indexer import schema
from ledger.indexer.decoding import INVALID_TEXT, INVALID_TEXT_NOTE  # noqa: F401 - INVALID_TEXT_NOTE is part of the read model's vocabulary
from ledger.indexer.handlers import DEFAULT_ADMIN_ROLE, SUPPLIER_ROLE
from ledger.indexer.store import IndexFreshness, IndexStore, SetAside
from ledger.models import metadata_mismatch
from ledger.records import (
    Actor,
    ActorDetail,
    Attestation,
    Batch,
    BatchListing,
    BatchRow,
    Claim,
    CustodyTransferAccepted,
    EventRecord,
    HistoryEvent,
    Licence,
    LineageNode,
    LotSummary,
    ProfileRequest,
    TransactionEvent,
    TransformationRecorded,
    event_data,
)

#: How pages name the admin when it acts without being a registered organisation.
ADMIN_NAME = "the ledger's admin"

DEFAULT_DEPTH = 32

#: What readers say next to chain text whose bytes were not valid UTF-8 (see ledger.indexer.decoding).


# child -> its transformation's inputs, recursively up to :depth levels.
_ANCESTORS = text(
    """
    WITH RECURSIVE up(child, tid, parent, quantity, position, depth) AS (
        SELECT b.batch_id, ti.transformation_id, ti.batch_id, ti.quantity, ti.position, 1
        FROM batches b JOIN transformation_inputs ti ON ti.transformation_id = b.transformation_id
        WHERE b.batch_id = :batch_id
        UNION ALL
        SELECT b.batch_id, ti.transformation_id, ti.batch_id, ti.quantity, ti.position, up.depth + 1
        FROM up
        JOIN batches b ON b.batch_id = up.parent
        JOIN transformation_inputs ti ON ti.transformation_id = b.transformation_id
        WHERE up.depth < :depth
    )
    SELECT child, tid, parent, quantity, position FROM up
    """
)


DETAILS_PROBLEMS = {
    "mismatch": "The details registered for this lot do not match it: the document its registration points to "
                "describes another product lot, so none of it is shown.",
    "missing": "The details of this lot (its metadata document) are not available here.",
}  # fmt: skip


#: Attestation subjects are 32 bytes: batch ids as they are, addresses left-padded.
_subject_key = subject_key


def claim_status(att: Attestation, at: int, periods: list[AccreditationPeriod]) -> str:
    """An attestation's status at `at`: revoked (from the revocation's time on),
    not_yet_valid, expired, issuer_not_accredited (per the issuer's accreditation periods
    for this claim type), else valid."""
    if att.revoked_at is not None and att.revoked_at <= at:
        return "revoked"
    if at < att.valid_from:
        return "not_yet_valid"
    if att.valid_until and at >= att.valid_until:
        return "expired"
    if not accredited_at(periods, end_of_second(at)):
        return "issuer_not_accredited"
    return "valid"


@dataclass
class ReadModel:
    """Queries over one index store (and the document store for product metadata)."""

    store: IndexStore
    documents: DocumentStore | None = None

    # ------------------------------------------------------------------ text that was not UTF-8

    def invalid_text(self, tx_hashes: set[str]) -> dict[tuple[str, str], list[str]]:
        """The `string` arguments that were not valid UTF-8 in the events of these
        transactions: (tx hash, event name) -> argument names. Empty for ordinary text."""
        wanted = {t for t in tx_hashes if t}
        if not wanted:
            return {}
        e = schema.events
        # Inside a JSON string value a quote is always escaped, so this pattern only
        # matches the key the decoder adds, never text that mentions it.
        marker = f'%"{INVALID_TEXT}":%'
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(e.c.tx_hash, e.c.name, e.c.args).where(e.c.tx_hash.in_(wanted), e.c.args.like(marker))
            ).all()
        found: dict[tuple[str, str], list[str]] = {}
        for tx_hash, name, args in rows:
            fields = json.loads(args).get(INVALID_TEXT) or []
            if fields:
                found.setdefault((tx_hash, name), []).extend(fields)
        return found

    def _invalid_columns(self, row: Any, pairs: dict[str, tuple[str, str]]) -> list[str]:
        """Which of `row`'s reason columns came from text that was not valid UTF-8; `pairs`
        maps a column to (the column holding its transaction hash, the event that set it)."""
        flagged = self.invalid_text({row[tx] for tx, _ in pairs.values() if row[tx]})
        return sorted(
            column for column, (tx, event) in pairs.items() if row[tx] and "reason" in flagged.get((row[tx], event), [])
        )

    def _invalid_names(self, address: str) -> tuple[bool, bool]:
        """Whether the organisation's approved name, and its pending requested name, were
        not valid UTF-8 (from the latest naming events)."""
        e = schema.events
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(e.c.name, e.c.args)
                .where(
                    e.c.actor == address, e.c.name.in_(("ActorRegistered", "ActorProfileUpdated", "ActorProfileUpdateRequested"))
                )
                .order_by(e.c.block_number, e.c.log_index)
            ).all()
        approved = requested = False
        for name, args in rows:
            bad = "name" in (json.loads(args).get(INVALID_TEXT) or [])
            if name == "ActorProfileUpdateRequested":
                requested = bad
            else:
                approved = bad
        return approved, requested

    # ------------------------------------------------------------------ actors

    def actor_names(self, addresses: set[str]) -> dict[str, str]:
        """Display names of organisations by address: the name the admin approved last
        (a pending rename request is never a name)."""
        if not addresses:
            return {}
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(schema.actors.c.address, schema.actors.c.name).where(schema.actors.c.address.in_(addresses))
            )
            return {address: name for address, name in rows}

    def admins(self, current: bool = False) -> set[str]:
        """Accounts that hold or held the ledger's admin role; only those holding it now
        with `current` (a revoked admin keeps its name on pages, not its powers)."""
        query = select(schema.accreditations.c.certifier).where(schema.accreditations.c.role == DEFAULT_ADMIN_ROLE)
        if current:
            query = query.where(schema.accreditations.c.revoked_at.is_(None))
        with self.store.engine.connect() as conn:
            return {address for (address,) in conn.execute(query)}

    def who(self, addresses: set[str]) -> dict[str, str]:
        """Who did something, as a page says it: the organisation's approved name, else
        "the ledger's admin" for an admin account, else the address itself."""
        addresses = {a for a in addresses if a}
        names = self.actor_names(addresses)
        admins = self.admins() if addresses - set(names) else set()
        return {a: names.get(a) or (ADMIN_NAME if a in admins else a) for a in addresses}

    def names_at(self, addresses: set[str]) -> dict[str, list[tuple[int, int, str]]]:
        """Every approved name of each organisation with where it took effect:
        address -> [(block, log index, name)] in chain order."""
        if not addresses:
            return {}
        n = schema.actor_names
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(n.c.address, n.c.block_number, n.c.log_index, n.c.name)
                .where(n.c.address.in_(addresses))
                .order_by(n.c.block_number, n.c.log_index)
            ).all()
        found: dict[str, list[tuple[int, int, str]]] = {}
        for address, block, log_index, name in rows:
            found.setdefault(address, []).append((block, log_index, name))
        return found

    @staticmethod
    def name_then(history: list[tuple[int, int, str]], block: int, log_index: int) -> str | None:
        """The name that held at (block, log index), from a `names_at` entry."""
        then = None
        for since_block, since_log, name in history:
            if (since_block, since_log) > (block, log_index):
                break
            then = name
        return then

    def licences(self, licensee: str | None = None, in_force: bool | None = None) -> list[Licence]:
        """Licences to GS1 identifiers in grant order (root licences and sub-licences),
        with the licensee's and grantor's names."""
        lic = schema.licences
        query = select(lic).order_by(lic.c.granted_block, lic.c.granted_event)
        if licensee:
            query = query.where(lic.c.licensee == licensee)
        if in_force is not None:
            query = query.where(lic.c.in_force == in_force)
        with self.store.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings().all()]
        names = self.who(
            {r["licensee"] for r in rows} | {r["grantor"] for r in rows} | {r["withdrawn_by"] for r in rows if r["withdrawn_by"]}
        )
        return [
            Licence(
                **r,
                licensee_name=names.get(r["licensee"]),
                grantor_name=names.get(r["grantor"]),
                withdrawn_by_name=names.get(r["withdrawn_by"]) if r["withdrawn_by"] else None,
                sub_licence=bool(r["parent_key"]),
            )
            for r in rows
        ]

    def set_aside(self, limit: int = 100) -> tuple[int, list[SetAside]]:
        """How many events the indexer set aside (could not decode or apply), the newest first."""
        return self.store.set_aside(limit)

    def actor(self, address: str) -> ActorDetail | None:
        """An organisation with its roles."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(schema.actors).where(schema.actors.c.address == address)).mappings().first()
            if row is None:
                return None
            supplier = conn.execute(
                select(func.count())
                .select_from(schema.roles)
                .where(and_(schema.roles.c.account == address, schema.roles.c.role == SUPPLIER_ROLE))
            ).scalar()
            claims = (
                conn.execute(
                    select(schema.claim_types.c.claim)
                    .join(schema.roles, schema.roles.c.role == schema.claim_types.c.role)
                    .where(schema.roles.c.account == address)
                )
                .scalars()
                .all()
            )
        data = dict(row)
        # A rename the admin has not approved is not the organisation's name: keep it apart.
        requested = {
            k.removeprefix("requested_"): data.pop(k)
            for k in ("requested_name", "requested_country", "requested_metadata_hash", "requested_at")
        }
        name_invalid, requested_invalid = self._invalid_names(address)
        pending = ProfileRequest(**requested, name_invalid_utf8=requested_invalid) if requested["name"] is not None else None
        return ActorDetail(
            **data,
            name_invalid_utf8=name_invalid,
            supplier=bool(supplier),
            accredited_claims=sorted(claims),
            pending_profile_request=pending,
            licences=self.licences(licensee=address),
        )

    def actors(self, limit: int = 50, offset: int = 0) -> list[Actor]:
        """Registered organisations, in registration order."""
        a = schema.actors
        columns = [c for c in a.columns if not c.name.startswith("requested_")]
        with self.store.engine.connect() as conn:
            rows = (
                conn.execute(select(*columns).order_by(a.c.registered_at, a.c.address).limit(limit).offset(offset))
                .mappings()
                .all()
            )
        return [Actor(**r) for r in rows]

    def freshness(self) -> IndexFreshness | None:
        """Where the index stands (cursor block, its time, head last seen and when)."""
        return self.store.freshness()

    # ------------------------------------------------------------------ batches

    def _metadata(self, metadata_hash: str) -> dict[str, Any]:
        """The stored document with this hash, unchecked ({} when absent or not JSON)."""
        if self.documents is None:
            return {}
        try:
            document = json.loads(self.documents.get(bytes.fromhex(metadata_hash[2:])))
        except (FileNotFoundError, ValueError):
            return {}
        return document if isinstance(document, dict) else {}

    def details(self, batch: BatchRow) -> tuple[str, dict[str, Any], str | None]:
        """A batch's metadata document, only if it is this batch's: ("ok", document, None),
        ("mismatch", {}, why) when the document names another GTIN or lot (anyone can anchor
        another lot's hash), or ("missing", {}, None) when the document is not in the store.
        The one place readers apply the rule (pages, API, audit)."""
        document = self._metadata(batch.metadata_hash)
        if not document:
            return "missing", {}, None
        problem = metadata_mismatch(document, batch.gtin, batch.lot)
        if problem:
            return "mismatch", {}, problem
        return "ok", document, None

    def _product(self, metadata_hash: str, gtin: str, lot: str) -> str | None:
        """The product name of a lot, only from a metadata document that names it."""
        document = self._metadata(metadata_hash)
        return document.get("product") if document and not metadata_mismatch(document, gtin, lot) else None

    def batch(self, batch_id: str) -> Batch | None:
        """A batch with its product data (only from a document that names this GTIN and
        lot), current custodian, remaining quantity, status, recall and voiding."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(schema.batches).where(schema.batches.c.batch_id == batch_id)).mappings().first()
        if row is None:
            return None
        stored = BatchRow.from_row(row)
        status, meta, _ = self.details(stored)
        names = self.actor_names(
            {a for a in (row["supplier"], row["custodian"], row["recalled_by"], row["reviewed_by"], row["voided_by"]) if a}
        )
        unnamed = {row[k] for k in ("recalled_by", "reviewed_by", "voided_by") if row[k] and row[k] not in names}
        admins = self.admins() if unnamed else set()

        def who(address: str | None) -> str | None:
            return None if not address else names.get(address) or (ADMIN_NAME if address in admins else address)

        return Batch(
            **stored.as_dict(),
            details_status=status,
            details_problem=DETAILS_PROBLEMS.get(status),
            product=meta.get("product"),
            origin=meta.get("origin"),
            documents=meta.get("documents", []),
            declared_claims=meta.get("claims", []),
            supplier_name=names.get(row["supplier"]),
            custodian_name=names.get(row["custodian"]),
            recalled_by_name=who(row["recalled_by"]),
            reviewed_by_name=who(row["reviewed_by"]),
            voided_by_name=who(row["voided_by"]),
            # Reasons whose bytes were not valid UTF-8 (shown with U+FFFD): readers add INVALID_TEXT_NOTE.
            invalid_utf8=self._invalid_columns(
                row,
                {
                    "recall_reason": ("recall_tx_hash", "BatchRecalled"),
                    "review_reason": ("review_tx_hash", "RecallReviewed"),
                    "void_reason": ("void_tx_hash", "BatchVoided"),
                },
            ),
        )

    def batch_by_gtin_lot(self, gtin: str, lot: str) -> Batch | None:
        """Lookup by GTIN + lot (the id is derived, as on chain)."""
        return self.batch("0x" + derive_batch_id(gtin, lot).hex())

    def lots_ignoring_case(self, gtin: str, lot: str) -> list[str]:
        """The lots of product `gtin` spelled like `lot` but for letter case, sorted: a
        shopper types "tp-b-1107-a" for "TP-B-1107-A". GS1 lots are ASCII (CSET 82), whose
        case both SQLite's and PostgreSQL's lower() fold alike."""
        b = schema.batches
        query = select(b.c.lot).where(b.c.gtin == gtin, func.lower(b.c.lot) == lot.lower()).order_by(b.c.lot)
        with self.store.engine.connect() as conn:
            return [row.lot for row in conn.execute(query)]

    def batches(
        self,
        supplier: str | None = None,
        gtin: str | None = None,
        status: str | None = None,
        recalled: bool | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[BatchListing]:
        """Batches by supplier, GTIN, status and registration time, newest first."""
        b = schema.batches
        query = select(b)
        for condition, clause in (
            (supplier, b.c.supplier == supplier),
            (gtin, b.c.gtin == gtin),
            (status, b.c.status == status),
            (recalled is not None, b.c.recalled == recalled),
            (since is not None, b.c.registered_at >= (since or 0)),
            (until is not None, b.c.registered_at < (until or 0)),
        ):
            if condition:
                query = query.where(clause)
        query = query.order_by(b.c.registered_at.desc(), b.c.batch_id).limit(limit).offset(offset)
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        stored = [BatchRow.from_row(r) for r in rows]
        return [BatchListing(**b.as_dict(), product=self.details(b)[1].get("product")) for b in stored]

    # ------------------------------------------------------------------ lineage

    def _parents(self, conn: Any, batch_ids: set[str]) -> dict[str, tuple[str, list[tuple[str, int]]]]:
        """For each batch made by a transformation: (transformation id, [(input, quantity)])."""
        b, ti = schema.batches, schema.transformation_inputs
        rows = conn.execute(
            select(b.c.batch_id, ti.c.transformation_id, ti.c.batch_id, ti.c.quantity)
            .join(ti, ti.c.transformation_id == b.c.transformation_id)
            .where(b.c.batch_id.in_(batch_ids))
            .order_by(ti.c.position)
        ).all()
        parents: dict[str, tuple[str, list[tuple[str, int]]]] = {}
        for child, tid, parent, quantity in rows:
            parents.setdefault(child, (tid, []))[1].append((parent, int(quantity)))
        return parents

    def _children(self, conn: Any, batch_ids: set[str]) -> dict[str, list[tuple[str, str]]]:
        ti, to = schema.transformation_inputs, schema.transformation_outputs
        rows = conn.execute(
            select(ti.c.batch_id, to.c.transformation_id, to.c.batch_id)
            .join(to, to.c.transformation_id == ti.c.transformation_id)
            .where(ti.c.batch_id.in_(batch_ids))
        ).all()
        children: dict[str, list[tuple[str, str]]] = {}
        for parent, tid, child in rows:
            if (tid, child) not in children.setdefault(parent, []):
                children[parent].append((tid, child))
        return children

    def ancestors(self, batch_id: str, depth: int = DEFAULT_DEPTH) -> dict[str, tuple[str, list[tuple[str, int]]]]:
        """Every ancestor link up to `depth` transformations: child -> (transformation, inputs).
        One recursive query, whatever the depth."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(_ANCESTORS, {"batch_id": batch_id, "depth": depth}).all()
        links: dict[str, tuple[str, list[tuple[str, int]]]] = {}
        for child, tid, parent, quantity, _position in sorted(set(rows), key=lambda r: (r[0], r[4])):
            links.setdefault(child, (tid, []))[1].append((parent, int(quantity)))
        return links

    def lineage_up(self, batch_id: str, depth: int = DEFAULT_DEPTH) -> LineageNode:
        """A tree of inputs: each node with the transformation that made it and its inputs,
        each input with the quantity it gave."""
        links = self.ancestors(batch_id, depth)
        summaries = self._summaries(set(links) | {p for _, ins in links.values() for p, _ in ins} | {batch_id})

        def node(bid: str, level: int, used: int | None) -> LineageNode:
            if bid in links and level < depth:
                tid, inputs = links[bid]
                return LineageNode(bid, summaries.get(bid), tid, used, tuple(node(p, level + 1, q) for p, q in inputs))
            return LineageNode(bid, summaries.get(bid), quantity_used=used)

        return node(batch_id, 0, None)

    def lineage_down(self, batch_id: str, depth: int = DEFAULT_DEPTH) -> LineageNode:
        """A tree of descendants: each node with its outputs, each output with the
        transformation that made it."""
        with self.store.engine.connect() as conn:
            links: dict[str, list[tuple[str, str]]] = {}
            frontier = {batch_id}
            for _ in range(depth):
                children = {k: v for k, v in self._children(conn, frontier).items() if k not in links}
                if not children:
                    break
                links.update(children)
                frontier = {c for kids in children.values() for _, c in kids}
        summaries = self._summaries(set(links) | {c for kids in links.values() for _, c in kids} | {batch_id})

        def node(bid: str, level: int, seen: frozenset[str], made_by: str | None) -> LineageNode:
            outputs = None
            if bid in links and level < depth:
                outputs = tuple(node(c, level + 1, seen | {c}, t) for t, c in links[bid] if c not in seen)
            return LineageNode(bid, summaries.get(bid), made_by, outputs=outputs)

        return node(batch_id, 0, frozenset({batch_id}), None)

    def _summaries(self, batch_ids: set[str]) -> dict[str, LotSummary]:
        b = schema.batches
        with self.store.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(
                        b.c.batch_id,
                        b.c.gtin,
                        b.c.lot,
                        b.c.supplier,
                        b.c.registered_quantity,
                        b.c.unit,
                        b.c.recalled,
                        b.c.metadata_hash,
                        b.c.status,
                    ).where(b.c.batch_id.in_(batch_ids))
                )
                .mappings()
                .all()
            )
        names = self.actor_names({r["supplier"] for r in rows})
        return {
            r["batch_id"]: LotSummary(
                batch_id=r["batch_id"],
                gtin=r["gtin"],
                lot=r["lot"],
                supplier=r["supplier"],
                supplier_name=names.get(r["supplier"]),
                quantity=int(r["registered_quantity"]),
                unit=r["unit"],
                recalled=r["recalled"],
                status=r["status"],
                product=self._product(r["metadata_hash"], r["gtin"], r["lot"]),
            )
            for r in rows
        }

    # ------------------------------------------------------------------ history and journey

    def history(self, batch_id: str, include_ancestors: bool = True, depth: int = DEFAULT_DEPTH) -> list[HistoryEvent]:
        """Every event of the batch (and of its ancestors), in chain order, with proof."""
        ids = {batch_id}
        transformation_ids: set[str] = set()
        if include_ancestors:
            for child, (tid, inputs) in self.ancestors(batch_id, depth).items():
                ids.add(child)
                ids.update(p for p, _ in inputs)
                transformation_ids.add(tid)
        with self.store.engine.connect() as conn:
            b = schema.batches
            transformation_ids.update(
                t for t in conn.execute(select(b.c.transformation_id).where(b.c.batch_id == batch_id)).scalars() if t
            )
            tx_hashes = (
                conn.execute(
                    select(schema.transformations.c.tx_hash).where(
                        schema.transformations.c.transformation_id.in_(transformation_ids)
                    )
                )
                .scalars()
                .all()
            )
            e = schema.events
            rows = (
                conn.execute(
                    select(e)
                    .where(or_(e.c.batch_id.in_(ids), and_(e.c.name == "TransformationRecorded", e.c.tx_hash.in_(tx_hashes))))
                    .order_by(e.c.block_number, e.c.log_index)
                )
                .mappings()
                .all()
            )
        actors = {r["actor"] for r in rows if r["actor"]}
        names = self.actor_names(actors)
        then = self.names_at(actors)
        lots = self._summaries(ids)
        events = []
        for r in rows:
            args = json.loads(r["args"])
            lot = lots.get(r["batch_id"] or "")
            events.append(
                HistoryEvent(
                    name=r["name"],
                    batch_id=r["batch_id"],
                    actor=r["actor"],
                    actor_name=names.get(r["actor"] or ""),
                    args=args,
                    tx_hash=r["tx_hash"],
                    block_number=r["block_number"],
                    log_index=r["log_index"],
                    timestamp=r["timestamp"],
                    data=event_data(r["name"], args),
                    lot=lot.lot if lot else None,
                    gtin=lot.gtin if lot else None,
                    # The organisation's approved name when the event happened (it may have been renamed since).
                    actor_name_then=self.name_then(then.get(r["actor"] or "", []), r["block_number"], r["log_index"]),
                )
            )
        return events

    def transaction_events(self, tx_hash: str) -> list[TransactionEvent]:
        """The ledger events one transaction emitted, with block, log index and time."""
        e = schema.events
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(e).where(e.c.tx_hash == tx_hash.lower()).order_by(e.c.log_index)).mappings().all()
        names = self.actor_names({r["actor"] for r in rows if r["actor"]})
        return [
            TransactionEvent(
                name=r["name"],
                batch_id=r["batch_id"],
                actor=r["actor"],
                actor_name=names.get(r["actor"] or ""),
                args=(args := json.loads(r["args"])),
                tx_hash=r["tx_hash"],
                block_number=r["block_number"],
                log_index=r["log_index"],
                timestamp=r["timestamp"],
                data=event_data(r["name"], args),
                block_hash=r["block_hash"],
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ claims

    def claims(self, subject: str, at: int) -> list[Claim]:
        """Attestations about a batch id or an actor address, each with its status at `at`:
        valid, not_yet_valid, expired, revoked, or issuer_not_accredited."""
        return self.claims_of([subject], at).get(_subject_key(subject), [])

    def attestation(self, uid: str, at: int) -> Claim | None:
        """One attestation by uid, with its status at `at`."""
        att = schema.attestations
        with self.store.engine.connect() as conn:
            subject = conn.execute(select(att.c.subject).where(att.c.uid == uid.lower())).scalar()
        if subject is None:
            return None
        return next((c for c in self.claims_of([subject], at).get(subject, []) if c.uid == uid.lower()), None)

    def claims_of(self, subjects: list[str], at: int, traded: Mapping[str, int] | None = None) -> dict[str, list[Claim]]:
        """`claims` for many subjects at once (two queries in all), by subject key. With
        `traded` (subject -> its time of trade, see `times_of_trade`), each claim of a
        subject in it is also judged at that time (never later than `at`): `traded_at`,
        `status_at_trade`."""
        keys = {_subject_key(s) for s in subjects}
        trade_at = {_subject_key(s): min(t, at) for s, t in (traded or {}).items()}
        att = schema.attestations
        with self.store.engine.connect() as conn:
            rows = (
                conn.execute(select(att).where(att.c.subject.in_(keys)).order_by(att.c.attested_at, att.c.uid)).mappings().all()
            )
        issuers = {r["issuer"] for r in rows}
        held = self.accreditation_periods(issuers) if issuers else {}
        names = self.actor_names(issuers)
        revokers = self.who({r["revoked_by"] for r in rows if r["revoked_by"]})
        flagged = self.invalid_text({r["revoked_tx_hash"] for r in rows if r["revoked_tx_hash"]})
        result: dict[str, list[Claim]] = {}
        for r in rows:
            stored = Attestation(**r)
            periods = held.get((r["issuer"], r["claim"]), [])
            traded_at = trade_at.get(r["subject"])
            bad_reason = "reason" in flagged.get((r["revoked_tx_hash"], "AttestationRevoked"), [])
            result.setdefault(r["subject"], []).append(
                Claim(
                    **dict(r),
                    status=claim_status(stored, at, periods),
                    issuer_name=names.get(r["issuer"]),
                    revoked_by_name=revokers.get(r["revoked_by"]) if r["revoked_by"] else None,
                    revocation_reason_invalid_utf8=bad_reason,
                    traded_at=traded_at,
                    status_at_trade=None if traded_at is None else claim_status(stored, traded_at, periods),
                )
            )
        return result

    def times_of_trade(self, batch_id: str, depth: int = DEFAULT_DEPTH) -> dict[str, int]:
        """When each lot of a product's lineage was traded, the time its claims are judged
        at (a certificate that expired after the goods changed hands still covered them):

        - an input lot: the block time it was first handed over to another party
          (CustodyTransferAccepted) or consumed into the next lot of the lineage (the
          TransformationRecorded that used it), whichever came first;
        - the product lot itself is absent: it is what the shopper is buying now, so its own
          claims are judged at the time asked (a certificate revoked today is revoked for it).

        Lot id -> unix time; a lot the index does not hold is absent."""
        links = self.ancestors(batch_id, depth)
        made_by = {tid for tid, _ in links.values()}
        inputs = {p for _, ins in links.values() for p, _ in ins}
        e, t = schema.events, schema.transformations
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(e.c.name, e.c.args, e.c.timestamp)
                .where(
                    or_(
                        and_(e.c.name == "CustodyTransferAccepted", e.c.batch_id.in_(inputs)),
                        and_(
                            e.c.name == "TransformationRecorded",
                            e.c.tx_hash.in_(select(t.c.tx_hash).where(t.c.transformation_id.in_(made_by))),
                        ),
                    )
                )
                .order_by(e.c.block_number, e.c.log_index)
            ).all()
        traded: dict[str, int] = {}
        for name, args, timestamp in rows:
            for lot in _lots_traded(event_data(name, json.loads(args)), made_by, inputs):
                traded.setdefault(lot, int(timestamp))  # chain order: the first time is kept
        return traded

    def claims_at_trade(self, batch_id: str, at: int, depth: int = DEFAULT_DEPTH) -> dict[str, list[Claim]]:
        """The claims about every lot of a product's lineage and about those lots'
        suppliers (by subject key), each judged at `at` (`status`) and at its time of trade
        (`status_at_trade`, see `times_of_trade`). An organisation's claims are judged at
        the time of trade of its latest lot in the lineage: the last moment they had to hold."""
        # The product lot itself is judged at `at`: it is being sold now.
        traded = {**self.times_of_trade(batch_id, depth), batch_id: at}
        b = schema.batches
        with self.store.engine.connect() as conn:
            suppliers = conn.execute(select(b.c.batch_id, b.c.supplier).where(b.c.batch_id.in_(set(traded)))).all()
        subjects: dict[str, int] = dict(traded)
        for lot, supplier in suppliers:
            subjects[supplier] = max(subjects.get(supplier, 0), traded[lot])
        return self.claims_of(list(subjects), at, subjects)

    def accreditation_periods(self, certifiers: set[str] | None = None) -> dict[tuple[str, str], list[AccreditationPeriod]]:
        """(certifier, claim type) -> every period it held that accreditation (of these
        certifiers; None: all), each bounded by chain moments (time, block, log index) so
        that `conversions.accredited_at` orders events of the same second as the chain did.
        Times come from the accreditations table; blocks and log indexes from the events
        that granted and withdrew the role."""
        acc, ct, e = schema.accreditations, schema.claim_types, schema.events
        query = select(acc.c.certifier, acc.c.role, ct.c.claim, acc.c.granted_event, acc.c.granted_at, acc.c.revoked_at).join(
            ct, ct.c.role == acc.c.role
        )
        revocations = select(e.c.actor, e.c.args, e.c.block_number, e.c.log_index).where(e.c.name == "RoleRevoked")
        if certifiers is not None:
            query = query.where(acc.c.certifier.in_(certifiers))
            revocations = revocations.where(e.c.actor.in_(certifiers))
        with self.store.engine.connect() as conn:
            grants = conn.execute(query.order_by(acc.c.granted_at)).all()
            grant_txs = {g.granted_event.split(":")[0] for g in grants}
            rows = (
                conn.execute(select(e.c.tx_hash, e.c.block_number).where(e.c.tx_hash.in_(grant_txs))).all() if grant_txs else []
            )
            blocks = {tx_hash: block for tx_hash, block in rows}
            withdrawn: dict[tuple[str, str], list[tuple[int, int]]] = {}
            for actor, args, block, log_index in conn.execute(revocations.order_by(e.c.block_number, e.c.log_index)):
                withdrawn.setdefault((actor, json.loads(args).get("role")), []).append((block, log_index))
        periods: dict[tuple[str, str], list[AccreditationPeriod]] = {}
        for g in grants:
            tx_hash, _, log_index = g.granted_event.partition(":")
            granted: Moment = (g.granted_at, blocks.get(tx_hash, 0), int(log_index or 0))
            revoked: Moment | None = None
            if g.revoked_at is not None:
                # The withdrawal is the first RoleRevoked of this role after the grant.
                after = next((p for p in withdrawn.get((g.certifier, g.role), []) if p > granted[1:]), (0, 0))
                revoked = (g.revoked_at, *after)
            periods.setdefault((g.certifier, g.claim), []).append(AccreditationPeriod(granted, revoked))
        return periods

    def attestation_rows(self) -> list[Attestation]:
        """Every attestation the index holds, as stored (the audit's claim checks)."""
        with self.store.engine.connect() as conn:
            return [Attestation(**r) for r in conn.execute(select(schema.attestations)).mappings().all()]

    def batch_rows(self) -> dict[str, BatchRow]:
        """Every batch as stored, by id (the audit replays the whole ledger)."""
        with self.store.engine.connect() as conn:
            return {r["batch_id"]: BatchRow.from_row(r) for r in conn.execute(select(schema.batches)).mappings()}

    def journal(self) -> list[EventRecord]:
        """Every event the index holds, in chain order, arguments decoded (no names)."""
        e = schema.events
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(e).order_by(e.c.block_number, e.c.log_index)).mappings().all()
        return [
            TransactionEvent(
                name=r["name"],
                batch_id=r["batch_id"],
                actor=r["actor"],
                actor_name=None,
                args=(args := json.loads(r["args"])),
                tx_hash=r["tx_hash"],
                block_number=r["block_number"],
                log_index=r["log_index"],
                timestamp=r["timestamp"],
                data=event_data(r["name"], args),
                block_hash=r["block_hash"],
            )
            for r in rows
        ]

    def first_event_block(self) -> int:
        """The block of the ledger's first indexed event (0 when none): where its events start."""
        e = schema.events
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.min(e.c.block_number))).scalar() or 0)

    def input_shares(self, batch_id: str, depth: int = DEFAULT_DEPTH) -> dict[str, float]:
        """The raw-material lots a product comes from (its lineage's leaves), each with its
        share of the input: quantities are attributed through each transformation in
        proportion to what each input gave. A lot made by no transformation is all itself."""
        links = self.ancestors(batch_id, depth)
        shares: dict[str, float] = {}

        def attribute(bid: str, weight: float, level: int) -> None:
            if bid in links and level < depth:
                _, inputs = links[bid]
                total = sum(q for _, q in inputs) or 1
                for parent, quantity in inputs:
                    attribute(parent, weight * quantity / total, level + 1)
            else:
                shares[bid] = shares.get(bid, 0.0) + weight

        attribute(batch_id, 1.0, 0)
        return shares

    def coverage(self, batch_id: str, at: int, depth: int = DEFAULT_DEPTH, at_trade: bool = False) -> dict[str, float]:
        """For each claim: the share of the product's raw-material input quantity that carries
        it validly (the raw lot itself or its supplier attested); see `input_shares`. Judged
        at `at`, or with `at_trade` at each raw lot's time of trade (`times_of_trade`, never
        later than `at`): a lot counts when its claim was valid when it was traded."""
        shares = self.input_shares(batch_id, depth)
        b = schema.batches
        with self.store.engine.connect() as conn:
            suppliers = dict(conn.execute(select(b.c.batch_id, b.c.supplier).where(b.c.batch_id.in_(set(shares)))).all())
        found = self.claims_of(list(shares) + list(set(suppliers.values())), at)
        traded = self.times_of_trade(batch_id, depth) if at_trade else {}
        periods = self.accreditation_periods({c.issuer for cs in found.values() for c in cs}) if at_trade else {}
        coverage: dict[str, float] = {}
        for root, share in shares.items():
            moment = min(traded.get(root, at), at)
            carried = found.get(_subject_key(root), []) + found.get(_subject_key(suppliers.get(root) or root), [])
            held = {
                c.claim
                for c in carried
                if (claim_status(c, moment, periods.get((c.issuer, c.claim), [])) if at_trade else c.status) == "valid"
            }
            for claim in held:
                coverage[claim] = coverage.get(claim, 0.0) + share
        return {claim: round(share, 6) for claim, share in sorted(coverage.items())}


def _lots_traded(event: Any, made_by: set[str], inputs: set[str]) -> list[str]:
    """The lineage's input lots an event trades: a hand-over to another party, or the
    transformation that consumed them into the next lot of the lineage."""
    match event:
        case CustodyTransferAccepted() as accepted if accepted.sender != accepted.to and accepted.batch_id in inputs:
            return [accepted.batch_id]
        case TransformationRecorded() as made if made.transformation_id in made_by:
            return [lot for lot, _ in made.inputs if lot in inputs]
    return []
