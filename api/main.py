"""The web app: `create_app()` wires the routers; the lifespan opens the index store.

Run it with `provenance serve` (or `provenance run`, which also starts the chain and the
index follower): uvicorn calls `create_app` in every worker process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.brand import BrandMiddleware, brand_of
from api.deps import ApiContext
from api.errors import install_error_handlers
from api.feedback_view import FeedbackBoard
from api.language import LanguageMiddleware
from api.routes import assets, auditor, documents, feedback, health, pages, qr
from ledger.config import Settings
from ledger.indexer.store import IndexStore
from ledger.queries import ReadModel
from ledger.sources import document_store

DESCRIPTION = """Provenance of products, from the farm to the shelf.

* **Customers** scan a lot's QR code: a GS1 Digital Link (`/01/{gtin}/10/{lot}`) that opens
  its page; `Accept: application/json` or `?linkType=` gives the same facts as JSON.
* **Auditors** query `/api/v1`: batches, full histories (every event with transaction
  hash, block, log index and time), lineage, organisations, claims at any time.

Everything is read-only and served from the index of the ledger's events, except two
routes: `POST /api/v1/documents` takes a document whose sha256 the chain anchors, and
`POST /api/v1/feedback` takes a shopper's rating or comment (a hash-chained log, anchored).
"""

#: Below this size compressing saves less than it costs (a packet holds ~1,400 bytes).
GZIP_MINIMUM_BYTES = 1024
#: zlib's default trade-off: pages are compressed on every request (the page cache keeps
#: them uncompressed), and level 9 costs much more CPU for a few bytes less.
GZIP_LEVEL = 6


class CompressWhenAsked:
    """gzip (Starlette's GZipMiddleware) for the requests that accept it; the others go
    straight to the app, without the wrapper's per-request cost (~35 us, measured)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(
            app,
            minimum_size=GZIP_MINIMUM_BYTES,
            compresslevel=GZIP_LEVEL,
            exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/pdf"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(
            name == b"accept-encoding" and b"gzip" in value.lower() for name, value in scope["headers"]
        ):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class HeadAsGet:
    """Every GET route answers HEAD (GS1 resolvers and link checkers ask with HEAD): the
    request runs as a GET and the answer keeps its status and headers (Content-Length
    included, as RFC 9110 allows) without the body. One mechanism for every route, so the
    OpenAPI document keeps one operation per path; a method no route allows still gets
    405, whose Allow header says HEAD wherever it says GET (see api.errors)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        # A copy: the server keeps its own scope saying HEAD, and sends no body either.
        await self.app({**scope, "method": "GET"}, receive, headers_only)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings` (default: from the environment and config file)."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = IndexStore.open(settings.database_url, settings.data_dir)
        held = document_store(settings.documents_dir, settings.document_sources)
        await run_in_threadpool(documents.clear_spool, held)  # what a killed worker left behind
        app.state.context = ApiContext(settings, ReadModel(store, held))
        app.state.feedback = FeedbackBoard.open(settings)  # shoppers' feedback: its own store, never the index
        try:
            yield
        finally:
            store.dispose()
            app.state.feedback.store.dispose()

    # /docs and /redoc are served by api.routes.assets, with their scripts from this app.
    app = FastAPI(
        title="Provenance ledger", version="1", description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    install_error_handlers(app)
    # Added first, so it runs inside HeadAsGet: a HEAD gets the GET's Content-Encoding and
    # Content-Length (of the compressed body), as RFC 9110 asks.
    app.add_middleware(CompressWhenAsked)
    app.add_middleware(HeadAsGet)
    app.add_middleware(LanguageMiddleware)  # each request's language, before any route or error page
    app.add_middleware(BrandMiddleware, brand=brand_of(settings))  # the maker's name and logo on every page
    app.mount(assets.DOCS_ASSETS_PATH, assets.docs_assets(), name="docs-assets")
    # The shoppers' pages first: a scan is the hot path, and the router tries routes in
    # order (the other routers' paths never match a page's: /01/..., /proof/..., /).
    app.include_router(pages.router)
    app.include_router(assets.router)
    app.include_router(health.router)
    app.include_router(auditor.router)
    app.include_router(qr.router)
    app.include_router(documents.router)
    app.include_router(feedback.router)
    return app
