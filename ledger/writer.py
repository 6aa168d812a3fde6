"""Every state-changing call to the ledger: validated, simulated, signed, sent, confirmed.

Each write is simulated first (eth_estimateGas), so a contract error comes back as a named
exception with a sentence before anything is signed, and nothing is written. Batch
registrations are idempotent: the same content again is reported as already registered,
different content under the same GTIN + lot is a conflict. The bulk path packs many
registrations per transaction and keeps many transactions in flight (nonces assigned
locally, receipts collected afterwards); re-running it after a crash skips what landed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from eth_typing import ChecksumAddress, Hash32, HexStr
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError
from web3.logs import DISCARD

from ledger.bulk import DEFAULT_CHUNK, TX_GAS_CAP, BulkRegistrar, BulkReport
from ledger.connection import LedgerConnection
from ledger.conversions import short_text
from ledger.documents import DocumentStore
from ledger.errors import (
    ERROR_CLASSES,
    ConflictError,
    ContractRevertError,
    InvalidInputError,
    LedgerError,
    SimilarNameError,
)
from ledger.fees import FeePolicy, Outbox, TransactionSender
from ledger.identifiers import (
    attestation_uid,
    check_country,
    check_name,
    check_reason,
    describe_name,
    digital_link,
    names_look_alike,
)
from ledger.models import (
    ZERO_HASH,
    AttestationCreate,
    BatchCreate,
    BatchState,
    BatchStatus,
    LicenceScope,
    RecallState,
    RegistrationResult,
    SignedAttestation,
    TransformationKind,
    TxReceipt,
    claim_bytes,
)
from ledger.rpc import mined_receipt
from ledger.signers import LocalKeySigner, Signer

DEFAULT_MAX_BACKDATING = 90 * 86400  # IProvenanceLedger: until the admin sets a claim type's own

ATTEST_TYPES = [
    {"name": "issuer", "type": "address"},
    {"name": "subjectKind", "type": "uint8"},
    {"name": "subject", "type": "bytes32"},
    {"name": "claim", "type": "bytes32"},
    {"name": "validFrom", "type": "uint64"},
    {"name": "validUntil", "type": "uint64"},
    {"name": "evidenceHash", "type": "bytes32"},
    {"name": "signedAt", "type": "uint64"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
EIP712_NAME, EIP712_VERSION = "ProvenanceLedger", "2"  # the contract's EIP712 domain
EIP712_DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def hex0x(value: bytes) -> str:
    """0x-prefixed lowercase hex."""
    return "0x" + bytes(value).hex()


class LedgerWriter:
    """Writes to the ledger as one signer."""

    def __init__(self, connection: LedgerConnection, signer: Signer, documents: DocumentStore | None = None) -> None:
        self.connection = connection
        self.w3: Web3 = connection.w3
        self.contract = connection.contract
        self.signer = signer
        self.documents = documents or DocumentStore(connection.settings.documents_dir)
        self._nonce: int | None = None
        settings = connection.settings
        self.fee_policy = FeePolicy.from_settings(settings)
        #: A local key's transactions go through the sender: fees within the caps, stuck ones
        #: replaced, lost replies found again, an outbox for crash recovery (ledger.fees).
        #: The local chain's unlocked accounts (node:N) are signed for by the node itself.
        self.sender: TransactionSender | None = None
        if isinstance(signer, LocalKeySigner):
            on_local_chain = settings.is_local_chain and not settings.network
            self.sender = TransactionSender(
                self.w3,
                signer,
                settings.chain_id,
                self.fee_policy,
                Outbox(settings.data_dir, settings.chain_id, signer.address),
                # Automining local chain: receipts in milliseconds; a network: blocks of seconds.
                poll=0.01 if on_local_chain else 0.5,
            )

    # ------------------------------------------------------------------ plumbing

    def _fees(self) -> dict[str, int]:
        return self.fee_policy.initial(self.w3).fields()

    def _recover(self) -> None:
        """Before reading what is on chain: see mined what a crashed run left outstanding."""
        if self.sender is not None:
            self.sender.recover()

    def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = self.w3.eth.get_transaction_count(self.signer.address, "pending")
        nonce = self._nonce
        self._nonce += 1
        return nonce

    def _revert(self, exc: ContractLogicError) -> ContractRevertError:
        data = exc.data if isinstance(exc.data, str) else None
        if isinstance(exc, ContractCustomError) and data:
            return self.connection.decoder.decode(data, self.connection.names)
        if isinstance(exc, ContractPanicError):
            return ContractRevertError(f"the ledger contract failed an internal check ({exc.message})")
        return ContractRevertError(f"the ledger contract refused the call: {exc.message}")

    def _simulate(self, call: Any, block: str = "latest") -> int:
        """Gas the call needs; raises the decoded contract error if it would revert."""
        try:
            return int(call.estimate_gas({"from": self.signer.address}, block_identifier=block))
        except ContractLogicError as exc:
            raise self._revert(exc) from None

    def _build(self, call: Any, gas: int, fees: dict[str, int]) -> dict[str, Any]:
        # `call` is a web3 ContractFunction: build_transaction gives the transaction's fields.
        tx: dict[str, Any] = call.build_transaction(
            {
                "from": self.signer.address,
                "nonce": self._next_nonce(),
                "gas": gas,
                "chainId": self.connection.settings.chain_id,
                **fees,
            }
        )
        return tx

    def _wait(self, tx_hash: bytes, timeout: float = 120) -> Any:
        return self.w3.eth.wait_for_transaction_receipt(Hash32(tx_hash), timeout=timeout, poll_latency=0.02)

    def _lean_receipt(self, tx_hash: bytes, timeout: float = 120) -> dict[str, Any]:
        """Status and block of a receipt, read raw: web3's formatting of a receipt with 200
        logs costs more than the whole round trip, and the bulk path needs neither."""
        deadline = time.monotonic() + timeout
        while True:
            receipt = mined_receipt(self.w3, tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise LedgerError(f"transaction {hex0x(tx_hash)} was not mined within {timeout:.0f}s")
            time.sleep(0.01)

    def _explain_failure(self, call: Any, receipt: Any) -> ContractRevertError:
        """Replay a transaction that reverted on chain to learn why."""
        try:
            call.call({"from": self.signer.address}, block_identifier=receipt["blockNumber"] - 1)
        except ContractLogicError as exc:
            return self._revert(exc)
        return ContractRevertError(
            f"transaction {hex0x(receipt['transactionHash'])} reverted on chain (state changed since it was checked)"
        )

    def send(self, call: Any, simulate_on: str = "latest") -> TxReceipt:
        """Simulate (on `simulate_on`), sign, send and confirm one contract call."""
        gas = self._simulate(call, simulate_on)
        gas = min(TX_GAS_CAP, int(gas * 1.25) + 20_000)
        if self.sender is not None:
            pending = self.sender.submit(
                {"to": self.connection.address, "data": call._encode_transaction_data(), "value": 0, "gas": gas}
            )
            receipt = self.sender.wait(pending)
            if receipt["status"] != 1:
                raise self._explain_failure(call, receipt)
            return TxReceipt(
                tx_hash=hex0x(receipt["transactionHash"]), block_number=receipt["blockNumber"], gas_used=receipt["gasUsed"]
            )
        tx = self._build(call, gas, self._fees())
        try:
            tx_hash = self.signer.send(self.w3, tx)
        except Exception:
            self._nonce = None  # the node may not have taken it: ask again next time
            raise
        receipt = self._wait(tx_hash)
        if receipt["status"] != 1:
            raise self._explain_failure(call, receipt)
        return TxReceipt(tx_hash=hex0x(tx_hash), block_number=receipt["blockNumber"], gas_used=receipt["gasUsed"])

    # ------------------------------------------------------------------ admin: actors, roles, claims

    def organisation_names(self) -> dict[str, str]:
        """The approved name of every registered organisation, by address (from the events)."""
        latest: dict[str, tuple[tuple[int, int], str]] = {}
        for log in self.connection.logs("ActorRegistered") + self.connection.logs("ActorProfileUpdated"):
            position = (log["blockNumber"], log["logIndex"])
            account = log["args"]["account"]
            if account not in latest or latest[account][0] < position:
                latest[account] = (position, log["args"]["name"])
        return {account: name for account, (_, name) in latest.items()}

    def check_not_look_alike(self, name: str, account: str | None) -> None:
        """Raise :class:`SimilarNameError` if `name` looks like (same :func:`name_skeleton`)
        the name of an organisation other than `account`. The ledger itself only folds ASCII
        case, spaces and punctuation, so 'ЕthicCert Labs' with a Cyrillic Е would pass it."""
        me = Web3.to_checksum_address(account) if account else None
        for holder, current in self.organisation_names().items():
            if holder != me and names_look_alike(name, current):
                raise SimilarNameError(
                    f"the name {describe_name(name)} looks like {describe_name(current)}, the name of "
                    f"{self.connection.names.actor(holder)}: readers could not tell them apart",
                    holder,
                )

    def register_actor(
        self, account: str, name: str, country: str, metadata_hash: bytes = ZERO_HASH, allow_similar: bool = False
    ) -> TxReceipt:
        """Register an organisation (admin). A name that looks like another organisation's
        is refused unless `allow_similar` (the admin checked they are different bodies)."""
        check_name(name)
        check_country(country)
        if not allow_similar:
            self.check_not_look_alike(name, account)
        return self.send(
            self.contract.functions.registerActor(Web3.to_checksum_address(account), name, country.encode("ascii"), metadata_hash)
        )

    def request_profile_update(self, name: str, country: str, metadata_hash: bytes = ZERO_HASH) -> TxReceipt:
        """Ask the admin to change the signer's own profile (name, country, metadata);
        nothing changes until the admin approves it. A new request replaces the last one."""
        check_name(name)
        check_country(country)
        # The contract checks a name's uniqueness only at approval; refuse now what the
        # admin could not approve (impersonating another organisation's name), then names
        # that only look the same (other scripts, invisible characters, accents).
        holder = self.connection.name_holder(name)
        if holder is not None and holder != self.signer.address:
            raise ERROR_CLASSES["ProvenanceNameTaken"](
                f"{self.connection.names.actor(holder)} already uses this name (names are compared without case, "
                "spaces or punctuation); choose another",
                {"holder": holder},
            )
        self.check_not_look_alike(name, self.signer.address)
        return self.send(self.contract.functions.requestProfileUpdate(name, country.encode("ascii"), metadata_hash))

    def pending_profile_request(self, account: str) -> dict[str, Any] | None:
        """The profile `account` asked for and the admin has not approved since, or None
        (see :meth:`LedgerConnection.pending_profile_request`)."""
        return self.connection.pending_profile_request(account)

    def approve_profile_update(
        self,
        account: str,
        name: str | None = None,
        country: str | None = None,
        metadata_hash: bytes | None = None,
        allow_similar: bool = False,
    ) -> tuple[dict[str, Any], TxReceipt]:
        """Approve the profile `account` requested (admin). Without name/country/hash the
        pending request read from the events is approved; given, they must equal it (the
        contract refuses anything else). A name that looks like another organisation's is
        refused unless `allow_similar`. Returns the approved profile and the receipt."""
        address = Web3.to_checksum_address(account)
        pending = self.pending_profile_request(address)
        if name is None or country is None or metadata_hash is None:
            if pending is None:
                raise InvalidInputError(
                    f"{self.connection.names.actor(address)} has no profile change awaiting approval "
                    "(it asks with `provenance actor rename`)"
                )
            name = pending["name"] if name is None else name
            country = pending["country"] if country is None else country
            metadata_hash = pending["metadata_hash"] if metadata_hash is None else metadata_hash
        if not allow_similar:
            self.check_not_look_alike(name, address)
        profile = {"name": name, "country": country, "metadata_hash": metadata_hash}
        receipt = self.send(self.contract.functions.approveProfileUpdate(address, name, country.encode("ascii"), metadata_hash))
        self.connection.names.forget(address)
        return profile, receipt

    def deactivate_actor(self, account: str) -> TxReceipt:
        """Deactivate an organisation (admin)."""
        return self.send(self.contract.functions.deactivateActor(Web3.to_checksum_address(account)))

    def reactivate_actor(self, account: str) -> TxReceipt:
        """Reactivate an organisation (admin)."""
        return self.send(self.contract.functions.reactivateActor(Web3.to_checksum_address(account)))

    def grant_supplier(self, account: str) -> TxReceipt:
        """Grant the supplier role (admin)."""
        role = self.contract.functions.SUPPLIER_ROLE().call()
        return self.send(self.contract.functions.grantRole(role, Web3.to_checksum_address(account)))

    def revoke_supplier(self, account: str) -> TxReceipt:
        """Revoke the supplier role (admin)."""
        role = self.contract.functions.SUPPLIER_ROLE().call()
        return self.send(self.contract.functions.revokeRole(role, Web3.to_checksum_address(account)))

    def set_max_backdating(self, claim: str, period: int) -> TxReceipt:
        """Set how many seconds before its block an attestation of `claim` may start (admin)."""
        if not 0 <= period < 2**64:
            raise InvalidInputError(f"the backdating period must be 0 to {2**64 - 1} seconds (got {period})")
        return self.send(self.contract.functions.setMaxBackdating(claim_bytes(claim), period))

    def max_backdating(self, claim: str) -> int:
        """Seconds before its block an attestation of `claim` may start: the last
        MaxBackdatingSet of the claim type (the contract has no view for it), else 90 days."""
        logs = self.connection.logs("MaxBackdatingSet", claim=claim_bytes(claim))
        if not logs:
            return DEFAULT_MAX_BACKDATING
        return int(max(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))["args"]["period"])

    # ------------------------------------------------------------------ GS1 licences

    def _signer_is_admin(self) -> bool:
        return bool(self.contract.functions.hasRole(b"\0" * 32, self.signer.address).call())

    def grant_licence(self, licensee: str, scope: LicenceScope) -> TxReceipt:
        """License a GS1 Company Prefix or one GTIN to `licensee` (admin): a root licence."""
        # The contract's grantLicence makes a root licence for the admin and a sub-licence
        # for anyone else: say which was meant, so nobody gets the other kind unawares.
        if not self._signer_is_admin():
            raise InvalidInputError(
                f"only the ledger's admin grants root licences; {self.connection.names.actor(self.signer.address)} "
                "may sub-license inside a licence it holds (`provenance licence sublicense`)"
            )
        return self.send(
            self.contract.functions.grantLicence(Web3.to_checksum_address(licensee), scope.prefix_length, scope.prefix)
        )

    def sub_license(self, licensee: str, scope: LicenceScope) -> TxReceipt:
        """Sub-license a longer prefix or one GTIN inside the signer's root licence to
        `licensee` (a co-packer, a member farm). It lapses when the root licence is withdrawn."""
        if self._signer_is_admin():
            raise InvalidInputError(
                "the ledger's admin grants root licences, not sub-licences (`provenance licence grant`); "
                "licences an organisation sub-licenses are held by that organisation's own account"
            )
        return self.send(
            self.contract.functions.grantLicence(Web3.to_checksum_address(licensee), scope.prefix_length, scope.prefix)
        )

    def withdraw_licence(self, scope: LicenceScope) -> TxReceipt:
        """Withdraw a licence (its grantor or the admin); sub-licences of a root lapse with it."""
        return self.send(self.contract.functions.withdrawLicence(scope.prefix_length, scope.prefix))

    def define_claim_type(self, claim: str) -> TxReceipt:
        """Define a claim type (admin)."""
        return self.send(self.contract.functions.defineClaimType(claim_bytes(claim)))

    def accredit(self, certifier: str, claim: str) -> TxReceipt:
        """Accredit a certifier for a claim type (admin)."""
        return self.send(self.contract.functions.accreditCertifier(Web3.to_checksum_address(certifier), claim_bytes(claim)))

    def withdraw_accreditation(self, certifier: str, claim: str) -> TxReceipt:
        """Withdraw a certifier's accreditation for a claim type (admin)."""
        return self.send(self.contract.functions.withdrawAccreditation(Web3.to_checksum_address(certifier), claim_bytes(claim)))

    # ------------------------------------------------------------------ batches

    def batch_state(self, batch_id: bytes) -> BatchState | None:
        """The batch as the contract sees it now, or None when unknown."""
        (supplier, custodian, pending, registered, remaining, status, recalled, recall_state, registered_at) = (
            self.contract.functions.getBatch(batch_id).call()
        )
        if status == BatchStatus.NONE:
            return None
        return BatchState(
            batch_id=hex0x(batch_id),
            supplier=supplier,
            custodian=custodian,
            pending_custodian=None if int(pending, 16) == 0 else pending,
            registered_quantity=registered,
            remaining_quantity=remaining,
            status=BatchStatus(status),
            recalled=recalled,
            recall_state=RecallState(recall_state),
            registered_at=registered_at,
        )

    def _store_metadata(self, batch: BatchCreate) -> bytes:
        return self.documents.put_json(batch.metadata_document())

    def _result(
        self, batch: BatchCreate, metadata_hash: bytes, status: str, tx: str | None, block: int | None
    ) -> RegistrationResult:
        return RegistrationResult(
            batch_id=hex0x(batch.batch_id),
            gtin=batch.gtin,
            lot=batch.lot,
            status=status,
            tx_hash=tx,
            block_number=block,
            url=digital_link(batch.gtin, batch.lot).url(self.connection.settings.public_base_url),
            metadata_hash=hex0x(metadata_hash),
        )

    def _registrations(self, batch_ids: Sequence[bytes]) -> dict[bytes, Any]:
        """The BatchRegistered logs of those ids that exist, by id."""
        found: dict[bytes, Any] = {}
        for start in range(0, len(batch_ids), 200):
            chunk = list(batch_ids[start : start + 200])
            for log in self.connection.logs("BatchRegistered", batchId=chunk):
                found.setdefault(bytes(log["args"]["batchId"]), log)
        return found

    def _compare(self, batch: BatchCreate, metadata_hash: bytes, log: Any) -> str | None:
        """None when the registered batch has this content, else what differs."""
        args = log["args"]
        differences = []
        if args["supplier"] != self.signer.address:
            differences.append(f"registered by {self.connection.names.actor(args['supplier'])}")
        unit = short_text(args["unit"])
        if args["quantity"] != batch.quantity or unit != batch.unit:
            differences.append(f"quantity {args['quantity']} {unit} instead of {batch.quantity} {batch.unit}")
        if bytes(args["metadataHash"]) != metadata_hash:
            differences.append("different metadata (product, origin or documents)")
        return "; ".join(differences) or None

    def _conflict(self, batch: BatchCreate, log: Any, difference: str) -> ConflictError:
        who = self.connection.names.actor(log["args"]["supplier"])
        if log["args"]["supplier"] != self.signer.address:
            return ConflictError(
                f"lot {batch.lot} of GTIN {batch.gtin} is already registered by {who}; "
                "a lot is registered once - use a new lot number"
            )
        return ConflictError(
            f"lot {batch.lot} of GTIN {batch.gtin} is already registered by {who} with other content "
            f"({difference}); a lot is registered once - use a new lot number"
        )

    def register_batch(self, batch: BatchCreate) -> RegistrationResult:
        """Register one batch; the same content again is a no-op, other content a ConflictError."""
        self._recover()
        metadata_hash = self._store_metadata(batch)
        existing = self._registrations([batch.batch_id]).get(batch.batch_id)
        if existing is not None:
            difference = self._compare(batch, metadata_hash, existing)
            if difference:
                raise self._conflict(batch, existing, difference)
            return self._result(
                batch, metadata_hash, "already_registered", hex0x(existing["transactionHash"]), existing["blockNumber"]
            )
        receipt = self.send(self.contract.functions.registerBatch(batch.contract_input(metadata_hash)))
        return self._result(batch, metadata_hash, "registered", receipt.tx_hash, receipt.block_number)

    def register_batches(
        self,
        batches: Iterable[BatchCreate],
        progress: Callable[[int], None] | None = None,
        chunk_size: int = DEFAULT_CHUNK,
        keep_results: bool = True,
        on_settled: Callable[[list[bytes]], None] | None = None,
        row_label: Callable[[int], str] | None = None,
    ) -> BulkReport:
        """Register many batches: `chunk_size` per transaction, many transactions in
        flight, the input streamed (any iterable; see ledger.bulk).

        Safe to re-run after a crash: rows already on chain with the same content are
        reported as already registered, never sent twice; nothing is skipped.
        `progress(n)` is called as rows are settled; `on_settled(metadata hashes)` as rows
        are registered or found registered. Without `keep_results` the report keeps counts
        and failures only (memory stays flat for any number of rows). `row_label(index)`
        names an input row in messages (default "row N", counting from 1).
        """
        registrar = BulkRegistrar(self, chunk_size, progress, keep_results, on_settled, row_label)
        return registrar.run(batches)

    def _gas_limit(self) -> int:
        """Most gas one transaction may use here: EIP-7825's cap, or less on a chain whose
        blocks are smaller (a transaction must fit in one block)."""
        block_limit = int(self.w3.eth.get_block("latest")["gasLimit"])
        return min(TX_GAS_CAP, block_limit * 9 // 10)

    def transfer_custody(self, batch_id: bytes, to: str) -> TxReceipt:
        """Propose `to` as the batch's next custodian."""
        return self.send(self.contract.functions.transferCustody(batch_id, Web3.to_checksum_address(to)))

    def accept_custody(self, batch_id: bytes) -> TxReceipt:
        """Accept a batch proposed to the signer."""
        return self.send(self.contract.functions.acceptCustody(batch_id))

    def cancel_custody_transfer(self, batch_id: bytes) -> TxReceipt:
        """Withdraw (custodian) or decline (recipient) a pending hand-over."""
        return self.send(self.contract.functions.cancelCustodyTransfer(batch_id))

    def record_step(self, batch_id: bytes, biz_step: str, location: str, data_hash: bytes = ZERO_HASH) -> TxReceipt:
        """Record a CBV business step."""
        return self.send(self.contract.functions.recordStep(batch_id, claim_bytes(biz_step), location, data_hash))

    def transform(
        self,
        kind: TransformationKind,
        inputs: Sequence[tuple[bytes, int]],
        outputs: Sequence[BatchCreate],
        data_hash: bytes = ZERO_HASH,
    ) -> tuple[str, list[RegistrationResult], TxReceipt]:
        """Consume inputs and create outputs in one transaction."""
        hashes = [self._store_metadata(o) for o in outputs]
        call = self.contract.functions.transform(
            int(kind),
            [(bid, qty) for bid, qty in inputs],
            [o.contract_input(h) for o, h in zip(outputs, hashes, strict=True)],
            data_hash,
        )
        receipt = self.send(call)
        logs = self.contract.events.TransformationRecorded().process_receipt(
            self.w3.eth.get_transaction_receipt(HexStr(receipt.tx_hash)), errors=DISCARD
        )
        transformation_id = hex0x(logs[0]["args"]["transformationId"])
        results = [
            self._result(o, h, "registered", receipt.tx_hash, receipt.block_number) for o, h in zip(outputs, hashes, strict=True)
        ]
        return transformation_id, results, receipt

    def recall_batch(self, batch_id: bytes, reason: str, reason_hash: bytes = ZERO_HASH) -> TxReceipt:
        """Recall a batch (its supplier, even deactivated, or the admin). `reason` (1 to 280
        bytes) is shown to customers; `reason_hash` anchors the full notice kept off chain."""
        check_reason(reason, "recall reason")
        return self.send(self.contract.functions.recallBatch(batch_id, reason, _hash32(reason_hash)))

    def review_recall(self, batch_id: bytes, upheld: bool, reason: str) -> TxReceipt:
        """Review a recall awaiting review (admin): upheld (final) or withdrawn (the batch
        may be used again), with a reason shown on the batch's page."""
        check_reason(reason, "review reason")
        return self.send(self.contract.functions.reviewRecall(batch_id, upheld, reason))

    def void_batch(self, batch_id: bytes, reason: str) -> TxReceipt:
        """Void a batch registered in error (admin). Final; the lot stays taken and its page
        says it was voided, by whom and why."""
        check_reason(reason, "reason for voiding")
        return self.send(self.contract.functions.voidBatch(batch_id, reason))

    # ------------------------------------------------------------------ attestations

    def attest(self, request: AttestationCreate) -> tuple[str, TxReceipt]:
        """Attest a claim as the signer; returns the attestation uid."""
        receipt = self.send(self.contract.functions.attest(request.contract_input()))
        return self._uid_from(receipt), receipt

    def attest_many(self, requests: Sequence[AttestationCreate]) -> tuple[list[str], TxReceipt]:
        """Attest many claims in one transaction (all or none); returns the uids in order."""
        receipt = self.send(self.contract.functions.attestMany([r.contract_input() for r in requests]))
        return self._uids_from(receipt), receipt

    def _uids_from(self, receipt: TxReceipt) -> list[str]:
        logs = self.contract.events.Attested().process_receipt(
            self.w3.eth.get_transaction_receipt(HexStr(receipt.tx_hash)), errors=DISCARD
        )
        return [hex0x(log["args"]["uid"]) for log in logs]

    def _uid_from(self, receipt: TxReceipt) -> str:
        return self._uids_from(receipt)[0]

    def revoke_attestation(self, uid: bytes, reason: str, reason_hash: bytes = ZERO_HASH) -> TxReceipt:
        """Revoke an attestation (its issuer or the admin). `reason` (1 to 280 bytes) is
        shown to customers; `reason_hash` anchors the full notice kept off chain."""
        check_reason(reason, "revocation reason")
        return self.send(self.contract.functions.revokeAttestation(uid, reason, _hash32(reason_hash)))

    def nonce(self, issuer: str | None = None) -> int:
        """The next nonce `issuer` (default: the signer) must sign for a delegated attestation."""
        return int(self.contract.functions.nonces(Web3.to_checksum_address(issuer or self.signer.address)).call())

    def invalidate_nonces(self, next_nonce: int | None = None) -> tuple[int, TxReceipt]:
        """Make every signed attestation the signer handed out with a nonce below
        `next_nonce` unusable (default: the current nonce + 1, i.e. every one handed out
        so far). Returns the new next nonce and the receipt."""
        if next_nonce is None:
            next_nonce = self.nonce() + 1
        if not 0 <= next_nonce < 2**256:
            raise InvalidInputError(f"the next nonce must be a non-negative 256-bit number (got {next_nonce})")
        return next_nonce, self.send(self.contract.functions.invalidateNonces(next_nonce))

    def submit_signed_attestation(self, signed: SignedAttestation) -> tuple[str, TxReceipt]:
        """Submit an attestation a certifier signed offline; anyone may."""
        if (
            signed.chain_id != self.connection.settings.chain_id
            or Web3.to_checksum_address(signed.contract) != self.connection.address
        ):
            raise LedgerError(
                f"this attestation was signed for chain {signed.chain_id} and ledger {signed.contract}, "
                f"not for chain {self.connection.settings.chain_id} and ledger {self.connection.address}"
            )
        receipt = self.send(
            self.contract.functions.attestBySig(
                signed.request.contract_input(),
                Web3.to_checksum_address(signed.issuer),
                signed.signed_at,
                signed.deadline,
                bytes.fromhex(signed.signature.removeprefix("0x")),
            ),
            # On the pending block, whose time is now: the latest block may be older than
            # a signature made a moment ago, and would refuse it as signed in the future.
            simulate_on="pending",
        )
        return self._uid_from(receipt), receipt


def _hash32(value: bytes) -> bytes:
    if len(value) != 32:
        raise InvalidInputError(f"a document hash is 32 bytes (sha256), got {len(value)}")
    return bytes(value)


def uid_of(issuer: str, request: AttestationCreate, valid_from: int) -> bytes:
    """The uid the ledger gives `request` by `issuer`, `valid_from` being the stored start
    (the request's own, or the block/signing time when it asked for 0)."""
    kind, subject, claim, requested_from, valid_until, evidence = request.contract_input()
    return attestation_uid(
        Web3.to_checksum_address(issuer), kind, subject, claim, requested_from or valid_from, valid_until, evidence
    )


def attestation_typed_data(chain_id: int, contract: str, message: dict[str, Any]) -> dict[str, Any]:
    """The EIP-712 `Attest` typed data the contract verifies (domain "ProvenanceLedger"
    version 2 on `contract`), for a message with the fields of :data:`ATTEST_TYPES`."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN, "Attest": ATTEST_TYPES},
        "primaryType": "Attest",
        "domain": {"name": EIP712_NAME, "version": EIP712_VERSION, "chainId": chain_id, "verifyingContract": contract},
        "message": message,
    }


def sign_attestation(
    signer: LocalKeySigner,
    chain_id: int,
    contract: ChecksumAddress,
    request: AttestationCreate,
    nonce: int,
    deadline: int,
    signed_at: int | None = None,
) -> SignedAttestation:
    """Sign an attestation offline (EIP-712, domain "ProvenanceLedger" version 2), for anyone
    to submit before `deadline`. `signed_at` (default: now) is part of what is signed; a
    request with `valid_from` 0 starts then, so the submitter cannot choose the start."""
    signed_at = now() if signed_at is None else signed_at
    kind, subject, claim, valid_from, valid_until, evidence = request.contract_input()
    message = attestation_typed_data(
        chain_id,
        contract,
        {
            "issuer": signer.address,
            "subjectKind": kind,
            "subject": subject,
            "claim": claim,
            "validFrom": valid_from,
            "validUntil": valid_until,
            "evidenceHash": evidence,
            "signedAt": signed_at,
            "nonce": nonce,
            "deadline": deadline,
        },
    )
    return SignedAttestation(
        request=request,
        issuer=signer.address,
        signed_at=signed_at,
        nonce=nonce,
        deadline=deadline,
        chain_id=chain_id,
        contract=contract,
        signature=hex0x(signer.sign_typed_data(message)),
    )


def now() -> int:
    """Wall-clock unix seconds."""
    return int(time.time())
