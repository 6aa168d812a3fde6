"""The durable local chain: anvil behind a journalling JSON-RPC front (see node.py).

Started as its own process (`python -m ledger.localnode`) by `ledger.chain.LocalChain`;
it imports nothing beyond the standard library so it starts at once.
"""
