"""Errors as the reader needs them: a page in the site's style for a browser, JSON for a
program; never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.i18n import _
from api.render import render

log = logging.getLogger("api")


class PageError(Exception):
    """A request the site cannot answer, with a heading, a sentence saying what is wrong,
    and a hint saying what to do. `technical` is the precise reason, for a program (the
    JSON's `detail`) and folded away on the page; `choices` are (label, path) links to
    offer, such as the lots a mistyped one may have meant."""

    def __init__(
        self,
        status: int,
        heading: str,
        message: str,
        hint: str | None = None,
        form: dict[str, str] | None = None,
        technical: str | None = None,
        choices: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.heading, self.message, self.hint, self.form = status, heading, message, hint, form or {}
        self.technical, self.choices = technical, choices or []


class CanonicalElsewhere(Exception):
    """The request named a resource by another spelling (a lot in other letter case) of
    exactly one canonical address: answered with a redirect there, query kept."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _is_api(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path.startswith("/api/") or ("application/json" in accept and "text/html" not in accept)


def error_response(
    request: Request,
    status: int,
    heading: str,
    message: str,
    hint: str | None = None,
    form: dict[str, str] | None = None,
    detail: Any = None,
    technical: str | None = None,
    choices: list[tuple[str, str]] | None = None,
) -> Response:
    """The error as JSON ({"detail": ...}) for programs, as a page for browsers."""
    if _is_api(request):
        body: dict[str, Any] = {"detail": detail if detail is not None else technical or message}
        if hint:
            body["hint"] = hint
        if choices:
            body["choices"] = [path for _, path in choices]
        return JSONResponse(body, status_code=status)
    page = render(
        "error.html", heading=heading, message=message, hint=hint, technical=technical, choices=choices or [], **(form or {})
    )
    return HTMLResponse(page, status_code=status)


def allowed_methods(allow: str) -> str:
    """The Allow header of a 405: the route's methods, with HEAD wherever GET is (every GET
    route answers HEAD, see api.main.HeadAsGet)."""
    methods = [m.strip() for m in allow.split(",") if m.strip()]
    if "GET" in methods and "HEAD" not in methods:
        methods.append("HEAD")
    return ", ".join(methods)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through `error_response`."""

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> Response:
        return error_response(
            request, exc.status, exc.heading, exc.message, exc.hint, exc.form, technical=exc.technical, choices=exc.choices
        )

    @app.exception_handler(CanonicalElsewhere)
    async def canonical_elsewhere(request: Request, exc: CanonicalElsewhere) -> Response:
        # Temporary (307): a lot spelled exactly so may be registered later, and wins then.
        query = request.url.query
        return RedirectResponse(exc.path + (f"?{query}" if query else ""), status_code=307)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(
                request,
                404,
                _("Page not found"),
                _("There is no page at this address. The link may be cut short, or mistyped."),
                _(
                    "Scan the QR code on the packaging again, or type the product number (the digits under the "
                    "barcode) and the lot printed next to it."
                ),
                detail=exc.detail,
            )
        response = error_response(request, exc.status_code, _("Request not possible"), str(exc.detail), detail=exc.detail)
        if exc.status_code == 405:
            response.headers["Allow"] = allowed_methods((exc.headers or {}).get("Allow", "GET"))
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors())
        return error_response(
            request,
            422,
            _("Check the address"),
            _("The request is not valid: %(problems)s.") % {"problems": problems},
            detail=[{k: e[k] for k in ("loc", "msg", "type")} for e in exc.errors()],
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return error_response(
            request, 500, _("Something went wrong"), _("The page could not be built. Please try again in a moment.")
        )
