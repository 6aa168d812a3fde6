"""What a browser fetches beside the pages: the site's icon, and the API's interactive
documentation (/docs, /redoc) with Swagger UI and ReDoc served from this app, so the
documentation works offline and sends no visitor to a CDN."""

from __future__ import annotations

import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from api.brand import LOGO_PATH, current_brand

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).parent.parent / "static"
#: Swagger UI and ReDoc as the fastapi-offline package bundles them (MIT, maintained).
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
DOCS_ASSETS_PATH = "/docs-assets"
#: The icon never changes at this address, so a browser keeps it for a month.
ICON_CACHE = "public, max-age=2592000"
#: The logo's address carries its digest: a browser keeps it for a year without asking.
LOGO_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
}


def docs_assets() -> StaticFiles:
    """Swagger UI's and ReDoc's scripts and styles, mounted at DOCS_ASSETS_PATH."""
    return StaticFiles(directory=DOCS_ASSETS)


@router.get(LOGO_PATH)
async def brand_logo() -> Response:
    """The maker's logo (settings: brand_logo), kept by browsers for a year: its address
    changes with its content. Served so that an SVG's scripts never run (CSP sandbox)."""
    brand = current_brand()
    if brand.logo is None or brand.logo_type is None:
        raise HTTPException(404)
    return Response(brand.logo, media_type=brand.logo_type, headers=LOGO_HEADERS)


@router.get("/favicon.ico")
def favicon() -> Response:
    """The site's icon (SVG: browsers take the type from the answer, not the name)."""
    return Response((STATIC / "favicon.svg").read_bytes(), media_type="image/svg+xml", headers={"Cache-Control": ICON_CACHE})


def _with_language(page: HTMLResponse) -> HTMLResponse:
    """The page with `lang` on its root element (screen readers pick the voice from it),
    and Swagger UI's mount point as the page's main landmark (FastAPI's shell has none,
    so assistive technology had nowhere to jump to; ReDoc's shell has no such div)."""
    body = bytes(page.body).replace(b"<html>", b'<html lang="en">', 1)
    body = re.sub(rb'<div id="swagger-ui">\s*</div>', b'<main id="swagger-ui"></main>', body, count=1)
    return HTMLResponse(body)


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """The OpenAPI document in Swagger UI, every asset from this app."""
    root = request.scope.get("root_path", "")
    return _with_language(
        get_swagger_ui_html(
            openapi_url=f"{root}{request.app.openapi_url}",
            title=f"{request.app.title} – API",
            swagger_js_url=f"{root}{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}/favicon.ico",
            swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
        )
    )


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """The OpenAPI document in ReDoc, every asset from this app (no web fonts)."""
    root = request.scope.get("root_path", "")
    return _with_language(
        get_redoc_html(
            openapi_url=f"{root}{request.app.openapi_url}",
            title=f"{request.app.title} – API",
            redoc_js_url=f"{root}{DOCS_ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}/favicon.ico",
            with_google_fonts=False,
        )
    )
