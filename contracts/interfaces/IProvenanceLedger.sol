// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IProvenanceLedger
/// @notice The provenance ledger records where goods come from: organisations (actors),
/// batches identified by GS1 GTIN + lot, custody hand-overs, business steps, transformations
/// (split, merge, processing), recalls, and attestations of ethical-sourcing claims by
/// accredited certifiers.
/// @dev Storage holds only what a rule needs to be enforced (custodian, quantities, status,
/// attestation validity). Every string and every document stays in events or off chain:
/// events carry everything an indexer needs to rebuild the full state without calls.
/// Organisations only: no person's data is ever written here.
interface IProvenanceLedger {
    // ------------------------------------------------------------------ types

    /// @notice What a transformation does to its inputs.
    enum TransformationKind {
        Split, // one input into one or more outputs (a lot divided, a partial repack)
        Merge, // two or more inputs into exactly one output (lots pooled at a cooperative)
        Processing // any inputs into any outputs that are different goods (roasting, baking)
    }

    /// @notice Whether a batch still has goods to move.
    enum BatchStatus {
        None, // never registered
        Active, // registered, some quantity remains
        Consumed, // every unit was consumed by transformations
        Voided // the admin voided it as registered in error; nothing can happen to it any more
    }

    /// @notice Where a batch stands with recalls.
    enum RecallState {
        None, // never recalled, or not since a withdrawn recall
        Recalled, // recalled by its supplier or the admin, not yet reviewed
        Upheld, // the admin reviewed the recall and upheld it (final)
        Withdrawn // the admin reviewed the recall and withdrew it; the batch may be used again
    }

    /// @notice What an attestation is about.
    enum SubjectKind {
        Batch, // subject is a batch id
        Actor // subject is an actor's address, left-padded to 32 bytes
    }

    /// @notice The answer to "does this attestation hold now".
    enum AttestationStatus {
        NotFound, // no attestation has this uid
        Valid, // exists, not revoked, inside its window, issuer accredited for the claim
        NotYetValid, // its window has not started
        Expired, // its window has ended
        Revoked, // the issuer or the admin revoked it
        IssuerNotAccredited // the issuer has since lost accreditation for this claim
    }

    /// @notice An organisation's on-chain record. Its name, country and metadata live in events.
    struct Actor {
        uint32 id; // 1-based registration number; 0 means not registered
        bool active; // false once the admin deactivated it
        bool supplier; // holds SUPPLIER_ROLE
    }

    /// @notice What a supplier declares when a batch comes into existence.
    struct BatchInput {
        uint64 gtin; // GS1 GTIN-14 as a number (leading zeros implied), check digit valid
        bytes20 lot; // GS1 AI (10) batch/lot number: 1 to 20 GS1 CSET 82 characters, left-aligned, zero-padded
        uint64 quantity; // amount in the base unit, greater than zero
        bytes3 unit; // UN/ECE Recommendation 20 unit code, e.g. "KGM", "H87", left-aligned
        bytes32 metadataHash; // sha256 of the RFC 8785 canonical JSON metadata document
    }

    /// @notice A batch as the rules see it.
    struct Batch {
        address supplier; // who registered (or produced) it; may recall it
        address custodian; // who holds it now; the only one who may move or consume it
        address pendingCustodian; // proposed next custodian, or zero
        uint64 registeredQuantity; // quantity at registration
        uint64 remainingQuantity; // quantity not yet consumed by transformations
        BatchStatus status; // None, Active, Consumed or Voided
        bool recalled; // true while the recall state is Recalled or Upheld
        RecallState recallState; // see {RecallState}
        uint64 registeredAt; // block time of the registration (or of the transformation that made it)
    }

    /// @notice A licence to use GS1 identifiers: a GS1 Company Prefix, a range inside one,
    /// or a single GTIN, held by one organisation.
    /// @dev Key: `(prefix << 4) | prefixLength`. `prefixLength` 4 to 12 means the first
    /// `prefixLength` digits after the GTIN-14's indicator digit (a GS1 Company Prefix, as
    /// the GS1 General Specifications define it, or a longer range inside one); 14 means
    /// exactly one GTIN-14. A sub-licence hangs off a root licence of the admin and lapses
    /// when that root licence is withdrawn.
    struct Licence {
        address licensee; // the organisation that may use the identifiers; zero if none
        address grantor; // the admin (root licence) or the holder of the parent licence
        uint8 prefixLength; // 4..12 digits of prefix, or 14 for one GTIN
        uint64 prefix; // the prefix digits as a number (leading zeros implied by the length)
        uint64 parentKey; // key of the root licence a sub-licence comes from; 0 for a root licence
        bool inForce; // held, and (for a sub-licence) its root licence still in force
    }

