"""The HTML templates: Jinja2 with autoescaping always on, so every string that came from
the chain (names, places, lots, products) is escaped wherever a template prints it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from api.brand import current_brand
from api.formats import date_text, iso_time, percent, time_text
from api.i18n import current_language, gettext, language_links, ngettext
from api.views import claim_name, quantity_text

TEMPLATES = Path(__file__).parent / "templates"
#: Filters the templates use that other modules import from here.
__all__ = ["ENVIRONMENT", "date_text", "iso_time", "percent", "render", "short_hash", "time_text"]


def short_hash(value: str | None) -> str:
    """`0x1234…abcd`: enough to recognise a hash, the full one is in the link and title."""
    if not value:
        return ""
    return f"{value[:6]}…{value[-4:]}" if len(value) > 14 else value


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        date=date_text,
        time=time_text,
        iso=iso_time,
        short=short_hash,
        percent=percent,
        quantity=quantity_text,
        claim_name=claim_name,
    )
    # The page's language (<html lang>) and the switcher's links, read at render time.
    env.globals.update(current_language=current_language, language_links=language_links)
    # Whitespace inside {% trans %} is collapsed, as the catalogues hold it (babel.cfg: trimmed).
    env.policies["ext.i18n.trimmed"] = True
    # New-style gettext: `_("%(n)s lots", n=3)` formats and autoescapes its arguments.
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["brand"] = current_brand  # the maker's name and logo in every page's header
    return env


ENVIRONMENT = _environment()


def render(template: str, **context: Any) -> str:
    """The named template rendered with `context`."""
    return ENVIRONMENT.get_template(template).render(**context)
