"""The shapes of the web app's JSON answers, as pydantic models: the OpenAPI document
(/openapi.json, /docs) describes every answer with them, and the auditor's routes are
validated and serialised through them.

Written from what the routes return (the read model in `ledger.queries`, `api.views`,
`ledger.audit`, `ledger.verify`), not the other way round: a model never drops a key
(`extra="allow"`), and routes serialise with `response_model_exclude_unset=True`, so a
key a route leaves out (a lineage leaf has no `inputs`) stays out. The API tests check
that real answers carry no key these models do not name.

Text from metadata documents (`product`, `origin`, document names) is typed `DocumentText`:
those documents are anyone's JSON, anchored by hash only, so a field this ledger's client
always writes as text may be any JSON value in a document someone else wrote.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel, WithJsonSchema

Address = str
"""A checksummed 0x address (40 hex digits)."""

#: A field of a metadata document: text when this ledger's client wrote the document.
DocumentText = Annotated[
    JsonValue,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {"type": "null"},
                {"description": "Any other JSON value, from a document someone else wrote"},
            ]
        }
    ),
]

ClaimStatus = Literal["valid", "not_yet_valid", "expired", "revoked", "issuer_not_accredited"]
BatchStatus = Literal["active", "consumed", "voided"]
RecallState = Literal["none", "recalled", "upheld", "withdrawn"]
IndexPosition = Literal["following", "ahead", "behind"]
#: A claim on the product page, judged when its lot was traded and now (api.views.CLAIM_STATES).
ClaimState = Literal[
    "valid", "expired_since", "revoked_since", "not_accredited_since", "self_declared", "not_yet_valid", "expired",
    "not_accredited", "revoked",
]  # fmt: skip
SeverityName = Literal["info", "low", "medium", "high", "critical"]


class ApiModel(BaseModel):
    """Every answer's base: unknown keys are kept, never dropped (see the module's doc)."""

    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------------------- errors


class ValidationIssue(ApiModel):
    """One thing wrong with a request's parameters."""

    loc: list[str | int] = Field(description="Where: `path`, `query`… then the parameter's name")
    msg: str
    type: str = Field(description="Pydantic's error type, e.g. `string_pattern_mismatch`")


class Problem(ApiModel):
    """An error, as `api.errors.error_response` writes it for programs."""

    detail: str | list[ValidationIssue] = Field(
        description="What is wrong: a sentence, or (422 on parameters) one entry per parameter"
    )
    hint: str | None = Field(default=None, description="What to do about it (present only when there is advice)")


class LinkTypeProblem(Problem):
    """The resolver has no such link type for the lot (404)."""

    available: list[str] = Field(description="The link types it serves")


#: What a route's `responses=` takes: status -> OpenAPI response (a `model`, `content`...).
Responses = dict[int | str, dict[str, Any]]


def problem(description: str, model: type[Problem] = Problem) -> dict[str, Any]:
    """A documented error response (for a route's `responses=`)."""
    return {"model": model, "description": description}


INVALID: Responses = {422: problem("A parameter is not valid")}
NOT_FOUND: Responses = {404: problem("Not in the index")}
UNAVAILABLE: Responses = {503: problem("The index is empty, or the chain could not be read")}


# ---------------------------------------------------------------------------- batches


class BatchSummary(ApiModel):
    """A batch as the index's `batches` table holds it, with its product name."""

    batch_id: str = Field(description="keccak256(uint64 GTIN ‖ bytes20 lot), 0x + 64 hex")
    gtin: str = Field(description="GTIN-14")
    lot: str
    supplier: Address = Field(description="Who registered the batch")
    custodian: Address = Field(description="Who holds it now")
    pending_custodian: Address | None = Field(description="Offered to, not yet accepted")
    registered_quantity: int
    remaining_quantity: int = Field(description="What transformations have not consumed")
    unit: str = Field(description="UN/ECE Recommendation 20 unit code")
    metadata_hash: str = Field(description="sha256 of the metadata document, 0x + 64 hex")
    status: BatchStatus
    recalled: bool = Field(description="Recalled and not withdrawn on review")
    recalled_at: int | None
    recall_state: RecallState
    recalled_by: Address | None
    recall_reason: str | None
    recall_reason_hash: str | None
    recall_tx_hash: str | None
    reviewed_at: int | None
    reviewed_by: Address | None
    review_reason: str | None
    review_tx_hash: str | None
    voided_at: int | None
    voided_by: Address | None
    void_reason: str | None
    void_tx_hash: str | None
    transformation_id: str | None = Field(description="The transformation that made it, if any")
    registered_at: int = Field(description="Unix time of the registration's block")
    block_number: int = Field(description="Block of the registration")
    product: DocumentText = Field(description="Product name from the metadata document (null when it is not this batch's)")