    /// @notice An amount of an input batch consumed by a transformation.
    struct InputQuantity {
        bytes32 batchId; // the input batch, held by the caller
        uint64 quantity; // how much of it is consumed, at most its remaining quantity
    }

    /// @notice What a certifier states when attesting a claim.
    struct AttestationRequest {
        SubjectKind subjectKind; // batch or actor
        bytes32 subject; // batch id, or the actor's address left-padded to 32 bytes
        bytes32 claim; // claim type, a defined short string such as "FAIRTRADE"
        uint64 validFrom; // start of validity (unix seconds); 0 means the block time, or the
        // signing time for {attestBySig}. Never before the subject batch's registration nor
        // more than the claim type's maximum backdating period before the block time.
        uint64 validUntil; // end of validity (unix seconds, exclusive); 0 means no end
        bytes32 evidenceHash; // sha256 of the certificate or audit report kept off chain
    }

    /// @notice An attestation as stored.
    struct Attestation {
        address issuer; // the certifier that attested
        bytes32 claim; // the claim type
        SubjectKind subjectKind; // batch or actor
        uint64 validFrom; // start of validity (unix seconds)
        uint64 validUntil; // end of validity (unix seconds, exclusive), 0 for none
        uint64 revokedAt; // block time of the revocation, 0 if not revoked
    }

    // ------------------------------------------------------------------ events

    /// @notice Emitted when the admin defines a claim type certifiers can be accredited for.
    /// @param claim The claim type, e.g. "FAIRTRADE".
    /// @param claimTypeId Its compact number in storage.
    /// @param accreditationRole The AccessControl role that accredits a certifier for it.
    event ClaimTypeDefined(bytes32 indexed claim, uint16 claimTypeId, bytes32 accreditationRole);

    /// @notice Emitted when the admin registers an organisation.
    event ActorRegistered(
        address indexed account, uint32 actorId, string name, bytes2 country, bytes32 metadataHash
    );

    /// @notice Emitted when an organisation asks the admin to change its profile.
    event ActorProfileUpdateRequested(address indexed account, string name, bytes2 country, bytes32 metadataHash);

    /// @notice Emitted when the admin approved an organisation's requested profile: the
    /// name, country and metadata below are its profile from now on.
    event ActorProfileUpdated(address indexed account, string name, bytes2 country, bytes32 metadataHash);

    /// @notice Emitted when the admin sets how far before its block an attestation of
    /// `claim` may start.
    event MaxBackdatingSet(bytes32 indexed claim, uint64 period);

    /// @notice Emitted when a licence is granted: by the admin (root licence,
    /// `parentKey` 0) or by the holder of a root licence (sub-licence).
    /// @param key `(prefix << 4) | prefixLength`, see {Licence}.
    event LicenceGranted(
        uint64 indexed key, address indexed licensee, address indexed grantor, uint8 prefixLength, uint64 prefix, uint64 parentKey
    );

    /// @notice Emitted when a licence is withdrawn by its grantor or the admin. Its
    /// sub-licences lapse with it.
    event LicenceWithdrawn(uint64 indexed key, address indexed licensee, address indexed by);

    /// @notice Emitted when the admin deactivates an organisation.
    event ActorDeactivated(address indexed account);

    /// @notice Emitted when the admin reactivates an organisation.
    event ActorReactivated(address indexed account);

    /// @notice Emitted when a batch comes into existence, by registration or as a
    /// transformation output (then followed, in the same transaction, by
    /// {TransformationRecorded}).
    event BatchRegistered(
        bytes32 indexed batchId,
        address indexed supplier,
        uint64 gtin,
        bytes20 lot,
        uint64 quantity,
        bytes3 unit,
        bytes32 metadataHash
    );

    /// @notice Emitted when the custodian proposes to hand a batch over.
    event CustodyTransferProposed(bytes32 indexed batchId, address indexed from, address indexed to);

    /// @notice Emitted when the proposed custodian accepts: the hand-over is complete.
    event CustodyTransferAccepted(bytes32 indexed batchId, address indexed from, address indexed to);

