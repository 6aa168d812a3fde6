"""The HTML templates: Jinja2 with autoescaping always on, so every string that came from
the chain (names, places, lots, products) is escaped wherever a template prints it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from api.i18n import gettext, ngettext
from api.views import claim_name, quantity_text

TEMPLATES = Path(__file__).parent / "templates"


def _utc(timestamp: int | None, layout: str) -> str:
    """`timestamp` in UTC laid out by `layout` (strftime); an empty string for none (0 too:
    the read model's "never")."""
    if not timestamp:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime(layout)


def date_text(timestamp: int | None) -> str:
    """`22 Nov 2026` (UTC), or an empty string."""
    return _utc(timestamp, "%-d %b %Y")


def time_text(timestamp: int | None) -> str:
    """`22 Nov 2026, 14:03 UTC`, or an empty string."""
    return _utc(timestamp, "%-d %b %Y, %H:%M UTC")


def iso_time(timestamp: int | None) -> str:
    """The machine-readable form for <time datetime=...>."""
    return _utc(timestamp, "%Y-%m-%dT%H:%M:%SZ")


def short_hash(value: str | None) -> str:
    """`0x1234…abcd`: enough to recognise a hash, the full one is in the link and title."""
    if not value:
        return ""
    return f"{value[:6]}…{value[-4:]}" if len(value) > 14 else value


def percent(share: float) -> str:
    """`82%`, or `<1%` for a trace."""
    value = share * 100
    if 0 < value < 1:
        return "<1%"
    return f"{value:.0f}%"


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
    # New-style gettext: `_("%(n)s lots", n=3)` formats and autoescapes its arguments.
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    return env


ENVIRONMENT = _environment()


def render(template: str, **context: Any) -> str:
    """The named template rendered with `context`."""
    return ENVIRONMENT.get_template(template).render(**context)
