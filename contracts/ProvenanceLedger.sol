// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

import {IProvenanceLedger} from "./interfaces/IProvenanceLedger.sol";

/// @title ProvenanceLedger
/// @notice See {IProvenanceLedger}.
/// @dev Gas shapes the storage: each batch and each attestation is exactly one slot, and
/// organisations are referred to by a 24-bit registration number inside a batch slot so
/// that custodian, pending custodian and supplier fit beside the quantities, the states
/// and the registration time. An organisation's slot also mirrors its supplier role, its
/// accreditations (one bit per claim type) and which prefix lengths it holds licences at,
/// so the hot paths (register, attest) read one slot instead of several. AccessControl
/// stays the source of truth for roles: `hasRole` and the role events are unchanged.
///
/// Trust model (who may do what):
/// - the admin registers organisations, approves their renames, grants roles, accredits
///   certifiers, licenses GS1 prefixes and GTINs, voids batches registered in error and
///   reviews recalls; it cannot register batches, move goods or attest in anyone's name;
/// - a supplier registers batches and transformation outputs only under a GTIN covered by
///   a licence it holds at that moment;
/// - only the custodian moves, records or consumes a batch;
/// - a certifier attests only claims it is accredited for, never about itself nor about a
///   batch it supplied or holds, never starting before the batch existed nor further back
///   than the claim type's backdating limit.
contract ProvenanceLedger is IProvenanceLedger, AccessControlDefaultAdminRules, EIP712 {
    /// @inheritdoc IProvenanceLedger
    bytes32 public constant SUPPLIER_ROLE = keccak256("SUPPLIER_ROLE");

    /// @dev Prefix of the per-claim accreditation roles.
    bytes32 private constant CERTIFIER_ROLE = keccak256("CERTIFIER_ROLE");

    /// @dev EIP-712 type of a delegated attestation.
    bytes32 private constant ATTEST_TYPEHASH = keccak256(
        "Attest(address issuer,uint8 subjectKind,bytes32 subject,bytes32 claim,uint64 validFrom,"
        "uint64 validUntil,bytes32 evidenceHash,uint64 signedAt,uint256 nonce,uint256 deadline)"
    );

    uint256 private constant MAX_NAME_LENGTH = 64;
    uint256 private constant MAX_REASON_LENGTH = 280;
    uint16 private constant MAX_CLAIM_TYPES = 128; // bits in ActorSlot.accreditations
    uint32 private constant MAX_ACTORS = 2 ** 24 - 1; // ids are 24 bits in a batch word
    uint64 private constant DEFAULT_MAX_BACKDATING = 90 days;

    /// @dev Bit c is set when byte c is a GS1 CSET 82 character (GS1 General Specifications
    /// figure 7.11-1): ! " % & ' ( ) * + , - . / 0-9 : ; < = > ? A-Z _ a-z.
    uint256 private constant CSET82 = 0x7fffffe87fffffeffffffe600000000;

    uint8 private constant SINGLE_GTIN = 14; // prefix length that means "exactly this GTIN-14"

    // Bit offsets of the fields in a packed batch word (see {_packBatch}).
    uint256 private constant ID_MASK = 2 ** 24 - 1;
    uint256 private constant CUSTODIAN_SHIFT = 24;
    uint256 private constant PENDING_SHIFT = 48;
    uint256 private constant REGISTERED_SHIFT = 72;
    uint256 private constant REMAINING_SHIFT = 136;
    uint256 private constant STATUS_SHIFT = 200;
    uint256 private constant RECALL_SHIFT = 208;
    uint256 private constant REGISTERED_AT_SHIFT = 216;

    /// @dev One slot per organisation.
    struct ActorSlot {
        uint32 id;
        bool active;
        bool supplier; // mirrors hasRole(SUPPLIER_ROLE, account)
        uint128 accreditations; // bit (claimTypeId - 1) mirrors hasRole(_accreditationRole(claim), account)
        uint16 licenceLengths; // bit L set once a licence of prefix length L was granted to it (a hint)
        uint64 rootLicence; // key of its latest root licence still held: checked without another read
    }

    /// @dev One slot per batch, packed by hand into one word (see {_packBatch}): the
    /// compiler's field-by-field struct writes cost ~1,300 gas a batch more.
    struct BatchSlot {
        uint32 supplierId;
        uint32 custodianId;
        uint32 pendingCustodianId;
        uint64 registeredQuantity;
        uint64 remainingQuantity;
        BatchStatus status;
        RecallState recall;
        uint40 registeredAt;
    }

    /// @dev One slot per attestation; times fit 40 bits until the year 36812.
    struct AttestationSlot {
        uint32 issuerId;
        uint16 claimTypeId;
        SubjectKind subjectKind;
        uint40 validFrom;
        uint40 validUntil;
        uint40 revokedAt;
    }

    /// @dev One slot per claim type, read once per attestation.
    struct ClaimTypeSlot {
        uint16 id;
        uint64 maxBackdating;
    }

    /// @dev One slot per licence. `serial` tells a re-granted root licence from the one a
    /// sub-licence was cut from, so withdrawing a root licence ends its sub-licences for good.
    struct LicenceSlot {
        uint32 licenseeId;
        uint32 grantorId; // 0 for the admin
        uint64 parentKey; // 0 for a root licence
        uint32 parentSerial;
        uint32 serial;
        uint32 innerRoots; // root licences held inside this range (kept even with no licensee)
    }

    uint32 private _actorCount;
    uint16 private _claimTypeCount;
    uint32 private _licenceSerial;

    mapping(address account => ActorSlot) private _actors;
    mapping(uint32 actorId => address) private _actorAddresses;
    mapping(bytes32 claim => ClaimTypeSlot) private _claimTypeSlots;
    mapping(uint16 claimTypeId => bytes32) private _claimTypes;
    mapping(bytes32 role => uint16 claimTypeId) private _claimTypeOfRole;
    mapping(bytes32 batchId => uint256 packedBatch) private _batches;
    mapping(bytes32 uid => AttestationSlot) private _attestations;
    mapping(uint64 key => LicenceSlot) private _licences;
    mapping(bytes32 nameKey => uint32 actorId) private _nameHolders;
    mapping(address account => bytes32 nameKey) private _nameKeys;
    mapping(address account => bytes32 profileHash) private _requestedProfiles;
    mapping(address issuer => uint256) private _nonces;

    /// @param admin The operator (a brand or a consortium) holding the default admin role.
    /// @param adminTransferDelay Seconds a new admin must wait before accepting the role.
    constructor(address admin, uint48 adminTransferDelay)
        AccessControlDefaultAdminRules(adminTransferDelay, admin)
        EIP712("ProvenanceLedger", "2")
    {
        // The common ethical-sourcing claims exist from the start; the admin may add more.
        _defineClaimType("FAIRTRADE");
        _defineClaimType("ORGANIC");
        _defineClaimType("DEFORESTATION_FREE");
    }

    // ------------------------------------------------------------------ roles and claim types

    /// @notice Grants the supplier role. Accreditations go through {accreditCertifier},
    /// which checks the claim type exists; the default admin through its delayed transfer.
    /// @dev Refusing other roles here is what keeps `hasRole` and the accreditation bits in
    /// step: a role for a claim type not yet defined could never be mirrored. Revoking
    /// needs no such guard: `revokeRole` and `renounceRole` clear the mirror bit as well.
    function grantRole(bytes32 role, address account)
        public
        override
    {
        // Ensure accreditations take the path that checks the claim type.
        if (role != SUPPLIER_ROLE && role != DEFAULT_ADMIN_ROLE) revert ProvenanceRoleNotGrantable(role);
        super.grantRole(role, account);
    }

    /// @inheritdoc IProvenanceLedger
    function defineClaimType(bytes32 claim) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _defineClaimType(claim);
    }

    /// @dev The role accrediting a certifier for `claim`, announced in {ClaimTypeDefined}.
    function _accreditationRole(bytes32 claim) private pure returns (bytes32) {
        return keccak256(abi.encode(CERTIFIER_ROLE, claim));
    }

    /// @inheritdoc IProvenanceLedger
    function accreditCertifier(address certifier, bytes32 claim) external onlyRole(DEFAULT_ADMIN_ROLE) {
        // Ensure the claim exists, so a typo cannot create an accreditation nobody checks,
        // and the certifier is a registered, active organisation (its slot mirrors the role).
        if (_claimTypeSlots[claim].id == 0) revert ProvenanceUnknownClaimType(claim);
        _requireActiveActor(certifier);
        _grantRole(_accreditationRole(claim), certifier);
    }

    /// @inheritdoc IProvenanceLedger
    function withdrawAccreditation(address certifier, bytes32 claim) external onlyRole(DEFAULT_ADMIN_ROLE) {
        // Ensure the claim exists, for the same reason.
        if (_claimTypeSlots[claim].id == 0) revert ProvenanceUnknownClaimType(claim);
        _revokeRole(_accreditationRole(claim), certifier);
    }

    /// @inheritdoc IProvenanceLedger
    function setMaxBackdating(bytes32 claim, uint64 period) external onlyRole(DEFAULT_ADMIN_ROLE) {
        ClaimTypeSlot storage claimType = _claimTypeSlots[claim];
        // Ensure the claim exists.
        if (claimType.id == 0) revert ProvenanceUnknownClaimType(claim);
        claimType.maxBackdating = period;
        emit MaxBackdatingSet(claim, period);
    }

    // ------------------------------------------------------------------ GS1 licences

    /// @inheritdoc IProvenanceLedger
    /// @dev One function for both kinds (the admin's root licences, holders' sub-licences):
    /// two would not fit under EIP-170.
    function grantLicence(address licensee, uint8 prefixLength, uint64 prefix) external {
        uint64 key = _licenceKey(prefixLength, prefix);
        uint256 maxLength = prefixLength == SINGLE_GTIN ? 12 : prefixLength - 1;
        if (hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            // Ensure root licences never nest, in either order: one around another would
            // hand that holder's GTINs to a second organisation; one inside another is the
            // outer holder's to sub-license.
            if (_licences[key].innerRoots != 0) revert ProvenanceLicenceOverlaps(prefixLength, prefix, address(0));
            for (uint8 length = 4; length <= maxLength; ++length) {
                LicenceSlot storage outer = _licences[(_prefixOf(prefix, prefixLength, length) << 4) | length];
                if (outer.licenseeId != 0 && outer.parentKey == 0) {
                    revert ProvenanceLicenceOverlaps(prefixLength, prefix, _actorAddresses[outer.licenseeId]);
                }
                ++outer.innerRoots;
            }
            _storeLicence(key, licensee, prefixLength, prefix, 0, 0, 0);
            return;
        }
        ActorSlot memory grantor = _requireActiveActor(msg.sender);
        // Ensure a sub-licence comes from a root licence in force strictly covering it.
        for (uint8 length = 4; length <= maxLength; ++length) {
            if (grantor.licenceLengths & (uint16(1) << length) == 0) continue;
            uint64 parentKey = (_prefixOf(prefix, prefixLength, length) << 4) | length;
            LicenceSlot memory parent = _licences[parentKey];
            if (parent.licenseeId == grantor.id && parent.parentKey == 0) {
                _storeLicence(key, licensee, prefixLength, prefix, grantor.id, parentKey, parent.serial);
                return;
            }
        }
        revert ProvenanceNotLicensor(prefixLength, prefix, msg.sender);
    }

    /// @inheritdoc IProvenanceLedger
    function withdrawLicence(uint8 prefixLength, uint64 prefix) external {
        uint64 key = _licenceKey(prefixLength, prefix);
        LicenceSlot memory licence = _licences[key];
        // Ensure there is something to withdraw.
        if (licence.licenseeId == 0) revert ProvenanceUnknownLicence(prefixLength, prefix);
        // Ensure only the grantor (the admin for root licences) or the admin withdraws.
        if (!hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            uint32 senderId = _actors[msg.sender].id;
            if (licence.grantorId == 0 || senderId != licence.grantorId) {
                revert ProvenanceNotLicensor(prefixLength, prefix, msg.sender);
            }
        }
        // Keep the count of root licences inside the range: it guards their nesting rule.
        _licences[key] = LicenceSlot(0, 0, 0, 0, 0, licence.innerRoots);
        if (licence.parentKey == 0) {
            // The ranges around a withdrawn root licence may be licensed again.
            uint256 maxLength = prefixLength == SINGLE_GTIN ? 12 : prefixLength - 1;
            for (uint8 length = 4; length <= maxLength; ++length) {
                --_licences[(_prefixOf(prefix, prefixLength, length) << 4) | length].innerRoots;
            }
        }
        address licensee = _actorAddresses[licence.licenseeId];
        if (_actors[licensee].rootLicence == key) _actors[licensee].rootLicence = 0;
        emit LicenceWithdrawn(key, licensee, msg.sender);
    }

    // ------------------------------------------------------------------ actors

    /// @inheritdoc IProvenanceLedger
    function registerActor(address account, string calldata name, bytes2 country, bytes32 metadataHash)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        // Ensure each organisation is registered once, under one number.
        if (account == address(0) || _actors[account].id != 0) revert ProvenanceActorAlreadyRegistered(account);
        if (_actorCount == MAX_ACTORS) revert ProvenanceTooManyActors(MAX_ACTORS);
        _checkProfile(name, country);
        uint32 actorId = ++_actorCount;
        _claimName(account, actorId, name);
        // The supplier role may have been granted before registration: mirror it now.
        _actors[account] = ActorSlot({
            id: actorId,
            active: true,
            supplier: hasRole(SUPPLIER_ROLE, account),
            accreditations: 0, // accreditations need a registered organisation
            licenceLengths: 0,
            rootLicence: 0
        });
        _actorAddresses[actorId] = account;
        emit ActorRegistered(account, actorId, name, country, metadataHash);
    }

    /// @inheritdoc IProvenanceLedger
    function requestProfileUpdate(string calldata name, bytes2 country, bytes32 metadataHash) external {
        _requireActiveActor(msg.sender);
        _checkProfile(name, country);
        // The name's uniqueness is checked at approval, when it takes effect (the client
        // warns earlier from the index).
        _requestedProfiles[msg.sender] = keccak256(abi.encode(name, country, metadataHash));
        emit ActorProfileUpdateRequested(msg.sender, name, country, metadataHash);
    }

    /// @inheritdoc IProvenanceLedger
    function approveProfileUpdate(address account, string calldata name, bytes2 country, bytes32 metadataHash)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        ActorSlot memory actor = _requireActiveActor(account);
        // Ensure the admin approves exactly what the organisation asked for, nothing else.
        bytes32 requested = _requestedProfiles[account];
        if (requested == 0 || requested != keccak256(abi.encode(name, country, metadataHash))) {
            revert ProvenanceProfileUpdateNotRequested(account);
        }
        delete _requestedProfiles[account];
        _claimName(account, actor.id, name);
        emit ActorProfileUpdated(account, name, country, metadataHash);
    }

    /// @inheritdoc IProvenanceLedger
    function deactivateActor(address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireActiveActor(account);
        _actors[account].active = false;
        // Its name is free for an active organisation (e.g. the same company under a new key).
        delete _nameHolders[_nameKeys[account]];
        emit ActorDeactivated(account);
    }

    /// @inheritdoc IProvenanceLedger
    function reactivateActor(address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        ActorSlot storage actor = _actors[account];
        // Ensure the account is registered and currently inactive.
        if (actor.id == 0) revert ProvenanceUnknownActor(account);
        if (actor.active) revert ProvenanceActorAlreadyActive(account);
        // Ensure its name was not taken by another organisation meanwhile.
        bytes32 nameKey = _nameKeys[account];
        uint32 holder = _nameHolders[nameKey];
        if (holder != 0) revert ProvenanceNameTaken(_actorAddresses[holder]);
        _nameHolders[nameKey] = actor.id;
        actor.active = true;
        emit ActorReactivated(account);
    }

    /// @inheritdoc IProvenanceLedger
    function getActor(address account) external view returns (Actor memory) {
        ActorSlot memory slot = _actors[account];
        return Actor({id: slot.id, active: slot.active, supplier: slot.supplier});
    }

    // ------------------------------------------------------------------ batches

    /// @inheritdoc IProvenanceLedger
    function registerBatch(BatchInput calldata input) external returns (bytes32 batchId) {
        ActorSlot memory supplier = _requireSupplier(msg.sender);
        _checkGtin(input.gtin, supplier);
        batchId = _createBatch(input, supplier.id, msg.sender);
    }

    /// @inheritdoc IProvenanceLedger
    function registerBatches(BatchInput[] calldata inputs) external returns (bytes32[] memory batchIds) {
        // Ensure a bulk call carries work, so a client bug does not pass silently.
        if (inputs.length == 0) revert ProvenanceEmptyList();
        ActorSlot memory supplier = _requireSupplier(msg.sender);
        batchIds = new bytes32[](inputs.length);
        // A run of lots of one GTIN checks the GTIN and licence once; the start value is no
        // uint64, so the first GTIN (even 0) is always checked.
        uint256 checkedGtin = type(uint256).max;
        for (uint256 i = 0; i < inputs.length; ++i) {
            if (inputs[i].gtin != checkedGtin) {
                _checkGtin(inputs[i].gtin, supplier);
                checkedGtin = inputs[i].gtin;
            }
            batchIds[i] = _createBatch(inputs[i], supplier.id, msg.sender);
        }
    }

    /// @inheritdoc IProvenanceLedger
    function getBatch(bytes32 batchId) external view returns (Batch memory) {
        BatchSlot memory slot = _loadBatch(batchId);
        return Batch({
            supplier: _actorAddresses[slot.supplierId],
            custodian: _actorAddresses[slot.custodianId],
            pendingCustodian: _actorAddresses[slot.pendingCustodianId],
            registeredQuantity: slot.registeredQuantity,
            remainingQuantity: slot.remainingQuantity,
            status: slot.status,
            recalled: _isRecalled(slot.recall),
            recallState: slot.recall,
            registeredAt: slot.registeredAt
        });
    }

    /// @inheritdoc IProvenanceLedger
    /// @dev The hand-over paths edit the packed word in place instead of unpacking it: they
    /// run twice per hand-over and the round trip through memory costs ~1,000 gas each.
    function transferCustody(bytes32 batchId, address to) external {
        uint256 word = _batches[batchId];
        uint32 senderId = _requireCustodian(batchId, word);
        // Ensure goods with nothing left cannot be handed over.
        if (BatchStatus(uint8(word >> STATUS_SHIFT)) == BatchStatus.Consumed) revert ProvenanceBatchConsumed(batchId);
        // Ensure one hand-over at a time.
        uint32 pendingId = uint32((word >> PENDING_SHIFT) & ID_MASK);
        if (pendingId != 0) revert ProvenanceTransferPending(batchId, _actorAddresses[pendingId]);
        uint32 recipientId = _requireActiveActor(to).id;
        // Ensure the hand-over goes to somebody else.
        if (recipientId == senderId) revert ProvenanceSelfTransfer(batchId, to);
        _batches[batchId] = word | (uint256(recipientId) << PENDING_SHIFT);
        emit CustodyTransferProposed(batchId, msg.sender, to);
    }

    /// @inheritdoc IProvenanceLedger
    function acceptCustody(bytes32 batchId) external {
        uint256 word = _batches[batchId];
        if (word == 0) revert ProvenanceUnknownBatch(batchId);
        // Ensure a hand-over was proposed to the caller, who is still active.
        uint32 pendingId = uint32((word >> PENDING_SHIFT) & ID_MASK);
        if (pendingId == 0) revert ProvenanceNoTransferPending(batchId);
        ActorSlot memory sender = _actors[msg.sender];
        if (sender.id != pendingId) {
            revert ProvenanceNotPendingCustodian(batchId, msg.sender, _actorAddresses[pendingId]);
        }
        if (!sender.active) revert ProvenanceActorInactive(msg.sender);
        uint32 previousCustodianId = uint32((word >> CUSTODIAN_SHIFT) & ID_MASK);
        // The pending id becomes the custodian id; the pending field is cleared.
        _batches[batchId] = (word & ~((ID_MASK << CUSTODIAN_SHIFT) | (ID_MASK << PENDING_SHIFT)))
            | (uint256(pendingId) << CUSTODIAN_SHIFT);
        emit CustodyTransferAccepted(batchId, _actorAddresses[previousCustodianId], msg.sender);
    }

    /// @inheritdoc IProvenanceLedger
    function cancelCustodyTransfer(bytes32 batchId) external {
        uint256 word = _batches[batchId];
        if (word == 0) revert ProvenanceUnknownBatch(batchId);
        uint32 pendingId = uint32((word >> PENDING_SHIFT) & ID_MASK);
        uint32 custodianId = uint32((word >> CUSTODIAN_SHIFT) & ID_MASK);
        if (pendingId == 0) revert ProvenanceNoTransferPending(batchId);
        // Ensure only the two parties of the hand-over can call it off.
        uint32 senderId = _actors[msg.sender].id;
        if (senderId == 0 || (senderId != custodianId && senderId != pendingId)) {
            revert ProvenanceNotTransferParty(batchId, msg.sender);
        }
        _batches[batchId] = word & ~(ID_MASK << PENDING_SHIFT);
        emit CustodyTransferCancelled(batchId, _actorAddresses[custodianId], _actorAddresses[pendingId]);
    }

    /// @inheritdoc IProvenanceLedger
    function recordStep(bytes32 batchId, bytes32 bizStep, string calldata location, bytes32 dataHash)
        external
    {
        _requireCustodian(batchId, _batches[batchId]);
        // Ensure the step names what happened.
        if (bizStep == bytes32(0)) revert ProvenanceInvalidBusinessStep(bizStep);
        emit StepRecorded(batchId, msg.sender, bizStep, location, dataHash);
    }

    /// @inheritdoc IProvenanceLedger
    function transform(
        TransformationKind kind,
        InputQuantity[] calldata inputs,
        BatchInput[] calldata outputs,
        bytes32 dataHash
    ) external returns (bytes32 transformationId, bytes32[] memory outputIds) {
        ActorSlot memory custodian = _requireSupplier(msg.sender);
        _checkTransformationShape(kind, inputs.length, outputs.length);
        for (uint256 i = 0; i < inputs.length; ++i) {
            _consume(inputs[i].batchId, inputs[i].quantity, custodian.id);
        }
        outputIds = new bytes32[](outputs.length);
        uint256 checkedGtin = type(uint256).max; // see registerBatches
        for (uint256 i = 0; i < outputs.length; ++i) {
            // Ensure outputs carry only GTINs the caller is licensed for, like registrations.
            if (outputs[i].gtin != checkedGtin) {
                _checkGtin(outputs[i].gtin, custodian);
                checkedGtin = outputs[i].gtin;
            }
            outputIds[i] = _createBatch(outputs[i], custodian.id, msg.sender);
        }
        transformationId = keccak256(abi.encodePacked(outputIds));
        emit TransformationRecorded(transformationId, msg.sender, kind, inputs, outputIds, dataHash);
    }

    /// @inheritdoc IProvenanceLedger
    function recallBatch(bytes32 batchId, string calldata reason, bytes32 reasonHash) external {
        uint256 word = _requireLiveBatch(batchId);
        if (_isRecalled(RecallState(uint8(word >> RECALL_SHIFT)))) revert ProvenanceBatchRecalled(batchId);
        // Ensure only the supplier or the admin recalls. A deactivated supplier may still
        // recall its own goods: withholding a recall never protects anybody, and the admin
        // reviews every recall ({reviewRecall}).
        // Once the admin withdrew a recall, only the admin recalls the batch again, so an
        // expelled supplier cannot freeze its buyers' goods over and over.
        if (!hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            uint32 senderId = _actors[msg.sender].id;
            if (
                senderId == 0 || senderId != (word & ID_MASK)
                    || RecallState(uint8(word >> RECALL_SHIFT)) == RecallState.Withdrawn
            ) revert ProvenanceNotRecaller(batchId, msg.sender);
        }
        _checkReason(reason);
        _batches[batchId] = _withByte(word, RECALL_SHIFT, uint8(RecallState.Recalled));
        emit BatchRecalled(batchId, msg.sender, reason, reasonHash);
    }

    /// @inheritdoc IProvenanceLedger
    function reviewRecall(bytes32 batchId, bool upheld, string calldata reason)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        uint256 word = _batches[batchId];
        if (word == 0) revert ProvenanceUnknownBatch(batchId);
        // Ensure a recall is waiting for review; an upheld recall is final.
        if (RecallState(uint8(word >> RECALL_SHIFT)) != RecallState.Recalled) revert ProvenanceNoRecallToReview(batchId);
        _checkReason(reason);
        _batches[batchId] =
            _withByte(word, RECALL_SHIFT, uint8(upheld ? RecallState.Upheld : RecallState.Withdrawn));
        emit RecallReviewed(batchId, msg.sender, upheld, reason);
    }

    /// @inheritdoc IProvenanceLedger
    function voidBatch(bytes32 batchId, string calldata reason) external onlyRole(DEFAULT_ADMIN_ROLE) {
        uint256 word = _requireLiveBatch(batchId);
        _checkReason(reason);
        // The slot stays occupied, so the lot is never silently free for someone else; a
        // pending hand-over ends with it.
        _batches[batchId] = _withByte(word & ~(ID_MASK << PENDING_SHIFT), STATUS_SHIFT, uint8(BatchStatus.Voided));
        emit BatchVoided(batchId, msg.sender, reason);
    }

    // ------------------------------------------------------------------ attestations

    /// @inheritdoc IProvenanceLedger
    function attest(AttestationRequest calldata request) external returns (bytes32 uid) {
        return _attest(msg.sender, request, uint64(_time()));
    }

    /// @inheritdoc IProvenanceLedger
    function attestMany(AttestationRequest[] calldata requests) external returns (bytes32[] memory uids) {
        if (requests.length == 0) revert ProvenanceEmptyList();
        uids = new bytes32[](requests.length);
        for (uint256 i = 0; i < requests.length; ++i) {
            uids[i] = _attest(msg.sender, requests[i], uint64(_time()));
        }
    }

    /// @inheritdoc IProvenanceLedger
    function attestBySig(
        AttestationRequest calldata request,
        address issuer,
        uint64 signedAt,
        uint256 deadline,
        bytes calldata signature
    ) external returns (bytes32 uid) {
        // Ensure the signature is still meant to be used, and was not dated ahead.
        if (_time() > deadline) revert ProvenanceSignatureExpired(deadline);
        if (signedAt > _time()) revert ProvenanceSignedInFuture(signedAt);
        bytes32 digest = _hashTypedDataV4(
            keccak256(
                abi.encode(
                    ATTEST_TYPEHASH,
                    issuer,
                    request.subjectKind,
                    request.subject,
                    request.claim,
                    request.validFrom,
                    request.validUntil,
                    request.evidenceHash,
                    signedAt,
                    _nonces[issuer]++, // consuming the nonce is what makes a replay fail
                    deadline
                )
            )
        );
        // Ensure the issuer signed exactly this (EOA or ERC-1271 contract wallet).
        if (!SignatureChecker.isValidSignatureNow(issuer, digest, signature)) {
            revert ProvenanceInvalidSignature(issuer);
        }
        return _attest(issuer, request, signedAt);
    }

    /// @inheritdoc IProvenanceLedger
    function invalidateNonces(uint256 nextNonce) external {
        uint256 current = _nonces[msg.sender];
        // Ensure nonces only move forward, so no cancelled signature ever comes back, and
        // by a bounded step, so an issuer cannot overflow its own nonce and lock itself out.
        if (nextNonce <= current || nextNonce - current > type(uint32).max) {
            revert ProvenanceInvalidNonce(current, nextNonce);
        }
        _nonces[msg.sender] = nextNonce;
        emit NoncesInvalidated(msg.sender, nextNonce);
    }

    /// @inheritdoc IProvenanceLedger
    function revokeAttestation(bytes32 uid, string calldata reason, bytes32 reasonHash) external {
        AttestationSlot storage stored = _attestations[uid];
        AttestationSlot memory attestation = stored;
        if (attestation.issuerId == 0) revert ProvenanceUnknownAttestation(uid);
        if (attestation.revokedAt != 0) revert ProvenanceAttestationAlreadyRevoked(uid);
        // Ensure only the issuer (accredited or not any more) or the admin revokes.
        if (_actors[msg.sender].id != attestation.issuerId && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert ProvenanceNotRevoker(uid, msg.sender);
        }
        _checkReason(reason);
        stored.revokedAt = uint40(_time());
        emit AttestationRevoked(uid, msg.sender, reason, reasonHash);
    }

    /// @inheritdoc IProvenanceLedger
    function getAttestation(bytes32 uid) external view returns (Attestation memory) {
        AttestationSlot memory slot = _attestations[uid];
        return Attestation({
            issuer: _actorAddresses[slot.issuerId],
            claim: _claimTypes[slot.claimTypeId],
            subjectKind: slot.subjectKind,
            validFrom: slot.validFrom,
            validUntil: slot.validUntil,
            revokedAt: slot.revokedAt
        });
    }

    /// @inheritdoc IProvenanceLedger
    /// @dev A deactivated issuer counts as not accredited: an organisation the operator
    /// removed no longer vouches for anything.
    function attestationStatus(bytes32 uid) public view returns (AttestationStatus) {
        AttestationSlot memory slot = _attestations[uid];
        if (slot.issuerId == 0) return AttestationStatus.NotFound;
        if (slot.revokedAt != 0) return AttestationStatus.Revoked;
        uint256 now_ = _time();
        if (now_ < slot.validFrom) return AttestationStatus.NotYetValid;
        if (slot.validUntil != 0 && now_ >= slot.validUntil) return AttestationStatus.Expired;
        ActorSlot memory issuer = _actors[_actorAddresses[slot.issuerId]];
        if (!issuer.active || !_hasAccreditationBit(issuer, slot.claimTypeId)) {
            return AttestationStatus.IssuerNotAccredited;
        }
        return AttestationStatus.Valid;
    }

    /// @inheritdoc IProvenanceLedger
    function nonces(address issuer) external view returns (uint256) {
        return _nonces[issuer];
    }

    // ------------------------------------------------------------------ internals

    /// @dev Block time; virtual so tests and forks can move it.
    function _time() internal view virtual returns (uint256) {
        return block.timestamp;
    }

    /// @dev Keeps the supplier flag and accreditation bits of a registered organisation in
    /// step with AccessControl.
    function _grantRole(bytes32 role, address account) internal virtual override returns (bool granted) {
        granted = super._grantRole(role, account);
        if (granted) _mirrorRole(role, account, true);
    }

    /// @dev See {_grantRole}. Also runs for `renounceRole`.
    function _revokeRole(bytes32 role, address account) internal virtual override returns (bool revoked) {
        revoked = super._revokeRole(role, account);
        if (revoked) _mirrorRole(role, account, false);
    }

    function _mirrorRole(bytes32 role, address account, bool held) private {
        ActorSlot storage actor = _actors[account];
        // Unregistered accounts get their mirror at registration.
        if (actor.id == 0) return;
        if (role == SUPPLIER_ROLE) {
            actor.supplier = held;
            return;
        }
        uint16 claimTypeId = _claimTypeOfRole[role];
        if (claimTypeId == 0) return;
        uint128 bit = uint128(1) << (claimTypeId - 1);
        actor.accreditations = held ? actor.accreditations | bit : actor.accreditations & ~bit;
    }

    function _hasAccreditationBit(ActorSlot memory actor, uint16 claimTypeId) private pure returns (bool) {
        return actor.accreditations & (uint128(1) << (claimTypeId - 1)) != 0;
    }

    function _defineClaimType(bytes32 claim) private {
        // Ensure a claim type is non-empty and defined once, within the mirrored bits.
        if (claim == bytes32(0) || _claimTypeSlots[claim].id != 0) revert ProvenanceClaimTypeAlreadyDefined(claim);
        if (_claimTypeCount == MAX_CLAIM_TYPES) revert ProvenanceTooManyClaimTypes(MAX_CLAIM_TYPES);
        uint16 claimTypeId = ++_claimTypeCount;
        bytes32 role = _accreditationRole(claim);
        _claimTypeSlots[claim] = ClaimTypeSlot({id: claimTypeId, maxBackdating: DEFAULT_MAX_BACKDATING});
        _claimTypes[claimTypeId] = claim;
        _claimTypeOfRole[role] = claimTypeId;
        emit ClaimTypeDefined(claim, claimTypeId, role);
        emit MaxBackdatingSet(claim, DEFAULT_MAX_BACKDATING);
    }

    function _requireActiveActor(address account) private view returns (ActorSlot memory actor) {
        actor = _actors[account];
        // Ensure the account is a registered organisation the admin has not deactivated.
        if (actor.id == 0) revert ProvenanceUnknownActor(account);
        if (!actor.active) revert ProvenanceActorInactive(account);
    }

    function _requireSupplier(address account) private view returns (ActorSlot memory actor) {
        actor = _requireActiveActor(account);
        // Ensure the admin made this organisation a supplier.
        if (!actor.supplier) revert AccessControlUnauthorizedAccount(account, SUPPLIER_ROLE);
    }

    /// @dev Checks that the batch exists, is not voided and the caller, active, holds it;
    /// returns the caller's id.
    function _requireCustodian(bytes32 batchId, uint256 word) private view returns (uint32 senderId) {
        BatchStatus status = BatchStatus(uint8(word >> STATUS_SHIFT));
        if (status == BatchStatus.None) revert ProvenanceUnknownBatch(batchId);
        if (status == BatchStatus.Voided) revert ProvenanceBatchVoided(batchId);
        uint32 custodianId = uint32((word >> CUSTODIAN_SHIFT) & ID_MASK);
        ActorSlot memory sender = _actors[msg.sender];
        // Ensure only the holder of the goods speaks for them.
        if (sender.id == 0 || sender.id != custodianId) {
            revert ProvenanceNotCustodian(batchId, msg.sender, _actorAddresses[custodianId]);
        }
        if (!sender.active) revert ProvenanceActorInactive(msg.sender);
        return sender.id;
    }

    function _checkProfile(string calldata name, bytes2 country) private pure {
        // Ensure the name is displayable and bounded (events are paid by the byte).
        if (bytes(name).length == 0 || bytes(name).length > MAX_NAME_LENGTH) {
            revert ProvenanceInvalidName(bytes(name).length);
        }
        // Ensure the country is two capital letters, the shape of ISO 3166-1 alpha-2.
        if (!_isCapital(country[0]) || !_isCapital(country[1])) revert ProvenanceInvalidCountry(country);
    }

    function _checkReason(string calldata reason) private pure {
        // Ensure a recall or revocation says why, in a length a page can show.
        if (bytes(reason).length == 0 || bytes(reason).length > MAX_REASON_LENGTH) {
            revert ProvenanceInvalidReason(bytes(reason).length);
        }
    }

    /// @dev Reserves `name` for `actorId`, releasing the name it held before.
    function _claimName(address account, uint32 actorId, string calldata name) private {
        bytes32 key = _nameKey(name);
        uint32 holder = _nameHolders[key];
        // Ensure no two active organisations go by the same name.
        if (holder != 0 && holder != actorId) revert ProvenanceNameTaken(_actorAddresses[holder]);
        bytes32 previous = _nameKeys[account];
        if (previous != key) {
            if (previous != 0) delete _nameHolders[previous];
            _nameHolders[key] = actorId;
            _nameKeys[account] = key;
        }
    }

    /// @dev A name's identity: ASCII letters folded to lower case, ASCII spaces and
    /// punctuation dropped ("EthicCert Labs" = "ethiccert-labs"); other bytes kept as they
    /// are. Look-alike letters from other scripts are left to the admin's review.
    function _nameKey(string calldata name) private pure returns (bytes32) {
        bytes memory folded = new bytes(bytes(name).length);
        uint256 length;
        for (uint256 i = 0; i < bytes(name).length; ++i) {
            bytes1 char = bytes(name)[i];
            if (char >= "A" && char <= "Z") {
                folded[length++] = bytes1(uint8(char) + 32);
            } else if ((char >= "a" && char <= "z") || (char >= "0" && char <= "9") || uint8(char) >= 0x80) {
                folded[length++] = char;
            }
        }
        assembly ("memory-safe") {
            mstore(folded, length)
        }
        return keccak256(folded);
    }

    /// @dev The licence key of a prefix, after checking the prefix fits its length.
    function _licenceKey(uint8 prefixLength, uint64 prefix) private pure returns (uint64) {
        bool valid = prefixLength == SINGLE_GTIN
            ? _isValidGtin(prefix)
            : prefixLength >= 4 && prefixLength <= 12 && prefix < 10 ** prefixLength;
        if (!valid) revert ProvenanceInvalidPrefix(prefixLength, prefix);
        return (prefix << 4) | prefixLength;
    }

    /// @dev The first `length` digits of a prefix of `prefixLength` digits; a GTIN-14's
    /// company prefix digits start after its indicator digit.
    function _prefixOf(uint64 prefix, uint8 prefixLength, uint8 length) private pure returns (uint64) {
        if (prefixLength == SINGLE_GTIN) return (prefix % 1e13) / uint64(10) ** (13 - length);
        return prefix / uint64(10) ** (prefixLength - length);
    }

    function _storeLicence(
        uint64 key,
        address licensee,
        uint8 prefixLength,
        uint64 prefix,
        uint32 grantorId,
        uint64 parentKey,
        uint32 parentSerial
    ) private {
        ActorSlot storage actor = _actors[licensee];
        // Ensure the licensee is an active organisation and the range is not taken.
        if (actor.id == 0) revert ProvenanceUnknownActor(licensee);
        if (!actor.active) revert ProvenanceActorInactive(licensee);
        LicenceSlot memory existing = _licences[key];
        // A lapsed sub-licence (its root withdrawn) no longer takes the range.
        if (_inForce(existing)) {
            revert ProvenanceLicenceAlreadyGranted(prefixLength, prefix, _actorAddresses[existing.licenseeId]);
        }
        _licences[key] = LicenceSlot({
            licenseeId: actor.id,
            grantorId: grantorId,
            parentKey: parentKey,
            parentSerial: parentSerial,
            serial: ++_licenceSerial,
            innerRoots: existing.innerRoots // the count belongs to the range, not to a holder
        });
        actor.licenceLengths |= uint16(1) << prefixLength;
        // A root licence needs no parent check, so the latest one is kept in the actor's slot.
        if (parentKey == 0) actor.rootLicence = key;
        emit LicenceGranted(key, licensee, msg.sender, prefixLength, prefix, parentKey);
    }

    /// @dev A licence is in force while held and, for a sub-licence, while the very root
    /// licence it was cut from is still held.
    function _inForce(LicenceSlot memory licence) private view returns (bool) {
        if (licence.licenseeId == 0) return false;
        if (licence.parentKey == 0) return true;
        return _licences[licence.parentKey].serial == licence.parentSerial;
    }

    /// @dev First the root licence cached in the actor's slot (no read: the common case of
    /// one company prefix), then only the prefix lengths the organisation was ever licensed
    /// at, longest first.
    function _isLicensed(ActorSlot memory actor, uint64 gtin) private view returns (bool) {
        uint64 root = actor.rootLicence;
        if (root != 0) {
            uint8 rootLength = uint8(root & 15);
            uint64 rootPrefix = root >> 4;
            if (rootLength == SINGLE_GTIN ? rootPrefix == gtin : (gtin % 1e13) / uint64(10) ** (13 - rootLength) == rootPrefix) {
                return true;
            }
        }
        uint16 lengths = actor.licenceLengths;
        if (lengths == 0) return false;
        if (lengths & (uint16(1) << SINGLE_GTIN) != 0) {
            LicenceSlot memory single = _licences[(gtin << 4) | SINGLE_GTIN];
            if (single.licenseeId == actor.id && _inForce(single)) return true;
        }
        uint64 body = gtin % 1e13; // the digits after the indicator digit
        for (uint8 length = 12; length >= 4; --length) {
            if (lengths & (uint16(1) << length) == 0) continue;
            LicenceSlot memory licence = _licences[((body / uint64(10) ** (13 - length)) << 4) | length];
            if (licence.licenseeId == actor.id && _inForce(licence)) return true;
        }
        return false;
    }

    /// @dev Checks a GTIN a batch is created under: valid check digit, licensed to the caller.
    function _checkGtin(uint64 gtin, ActorSlot memory actor) private view {
        // Ensure the identifiers are GS1-valid, so every QR code printed for them resolves.
        if (!_isValidGtin(gtin)) revert ProvenanceInvalidGtin(gtin);
        // Ensure only the GTIN's licensee names lots of it: no squatting another brand's lots.
        if (!_isLicensed(actor, gtin)) revert ProvenanceNotLicensed(gtin, _actorAddresses[actor.id]);
    }

    function _loadBatch(bytes32 batchId) private view returns (BatchSlot memory) {
        return _unpackBatch(_batches[batchId]);
    }

    /// @dev The batch's word, after checking it exists and is not voided.
    function _requireLiveBatch(bytes32 batchId) private view returns (uint256 word) {
        word = _batches[batchId];
        if (word == 0) revert ProvenanceUnknownBatch(batchId);
        if (BatchStatus(uint8(word >> STATUS_SHIFT)) == BatchStatus.Voided) revert ProvenanceBatchVoided(batchId);
    }

    /// @dev `word` with the byte at `shift` replaced by `value`.
    function _withByte(uint256 word, uint256 shift, uint8 value) private pure returns (uint256) {
        return (word & ~(uint256(0xff) << shift)) | (uint256(value) << shift);
    }

    function _isRecalled(RecallState recall) private pure returns (bool) {
        return recall == RecallState.Recalled || recall == RecallState.Upheld;
    }

    /// @dev Layout, from the low bits: supplierId 24, custodianId 24, pendingCustodianId 24,
    /// registeredQuantity 64, remainingQuantity 64, status 8, recall state 8,
    /// registeredAt 40. Zero means unknown.
    function _packBatch(BatchSlot memory batch) private pure returns (uint256) {
        return uint256(batch.supplierId) | (uint256(batch.custodianId) << CUSTODIAN_SHIFT)
            | (uint256(batch.pendingCustodianId) << PENDING_SHIFT)
            | (uint256(batch.registeredQuantity) << REGISTERED_SHIFT)
            | (uint256(batch.remainingQuantity) << REMAINING_SHIFT)
            | (uint256(uint8(batch.status)) << STATUS_SHIFT) | (uint256(uint8(batch.recall)) << RECALL_SHIFT)
            | (uint256(batch.registeredAt) << REGISTERED_AT_SHIFT);
    }

    /// @dev Inverse of {_packBatch}.
    function _unpackBatch(uint256 word) private pure returns (BatchSlot memory batch) {
        batch.supplierId = uint32(word & ID_MASK);
        batch.custodianId = uint32((word >> CUSTODIAN_SHIFT) & ID_MASK);
        batch.pendingCustodianId = uint32((word >> PENDING_SHIFT) & ID_MASK);
        batch.registeredQuantity = uint64(word >> REGISTERED_SHIFT);
        batch.remainingQuantity = uint64(word >> REMAINING_SHIFT);
        batch.status = BatchStatus(uint8(word >> STATUS_SHIFT));
        batch.recall = RecallState(uint8(word >> RECALL_SHIFT));
        batch.registeredAt = uint40(word >> REGISTERED_AT_SHIFT);
    }

    function _isCapital(bytes1 char) private pure returns (bool) {
        return char >= "A" && char <= "Z";
    }

    function _batchIdOf(uint64 gtin, bytes20 lot) private pure returns (bytes32) {
        return keccak256(abi.encodePacked(gtin, lot));
    }

    /// @dev `supplier` is the address of `supplierId`, passed in to spare a storage read.
    /// The caller has checked the GTIN ({_checkGtin}).
    function _createBatch(BatchInput calldata input, uint32 supplierId, address supplier)
        private
        returns (bytes32 batchId)
    {
        // Ensure the lot is GS1 CSET 82, so two lots never display alike and every Digital
        // Link of it parses.
        if (!_isValidLot(input.lot)) revert ProvenanceInvalidLot(input.lot);
        // Ensure there are goods and a unit to count them in.
        if (input.quantity == 0) revert ProvenanceZeroQuantity();
        if (input.unit[0] == 0) revert ProvenanceInvalidUnit(input.unit);
        batchId = _batchIdOf(input.gtin, input.lot);
        // Ensure a lot is registered once: the id is derived from GTIN + lot.
        uint256 existing = _batches[batchId];
        if (existing != 0) {
            revert ProvenanceBatchAlreadyRegistered(batchId, _actorAddresses[uint32(existing & ID_MASK)]);
        }
        // The packed word built directly (see {_packBatch}): no struct in memory per batch.
        _batches[batchId] = uint256(supplierId) | (uint256(supplierId) << CUSTODIAN_SHIFT)
            | (uint256(input.quantity) << REGISTERED_SHIFT) | (uint256(input.quantity) << REMAINING_SHIFT)
            | (uint256(uint8(BatchStatus.Active)) << STATUS_SHIFT) | (_time() << REGISTERED_AT_SHIFT);
        emit BatchRegistered(
            batchId, supplier, input.gtin, input.lot, input.quantity, input.unit, input.metadataHash
        );
    }

    function _consume(bytes32 batchId, uint64 quantity, uint32 custodianId) private {
        BatchSlot memory batch = _loadBatch(batchId);
        if (batch.status == BatchStatus.None) revert ProvenanceUnknownBatch(batchId);
        if (batch.status == BatchStatus.Voided) revert ProvenanceBatchVoided(batchId);
        // Ensure only the holder consumes, and only goods that are free to use.
        if (batch.custodianId != custodianId) {
            revert ProvenanceNotCustodian(batchId, msg.sender, _actorAddresses[batch.custodianId]);
        }
        if (_isRecalled(batch.recall)) revert ProvenanceBatchRecalled(batchId);
        if (batch.pendingCustodianId != 0) {
            revert ProvenanceTransferPending(batchId, _actorAddresses[batch.pendingCustodianId]);
        }
        if (batch.status == BatchStatus.Consumed) revert ProvenanceBatchConsumed(batchId);
        // Ensure an input is never consumed beyond what remains of it.
        if (quantity == 0) revert ProvenanceZeroQuantity();
        if (quantity > batch.remainingQuantity) {
            revert ProvenanceInsufficientQuantity(batchId, quantity, batch.remainingQuantity);
        }
        unchecked {
            batch.remainingQuantity -= quantity;
        }
        if (batch.remainingQuantity == 0) batch.status = BatchStatus.Consumed;
        _batches[batchId] = _packBatch(batch);
    }

    function _checkTransformationShape(TransformationKind kind, uint256 inputs, uint256 outputs) private pure {
        // Ensure the shape matches the kind: split 1 to n, merge n to 1, processing n to m.
        bool valid;
        if (kind == TransformationKind.Split) valid = inputs == 1 && outputs >= 1;
        else if (kind == TransformationKind.Merge) valid = inputs >= 2 && outputs == 1;
        else valid = inputs >= 1 && outputs >= 1;
        if (!valid) revert ProvenanceInvalidTransformation(kind, inputs, outputs);
    }

    /// @dev GS1 check digit: weights 3,1,3,... from the digit left of the check digit.
    /// Two digits a round in assembly: the check runs on every batch created, and this
    /// costs a third of the gas of the plain Solidity loop.
    function _isValidGtin(uint64 gtin) private pure returns (bool valid) {
        assembly ("memory-safe") {
            if and(gt(gtin, 0), lt(gtin, 100000000000000)) {
                let rest := div(gtin, 10)
                let sum := 0
                for {} rest {} {
                    sum := add(sum, add(mul(mod(rest, 10), 3), mod(div(rest, 10), 10)))
                    rest := div(rest, 100)
                }
                valid := eq(mod(sub(10, mod(sum, 10)), 10), mod(gtin, 10))
            }
        }
    }

    /// @dev 1 to 20 CSET 82 characters, left-aligned, zero bytes only after the last one.
    /// One bitmap lookup a character; the loop shifts the lot left until nothing is left,
    /// so a zero byte before the last character (not in CSET 82) fails like any other.
    /// (A branch-free SWAR check of all 20 bytes costs less gas for long lots but its
    /// constants, copied wherever batches are created, break EIP-170's size limit.)
    function _isValidLot(bytes20 lot) private pure returns (bool valid) {
        assembly ("memory-safe") {
            valid := iszero(iszero(lot))
            for { let rest := lot } rest { rest := shl(8, rest) } {
                if iszero(and(shr(byte(0, rest), CSET82), 1)) {
                    valid := 0
                    break
                }
            }
        }
    }

    function _attestationUid(address issuer, AttestationRequest calldata request, uint64 validFrom)
        private
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                issuer,
                request.subjectKind,
                request.subject,
                request.claim,
                validFrom,
                request.validUntil,
                request.evidenceHash
            )
        );
    }

    /// @dev `defaultFrom` is what `validFrom` 0 means: the block time, or the signing time.
    function _attest(address issuer, AttestationRequest calldata request, uint64 defaultFrom)
        private
        returns (bytes32 uid)
    {
        ActorSlot memory actor = _requireActiveActor(issuer);
        ClaimTypeSlot memory claimType = _claimTypeSlots[request.claim];
        // Ensure the claim is defined and the issuer accredited for it now.
        if (claimType.id == 0) revert ProvenanceUnknownClaimType(request.claim);
        if (!_hasAccreditationBit(actor, claimType.id)) revert ProvenanceNotAccredited(issuer, request.claim);
        uint64 validFrom = request.validFrom == 0 ? defaultFrom : request.validFrom;
        // Ensure the window is non-empty and fits the stored width.
        if (
            validFrom > type(uint40).max || request.validUntil > type(uint40).max
                || (request.validUntil != 0 && request.validUntil <= validFrom)
        ) revert ProvenanceInvalidValidity(validFrom, request.validUntil);
        // Ensure nobody backdates a claim further than the claim type allows.
        uint256 now_ = _time();
        if (uint256(validFrom) + claimType.maxBackdating < now_) {
            revert ProvenanceValidFromTooEarly(validFrom, uint64(now_ - claimType.maxBackdating));
        }
        if (request.subjectKind == SubjectKind.Batch) {
            uint256 word = _batches[request.subject];
            // Ensure the batch exists and is real, so nobody vouches for what is not there.
            if (word == 0) revert ProvenanceUnknownSubject(request.subjectKind, request.subject);
            if (BatchStatus(uint8(word >> STATUS_SHIFT)) == BatchStatus.Voided) {
                revert ProvenanceBatchVoided(request.subject);
            }
            // Ensure separation of duties: no certifier vouches for goods it supplied or holds.
            if (
                actor.id == (word & ID_MASK) || actor.id == ((word >> CUSTODIAN_SHIFT) & ID_MASK)
                    || actor.id == ((word >> PENDING_SHIFT) & ID_MASK)
            ) revert ProvenanceConflictOfInterest(issuer, request.subjectKind, request.subject);
            // Ensure a claim about a batch does not start before the batch existed.
            uint64 registeredAt = uint64(word >> REGISTERED_AT_SHIFT);
            if (validFrom < registeredAt) revert ProvenanceValidFromTooEarly(validFrom, registeredAt);
        } else {
            address subjectAccount = address(uint160(uint256(request.subject)));
            // Ensure the organisation exists and is not the issuer itself.
            if (uint256(request.subject) >> 160 != 0 || _actors[subjectAccount].id == 0) {
                revert ProvenanceUnknownSubject(request.subjectKind, request.subject);
            }
            if (subjectAccount == issuer) {
                revert ProvenanceConflictOfInterest(issuer, request.subjectKind, request.subject);
            }
        }
        uid = _attestationUid(issuer, request, validFrom);
        AttestationSlot storage stored = _attestations[uid];
        // Ensure identical content is attested once (a retry is then recognisable).
        if (stored.issuerId != 0) revert ProvenanceAttestationAlreadyExists(uid);
        _attestations[uid] = AttestationSlot({
            issuerId: actor.id,
            claimTypeId: claimType.id,
            subjectKind: request.subjectKind,
            validFrom: uint40(validFrom),
            validUntil: uint40(request.validUntil),
            revokedAt: 0
        });
        emit Attested(
            uid,
            request.subject,
            issuer,
            request.subjectKind,
            request.claim,
            validFrom,
            request.validUntil,
            request.evidenceHash
        );
    }
}