    /// @notice Emitted when a proposed hand-over is withdrawn by the custodian or declined
    /// by the proposed custodian.
    event CustodyTransferCancelled(bytes32 indexed batchId, address indexed from, address indexed to);

    /// @notice Emitted when the custodian records a business step.
    /// @param bizStep CBV 2.0 business step as a short string, e.g. "shipping".
    /// @param location Where it happened: a place name or a GS1 location identifier.
    /// @param dataHash sha256 of the step's off-chain data document, or zero.
    event StepRecorded(
        bytes32 indexed batchId, address indexed actor, bytes32 bizStep, string location, bytes32 dataHash
    );

    /// @notice Emitted after a transformation consumed its inputs and created its outputs.
    /// The outputs' {BatchRegistered} events precede it in the same transaction.
    event TransformationRecorded(
        bytes32 indexed transformationId,
        address indexed custodian,
        TransformationKind kind,
        InputQuantity[] inputs,
        bytes32[] outputs,
        bytes32 dataHash
    );

    /// @notice Emitted when a batch is recalled.
    /// @param reason Why, in a short text for the customer's page (1 to 280 bytes).
    /// @param reasonHash sha256 of the full recall notice kept off chain, or zero.
    event BatchRecalled(bytes32 indexed batchId, address indexed by, string reason, bytes32 reasonHash);

    /// @notice Emitted when the admin reviews a recall: upheld (final) or withdrawn.
    event RecallReviewed(bytes32 indexed batchId, address indexed by, bool upheld, string reason);

    /// @notice Emitted when the admin voids a batch registered in error. The lot stays
    /// taken: its page says it was voided, by whom and why.
    event BatchVoided(bytes32 indexed batchId, address indexed by, string reason);

    /// @notice Emitted when a certifier attests a claim.
    event Attested(
        bytes32 indexed uid,
        bytes32 indexed subject,
        address indexed issuer,
        SubjectKind subjectKind,
        bytes32 claim,
        uint64 validFrom,
        uint64 validUntil,
        bytes32 evidenceHash
    );

    /// @notice Emitted when an attestation is revoked.
    /// @param reason Why, in a short text (1 to 280 bytes).
    /// @param reasonHash sha256 of the full revocation notice kept off chain, or zero.
    event AttestationRevoked(bytes32 indexed uid, address indexed by, string reason, bytes32 reasonHash);

    /// @notice Emitted when an issuer invalidates the signed attestations it handed out:
    /// every nonce below `nextNonce` can no longer be used.
    event NoncesInvalidated(address indexed issuer, uint256 nextNonce);

    // ------------------------------------------------------------------ errors

