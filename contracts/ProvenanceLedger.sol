// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {IProvenanceLedger} from "./interfaces/IProvenanceLedger.sol";

/// @title ProvenanceLedger
/// @notice See {IProvenanceLedger}.
/// @dev Gas shapes the storage: each batch and each attestation is exactly one slot, and
/// organisations are referred to by a 32-bit registration number inside those slots so
/// that custodian, pending custodian and supplier fit beside the quantities. An
/// organisation's slot also mirrors its supplier role and its accreditations (one bit per
/// claim type), kept in step by the {_grantRole}/{_revokeRole} overrides, so the hot paths
/// (register, attest) read one slot instead of three. AccessControl stays the source of
/// truth: `hasRole` and the role events are unchanged.
contract ProvenanceLedger is IProvenanceLedger, AccessControlDefaultAdminRules, EIP712, Nonces {
    /// @inheritdoc IProvenanceLedger
    bytes32 public constant SUPPLIER_ROLE = keccak256("SUPPLIER_ROLE");

    /// @dev Prefix of the per-claim accreditation roles.
    bytes32 private constant CERTIFIER_ROLE = keccak256("CERTIFIER_ROLE");

    /// @dev EIP-712 type of a delegated attestation.
    bytes32 private constant ATTEST_TYPEHASH = keccak256(
        "Attest(address issuer,uint8 subjectKind,bytes32 subject,bytes32 claim,uint64 validFrom,"
        "uint64 validUntil,bytes32 evidenceHash,uint256 nonce,uint256 deadline)"
    );

    uint256 private constant MAX_NAME_LENGTH = 64;
    uint16 private constant MAX_CLAIM_TYPES = 128; // bits in ActorSlot.accreditations

    // Bit offsets of the fields in a packed batch word (see {_packBatch}).
    uint256 private constant ID_MASK = type(uint32).max;
    uint256 private constant CUSTODIAN_SHIFT = 32;
    uint256 private constant PENDING_SHIFT = 64;
    uint256 private constant REGISTERED_SHIFT = 96;
    uint256 private constant REMAINING_SHIFT = 160;
    uint256 private constant STATUS_SHIFT = 224;
    uint256 private constant RECALLED_SHIFT = 232;

    /// @dev One slot per organisation.
    struct ActorSlot {
        uint32 id;
        bool active;
        bool supplier; // mirrors hasRole(SUPPLIER_ROLE, account)
        uint128 accreditations; // bit (claimTypeId - 1) mirrors hasRole(accreditationRole(claim), account)
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
        bool recalled;
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

    uint32 private _actorCount;
    uint16 private _claimTypeCount;

    mapping(address account => ActorSlot) private _actors;
    mapping(uint32 actorId => address) private _actorAddresses;
    mapping(bytes32 claim => uint16) private _claimTypeIds;
    mapping(uint16 claimTypeId => bytes32) private _claimTypes;
    mapping(bytes32 role => uint16 claimTypeId) private _claimTypeOfRole;
    mapping(bytes32 batchId => uint256 packedBatch) private _batches;
    mapping(bytes32 uid => AttestationSlot) private _attestations;

    /// @param admin The operator (a brand or a consortium) holding the default admin role.
    /// @param adminTransferDelay Seconds a new admin must wait before accepting the role.
    constructor(address admin, uint48 adminTransferDelay)
        AccessControlDefaultAdminRules(adminTransferDelay, admin)
        EIP712("ProvenanceLedger", "1")
    {
        // The common ethical-sourcing claims exist from the start; the admin may add more.
        _defineClaimType("FAIRTRADE");
        _defineClaimType("ORGANIC");
        _defineClaimType("DEFORESTATION_FREE");
    }

    // ------------------------------------------------------------------ roles and claim types

    /// @inheritdoc IProvenanceLedger
    function defineClaimType(bytes32 claim) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _defineClaimType(claim);
    }

    /// @inheritdoc IProvenanceLedger
    function isClaimTypeDefined(bytes32 claim) external view returns (bool) {
        return _claimTypeIds[claim] != 0;
    }

    /// @inheritdoc IProvenanceLedger
    function accreditationRole(bytes32 claim) public pure returns (bytes32) {
        return keccak256(abi.encode(CERTIFIER_ROLE, claim));
    }

    /// @inheritdoc IProvenanceLedger
    function accreditCertifier(address certifier, bytes32 claim) external onlyRole(DEFAULT_ADMIN_ROLE) {
        // Ensure the claim exists, so a typo cannot create an accreditation nobody checks.
        if (_claimTypeIds[claim] == 0) revert ProvenanceUnknownClaimType(claim);
        _grantRole(accreditationRole(claim), certifier);
    }

    /// @inheritdoc IProvenanceLedger
    function withdrawAccreditation(address certifier, bytes32 claim) external onlyRole(DEFAULT_ADMIN_ROLE) {
        // Ensure the claim exists, for the same reason.
        if (_claimTypeIds[claim] == 0) revert ProvenanceUnknownClaimType(claim);
        _revokeRole(accreditationRole(claim), certifier);
    }

    /// @inheritdoc IProvenanceLedger
    function isAccredited(address certifier, bytes32 claim) public view returns (bool) {
        return hasRole(accreditationRole(claim), certifier);
    }

    // ------------------------------------------------------------------ actors

    /// @inheritdoc IProvenanceLedger
    function registerActor(address account, string calldata name, bytes2 country, bytes32 metadataHash)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        // Ensure each organisation is registered once, under one number.
        if (account == address(0) || _actors[account].id != 0) revert ProvenanceActorAlreadyRegistered(account);
        _checkProfile(name, country);
        uint32 actorId = ++_actorCount;
        // Roles may have been granted before registration: mirror them now.
        _actors[account] = ActorSlot({
            id: actorId,
            active: true,
            supplier: hasRole(SUPPLIER_ROLE, account),
            accreditations: _accreditationsFromRoles(account)
        });
        _actorAddresses[actorId] = account;
        emit ActorRegistered(account, actorId, name, country, metadataHash);
    }

    /// @inheritdoc IProvenanceLedger
    function updateActorProfile(string calldata name, bytes2 country, bytes32 metadataHash) external {
        _requireActiveActor(msg.sender);
        _checkProfile(name, country);
        emit ActorProfileUpdated(msg.sender, name, country, metadataHash);
    }

    /// @inheritdoc IProvenanceLedger
    function deactivateActor(address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireActiveActor(account);
        _actors[account].active = false;
        emit ActorDeactivated(account);
    }

    /// @inheritdoc IProvenanceLedger
    function reactivateActor(address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        ActorSlot storage actor = _actors[account];
        // Ensure the account is registered and currently inactive.
        if (actor.id == 0) revert ProvenanceUnknownActor(account);
        if (actor.active) revert ProvenanceActorAlreadyActive(account);
        actor.active = true;
        emit ActorReactivated(account);
    }

    /// @inheritdoc IProvenanceLedger
    function getActor(address account) external view returns (Actor memory) {
        ActorSlot memory slot = _actors[account];
        return Actor({id: slot.id, active: slot.active, supplier: slot.supplier});
    }

    /// @inheritdoc IProvenanceLedger
    function actorAddress(uint32 actorId) external view returns (address) {
        return _actorAddresses[actorId];
    }

    // ------------------------------------------------------------------ batches

    /// @inheritdoc IProvenanceLedger
    function batchIdOf(uint64 gtin, bytes20 lot) external pure returns (bytes32) {
        return _batchIdOf(gtin, lot);
    }

    /// @inheritdoc IProvenanceLedger
    function registerBatch(BatchInput calldata input) external returns (bytes32 batchId) {
        uint32 supplierId = _requireSupplier(msg.sender);
        batchId = _createBatch(input, supplierId, msg.sender);
    }

    /// @inheritdoc IProvenanceLedger
    function registerBatches(BatchInput[] calldata inputs) external returns (bytes32[] memory batchIds) {
        // Ensure a bulk call carries work, so a client bug does not pass silently.
        if (inputs.length == 0) revert ProvenanceEmptyList();
        uint32 supplierId = _requireSupplier(msg.sender);
        batchIds = new bytes32[](inputs.length);
        for (uint256 i = 0; i < inputs.length; ++i) {
            batchIds[i] = _createBatch(inputs[i], supplierId, msg.sender);
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
            recalled: slot.recalled
        });
    }

    /// @inheritdoc IProvenanceLedger
    /// @dev The hand-over paths edit the packed word in place instead of unpacking it: they
    /// run twice per hand-over and the round trip through memory costs ~1,000 gas each.
    function transferCustody(bytes32 batchId, address to) external {
        uint256 word = _batches[batchId];
        uint32 senderId = _requireCustodian(batchId, _unpackBatch(word));
        // Ensure goods with nothing left cannot be handed over.
        if (BatchStatus(uint8(word >> STATUS_SHIFT)) == BatchStatus.Consumed) revert ProvenanceBatchConsumed(batchId);
        // Ensure one hand-over at a time.
        uint32 pendingId = uint32(word >> PENDING_SHIFT);
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
        uint32 pendingId = uint32(word >> PENDING_SHIFT);
        if (pendingId == 0) revert ProvenanceNoTransferPending(batchId);
        ActorSlot memory sender = _actors[msg.sender];
        if (sender.id != pendingId) {
            revert ProvenanceNotPendingCustodian(batchId, msg.sender, _actorAddresses[pendingId]);
        }
        if (!sender.active) revert ProvenanceActorInactive(msg.sender);
        uint32 previousCustodianId = uint32(word >> CUSTODIAN_SHIFT);
        // The pending id becomes the custodian id; the pending field is cleared.
        _batches[batchId] = (word & ~((ID_MASK << CUSTODIAN_SHIFT) | (ID_MASK << PENDING_SHIFT)))
            | (uint256(pendingId) << CUSTODIAN_SHIFT);
        emit CustodyTransferAccepted(batchId, _actorAddresses[previousCustodianId], msg.sender);
    }

    /// @inheritdoc IProvenanceLedger
    function cancelCustodyTransfer(bytes32 batchId) external {
        BatchSlot memory batch = _loadBatch(batchId);
        if (batch.status == BatchStatus.None) revert ProvenanceUnknownBatch(batchId);
        if (batch.pendingCustodianId == 0) revert ProvenanceNoTransferPending(batchId);
        // Ensure only the two parties of the hand-over can call it off.
        uint32 senderId = _actors[msg.sender].id;
        if (senderId == 0 || (senderId != batch.custodianId && senderId != batch.pendingCustodianId)) {
            revert ProvenanceNotTransferParty(batchId, msg.sender);
        }
        address proposed = _actorAddresses[batch.pendingCustodianId];
        batch.pendingCustodianId = 0;
        _batches[batchId] = _packBatch(batch);
        emit CustodyTransferCancelled(batchId, _actorAddresses[batch.custodianId], proposed);
    }

    /// @inheritdoc IProvenanceLedger
    function recordStep(bytes32 batchId, bytes32 bizStep, string calldata location, bytes32 dataHash)
        external
    {
        BatchSlot memory batch = _loadBatch(batchId);
        _requireCustodian(batchId, batch);
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
        uint32 custodianId = _requireSupplier(msg.sender);
        _checkTransformationShape(kind, inputs.length, outputs.length);
        for (uint256 i = 0; i < inputs.length; ++i) {
            _consume(inputs[i].batchId, inputs[i].quantity, custodianId);
        }
        outputIds = new bytes32[](outputs.length);
        for (uint256 i = 0; i < outputs.length; ++i) {
            outputIds[i] = _createBatch(outputs[i], custodianId, msg.sender);
        }
        transformationId = keccak256(abi.encodePacked(outputIds));
        emit TransformationRecorded(transformationId, msg.sender, kind, inputs, outputIds, dataHash);
    }

    /// @inheritdoc IProvenanceLedger
    function recallBatch(bytes32 batchId, bytes32 reasonHash) external {
        BatchSlot memory batch = _loadBatch(batchId);
        if (batch.status == BatchStatus.None) revert ProvenanceUnknownBatch(batchId);
        if (batch.recalled) revert ProvenanceBatchRecalled(batchId);
        // Ensure only the supplier or the admin recalls. A deactivated supplier may still
        // recall its own goods: withholding a recall never protects anybody.
        uint32 senderId = _actors[msg.sender].id;
        if ((senderId == 0 || senderId != batch.supplierId) && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert ProvenanceNotRecaller(batchId, msg.sender);
        }
        batch.recalled = true;
        _batches[batchId] = _packBatch(batch);
        emit BatchRecalled(batchId, msg.sender, reasonHash);
    }

    // ------------------------------------------------------------------ attestations

    /// @inheritdoc IProvenanceLedger
    function attestationUid(address issuer, AttestationRequest calldata request)
        external
        pure
        returns (bytes32)
    {
        return _attestationUid(issuer, request, request.validFrom);
    }

    /// @inheritdoc IProvenanceLedger
    function attest(AttestationRequest calldata request) external returns (bytes32 uid) {
        return _attest(msg.sender, request);
    }

    /// @inheritdoc IProvenanceLedger
    function attestMany(AttestationRequest[] calldata requests) external returns (bytes32[] memory uids) {
        if (requests.length == 0) revert ProvenanceEmptyList();
        uids = new bytes32[](requests.length);
        for (uint256 i = 0; i < requests.length; ++i) {
            uids[i] = _attest(msg.sender, requests[i]);
        }
    }

    /// @inheritdoc IProvenanceLedger
    function attestBySig(
        AttestationRequest calldata request,
        address issuer,
        uint256 deadline,
        bytes calldata signature
    ) external returns (bytes32 uid) {
        // Ensure the signature is still meant to be used.
        if (_time() > deadline) revert ProvenanceSignatureExpired(deadline);
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
                    _useNonce(issuer), // consuming the nonce is what makes a replay fail
                    deadline
                )
            )
        );
        // Ensure the issuer signed exactly this (EOA or ERC-1271 contract wallet).
        if (!SignatureChecker.isValidSignatureNow(issuer, digest, signature)) {
            revert ProvenanceInvalidSignature(issuer);
        }
        return _attest(issuer, request);
    }

    /// @inheritdoc IProvenanceLedger
    function revokeAttestation(bytes32 uid, bytes32 reasonHash) external {
        AttestationSlot storage stored = _attestations[uid];
        AttestationSlot memory attestation = stored;
        if (attestation.issuerId == 0) revert ProvenanceUnknownAttestation(uid);
        if (attestation.revokedAt != 0) revert ProvenanceAttestationAlreadyRevoked(uid);
        // Ensure only the issuer (accredited or not any more) or the admin revokes.
        if (_actors[msg.sender].id != attestation.issuerId && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert ProvenanceNotRevoker(uid, msg.sender);
        }
        stored.revokedAt = uint40(_time());
        emit AttestationRevoked(uid, msg.sender, reasonHash);
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
    function isAttestationValid(bytes32 uid) external view returns (bool) {
        return attestationStatus(uid) == AttestationStatus.Valid;
    }

    /// @inheritdoc IProvenanceLedger
    function nonces(address issuer) public view override(IProvenanceLedger, Nonces) returns (uint256) {
        return super.nonces(issuer);
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

    /// @dev See {_grantRole}.
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

    function _accreditationsFromRoles(address account) private view returns (uint128 bits) {
        for (uint16 claimTypeId = 1; claimTypeId <= _claimTypeCount; ++claimTypeId) {
            if (hasRole(accreditationRole(_claimTypes[claimTypeId]), account)) bits |= uint128(1) << (claimTypeId - 1);
        }
    }

    function _hasAccreditationBit(ActorSlot memory actor, uint16 claimTypeId) private pure returns (bool) {
        return actor.accreditations & (uint128(1) << (claimTypeId - 1)) != 0;
    }

    function _defineClaimType(bytes32 claim) private {
        // Ensure a claim type is non-empty and defined once, within the mirrored bits.
        if (claim == bytes32(0) || _claimTypeIds[claim] != 0) revert ProvenanceClaimTypeAlreadyDefined(claim);
        if (_claimTypeCount == MAX_CLAIM_TYPES) revert ProvenanceTooManyClaimTypes(MAX_CLAIM_TYPES);
        uint16 claimTypeId = ++_claimTypeCount;
        bytes32 role = accreditationRole(claim);
        _claimTypeIds[claim] = claimTypeId;
        _claimTypes[claimTypeId] = claim;
        _claimTypeOfRole[role] = claimTypeId;
        emit ClaimTypeDefined(claim, claimTypeId, role);
    }

    function _requireActiveActor(address account) private view returns (ActorSlot memory actor) {
        actor = _actors[account];
        // Ensure the account is a registered organisation the admin has not deactivated.
        if (actor.id == 0) revert ProvenanceUnknownActor(account);
        if (!actor.active) revert ProvenanceActorInactive(account);
    }

    function _requireSupplier(address account) private view returns (uint32 actorId) {
        ActorSlot memory actor = _requireActiveActor(account);
        // Ensure the admin made this organisation a supplier.
        if (!actor.supplier) revert AccessControlUnauthorizedAccount(account, SUPPLIER_ROLE);
        return actor.id;
    }

    /// @dev Checks that the batch exists and the caller, active, holds it; returns its id.
    function _requireCustodian(bytes32 batchId, BatchSlot memory batch) private view returns (uint32 senderId) {
        if (batch.status == BatchStatus.None) revert ProvenanceUnknownBatch(batchId);
        ActorSlot memory sender = _actors[msg.sender];
        // Ensure only the holder of the goods speaks for them.
        if (sender.id == 0 || sender.id != batch.custodianId) {
            revert ProvenanceNotCustodian(batchId, msg.sender, _actorAddresses[batch.custodianId]);
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

    function _loadBatch(bytes32 batchId) private view returns (BatchSlot memory) {
        return _unpackBatch(_batches[batchId]);
    }

    /// @dev Layout, from the low bits: supplierId 32, custodianId 32, pendingCustodianId 32,
    /// registeredQuantity 64, remainingQuantity 64, status 8, recalled 8. Zero means unknown.
    function _packBatch(BatchSlot memory batch) private pure returns (uint256) {
        return uint256(batch.supplierId) | (uint256(batch.custodianId) << CUSTODIAN_SHIFT)
            | (uint256(batch.pendingCustodianId) << PENDING_SHIFT)
            | (uint256(batch.registeredQuantity) << REGISTERED_SHIFT)
            | (uint256(batch.remainingQuantity) << REMAINING_SHIFT)
            | (uint256(uint8(batch.status)) << STATUS_SHIFT) | (batch.recalled ? uint256(1) << RECALLED_SHIFT : 0);
    }

    /// @dev Inverse of {_packBatch}.
    function _unpackBatch(uint256 word) private pure returns (BatchSlot memory batch) {
        batch.supplierId = uint32(word);
        batch.custodianId = uint32(word >> CUSTODIAN_SHIFT);
        batch.pendingCustodianId = uint32(word >> PENDING_SHIFT);
        batch.registeredQuantity = uint64(word >> REGISTERED_SHIFT);
        batch.remainingQuantity = uint64(word >> REMAINING_SHIFT);
        batch.status = BatchStatus(uint8(word >> STATUS_SHIFT));
        batch.recalled = (word >> RECALLED_SHIFT) & 1 == 1;
    }

    function _isCapital(bytes1 char) private pure returns (bool) {
        return char >= "A" && char <= "Z";
    }

    function _batchIdOf(uint64 gtin, bytes20 lot) private pure returns (bytes32) {
        return keccak256(abi.encodePacked(gtin, lot));
    }

    /// @dev `supplier` is the address of `supplierId`, passed in to spare a storage read.
    function _createBatch(BatchInput calldata input, uint32 supplierId, address supplier)
        private
        returns (bytes32 batchId)
    {
        // Ensure the identifiers are GS1-valid, so every QR code printed for them resolves.
        if (!_isValidGtin(input.gtin)) revert ProvenanceInvalidGtin(input.gtin);
        // A left-aligned lot has a non-zero first byte; the 20-byte width bounds its length.
        if (input.lot[0] == 0) revert ProvenanceInvalidLot(input.lot);
        // Ensure there are goods and a unit to count them in.
        if (input.quantity == 0) revert ProvenanceZeroQuantity();
        if (input.unit[0] == 0) revert ProvenanceInvalidUnit(input.unit);
        batchId = _batchIdOf(input.gtin, input.lot);
        // Ensure a lot is registered once: the id is derived from GTIN + lot.
        uint256 existing = _batches[batchId];
        if (existing != 0) {
            revert ProvenanceBatchAlreadyRegistered(batchId, _actorAddresses[_unpackBatch(existing).supplierId]);
        }
        _batches[batchId] = _packBatch(
            BatchSlot({
                supplierId: supplierId,
                custodianId: supplierId,
                pendingCustodianId: 0,
                registeredQuantity: input.quantity,
                remainingQuantity: input.quantity,
                status: BatchStatus.Active,
                recalled: false
            })
        );
        emit BatchRegistered(
            batchId, supplier, input.gtin, input.lot, input.quantity, input.unit, input.metadataHash
        );
    }

    function _consume(bytes32 batchId, uint64 quantity, uint32 custodianId) private {
        BatchSlot memory batch = _loadBatch(batchId);
        if (batch.status == BatchStatus.None) revert ProvenanceUnknownBatch(batchId);
        // Ensure only the holder consumes, and only goods that are free to use.
        if (batch.custodianId != custodianId) {
            revert ProvenanceNotCustodian(batchId, msg.sender, _actorAddresses[batch.custodianId]);
        }
        if (batch.recalled) revert ProvenanceBatchRecalled(batchId);
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

    function _attest(address issuer, AttestationRequest calldata request) private returns (bytes32 uid) {
        ActorSlot memory actor = _requireActiveActor(issuer);
        uint16 claimTypeId = _claimTypeIds[request.claim];
        // Ensure the claim is defined and the issuer accredited for it now.
        if (claimTypeId == 0) revert ProvenanceUnknownClaimType(request.claim);
        if (!_hasAccreditationBit(actor, claimTypeId)) revert ProvenanceNotAccredited(issuer, request.claim);
        uint64 validFrom = request.validFrom == 0 ? uint64(_time()) : request.validFrom;
        // Ensure the window is non-empty and fits the stored width.
        if (
            validFrom > type(uint40).max || request.validUntil > type(uint40).max
                || (request.validUntil != 0 && request.validUntil <= validFrom)
        ) revert ProvenanceInvalidValidity(validFrom, request.validUntil);
        // Ensure the subject exists, so nobody vouches for a batch or actor that is not there.
        if (request.subjectKind == SubjectKind.Batch) {
            if (_batches[request.subject] == 0) {
                revert ProvenanceUnknownSubject(request.subjectKind, request.subject);
            }
        } else if (
            uint256(request.subject) >> 160 != 0 || _actors[address(uint160(uint256(request.subject)))].id == 0
        ) {
            revert ProvenanceUnknownSubject(request.subjectKind, request.subject);
        }
        uid = _attestationUid(issuer, request, validFrom);
        AttestationSlot storage stored = _attestations[uid];
        // Ensure identical content is attested once (a retry is then recognisable).
        if (stored.issuerId != 0) revert ProvenanceAttestationAlreadyExists(uid);
        _attestations[uid] = AttestationSlot({
            issuerId: actor.id,
            claimTypeId: claimTypeId,
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