class Batch(BatchSummary):
    """One batch with its details, the names of the organisations involved, and which
    reasons were not valid UTF-8."""

    details_status: Literal["ok", "mismatch", "missing"] = Field(
        description="ok: the metadata document names this GTIN and lot; mismatch: it names another lot (nothing of it is "
        "shown); missing: the document is not held here"
    )
    details_problem: str | None
    origin: DocumentText = Field(description="From the metadata document")
    documents: JsonValue = Field(description="Documents the metadata names ({name, sha256} each)")
    declared_claims: JsonValue = Field(description="Claims the supplier declares itself (not attested)")
    supplier_name: str | None
    custodian_name: str | None
    recalled_by_name: str | None
    reviewed_by_name: str | None
    voided_by_name: str | None
    invalid_utf8: list[str] = Field(description="Reason columns whose bytes on chain were not valid UTF-8")


class BatchPage(ApiModel):
    """A page of batches, newest first."""

    items: list[BatchSummary]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last page")


class HistoryEvent(ApiModel):
    """A ledger event with its proof."""

    name: str = Field(description="Contract event name, e.g. BatchRegistered")
    batch_id: str | None
    lot: str | None
    gtin: str | None
    actor: Address | None
    actor_name: str | None = Field(description="The organisation's approved name now")
    actor_name_then: str | None = Field(description="Its approved name when the event happened")
    args: dict[str, Any] = Field(description="The event's decoded arguments")
    tx_hash: str
    block_number: int
    log_index: int
    timestamp: int


class BatchHistory(ApiModel):
    """The batch and its events (and its ancestors'), in chain order."""

    batch: Batch
    events: list[HistoryEvent]


class LineageNode(ApiModel):
    """A lot in a lineage tree. A lot the index does not know has only `batch_id`."""

    batch_id: str
    gtin: str | None = None
    lot: str | None = None
    supplier: Address | None = None
    supplier_name: str | None = None
    quantity: int | None = Field(default=None, description="Registered quantity")
    unit: str | None = None
    recalled: bool | None = None
    status: BatchStatus | None = None
    product: DocumentText = None
    quantity_used: int | None = Field(default=None, description="Up: how much of this input went into its child")
    transformation_id: str | None = Field(default=None, description="Up: what made this lot; down: what made it from its parent")
    inputs: list[LineageNode] | None = Field(default=None, description="Up: the inputs (absent on a leaf)")
    outputs: list[LineageNode] | None = Field(default=None, description="Down: lots made from this one (absent on a leaf)")


class Lineage(ApiModel):
    """A lineage tree, up (inputs) or down (descendants)."""

    direction: Literal["up", "down"]
    depth: int
    tree: LineageNode


# ---------------------------------------------------------------------------- claims


class Claim(ApiModel):
    """An attestation and its status at a time."""

    uid: str
    issuer: Address
    subject_kind: Literal["batch", "actor"]
    subject: str = Field(description="Batch id, or the organisation's address left-padded to 32 bytes")
    claim: str = Field(description="Claim type, e.g. ORGANIC")
    valid_from: int
    valid_until: int = Field(description="Unix time; 0: no end")
    evidence_hash: str
    attested_at: int
    revoked_at: int | None
    revoked_by: Address | None
    revocation_reason_hash: str | None
    revocation_reason: str | None
    tx_hash: str | None
    revoked_tx_hash: str | None
    status: ClaimStatus = Field(description="At the time asked about")
    issuer_name: str | None
    revoked_by_name: str | None
    revocation_reason_invalid_utf8: bool
    traded_at: int | None = Field(default=None, description="Its subject's time of trade, when judged then")
    status_at_trade: ClaimStatus | None = Field(default=None, description="At its subject's time of trade, when asked")


