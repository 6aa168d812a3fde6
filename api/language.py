"""Which language each request's pages speak: chosen once per request, before any route
runs, so view code, templates and error pages all translate alike.

The switcher's `?lang=xx` wins and is remembered in a cookie (a language preference,
nothing personal), so the next page the shopper opens stays in it; else the browser's
Accept-Language; else English. Programs get English whatever they send: the JSON API
(`/api/...`) and JSON answers of the pages (`Accept: application/json`) never change
with the language.
"""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.i18n import DEFAULT_LANGUAGE, LANGUAGES, choose_language, use_language

#: The cookie that remembers the switcher's choice, and for how long (a year).
LANGUAGE_COOKIE = "lang"
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


def _for_programs(path: str, accept: str) -> bool:
    """Whether the request is a program's (the API, or JSON asked of a page): English."""
    return path.startswith("/api/") or ("application/json" in accept and "text/html" not in accept)


class LanguageMiddleware:
    """Sets the request's language (api.i18n.use_language) around the app, and on every
    page says what it depends on (`Vary: Accept-Language, Cookie`) and which language it
    is in (`Content-Language`).

    Every request passes through here, pages being the hot path: headers are read raw and
    the query and cookie parsed only when there is one, the language choice is memoised
    (api.i18n.choose_language), and the answer's headers are appended raw."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accept = cookie = accept_language = ""
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"cookie":
                cookie = value.decode("latin-1")
            elif name == b"accept-language":
                accept_language = value.decode("latin-1")
        query_string = scope.get("query_string", b"")
        params = QueryParams(query_string) if query_string else None
        requested = params.get("lang") if params is not None else None
        remembered = cookie_parser(cookie).get(LANGUAGE_COOKIE) if LANGUAGE_COOKIE in cookie else None
        if _for_programs(scope.get("path", ""), accept):
            language = DEFAULT_LANGUAGE
        else:
            language = choose_language(requested, remembered, accept_language or None)
        # Remember a choice made with the switcher (once: not while the cookie says it already).
        remember = requested is not None and requested.lower() in LANGUAGES and requested.lower() != remembered
        query = tuple((k, v) for k, v in params.multi_items() if k != "lang") if params is not None else ()
        added = [(b"content-language", language.encode("ascii"))]
        if remember:
            cookie_header = f"{LANGUAGE_COOKIE}={language}; Max-Age={LANGUAGE_COOKIE_SECONDS}; Path=/; SameSite=Lax; HttpOnly"
            added.append((b"set-cookie", cookie_header.encode("latin-1")))

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if any(n.lower() == b"content-type" and v.startswith(b"text/html") for n, v in headers):
                    message = {**message, "headers": _with_vary(headers) + added}
            await send(message)

        with use_language(language, query):
            await self.app(scope, receive, send_with_language)


def _with_vary(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with Accept-Language and Cookie added to Vary (one Vary header)."""
    kept = [(n, v) for n, v in headers if n.lower() != b"vary"]
    varies = [v.decode("latin-1") for n, v in headers if n.lower() == b"vary"]
    names = [part.strip() for value in varies for part in value.split(",") if part.strip()]
    for extra in ("Accept-Language", "Cookie"):
        if extra.lower() not in (name.lower() for name in names):
            names.append(extra)
    return [*kept, (b"vary", ", ".join(names).encode("latin-1"))]
