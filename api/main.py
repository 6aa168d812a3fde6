"""The web app: `create_app()` wires the routers; the lifespan opens the index store.

Run it with `provenance serve` (or `provenance run`, which also starts the chain and the
index follower): uvicorn calls `create_app` in every worker process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.deps import ApiContext
from api.errors import install_error_handlers
from api.routes import auditor, health, pages, qr
from ledger.config import Settings
from ledger.documents import DocumentStore
from ledger.indexer.store import IndexStore
from ledger.queries import ReadModel

DESCRIPTION = """Provenance of products, from the farm to the shelf.

* **Customers** scan a lot's QR code: a GS1 Digital Link (`/01/{gtin}/10/{lot}`) that opens
  its page; `Accept: application/json` or `?linkType=` gives the same facts as JSON.
* **Auditors** query `/api/v1`: batches, full histories (every event with transaction
  hash, block, log index and time), lineage, organisations, claims at any time.

Everything is read-only and served from the index of the ledger's events.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings` (default: from the environment and config file)."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = IndexStore.open(settings.database_url, settings.data_dir)
        app.state.context = ApiContext(settings, ReadModel(store, DocumentStore(settings.documents_dir)))
        try:
            yield
        finally:
            store.dispose()

    app = FastAPI(title="Provenance ledger", version="1", description=DESCRIPTION, lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(auditor.router)
    app.include_router(qr.router)
    app.include_router(pages.router)  # last: its Digital Link paths are the broadest
    return app
