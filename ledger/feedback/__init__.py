"""Shoppers' feedback on lots: an append-only, hash-chained log kept beside the index.

Feedback is not on the chain and cannot be rebuilt from it, so it lives in a store of its
own (never the index database, which is dropped and rebuilt from the chain). Every entry
(comment, reply, hide) is appended; each entry's hash covers the one before it, and the
head is anchored on chain from time to time, so a comment once published cannot be
removed or edited without `provenance feedback verify` noticing.
"""
