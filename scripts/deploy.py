"""brownie run scripts/deploy.py --network provenance-local: deploy the ledger once.

A thin wrapper over `ledger`: the deployment is recorded in the data directory and
reused while its code is on the chain (the client speaks web3.py to the settings' RPC URL).
"""

from ledger.chain import connect
from ledger.config import Settings
from ledger.deploy import ensure_deployed


def main() -> None:
    settings = Settings.from_env()
    deployment, created, warning = ensure_deployed(
        connect(settings.rpc_url), settings.deployment_file, settings.admin_transfer_delay
    )
    if warning:
        print(f"warning: {warning}")
    print(f"Ledger {deployment.address} on chain {deployment.chain_id} ({'deployed now' if created else 'already deployed'})")
