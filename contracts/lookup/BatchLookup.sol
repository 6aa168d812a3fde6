// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IProvenanceLedger} from "../interfaces/IProvenanceLedger.sol";

/// @title Which of many batch ids the ledger holds, in one eth_call
/// @notice Never deployed. The client runs this creation code in an `eth_call` without a
/// `to` address: the constructor reads each batch through the ledger's public `getBatch`
/// and returns its registration time (0: not registered) as an ABI `uint64[]`, so a bulk
/// import asks about thousands of lots in one round trip instead of one call per lot.
contract BatchLookup {
    constructor(IProvenanceLedger ledger, bytes32[] memory batchIds) {
        uint64[] memory registeredAt = new uint64[](batchIds.length);
        for (uint256 i = 0; i < batchIds.length; ++i) {
            IProvenanceLedger.Batch memory batch = ledger.getBatch(batchIds[i]);
            if (batch.status != IProvenanceLedger.BatchStatus.None) {
                // A batch is never registered at time 0 on a real chain; 1 keeps "held" nonzero.
                registeredAt[i] = batch.registeredAt == 0 ? 1 : batch.registeredAt;
            }
        }
        bytes memory answer = abi.encode(registeredAt);
        assembly {
            return(add(answer, 32), mload(answer))
        }
    }
}
