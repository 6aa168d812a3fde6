"""Which language each request's pages speak: chosen once per request, before any route
runs, so view code, templates and error pages all translate alike.

The switcher's `?lang=xx` wins and is remembered in a cookie (a language preference,
nothing personal), so the next page the shopper opens stays in it; else the browser's
Accept-Language; else English. Programs get English whatever they send: the JSON API
(`/api/...`) and JSON answers of the pages (`Accept: application/json`) never change
with the language.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.i18n import DEFAULT_LANGUAGE, LANGUAGES, choose_language, use_language

#: The cookie that remembers the switcher's choice, and for how long (a year).
LANGUAGE_COOKIE = "lang"
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


def _for_programs(path: str, headers: Headers) -> bool:
    """Whether the request is a program's (the API, or JSON asked of a page): English."""
    accept = headers.get("accept", "")
    return path.startswith("/api/") or ("application/json" in accept and "text/html" not in accept)


class LanguageMiddleware:
    """Sets the request's language (api.i18n.use_language) around the app, and on every
    page says what it depends on (`Vary: Accept-Language, Cookie`) and which language it
    is in (`Content-Language`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        params = QueryParams(scope.get("query_string", b""))
        requested = params.get("lang")
        remembered = cookie_parser(headers.get("cookie", "")).get(LANGUAGE_COOKIE)
        if _for_programs(scope.get("path", ""), headers):
            language = DEFAULT_LANGUAGE
        else:
            language = choose_language(requested, remembered, headers.get("accept-language"))
        # Remember a choice made with the switcher (once: not while the cookie says it already).
        remember = requested is not None and requested.lower() in LANGUAGES and requested.lower() != remembered
        query = tuple((k, v) for k, v in params.multi_items() if k != "lang")

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                if response_headers.get("content-type", "").startswith("text/html"):
                    response_headers.add_vary_header("Accept-Language")
                    response_headers.add_vary_header("Cookie")
                    response_headers["Content-Language"] = language
                    if remember:
                        response_headers.append(
                            "Set-Cookie",
                            f"{LANGUAGE_COOKIE}={language}; Max-Age={LANGUAGE_COOKIE_SECONDS}; Path=/; SameSite=Lax; HttpOnly",
                        )
            await send(message)

        with use_language(language, query):
            await self.app(scope, receive, send_with_language)