class ClaimAt(Claim):
    """One attestation with the time its status is for."""

    at: int


class ActorClaims(ApiModel):
    """Claims about an organisation."""

    at: int = Field(description="The time the statuses are for")
    claims: list[Claim]


class BatchClaims(ActorClaims):
    """Claims about a batch, and how much of its raw material carries each claim."""

    coverage: dict[str, float] = Field(description="Claim -> share (0..1) of the raw-material input validly carrying it")


# ---------------------------------------------------------------------------- organisations


class Licence(ApiModel):
    """A licence to GS1 identifiers."""

    granted_event: str = Field(description="<tx hash>:<log index>")
    key: int = Field(description="(prefix << 4) | prefix_length")
    prefix_length: int = Field(description="4..12 digits, or 14 for one GTIN")
    prefix: str
    licensee: Address
    grantor: Address
    parent_key: int = Field(description="0 for a root licence")
    granted_block: int
    granted_tx: str
    granted_at: int
    withdrawn_block: int | None
    withdrawn_tx: str | None
    withdrawn_at: int | None
    withdrawn_by: Address | None
    lapsed_at: int | None = Field(description="A sub-licence whose root licence was withdrawn")
    in_force: bool
    licensee_name: str | None
    grantor_name: str | None
    withdrawn_by_name: str | None
    sub_licence: bool


class LicenceList(ApiModel):
    """Licences in grant order."""

    items: list[Licence]


class Actor(ApiModel):
    """A registered organisation."""

    address: Address
    actor_id: int = Field(description="Registration number")
    name: str = Field(description="The name the admin approved last")
    country: str = Field(description="ISO 3166-1 alpha-2")
    metadata_hash: str
    active: bool
    registered_at: int


class ProfileRequest(ApiModel):
    """A profile change the organisation asked for; never shown as its name."""

    name: str
    country: str | None
    metadata_hash: str | None
    at: int | None
    name_invalid_utf8: bool


class ActorDetail(Actor):
    """An organisation with its roles and licences."""

    name_invalid_utf8: bool
    supplier: bool = Field(description="Holds the supplier role")
    accredited_claims: list[str] = Field(description="Claim types it may attest")
    pending_profile_request: ProfileRequest | None
    licences: list[Licence]


class ActorPage(ApiModel):
    """A page of organisations in registration order."""

    items: list[Actor]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last page")


# ---------------------------------------------------------------------------- transactions, index, audit


class TransactionEvent(ApiModel):
    """A ledger event of one transaction."""

    name: str
    batch_id: str | None
    actor: Address | None
    actor_name: str | None
    args: dict[str, Any]
    tx_hash: str
    block_number: int
    block_hash: str
    log_index: int
    timestamp: int


class Transaction(ApiModel):
    """What one transaction recorded on the ledger."""

    tx_hash: str
    block_number: int
    block_hash: str
    timestamp: int
    events: list[TransactionEvent]


class Freshness(ApiModel):
    """How fresh the index is, from the store alone (no chain call)."""

    indexed_block: int | None
    indexed_block_time: int | None
    head_seen: int | None = Field(description="The chain head the last sync saw")
    checked_at: int | None = Field(description="When that sync ran (unix time)")
    blocks_behind: int | None


class SetAsideEvent(ApiModel):
    """An event the indexer could not decode or apply."""

    tx_hash: str
    log_index: int
    block_number: int
    name: str = Field(description="The event's name, or its topic 0 when unknown")
    stage: Literal["decode", "apply"]
    reason: str


class SetAsideList(ApiModel):
    """Events set aside, the newest first."""

    count: int
    items: list[SetAsideEvent]


class IndexStatus(Freshness):
    """Where the index stands."""

    contract: Address | None
    chain_id: int | None
    status: Literal["ok", "degraded"] = Field(description="degraded: events were set aside, the index may be incomplete")
    set_aside: SetAsideList


