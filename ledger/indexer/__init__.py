"""The indexer: follows the ledger's events into a queryable store (SQLite or PostgreSQL).

The chain is the source of truth; the store is a cache rebuilt from it at will.
`scanner` reads logs, `handlers` turn each event into store operations (pure functions),
`store` applies them exactly once by (transaction hash, log index).
"""
