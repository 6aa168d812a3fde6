"""Dates, times, numbers and percentages as the current page's language writes them
("3 Dec 2026" / "3 dic 2026" / "3 déc. 2026" / "3. Dez. 2026"; "12,000" / "12.000" /
"12 000"), from Babel's CLDR data. Times are always UTC, and say so."""

from __future__ import annotations

from datetime import UTC, datetime

from babel import Locale
from babel.dates import format_skeleton, format_time
from babel.numbers import format_decimal, format_percent

from api.i18n import format_locale


def _moment(timestamp: int | None) -> datetime | None:
    """`timestamp` as a UTC datetime; None for none (0 too: the read model's "never")."""
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None


def date_text(timestamp: int | None) -> str:
    """`22 Nov 2026` (UTC, in the page's language), or an empty string."""
    moment = _moment(timestamp)
    return format_skeleton("yMMMd", moment, locale=format_locale()) if moment else ""


def time_text(timestamp: int | None) -> str:
    """`22 Nov 2026, 14:03 UTC` (in the page's language), or an empty string."""
    moment = _moment(timestamp)
    if moment is None:
        return ""
    locale = format_locale()
    clock = format_time(moment, "HH:mm", tzinfo=UTC, locale=locale)
    # The locale's own way of joining a date and a time ("{1}, {0}", "{1} 'um' {0}"...).
    joined = str(Locale.parse(locale).datetime_formats["medium"]).replace("{1}", date_text(timestamp)).replace("{0}", clock)
    return f"{joined} UTC"


def iso_time(timestamp: int | None) -> str:
    """The machine-readable form for <time datetime=...> (the same in every language)."""
    moment = _moment(timestamp)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def number_text(value: int) -> str:
    """A whole number with the page language's digit grouping."""
    return format_decimal(value, locale=format_locale())


def percent(share: float) -> str:
    """`82%` (`82 %` in es, fr, de), or `<1%` for a trace."""
    locale = format_locale()
    if 0 < share < 0.01:
        return "<" + format_percent(0.01, locale=locale)
    return format_percent(round(share, 2), locale=locale)
