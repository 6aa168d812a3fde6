"""A checked connection to a deployed ledger: the right chain, the contract's code present."""

from __future__ import annotations

from dataclasses import dataclass
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

#: Seconds a reply from the local chain may take (its node holds writes back while it
#: dumps the state into a snapshot: tens of seconds for a million lots).
LOCAL_REPLY_TIMEOUT = 300.0


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
    def open(cls, settings: Settings) -> LedgerConnection:
        """Connect and check: reachable, expected chain id, ledger code at the address."""
        w3 = web3_for(settings)
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
        # `provenance deploy` records one deployment per chain id; `make run` keeps deployment.json.
        for record in (settings.deployment_record(chain_id), settings.deployment_file):
            deployment = read_deployment(record)
            if deployment is not None and deployment.chain_id == chain_id:
                return deployment.address, deployment.block_number
        raise ConfigurationError(
            f"no ledger deployment recorded for chain {chain_id} in {settings.deployment_record(chain_id)} or "
            f"{settings.deployment_file}: run `provenance deploy --network NAME` (or `make run` for the local "
            "chain), or set PROVENANCE_CONTRACT_ADDRESS"
        )

    def name_holder(self, name: str) -> str | None:
        """The organisation whose approved name equals `name` as the ledger compares names
        (see :func:`name_key`), or None. Read from the events, so a rename request can be
        refused before it is sent (the contract checks it at approval)."""
        latest: dict[str, tuple[tuple[int, int], str]] = {}
        for log in self.logs("ActorRegistered") + self.logs("ActorProfileUpdated"):
            position = (log["blockNumber"], log["logIndex"])
            account = log["args"]["account"]
            if account not in latest or latest[account][0] < position:
                latest[account] = (position, log["args"]["name"])
        key = name_key(name)
        for account, (_, current) in latest.items():
            if name_key(current) == key:
                return account
        return None

    def pending_profile_request(self, account: str) -> dict[str, Any] | None:
        """The profile `account` last requested that the admin has not approved since
        (an ActorProfileUpdateRequested event not followed by ActorProfileUpdated), or None.

        Returns {"name", "country", "metadata_hash" (bytes), "block_number", "tx_hash",
        "name_invalid_utf8"}: the last is True when the requested name's bytes were not valid
        UTF-8 (sent around the client; "name" then holds U+FFFD and cannot be approved as is).
        """
        address = Web3.to_checksum_address(account)
        requests = self.logs("ActorProfileUpdateRequested", account=address)
        if not requests:
            return None
        latest = max(requests, key=lambda log: (log["blockNumber"], log["logIndex"]))
        position = (latest["blockNumber"], latest["logIndex"])
        approvals = self.logs("ActorProfileUpdated", account=address, from_block=latest["blockNumber"])
        if any((a["blockNumber"], a["logIndex"]) > position for a in approvals):
            return None
        args = latest["args"]
        return {
            "name": args["name"],
            "country": bytes(args["country"]).decode("ascii"),
            "metadata_hash": bytes(args["metadataHash"]),
            "block_number": latest["blockNumber"],
            "tx_hash": "0x" + bytes(latest["transactionHash"]).hex(),
            "name_invalid_utf8": "name" in args.get("invalidUtf8", []),
        }

    def licences(self, include_lapsed: bool = False) -> list[LicenceRecord]:
        """The GS1 licences, rebuilt from LicenceGranted/LicenceWithdrawn events (the
        contract has no view for them): held ones, in the order granted. A sub-licence is in
        force while the very root licence it was cut from is held (a root withdrawn and
        granted again does not revive it). `include_lapsed` adds sub-licences whose root
        was withdrawn."""
        events = [(log, True) for log in self.logs("LicenceGranted")]
        events += [(log, False) for log in self.logs("LicenceWithdrawn")]
        events.sort(key=lambda item: (item[0]["blockNumber"], item[0]["logIndex"]))
        current: dict[int, LicenceRecord] = {}
        for sequence, (log, granted) in enumerate(events):
            args = log["args"]
            if granted:
                parent = current.get(args["parentKey"]) if args["parentKey"] else None
                current[args["key"]] = LicenceRecord(
                    key=args["key"],
                    licensee=args["licensee"],
                    grantor=args["grantor"],
                    prefix_length=args["prefixLength"],
                    prefix=args["prefix"],
                    parent_key=args["parentKey"],
                    block_number=log["blockNumber"],
                    tx_hash="0x" + bytes(log["transactionHash"]).hex(),
                    grant_sequence=sequence,
                    parent_sequence=parent.grant_sequence if parent else None,
                )
            else:
                current.pop(args["key"], None)
        records = []
        for record in current.values():
            in_force = not record.parent_key or (
                record.parent_key in current and current[record.parent_key].grant_sequence == record.parent_sequence
            )
            if in_force or include_lapsed:
                records.append(record if in_force else record.lapsed())
        return sorted(records, key=lambda r: r.grant_sequence)

    def logs(self, event: str, from_block: int | None = None, **argument_filters: Any) -> list[Any]:
        """Decoded logs of `event` since the deployment, filtered on indexed arguments
        (like web3's get_logs, but `string` arguments that are not valid UTF-8 are read
        with U+FFFD and named in args["invalidUtf8"] instead of raising: see
        ledger.indexer.decoding)."""
        from ledger.indexer.decoding import read_logs

        start = self.deploy_block if from_block is None else from_block
        return read_logs(self.w3, self.address, event, start, **argument_filters)


