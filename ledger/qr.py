"""QR codes of Digital Link URLs (error correction M, 4-module quiet zone kept)."""

from __future__ import annotations

import io
from pathlib import Path

import qrcode
import qrcode.image.svg
from qrcode.image.pure import PyPNGImage

from ledger.errors import InvalidInputError


def _code(url: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4)
    code.add_data(url)
    code.make(fit=True)
    return code


def qr_svg(url: str) -> bytes:
    """An SVG QR code of `url`."""
    buffer = io.BytesIO()
    _code(url).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return buffer.getvalue()


def qr_png(url: str) -> bytes:
    """A PNG QR code of `url`."""
    buffer = io.BytesIO()
    _code(url).make_image(image_factory=PyPNGImage).save(buffer)
    return buffer.getvalue()


def qr_text(url: str) -> str:
    """The QR code drawn with block characters, for a terminal."""
    buffer = io.StringIO()
    _code(url).print_ascii(out=buffer, invert=True)
    return buffer.getvalue()


def write_qr(url: str, path: Path) -> Path:
    """Write the QR code of `url` to `path`; the format follows the extension (.svg or .png)."""
    suffix = path.suffix.lower()
    if suffix == ".svg":
        data = qr_svg(url)
    elif suffix == ".png":
        data = qr_png(url)
    else:
        raise InvalidInputError(f"QR output {path} must end in .svg or .png")
    path.write_bytes(data)
    return path
