"""`python -m ledger.cli`."""

from ledger.cli import app

app()