class EventRef(ApiModel):
    """An event behind a finding."""

    name: str
    tx_hash: str
    block_number: int
    log_index: int
    timestamp: int


class Finding(ApiModel):
    """One thing that looks wrong."""

    check: str = Field(description="Which check, e.g. recall_reach")
    severity: SeverityName
    title: str
    explanation: str
    batch_id: str | None
    lot: str | None
    gtin: str | None
    related_batches: list[str]
    events: list[EventRef]
    actor: Address | None = Field(description="The organisation the finding is about, when not a lot")


class AuditReport(ApiModel):
    """Findings, most severe first."""

    scope: str = Field(description="`all`, or the batch id audited")
    findings: list[Finding]


class ChainEvent(ApiModel):
    """An event as the chain holds it: its raw log beside the decoded arguments."""

    name: str
    args: dict[str, Any]
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    topics: list[str]
    data: str


class BundleDocument(ApiModel):
    """A document the bundle's events anchor."""

    role: Literal["metadata", "evidence"]
    sha256: str
    batch_id: str | None = None
    attestation: str | None = None


class ProofBundle(ApiModel):
    """A self-contained proof of a lot's history, read from the chain: check it with
    `provenance verify --bundle FILE --rpc URL`."""

    format: str = Field(description="provenance-ledger/proof/1")
    chain_id: int
    contract: Address
    batch_id: str
    gtin: str | None
    lot: str | None
    from_block: int
    as_of_block: int
    as_of_block_hash: str
    lineage: list[str] = Field(description="Batch ids of the lot and its ancestors")
    events: list[ChainEvent]
    documents: list[BundleDocument]
    created_at: int


# ---------------------------------------------------------------------------- documents


class DocumentStored(ApiModel):
    """A document accepted (201) or already held (200)."""

    sha256: str = Field(description="64 hex digits, no 0x")
    cid: str = Field(description="Raw CIDv1 of the sha256 (IPFS)")
    anchored_as: str = Field(description="What the ledger anchors it as, e.g. batch metadata")
    size: int


# ---------------------------------------------------------------------------- /healthz


class ChainHealth(ApiModel):
    """The chain as /healthz saw it."""

    rpc_url: str
    reachable: bool
    head: int | None


class IndexHealth(ApiModel):
    """The index against the chain."""

    block: int | None = Field(description="The index's cursor")
    lag_blocks: int | None
    ahead_blocks: int | None
    position: IndexPosition | None = Field(description="null when the chain or the index cannot be compared")
    head_seen: int | None
    checked_at: int | None
    set_aside: int = Field(description="Events the indexer set aside")
    database_reachable: bool


class Health(ApiModel):
    """Health: 200 when `ok` or `degraded`, 503 when `unhealthy`."""

    status: Literal["ok", "degraded", "unhealthy"]
    problems: list[str]
    warnings: list[str]
    chain: ChainHealth
    index: IndexHealth


# ---------------------------------------------------------------------------- the product page as JSON


class DigitalLinkParts(ApiModel):
    """The GS1 Digital Link's keys."""

    gtin: str
    lot: str
    serial: str | None


class DocumentLink(ApiModel):
    """A document the chain anchors, as a page links it."""

    name: DocumentText
    sha256: str
    available: bool = Field(description="Served here (href), else only its holder has it")
    holder: str | None
    href: str | None


class Voiding(ApiModel):
    """Why and when a lot was voided."""

    by: str | None
    at: int | None
    reason: str | None
    tx_hash: str | None
    reason_note: str | None


class Producer(ApiModel):
    """The supplier."""

    address: Address
    name: str | None
    country: str | None
    active: bool | None
    name_note: str | None = Field(description="Set when the name's bytes on chain were not valid UTF-8")


class Custodian(ApiModel):
    """Who holds the lot."""

    address: Address
    name: str | None


class LotSummary(ApiModel):
    """A lot of the lineage, as a page lists it."""

    batch_id: str
    gtin: str | None
    lot: str | None
    product: DocumentText
    origin: DocumentText
    supplier: Address | None
    supplier_name: str | None
    quantity: int | None
    unit: str | None
    recalled: bool
    voided: bool
    details_status: str | None


