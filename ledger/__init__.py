"""The provenance ledger's Python client: contracts' artifacts, the local chain, deployment.

The client speaks plain web3.py and never imports brownie, so the same code serves the
local chain and any real network; only settings differ.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
