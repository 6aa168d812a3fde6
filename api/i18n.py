"""The shopper's language: which one a request gets, and the gettext functions that
templates (`_`, `ngettext`, `{% trans %}`) and view code (`_`, `ngettext`) translate with.

The language of the request being rendered sits in a context variable, so view code
deep below a route translates without passing a locale through every call. Catalogues
are the gettext .po files under api/locale (kept by `make i18n`, tools/i18n.py), read
once per process: nothing compiled is kept in the repository or needed at install.
"""

from __future__ import annotations

import contextlib
import functools
import gettext as gettext_module
import io
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from ledger.queries import ADMIN_NAME

#: The languages pages are offered in; the first is the default and the source language.
LANGUAGES = ("en", "es", "fr", "de")
DEFAULT_LANGUAGE = LANGUAGES[0]
#: Each language by its own name, as the switcher offers it.
LANGUAGE_NAMES = {"en": "English", "es": "Español", "fr": "Français", "de": "Deutsch"}
#: The locale dates and numbers are written in per language: British English writes
#: "3 Dec 2026", as the pages always have.
FORMAT_LOCALES = {"en": "en_GB", "es": "es", "fr": "fr", "de": "de"}
#: The catalogues: <language>/LC_MESSAGES/messages.po.
LOCALE_DIR = Path(__file__).parent / "locale"
#: Longest Accept-Language header read (a browser sends a few dozen bytes).
_MAX_ACCEPT_LANGUAGE = 512

T = TypeVar("T")

_language: ContextVar[str] = ContextVar("language", default=DEFAULT_LANGUAGE)
#: The request's query parameters other than `lang`, kept by the switcher's links (empty
#: for a cached page, which every request of its language shares).
_query: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("query", default=())


def current_language() -> str:
    """The language of the page being rendered."""
    return _language.get()


def format_locale() -> str:
    """The Babel locale dates and numbers of the current page are written in."""
    return FORMAT_LOCALES[current_language()]


@contextlib.contextmanager
def use_language(language: str, query: tuple[tuple[str, str], ...] = ()) -> Iterator[None]:
    """Render (and build view text) in `language` inside the block; `query`: the request's
    other query parameters, for the switcher's links."""
    token = _language.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    query_token = _query.set(query)
    try:
        yield
    finally:
        _query.reset(query_token)
        _language.reset(token)


def catalogue_path(language: str) -> Path:
    """Where the catalogue of `language` lives."""
    return LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"


@functools.cache
def translations(language: str) -> gettext_module.NullTranslations:
    """The translations of `language`, read from its .po file once per process (the
    source language, or a language without a catalogue, translates nothing). Fuzzy and
    empty entries are left out, so they show the English source rather than a guess."""
    path = catalogue_path(language)
    if language == DEFAULT_LANGUAGE or not path.is_file():
        return gettext_module.NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext_module.GNUTranslations(compiled)


def gettext(message: str) -> str:
    """`message` in the current language."""
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form of a message for `n`, in the current language."""
    return translations(current_language()).ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 (gettext's own name for it)
    """Mark `message` for the catalogues without translating it (tables built at import
    time): translate it with `_` where it is shown."""
    return message


_ = gettext


def who_name(name: str | None) -> str | None:
    """Who acted, as the read model names them, with "the ledger's admin" (its word for
    an admin account with no organisation name) in the page's language."""
    return _("the ledger's admin") if name == ADMIN_NAME else name


def accepted_languages(header: str | None) -> list[str]:
    """The language tags of an Accept-Language header, most wanted first (RFC 9110
    q-values; q=0 means "not this one"; `*` names none)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "")[:_MAX_ACCEPT_LANGUAGE].split(",")):
        tag, _sep, params = item.strip().partition(";")
        quality = 1.0
        name, _eq, value = params.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, position, tag.strip()))
    return [tag for _q, _p, tag in sorted(ranked)]


@functools.lru_cache(maxsize=1024)  # every request asks; browsers send a handful of distinct headers
@functools.lru_cache(maxsize=4096)  # asked on every request; browsers send a few distinct headers
def choose_language(requested: str | None, remembered: str | None, accept_language: str | None) -> str:
    """The page's language: the switcher's `?lang=`, else the one the shopper chose
    before (cookie), else the best match of the browser's Accept-Language, else English."""
    for chosen in (requested, remembered):
        if chosen and chosen.lower() in LANGUAGES:
            return chosen.lower()
    found = Locale.negotiate(accepted_languages(accept_language), LANGUAGES, sep="-")
    return found.language if found is not None and found.language in LANGUAGES else DEFAULT_LANGUAGE


def language_links() -> list[dict[str, str | bool]]:
    """The switcher: this page in each language (a relative link that keeps the page's
    other query parameters), the current one marked."""
    query = _query.get()
    return [
        {
            "code": code,
            "name": LANGUAGE_NAMES[code],
            "href": "?" + urlencode([*query, ("lang", code)]),
            "current": code == current_language(),
        }
        for code in LANGUAGES
    ]


def in_language(language: str, build: Callable[[], T]) -> Callable[[], T]:
    """`build` made to run in `language` (a cached page's build, which runs in a worker
    thread for whichever request came first), with no query parameters of anyone's."""

    def built() -> T:
        with use_language(language):
            return build()

    return built