    /// @notice The account is not a registered organisation.
    error ProvenanceUnknownActor(address account);
    /// @notice The account is already registered.
    error ProvenanceActorAlreadyRegistered(address account);
    /// @notice The organisation was deactivated by the admin.
    error ProvenanceActorInactive(address account);
    /// @notice The organisation is already active.
    error ProvenanceActorAlreadyActive(address account);
    /// @notice The display name must be 1 to 64 bytes of UTF-8.
    error ProvenanceInvalidName(uint256 length);
    /// @notice The country must be an ISO 3166-1 alpha-2 code in capitals.
    error ProvenanceInvalidCountry(bytes2 country);
    /// @notice The GTIN must have 14 digits at most and a valid GS1 check digit.
    error ProvenanceInvalidGtin(uint64 gtin);
    /// @notice The lot must be 1 to 20 characters of GS1 CSET 82 (GS1 AI 10), left-aligned.
    error ProvenanceInvalidLot(bytes20 lot);
    /// @notice Quantities must be greater than zero.
    error ProvenanceZeroQuantity();
    /// @notice The unit must be a non-empty UN/ECE Rec 20 code.
    error ProvenanceInvalidUnit(bytes3 unit);
    /// @notice This GTIN + lot is already registered.
    error ProvenanceBatchAlreadyRegistered(bytes32 batchId, address supplier);
    /// @notice No batch has this id.
    error ProvenanceUnknownBatch(bytes32 batchId);
    /// @notice Only the batch's custodian may do this.
    error ProvenanceNotCustodian(bytes32 batchId, address account, address custodian);
    /// @notice A hand-over is pending; accept or cancel it first.
    error ProvenanceTransferPending(bytes32 batchId, address pendingCustodian);
    /// @notice No hand-over is pending for this batch.
    error ProvenanceNoTransferPending(bytes32 batchId);
    /// @notice Only the proposed custodian may accept.
    error ProvenanceNotPendingCustodian(bytes32 batchId, address account, address pendingCustodian);
    /// @notice Only the custodian or the proposed custodian may cancel a hand-over.
    error ProvenanceNotTransferParty(bytes32 batchId, address account);
    /// @notice A batch cannot be handed over to its own custodian.
    error ProvenanceSelfTransfer(bytes32 batchId, address account);
    /// @notice The batch has no quantity left.
    error ProvenanceBatchConsumed(bytes32 batchId);
    /// @notice The batch was recalled.
    error ProvenanceBatchRecalled(bytes32 batchId);
    /// @notice Only the batch's supplier or the admin may recall it (only the admin after a
    /// withdrawn recall).
    error ProvenanceNotRecaller(bytes32 batchId, address account);
    /// @notice A transformation asked for more than the input has left.
    error ProvenanceInsufficientQuantity(bytes32 batchId, uint64 requested, uint64 remaining);
    /// @notice The numbers of inputs and outputs do not fit the transformation kind.
    error ProvenanceInvalidTransformation(TransformationKind kind, uint256 inputs, uint256 outputs);
    /// @notice A bulk call needs at least one item.
    error ProvenanceEmptyList();
    /// @notice The business step must be a non-empty CBV word.
    error ProvenanceInvalidBusinessStep(bytes32 bizStep);
    /// @notice The claim type is empty or already defined.
    error ProvenanceClaimTypeAlreadyDefined(bytes32 claim);
    /// @notice No more claim types can be defined.
    error ProvenanceTooManyClaimTypes(uint16 limit);
    /// @notice The claim type was never defined by the admin.
    error ProvenanceUnknownClaimType(bytes32 claim);
    /// @notice The certifier is not accredited for this claim.
    error ProvenanceNotAccredited(address certifier, bytes32 claim);
    /// @notice The validity window is empty or reversed.
    error ProvenanceInvalidValidity(uint64 validFrom, uint64 validUntil);
    /// @notice The attestation's subject does not exist.
    error ProvenanceUnknownSubject(SubjectKind subjectKind, bytes32 subject);
    /// @notice An attestation with identical content exists.
    error ProvenanceAttestationAlreadyExists(bytes32 uid);
    /// @notice No attestation has this uid.
    error ProvenanceUnknownAttestation(bytes32 uid);
    /// @notice The attestation is already revoked.
    error ProvenanceAttestationAlreadyRevoked(bytes32 uid);
    /// @notice Only the issuer or the admin may revoke.
    error ProvenanceNotRevoker(bytes32 uid, address account);
    /// @notice The signed request's deadline has passed.
    error ProvenanceSignatureExpired(uint256 deadline);
    /// @notice The signature is not the issuer's for this request, nonce and deadline.
    error ProvenanceInvalidSignature(address issuer);
    /// @notice A signed attestation cannot be signed later than the block it lands in.
    error ProvenanceSignedInFuture(uint64 signedAt);
    /// @notice The new nonce must be above the issuer's current one, by at most 2^32 - 1.
    error ProvenanceInvalidNonce(uint256 current, uint256 requested);
    /// @notice The prefix length must be 4 to 12 (or 14 for one GTIN) and the prefix fit it.
    error ProvenanceInvalidPrefix(uint8 prefixLength, uint64 prefix);
    /// @notice This prefix or GTIN is already licensed.
    error ProvenanceLicenceAlreadyGranted(uint8 prefixLength, uint64 prefix, address licensee);
    /// @notice Root licences never nest: `holder` holds a root licence around this one (it
    /// may sub-license the range instead), or, when `holder` is zero, a root licence lies
    /// inside this one.
    error ProvenanceLicenceOverlaps(uint8 prefixLength, uint64 prefix, address holder);
    /// @notice No licence is in force for this prefix or GTIN.
    error ProvenanceUnknownLicence(uint8 prefixLength, uint64 prefix);
    /// @notice The account holds no root licence covering this prefix (to sub-license), or
    /// is neither the licence's grantor nor the admin (to withdraw).
    error ProvenanceNotLicensor(uint8 prefixLength, uint64 prefix, address account);
    /// @notice The account holds no licence in force covering this GTIN.
    error ProvenanceNotLicensed(uint64 gtin, address account);
    /// @notice The batch was voided by the admin.
    error ProvenanceBatchVoided(bytes32 batchId);
    /// @notice A reason must be 1 to 280 bytes of text.
    error ProvenanceInvalidReason(uint256 length);
    /// @notice Another active organisation already uses this name (compared without ASCII
    /// case, spaces or punctuation).
    error ProvenanceNameTaken(address holder);
    /// @notice The organisation has not requested this profile change.
    error ProvenanceProfileUpdateNotRequested(address account);
    /// @notice An issuer cannot attest about itself or a batch it supplied or holds.
    error ProvenanceConflictOfInterest(address issuer, SubjectKind subjectKind, bytes32 subject);
    /// @notice The validity starts before the earliest allowed time (the subject batch's
    /// registration, or the claim type's maximum backdating period before the block).
    error ProvenanceValidFromTooEarly(uint64 validFrom, uint64 earliest);
    /// @notice Only a recall awaiting review can be reviewed.
    error ProvenanceNoRecallToReview(bytes32 batchId);
    /// @notice Only the supplier role is granted with grantRole; accreditations go through
    /// {accreditCertifier}, which checks the claim type exists.
    error ProvenanceRoleNotGrantable(bytes32 role);
    /// @notice No more organisations can be registered.
    error ProvenanceTooManyActors(uint32 limit);