class OriginLot(LotSummary):
    """A raw-material lot and its share of the product's input."""

    share: float


class AffectedLot(ApiModel):
    """A lot a recall reaches: the recalled lot or one made from it."""

    batch_id: str
    gtin: str | None
    lot: str | None
    product: DocumentText


class RecalledLot(LotSummary):
    """A recalled lot of the lineage, with the notice a shopper reads."""

    is_this_lot: bool
    headline: str = Field(description="The recall document's notice, else 'Recall of <product> (lot <lot>)'")
    what_to_do: str = Field(description="The recall document's advice, else: return it to the shop for a refund")
    contact: str | None = Field(description="Whom to contact: the recall document's contact, else the product's maker")
    notice_url: str | None = Field(description="The official notice (http or https only)")
    affected_lots: list[AffectedLot] = Field(description="The recalled lot, then the lots made from it downstream")
    recalled_at: int | None
    tx_hash: str | None
    recalled_by: str | None
    reason: str | None
    reason_hash: str | None
    state: str | None
    reviewed_by: str | None
    review_reason: str | None
    reviewed_at: int | None
    review_tx_hash: str | None
    reason_note: str | None
    review_reason_note: str | None


class JourneyEntry(ApiModel):
    """A step of the customer's timeline."""

    event: str
    title: str
    timestamp: int
    tx_hash: str
    block_number: int
    log_index: int
    lot: str | None
    gtin: str | None
    product: DocumentText
    who: str | None
    where: DocumentText = Field(description="The step's location, or the lot's origin")
    detail: str | None
    text_note: str | None
    step: str | None = Field(
        default=None, description="The CBV business step (StepRecorded) or transformation kind (TransformationRecorded)"
    )
    recall: bool | None = Field(default=None, description="Present (true) on a recall")


class StageLot(ApiModel):
    """A lot a journey stage names, linked to its own page."""

    product: DocumentText
    lot: str
    who: str | None
    href: str | None = Field(description="The lot's page (Digital Link path); None when the index lacks the lot")


class JourneyStage(ApiModel):
    """A stage of the journey in plain words, summing up records of the full log."""

    kind: Literal["grown", "moved", "blended", "split", "processed", "packed", "recalled", "voided", "step"]
    title: str = Field(description='In words: "Grown and harvested", "Gathered by ...", "Blended", "Roasted", "Packed" ...')
    started_at: int
    ended_at: int
    places: list[str]
    who: list[str]
    lots: list[StageLot]
    detail: str | None = Field(description="What went in and came out, for a blend or a processing")
    records: int = Field(description="How many entries of the journey's full log the stage sums up")


class PageClaim(ApiModel):
    """A claim as the page shows it: attested, or self-declared by the supplier."""

    claim: str
    claim_name: str
    status: ClaimStatus | Literal["self_declared"] = Field(description="At the page's time (as status_now)")
    status_label: str
    status_at_trade: ClaimStatus | Literal["self_declared"] = Field(description="When its lot was traded (traded_at)")
    status_now: ClaimStatus | Literal["self_declared"]
    traded_at: int | None = Field(description="Its subject's time of trade (an organisation: its latest lot's)")
    state: ClaimState = Field(description="What the page shows: the status at trade, and what changed since")
    state_label: str
    verdict: str = Field(description='In words: "valid", "valid when traded; has since expired", ...')
    issuer: Address
    issuer_name: str | None
    valid_from: int | None
    valid_until: int | None
    uid: str | None
    tx_hash: str | None
    revoked_at: int | None
    revoked_tx_hash: str | None
    revocation_reason: str | None
    revoked_by_name: str | None
    revocation_reason_note: str | None
    evidence_hash: str | None
    attested_at: int | None = Field(default=None, description="Attested claims only")
    about: str
    about_kind: Literal["batch", "organisation"]
    subject_lot: str | None
    evidence: DocumentLink | None
    also_attested: bool | None = Field(default=None, description="Self-declared claims only: a valid attestation says the same")


