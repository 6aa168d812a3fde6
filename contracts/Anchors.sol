// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Anchors: a head of an off-chain hash-chained log, published as one event.
/// @notice Anyone may anchor; readers trust only the anchors of the account they know
///         (the event's `by` is indexed, so they ask for that account's anchors alone).
///         Nothing is stored: an anchor costs one event (~24,000 gas with the transaction),
///         and the chain's log is the record.
/// @dev Kept apart from ProvenanceLedger, whose code is at the EIP-170 size limit.
contract Anchors {
    /// @notice `by` published that its log's first `count` entries hash to `head`.
    /// @param by The account that anchored (msg.sender).
    /// @param head The hash of the log's entry number `count` (chained over all before it).
    /// @param count How many entries the log held (the head's position, 1-based).
    event Anchored(address indexed by, bytes32 head, uint64 count);

    /// @notice Publish the head of the caller's log.
    /// @param head The hash of entry number `count`.
    /// @param count The number of entries the head covers.
    function anchor(bytes32 head, uint64 count) external {
        emit Anchored(msg.sender, head, count);
    }
}
