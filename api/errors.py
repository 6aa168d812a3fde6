"""Errors as the reader needs them: a page in the site's style for a browser, JSON for a
program; never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.render import render

log = logging.getLogger("api")


class PageError(Exception):
    """A request the site cannot answer, with a heading, a sentence saying what is wrong,
    and a hint saying what to do."""

    def __init__(
        self, status: int, heading: str, message: str, hint: str | None = None, form: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.heading, self.message, self.hint, self.form = status, heading, message, hint, form or {}


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
) -> Response:
    """The error as JSON ({"detail": ...}) for programs, as a page for browsers."""
    if _is_api(request):
        return JSONResponse(
            {"detail": detail if detail is not None else message, **({"hint": hint} if hint else {})}, status_code=status
        )
    return HTMLResponse(render("error.html", heading=heading, message=message, hint=hint, **(form or {})), status_code=status)


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
        return error_response(request, exc.status, exc.heading, exc.message, exc.hint, exc.form)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(
                request,
                404,
                "Page not found",
                "There is no page at this address.",
                "Scan the code on the packaging again, or search by GTIN and lot.",
                detail=exc.detail,
            )
        response = error_response(request, exc.status_code, "Request not possible", str(exc.detail), detail=exc.detail)
        if exc.status_code == 405:
            response.headers["Allow"] = allowed_methods((exc.headers or {}).get("Allow", "GET"))
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors())
        return error_response(
            request,
            422,
            "Check the address",
            f"The request is not valid: {problems}.",
            detail=[{k: e[k] for k in ("loc", "msg", "type")} for e in exc.errors()],
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return error_response(request, 500, "Something went wrong", "The page could not be built. Please try again in a moment.")