class Accreditation(ApiModel):
    """One period a certifier was accredited for a claim type."""

    since: int
    until: int | None
    by: str | None = Field(description='Who granted it, by name ("the ledger\'s admin")')
    tx_hash: str = Field(description="The grant's transaction (its proof page is /proof/{tx_hash})")


class Certifier(ApiModel):
    """A certifier behind a claim type's certificates, with its accreditations for it."""

    issuer: str
    name: str
    accreditations: list[Accreditation]


class ClaimExplainer(ApiModel):
    """What a claim type means, in the page's language, and who vouches for it."""

    text: str | None = Field(description="The admin's explainer text; None when the claim type has none")
    scheme_url: str | None = Field(description="The scheme's official site (https)")
    certifiers: list[Certifier]


class ClaimGroup(ApiModel):
    """One claim type on the page: its coverage, its best state and the claims under it."""

    claim: str
    claim_name: str
    coverage: float | None = Field(description="Share of the raw materials it covered when traded; None: self-declared only")
    state: ClaimState
    state_label: str
    claims: list[PageClaim]
    explainer: ClaimExplainer


class MapCountry(ApiModel):
    """One country drawn on the origin map."""

    code: str = Field(description="ISO 3166-1 alpha-2")
    name: str = Field(description="In the page's language")
    role: Literal["grown", "processed"]
    path: str = Field(description="SVG path data in the map's frame")
    dot: list[int] = Field(description="x, y of the country's dot")


class OriginMap(ApiModel):
    """The inline SVG map of the countries the lot's lineage went through."""

    width: int
    height: int
    land: str = Field(description="SVG path data of the land around, for context")
    countries: list[MapCountry]
    dot_radius: int
    grown: list[str] = Field(description="Names of the countries the raw materials were grown in")
    processed: list[str] = Field(description="Names of the countries the product was processed in")


class ClaimCoverage(ApiModel):
    """The share of the raw-material input that carries a claim."""

    claim: str
    claim_name: str
    share: float


class PageProof(Freshness):
    """Which ledger the page reads, and how fresh its index is."""

    chain_id: int
    contract: Address | None


class Verdict(ApiModel):
    """What the first screen says beside one chip per claim group."""

    places: list[str] = Field(description="Regions and countries of the raw lots' origins, in plain words")
    origin_lots: int = Field(description="How many raw (origin) lots went in")
    producers: int = Field(description="How many producers (farms) registered those lots")
    recall_headline: str = Field(description="'No recall', or the headline of the recall notice")


class ProductPage(ApiModel):
    """Everything the product page shows, as data (`Accept: application/json`)."""

    url: str
    digital_link: DigitalLinkParts
    batch_id: str
    product: DocumentText
    gtin: str
    lot: str
    quantity: int
    remaining_quantity: int
    unit: str
    quantity_text: str
    status: BatchStatus
    voided: Voiding | None
    details_status: Literal["ok", "mismatch", "missing"] | None
    details_problem: str | None
    origin: DocumentText
    registered_at: int
    registration_tx: str | None
    producer: Producer
    custodian: Custodian
    documents: list[DocumentLink]
    recalled: list[RecalledLot]
    origins: list[OriginLot]
    stages: list[JourneyStage] = Field(description="The journey in plain stages; `journey` holds every record")
    journey: list[JourneyEntry]
    claims: list[PageClaim]
    claim_groups: list[ClaimGroup]
    origin_map: OriginMap | None = Field(description="None when no country is known or no atlas is installed")
    verdict: Verdict
    coverage: list[ClaimCoverage] = Field(description="Each raw lot judged at its time of trade")
    proof: PageProof
    at: int


class LinkTypeDocument(ApiModel):
    """What every GS1 link type document starts with."""

    linkType: str  # noqa: N815 - the GS1 resolver's own key
    anchor: str
    batch_id: str
    gtin: str
    lot: str


class CertificationInfo(LinkTypeDocument):
    """linkType=gs1:certificationInfo."""

    linkType: Literal["gs1:certificationInfo"]  # noqa: N815
    claims: list[PageClaim]
    coverage: list[ClaimCoverage]


