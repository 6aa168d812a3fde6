"""The shopper's language: which one a request gets, and the gettext functions that
templates (`_`, `ngettext`, `{% trans %}`) and view code (`_`, `ngettext`) translate with.

The language of the request being rendered sits in a context variable, so view code
deep below a route translates without passing a locale through every call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

#: The languages pages are offered in; the first is the default and the source language.
LANGUAGES = ("en",)
DEFAULT_LANGUAGE = LANGUAGES[0]

_language: ContextVar[str] = ContextVar("language", default=DEFAULT_LANGUAGE)


def current_language() -> str:
    """The language of the page being rendered."""
    return _language.get()


@contextlib.contextmanager
def use_language(language: str) -> Iterator[None]:
    """Render (and build view text) in `language` inside the block."""
    token = _language.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _language.reset(token)


def gettext(message: str) -> str:
    """`message` in the current language (the source text until catalogues exist)."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form of a message for `n`, in the current language."""
    return singular if n == 1 else plural


_ = gettext
