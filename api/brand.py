"""The maker's brand on the shopper's pages: its name and logo from the settings
(`brand_name`, `brand_logo`), shown in every page's header.

The brand of the request being rendered sits in a context variable, set by
`BrandMiddleware` for each request, so templates (`brand()`) read it without every
route passing it along, and two apps in one process (tests) each show their own.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from ledger.config import Settings
from ledger.errors import ConfigurationError

#: Where the app serves the logo; `?v=` carries its digest, so it can be cached for good.
LOGO_PATH = "/brand-logo"
#: A logo is a small picture in a header: anything bigger would slow every first visit.
MAX_LOGO_BYTES = 64 * 1024
LOGO_TYPES = {".svg": "image/svg+xml", ".png": "image/png"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Brand:
    """The maker's name and, when one is set, its logo's bytes, type and address."""

    name: str
    logo: bytes | None = None
    logo_type: str | None = None

    @property
    def logo_url(self) -> str | None:
        """The logo's address, versioned by its content (None: no logo)."""
        if self.logo is None:
            return None
        return f"{LOGO_PATH}?v={hashlib.sha256(self.logo).hexdigest()[:16]}"


DEFAULT_BRAND = Brand(Settings.model_fields["brand_name"].default)
_brand: ContextVar[Brand] = ContextVar("brand", default=DEFAULT_BRAND)


def current_brand() -> Brand:
    """The brand of the page being rendered (templates call it as `brand()`)."""
    return _brand.get()


def _read_logo(path: Path) -> tuple[bytes, str]:
    """The logo file's bytes and media type, refused when missing, too big or not what its
    name says (the app serves it under that type)."""
    media_type = LOGO_TYPES.get(path.suffix.lower())
    if media_type is None:
        raise ConfigurationError(f"brand_logo {path} must be an .svg or .png file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"brand_logo {path} cannot be read: {exc.strerror or exc}") from exc
    if len(data) > MAX_LOGO_BYTES:
        raise ConfigurationError(f"brand_logo {path} is {len(data):,} bytes; a logo may be at most {MAX_LOGO_BYTES:,}")
    is_png = data.startswith(_PNG_SIGNATURE)
    if (media_type == "image/png") != is_png or (not is_png and b"<svg" not in data[:4096]):
        raise ConfigurationError(f"brand_logo {path} is not the {path.suffix.lower()} file its name says")
    return data, media_type


def brand_of(settings: Settings) -> Brand:
    """The brand the settings describe, its logo read (and checked) once."""
    if settings.brand_logo is None:
        return Brand(settings.brand_name)
    logo, media_type = _read_logo(settings.brand_logo)
    return Brand(settings.brand_name, logo, media_type)


class BrandMiddleware:
    """Every request renders with this app's brand."""

    def __init__(self, app: ASGIApp, brand: Brand) -> None:
        self.app = app
        self.brand = brand

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _brand.set(self.brand)
        try:
            await self.app(scope, receive, send)
        finally:
            _brand.reset(token)