    // ------------------------------------------------------------------ roles and claim types

    /// @notice The role allowed to register batches and record transformations.
    function SUPPLIER_ROLE() external view returns (bytes32);

    /// @notice Defines a claim type certifiers can be accredited for. Admin only.
    /// @param claim A short upper-case string such as "ORGANIC", as bytes32.
    function defineClaimType(bytes32 claim) external;

    /// @notice Accredits `certifier`, a registered active organisation, for `claim` (grants
    /// its accreditation role, announced in {ClaimTypeDefined}; `hasRole` answers whether a
    /// certifier is accredited). Admin only.
    function accreditCertifier(address certifier, bytes32 claim) external;

    /// @notice Withdraws `certifier`'s accreditation for `claim`. Admin only. Its existing
    /// attestations for that claim stop being valid at once (see {attestationStatus}).
    function withdrawAccreditation(address certifier, bytes32 claim) external;

    /// @notice Sets how long before its block an attestation of `claim` may start. Admin
    /// only. Every claim type starts with 90 days.
    function setMaxBackdating(bytes32 claim, uint64 period) external;

    // ------------------------------------------------------------------ GS1 licences

    /// @notice Grants a licence to use GS1 identifiers. Called by the admin: a root licence
    /// of a GS1 Company Prefix (`prefixLength` 4 to 12) or one GTIN (`prefixLength` 14),
    /// refused inside or around another root licence (see {ProvenanceLicenceOverlaps}).
    /// Called by an organisation: a sub-licence of a longer prefix, or one GTIN, inside a
    /// root licence it holds (a brand to its co-packer, a cooperative to its member farms).
    function grantLicence(address licensee, uint8 prefixLength, uint64 prefix) external;

    /// @notice Withdraws a licence. Its grantor or the admin only. Sub-licences of a
    /// withdrawn root licence lapse with it.
    function withdrawLicence(uint8 prefixLength, uint64 prefix) external;

    // ------------------------------------------------------------------ actors

    /// @notice Registers an organisation. Admin only.
    /// @param account The organisation's address.
    /// @param name Display name, 1 to 64 bytes (an organisation, never a person).
    /// @param country ISO 3166-1 alpha-2 code, e.g. "CO".
    /// @param metadataHash sha256 of its off-chain profile document, or zero.
    function registerActor(address account, string calldata name, bytes2 country, bytes32 metadataHash)
        external;

    /// @notice The caller asks the admin to change its profile (name, country, metadata);
    /// nothing changes until the admin approves. A new request replaces the previous one.
    /// The name's uniqueness is checked at approval, when the name takes effect.
    function requestProfileUpdate(string calldata name, bytes2 country, bytes32 metadataHash) external;

    /// @notice The admin approves exactly the profile `account` requested.
    function approveProfileUpdate(address account, string calldata name, bytes2 country, bytes32 metadataHash)
        external;

    /// @notice Deactivates an organisation: it can no longer write or receive custody, and its
    /// name is free for another organisation. Admin only.
    function deactivateActor(address account) external;

    /// @notice Reactivates a deactivated organisation, unless another took its name meanwhile. Admin only.
    function reactivateActor(address account) external;

