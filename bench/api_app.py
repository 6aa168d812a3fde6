"""The app as `provenance run` serves it, plus the baseline of `make bench-api`: the same
page's HTML as a static file, served by the same server (uvicorn workers, same app)."""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.main import create_app as create_product_app


def create_app() -> FastAPI:
    """The product app with /baseline/ serving $BENCH_STATIC_DIR."""
    app = create_product_app()
    app.mount("/baseline", StaticFiles(directory=os.environ["BENCH_STATIC_DIR"]), name="baseline")
    return app