def web3_for(settings: Settings) -> Web3:
    """web3 for the settings' chain: the local chain directly (it fails fast when down); a
    named network or any remote endpoint through the provider that keeps the request rate
    and retries 429s, timeouts and dropped replies (ledger.network)."""
    if settings.is_local_chain and not settings.network:
        # A refused connection still fails at once; a reply may wait while the node saves a
        # snapshot, which takes tens of seconds for a ledger of a million lots.
        return connect(settings.rpc_url, timeout=max(settings.rpc_timeout, LOCAL_REPLY_TIMEOUT))
    from ledger.network import connect_resilient

    return connect_resilient(settings.rpc_url, settings.rpc_timeout, settings.requests_per_second)


def name_key(name: str) -> bytes:
    """A name's identity as the ledger compares names: ASCII letters folded to lower case,
    ASCII digits kept, other ASCII (spaces, punctuation) dropped, non-ASCII bytes kept."""
    kept = bytearray()
    for byte in name.encode("utf-8"):
        if 0x41 <= byte <= 0x5A:
            kept.append(byte + 32)
        elif 0x61 <= byte <= 0x7A or 0x30 <= byte <= 0x39 or byte >= 0x80:
            kept.append(byte)
    return bytes(kept)


@dataclass(frozen=True)
class LicenceRecord:
    """A GS1 licence as its events tell it."""

    key: int
    licensee: str
    grantor: str
    prefix_length: int
    prefix: int
    parent_key: int  # 0 for a root licence (granted by the admin)
    block_number: int
    tx_hash: str
    grant_sequence: int
    parent_sequence: int | None
    in_force: bool = True

    @property
    def scope(self) -> str:
        """'GS1 Company Prefix 9506000' or 'GTIN 09506000134376'."""
        from ledger.models import describe_licence

        return describe_licence(self.prefix_length, self.prefix)

    @property
    def digits(self) -> str:
        """The prefix digits (leading zeros kept) or the GTIN-14."""
        return f"{self.prefix:0{self.prefix_length}d}"

    def lapsed(self) -> LicenceRecord:
        """This record marked as no longer in force."""
        from dataclasses import replace

        return replace(self, in_force=False)


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

    def forget(self, address: str) -> None:
        """Drop the cached name of `address` (after its profile changed)."""
        self._actors.pop(Web3.to_checksum_address(address), None)

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
