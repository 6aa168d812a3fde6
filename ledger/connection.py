"""A checked connection to a deployed ledger: the right chain, the contract's code present."""

from __future__ import annotations

from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract

from ledger.artifacts import load_artifact
from ledger.chain import connect
from ledger.config import Settings
from ledger.deploy import read_deployment
from ledger.errors import ChainError, ConfigurationError, ErrorDecoder
from ledger.identifiers import lot_from_bytes


class LedgerConnection:
    """web3, the ledger contract and the helpers every reader and writer needs."""

    def __init__(self, settings: Settings, w3: Web3, address: ChecksumAddress, deploy_block: int) -> None:
        self.settings = settings
        self.w3 = w3
        self.address = address
        self.deploy_block = deploy_block
        self.contract: Contract = w3.eth.contract(address=address, abi=load_artifact().abi)
        self.decoder = ErrorDecoder(load_artifact().abi)
        self.names = Directory(self)

    @classmethod
    def open(cls, settings: Settings) -> "LedgerConnection":
        """Connect and check: reachable, expected chain id, ledger code at the address."""
        w3 = connect(settings.rpc_url)
        try:
            chain_id = w3.eth.chain_id
        except Exception as exc:  # noqa: BLE001 - any transport failure means the same to a user
            hint = " Is the local chain running? Start it with `make run`." if settings.is_local_chain else ""
            raise ChainError(f"cannot reach the chain at {settings.rpc_url} ({type(exc).__name__}).{hint}") from exc
        if chain_id != settings.chain_id:
            raise ChainError(
                f"the chain at {settings.rpc_url} has chain id {chain_id}, but the settings expect "
                f"{settings.chain_id}: point PROVENANCE_RPC_URL at the right chain or set PROVENANCE_CHAIN_ID"
            )
        address, block = cls._locate(settings, chain_id)
        if not w3.eth.get_code(address):
            raise ChainError(
                f"no ledger contract at {address} on chain {chain_id}: check PROVENANCE_CONTRACT_ADDRESS "
                "(or run `make run`, which deploys one on the local chain)"
            )
        return cls(settings, w3, address, block)

    @staticmethod
    def _locate(settings: Settings, chain_id: int) -> tuple[ChecksumAddress, int]:
        if settings.contract_address:
            if not Web3.is_address(settings.contract_address):
                raise ConfigurationError(f"contract address {settings.contract_address!r} is not an address")
            return Web3.to_checksum_address(settings.contract_address), settings.deploy_block or 0
        deployment = read_deployment(settings.deployment_file)
        if deployment is None or deployment.chain_id != chain_id:
            raise ConfigurationError(
                f"no ledger deployment recorded for chain {chain_id} in {settings.deployment_file}: "
                "run `make run` for the local chain, or set PROVENANCE_CONTRACT_ADDRESS"
            )
        return deployment.address, deployment.block_number

    def logs(self, event: str, from_block: int | None = None, **argument_filters: Any) -> list[Any]:
        """Decoded logs of `event` since the deployment, filtered on indexed arguments."""
        return list(
            getattr(self.contract.events, event).get_logs(
                from_block=self.deploy_block if from_block is None else from_block,
                argument_filters=argument_filters or None,
            )
        )


class Directory:
    """Names for addresses and batch ids, read from the ledger's own events (a Describer)."""

    def __init__(self, connection: LedgerConnection) -> None:
        self._connection = connection
        self._actors: dict[str, str] = {}
        self._batches: dict[bytes, str] = {}

    def actor_name(self, address: str) -> str | None:
        """The latest display name of the organisation at `address`, if registered."""
        address = Web3.to_checksum_address(address)
        if address not in self._actors:
            logs = self._connection.logs("ActorRegistered", account=address)
            logs += self._connection.logs("ActorProfileUpdated", account=address)
            if not logs:
                return None
            latest = max(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))
            self._actors[address] = latest["args"]["name"]
        return self._actors[address]

    def actor(self, address: str) -> str:
        """'Name (0xabc…)' or the bare address when unregistered."""
        if int(address, 16) == 0:
            return "nobody"
        address = Web3.to_checksum_address(address)
        name = self.actor_name(address)
        return f"{name} ({address})" if name else str(address)

    def batch(self, batch_id: bytes) -> str:
        """'lot L-17 of GTIN 09506000134352', or the id when unknown."""
        batch_id = bytes(batch_id)
        if batch_id not in self._batches:
            logs = self._connection.logs("BatchRegistered", batchId=batch_id)
            if not logs:
                return "batch 0x" + batch_id.hex()
            args = logs[0]["args"]
            self._batches[batch_id] = f"lot {lot_from_bytes(args['lot'])} of GTIN {args['gtin']:014d}"
        return self._batches[batch_id]
