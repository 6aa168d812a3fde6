"""`provenance deploy`: deploy the ledger on a chain and record it, one record per chain id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ledger.cli.common import OPTIONS, AccountOption, JsonOption, emit, handles_errors, print_fields, say
from ledger.errors import ChainError

if TYPE_CHECKING:
    from ledger.deploy import Deployment

NetworkOption = Annotated[
    str | None, typer.Option("--network", "-n", help="A [networks.NAME] table of the config file (default: PROVENANCE_NETWORK).")
]


@handles_errors
def deploy(
    network: NetworkOption = None,
    account: AccountOption = None,
    redeploy: Annotated[bool, typer.Option(help="Deploy a new ledger even if this chain already has one recorded.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Deploy the ledger contract on the chain of the settings (a named network) and record
    it in <data dir>/deployments/<chain id>.json, which every later command on that chain
    reads. The signer becomes the ledger's admin. Run again, it says where the ledger already
    is; after a crash it finishes the deployment it started instead of making a second one."""
    from ledger.config import Settings
    from ledger.connection import web3_for
    from ledger.deploy import deploy_ledger, deploy_on_network, older_code_reason, read_deployment, write_deployment
    from ledger.fees import FeePolicy, Outbox, TransactionSender
    from ledger.signers import LocalKeySigner, resolve_signer

    overrides = dict(OPTIONS.overrides)
    if network:
        overrides["network"] = network
    settings = Settings.from_env(**overrides)
    w3 = web3_for(settings)
    try:
        chain_id = int(w3.eth.chain_id)
    except Exception as exc:  # noqa: BLE001 - any transport failure means the same to a user
        raise ChainError(f"cannot reach the chain at {settings.rpc_url} ({type(exc).__name__})") from exc
    if chain_id != settings.chain_id:
        raise ChainError(
            f"the chain at {settings.rpc_url} has chain id {chain_id}, but the settings expect {settings.chain_id}: "
            "check rpc_url and chain_id of the network"
        )
    record = settings.deployment_record(chain_id)
    existing = read_deployment(record)
    if existing is not None and not redeploy and w3.eth.get_code(existing.address) and older_code_reason(w3, existing) is None:
        _show(as_json, existing, record, created=False)
        return
    signer = resolve_signer(settings, w3, account)
    if isinstance(signer, LocalKeySigner):
        sender = TransactionSender(
            w3,
            signer,
            chain_id,
            FeePolicy.from_settings(settings),
            Outbox(settings.data_dir, chain_id, signer.address),
            poll=0.5 if settings.network or not settings.is_local_chain else 0.02,
        )
        deployment = deploy_on_network(sender, record, settings.admin_transfer_delay)
    else:  # the local chain's unlocked account (node:N)
        deployment = deploy_ledger(w3, signer.address, settings.admin_transfer_delay)
        write_deployment(record, deployment)
    _show(as_json, deployment, record, created=True)


def _show(as_json: bool, deployment: Deployment, record: object, created: bool) -> None:
    def human() -> None:
        say("Deployed the ledger." if created else "The ledger is already deployed on this chain.")
        print_fields(
            [
                ("chain id", deployment.chain_id),
                ("address", deployment.address),
                ("block", deployment.block_number),
                ("admin", deployment.admin),
                ("record", record),
            ]
        )

    emit(as_json, {"created": created, "record": str(record), **deployment.__dict__}, human)
