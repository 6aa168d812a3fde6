// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title ERC1271Wallet
/// @notice A minimal contract wallet for the contract tests only: a certifier organisation
/// whose address is a contract, as a multisig or a smart account would be. It accepts a
/// signature when its owner key signed the hash, and lets the owner call other contracts
/// in the wallet's name. Never deployed outside tests.
contract ERC1271Wallet is IERC1271 {
    /// @notice The key whose signatures the wallet accepts.
    address public immutable owner;

    error ERC1271WalletNotOwner(address caller);
    error ERC1271WalletCallFailed(bytes reason);

    constructor(address owner_) {
        owner = owner_;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(hash, signature);
        if (error == ECDSA.RecoverError.NoError && signer == owner) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }

    /// @notice The owner makes the wallet call `target` (e.g. invalidateNonces on the ledger).
    function execute(address target, bytes calldata data) external returns (bytes memory result) {
        if (msg.sender != owner) revert ERC1271WalletNotOwner(msg.sender);
        bool success;
        (success, result) = target.call(data);
        if (!success) revert ERC1271WalletCallFailed(result);
    }
}
