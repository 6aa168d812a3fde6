"""QR codes of a lot's Digital Link (absolute URL under the public base URL setting)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import ContextDep
from api.routes.pages import link_from_path
from api.schemas import problem
from ledger.qr import qr_png, qr_svg

router = APIRouter(prefix="/qr", tags=["qr"])

# A lot's URL never changes, so its code never does: let printers and browsers keep it.
CACHE = {"Cache-Control": "public, max-age=86400"}


@router.get(
    "/01/{gtin}/10/{rest:path}",
    summary="QR code of a lot's Digital Link: append .svg or .png",
    response_class=Response,
    responses={
        200: {
            "description": "The code",
            "content": {
                "image/svg+xml": {"schema": {"type": "string"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        400: problem("The Digital Link is not valid"),
        404: problem("Neither .svg nor .png"),
        422: problem("A parameter is not valid"),
    },
)
def qr_code(request: Request, context: ContextDep, gtin: str, rest: str) -> Response:
    """The code encodes the absolute Digital Link URL (error correction M, quiet zone of
    four modules). It does not need the lot to be registered yet: labels can be printed
    before the batch is."""
    path = request.url.path
    if not (path.endswith(".svg") or path.endswith(".png")):
        return Response('{"detail":"ask for /qr/01/<gtin>/10/<lot>.svg or .png"}', status_code=404, media_type="application/json")
    url = link_from_path(request).url(context.settings.public_base_url)
    if path.endswith(".svg"):
        return Response(qr_svg(url), media_type="image/svg+xml", headers=CACHE)
    return Response(qr_png(url), media_type="image/png", headers=CACHE)