    /// @notice The on-chain record of `account` (id 0 when not registered).
    function getActor(address account) external view returns (Actor memory);

    // ------------------------------------------------------------------ batches

    /// @notice Registers a batch held by the caller. Supplier role, active actor, holding a
    /// licence in force that covers the GTIN.
    /// @return batchId The batch's id: `keccak256(abi.encodePacked(uint64 gtin, bytes20 lot))`, the hash of the
    /// 8 big-endian GTIN bytes and the lot zero-padded to 20 bytes (no lookup table needed).
    function registerBatch(BatchInput calldata input) external returns (bytes32 batchId);

    /// @notice Registers many batches in one call; all or none.
    function registerBatches(BatchInput[] calldata inputs) external returns (bytes32[] memory batchIds);

    /// @notice A batch as the rules see it (status None when unknown).
    function getBatch(bytes32 batchId) external view returns (Batch memory);

    /// @notice The custodian proposes `to` (an active actor) as the next custodian.
    function transferCustody(bytes32 batchId, address to) external;

    /// @notice The proposed custodian accepts the batch; custody moves to it.
    function acceptCustody(bytes32 batchId) external;

    /// @notice The custodian withdraws, or the proposed custodian declines, a pending hand-over.
    function cancelCustodyTransfer(bytes32 batchId) external;

    /// @notice The custodian records a CBV business step about a batch it holds.
    function recordStep(bytes32 batchId, bytes32 bizStep, string calldata location, bytes32 dataHash)
        external;

    /// @notice The custodian consumes quantities of batches it holds and creates output
    /// batches it holds. Supplier role, active actor, inputs neither recalled nor pending,
    /// a licence in force covering every output's GTIN.
    /// @return transformationId `keccak256(abi.encodePacked(outputIds))`.
    /// @return outputIds The ids of the created batches, in input order.
    function transform(
        TransformationKind kind,
        InputQuantity[] calldata inputs,
        BatchInput[] calldata outputs,
        bytes32 dataHash
    ) external returns (bytes32 transformationId, bytes32[] memory outputIds);

    /// @notice Recalls a batch. Its supplier (even deactivated) or the admin only; after the
    /// admin withdrew a recall of it, the admin only.
    /// @param reason Why, 1 to 280 bytes of text shown to customers.
    /// @param reasonHash sha256 of the full recall notice kept off chain, or zero.
    function recallBatch(bytes32 batchId, string calldata reason, bytes32 reasonHash) external;

    /// @notice The admin reviews a recall awaiting review: upheld or withdrawn, with a reason.
    function reviewRecall(bytes32 batchId, bool upheld, string calldata reason) external;

    /// @notice The admin voids a batch registered in error. Final; the lot stays taken.
    function voidBatch(bytes32 batchId, string calldata reason) external;

    // ------------------------------------------------------------------ attestations

    /// @notice The caller, accredited for the claim, attests it.
    function attest(AttestationRequest calldata request) external returns (bytes32 uid);

    /// @notice Many attestations by the caller in one call; all or none.
    function attestMany(AttestationRequest[] calldata requests) external returns (bytes32[] memory uids);

    /// @notice Anyone submits an attestation `issuer` signed off chain (EIP-712 `Attest`
    /// message with the issuer's current nonce, the signing time and `deadline`). Each
    /// signature works once; `validFrom` 0 means `signedAt`.
    function attestBySig(
        AttestationRequest calldata request,
        address issuer,
        uint64 signedAt,
        uint256 deadline,
        bytes calldata signature
    ) external returns (bytes32 uid);

    /// @notice The caller invalidates every signed attestation it handed out with a nonce
    /// below `nextNonce` (above its current nonce, by at most 2^32 - 1).
    function invalidateNonces(uint256 nextNonce) external;

    /// @notice The issuer or the admin revokes an attestation.
    /// @param reason Why, 1 to 280 bytes of text shown to customers.
    /// @param reasonHash sha256 of the full revocation notice kept off chain, or zero.
    function revokeAttestation(bytes32 uid, string calldata reason, bytes32 reasonHash) external;

    /// @notice An attestation as stored (issuer zero when unknown).
    function getAttestation(bytes32 uid) external view returns (Attestation memory);

    /// @notice What holds for this attestation now, in one answer.
    function attestationStatus(bytes32 uid) external view returns (AttestationStatus);

    /// @notice The next nonce `issuer` must sign for {attestBySig}.
    function nonces(address issuer) external view returns (uint256);
}