class Traceability(LinkTypeDocument):
    """linkType=gs1:traceability."""

    linkType: Literal["gs1:traceability"]  # noqa: N815
    origins: list[OriginLot]
    journey: list[JourneyEntry]
    proof: PageProof
    history: str = Field(description="The auditor API's full history of the lot")


class RecallStatus(LinkTypeDocument):
    """linkType=gs1:recallStatus."""

    linkType: Literal["gs1:recallStatus"]  # noqa: N815
    recalled: bool
    recalls: list[RecalledLot]


class LinkTarget(ApiModel):
    """One link of a link set."""

    href: str
    title: DocumentText
    type: str


class Linkset(ApiModel):
    """RFC 9264 link set of the lot (linkType=all): one entry with `anchor` and one key
    per GS1 link type (https://gs1.org/voc/…) listing its links."""

    linkset: list[dict[str, str | list[LinkTarget]]]


class ResolverAnswer(RootModel[ProductPage | CertificationInfo | Traceability | RecallStatus | Linkset]):
    """What the resolver answers in JSON: the page's data (`Accept: application/json`), a
    link type's document (`?linkType=gs1:…`), or the link set (`?linkType=all`, served as
    application/linkset+json)."""


# ---------------------------------------------------------------------------- shoppers' feedback


class FeedbackSummary(ApiModel):
    """What a lot's (or product's) comments still shown add up to (hidden ones apart)."""

    comments: int
    ratings: int
    average_rating: float | None = Field(description="Mean of the ratings (1-5), two decimals; null without ratings")
    distribution: dict[str, int] = Field(description='Ratings by stars, "5" to "1"')
    questions: int
    questions_answered: int = Field(description="Questions with at least one reply from the maker")
    hidden: int = Field(description="Comments the maker hid (each leaves a tombstone)")


class FeedbackTombstone(ApiModel):
    """Where a comment was hidden: by whom, when, why (entry `sequence` is the hide)."""

    sequence: int
    by: Address
    by_name: str
    at: int
    reason: str


class FeedbackReply(ApiModel):
    """The maker's public answer (entry `sequence`), signed by `by`."""

    sequence: int
    by: Address
    by_name: str
    at: int
    text: str


class FeedbackComment(ApiModel):
    """A shopper's comment (entry `sequence`), or its tombstone when hidden."""

    sequence: int
    at: int
    hidden: FeedbackTombstone | None
    rating: int | None
    text: str | None
    question: bool
    replies: list[FeedbackReply]


class Feedback(ApiModel):
    """A lot's or product's feedback, with a form token for posting (lots only)."""

    summary: FeedbackSummary
    comments: list[FeedbackComment]
    form_token: str | None = Field(
        default=None, description="Send it back with POST /api/v1/feedback (not sooner than the minimum fill time)"
    )


class FeedbackPost(ApiModel):
    """A shopper's rating and/or comment or question on a lot. Nothing personal is asked or kept."""

    batch_id: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    token: str = Field(max_length=64, description="`form_token` of GET /api/v1/batches/{batch_id}/feedback")
    rating: int | None = Field(default=None, ge=1, le=5)
    text: str = Field(default="", max_length=20_000)
    question: bool = False
    website: str = Field(default="", max_length=200, description="Leave empty (a field only programs fill in)")


class FeedbackPosted(ApiModel):
    """The entry appended to the log."""

    sequence: int
    entry_hash: str
    content_hash: str
    page: str = Field(description="The lot's page, at the comment")


class FeedbackLogEntry(ApiModel):
    """One entry of the public log: enough to recompute every hash (see ledger.feedback.chain)."""

    sequence: int
    kind: Literal["comment", "reply", "hide"]
    content: dict[str, JsonValue] | None = Field(description="The hashed content (null once erased: its hash stays)")
    content_hash: str
    entry_hash: str


class FeedbackLog(ApiModel):
    """A page of the feedback log and its head."""

    entries: list[FeedbackLogEntry]
    head: str
    count: int
    next_after: int | None = Field(description="Pass as `after` for the next page; null at the end")
