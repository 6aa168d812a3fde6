"""brownie run scripts/deploy.py [main redeploy] --network provenance-local: deploy the ledger once.

A thin wrapper over `ledger`: the deployment is recorded in the data directory and
reused while this version's code is on the chain (the client speaks web3.py to the
settings' RPC URL). A ledger recorded from older code is refused; `main redeploy`
deploys the current version at a new address instead.
"""

from ledger.chain import connect
from ledger.config import Settings
from ledger.deploy import ensure_deployed


def main(redeploy: str = "") -> None:
    settings = Settings.from_env()
    deployment, created, warning = ensure_deployed(
        connect(settings.rpc_url),
        settings.deployment_file,
        settings.admin_transfer_delay,
        redeploy=redeploy.lower().lstrip("-") in ("redeploy", "1", "true", "yes"),
    )
    if warning:
        print(f"warning: {warning}")
    print(f"Ledger {deployment.address} on chain {deployment.chain_id} ({'deployed now' if created else 'already deployed'})")
