"""The customer's side: the GS1 Digital Link resolver (HTML page, JSON, link types), the
landing page with its search, and printable label sheets."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import Markup

from api.claim_types import configured_claim_types
from api.deps import ApiContext, ContextDep
from api.errors import CanonicalElsewhere, PageError
from api.i18n import DEFAULT_LANGUAGE, _, current_language, in_language
from api.proof_view import network_of, proof_view
from api.render import render
from api.schemas import LinkTypeProblem, ResolverAnswer, Responses, problem
from api.views import PageContext, freshness_view, page_budget, product_view
from ledger.errors import InvalidInputError
from ledger.identifiers import DigitalLink, digital_link, parse_digital_link, parse_gtin
from ledger.qr import qr_svg
from ledger.records import Batch

router = APIRouter(tags=["pages"])

GS1_VOC = "https://gs1.org/voc/"
#: The link types this resolver serves beside the page itself (gs1:pip).
LINK_TYPES = {
    "gs1:certificationInfo": "Certificates and claims about this lot and its ingredients, with their status",
    "gs1:traceability": "Where the lot comes from and every step of its journey, with transactions",
    "gs1:recallStatus": "Whether this lot or any of its ingredients was recalled",
}
MAX_LABELS = 200


#: Pages answer errors with a page, or with JSON (`Accept: application/json`). A route
#: whose own answer is HTML names the JSON error by reference: `model` would put it under
#: text/html (the `Problem` component is there: the API's routes declare it as a model).
HTML: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}


def page_error(description: str) -> dict[str, Any]:
    """An error a page route answers with a page, or with JSON to a program."""
    return {
        "description": description,
        "content": {**HTML, "application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


PAGE_ERRORS: Responses = {
    400: page_error("The code is not valid"),
    404: page_error("No such lot (or no page without a lot)"),
    422: page_error("A parameter is not valid"),
}
#: A lot typed in other letter case than registered, when only one lot matches.
OTHER_CASE: Responses = {
    307: {"description": "The lot is registered in other letter case: `Location` is its address (query kept)"}
}
#: The resolver's default answer class stays JSON, so its models land under application/json.
RESOLVER_ANSWERS: Responses = {
    200: {
        "model": ResolverAnswer,
        "description": "The page (HTML), its data (JSON), a link type's document, or the link set",
        "content": {**HTML, "application/linkset+json": {"schema": {"$ref": "#/components/schemas/Linkset"}}},
    },
    400: {**problem("The code is not valid"), "content": HTML},
    404: {**problem("No such lot, or no such link type (`available` lists them)", LinkTypeProblem), "content": HTML},
    422: problem("A parameter is not valid"),
    **OTHER_CASE,
}


def wants_json(request: Request) -> bool:
    """Whether the client asked for JSON rather than a page (the Accept header)."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def link_from_path(request: Request) -> DigitalLink:
    """The Digital Link of this request, parsed from the raw (still percent-encoded) path,
    so a lot containing '/' stays one value."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    for suffix in (".svg", ".png"):
        if path.startswith("/qr/") and path.endswith(suffix):
            path = path[: -len(suffix)]
    path = path.removeprefix("/qr").removeprefix("/labels")
    try:
        return parse_digital_link(path)
    except InvalidInputError as exc:
        raise unreadable_code(exc, gtin=request.path_params.get("gtin")) from exc


def unreadable_code(exc: InvalidInputError, form: dict[str, str] | None = None, gtin: str | None = None) -> PageError:
    """A 400 a shopper understands: which part of the code is wrong (echoing the product
    number as typed, `gtin`) and what to do, with the validator's exact words (a check
    digit's expected value...) folded away."""
    technical = str(exc)
    if technical.startswith("GTIN") and gtin is not None:
        message = _(
            "This does not look like a product code from a label: the product number GTIN %(gtin)s has a wrong "
            "digit, or too few or too many digits. It may have been mistyped, or the link cut short."
        ) % {"gtin": repr(gtin)}
    elif technical.startswith("GTIN"):
        message = _(
            "This does not look like a product code from a label: the product number (GTIN) has a wrong "
            "digit, or too few or too many digits. It may have been mistyped, or the link cut short."
        )
    elif technical.startswith(("lot", "the lot")):
        message = _(
            "This does not look like a lot from a label: lots are at most 20 letters, digits and a few signs "
            "such as - or /, without spaces."
        )
    else:
        message = _("This does not look like a product code from a label: it should name a product and one of its lots.")
    return PageError(
        400,
        _("This code does not look right"),
        message,
        _(
            "Scan the QR code on the packaging again, or type the product number (the 8 to 14 digits under the "
            "barcode) and the lot printed next to it."
        ),
        form,
        technical=technical,
    )


def find_batch(context: ApiContext, link: DigitalLink, prefix: str = "") -> Batch:
    """The indexed batch of `link`; else, when one lot differs from it only by letter case,
    a redirect to that lot's address under `prefix`; else a helpful 404 (listing the lots
    when several differ only by case: which one is meant, only the label says)."""
    batch = context.model.batch_by_gtin_lot(link.gtin, link.lot)
    if batch is not None:
        return batch
    spellings = [lot for lot in context.model.lots_ignoring_case(link.gtin, link.lot) if lot != link.lot]
    if len(spellings) == 1:
        raise CanonicalElsewhere(prefix + replace(link, lot=spellings[0]).path())
    if spellings:
        raise PageError(
            404,
            _("Which lot?"),
            _("Product %(gtin)s has %(count)s lots that differ from %(lot)s only in capital and small letters.")
            % {"gtin": link.gtin, "count": len(spellings), "lot": repr(link.lot)},
            _("Choose the one printed on the packaging, letter for letter."),
            technical=f"no lot {link.lot!r} of GTIN {link.gtin}; lots differing only by case: {', '.join(spellings)}",
            choices=[(lot, prefix + replace(link, lot=lot).path()) for lot in spellings],
        )
    raise PageError(
        404,
        _("We could not find this lot"),
        _("No lot %(lot)s of product %(gtin)s is registered on this ledger.") % {"lot": repr(link.lot), "gtin": link.gtin},
        _(
            "Check the lot printed next to the code: every letter, digit and sign must match. "
            "A lot registered in the last few seconds appears as soon as the index catches up."
        ),
    )


async def cached_page(context: ApiContext, link: DigitalLink, language: str | None = None) -> tuple[dict[str, Any], bytes]:
    """The product page's data and HTML, rebuilt (in a worker thread) when the index moved,
    one per language (`language`: the request's unless given; JSON is always English). The
    feedback section is a marker here, filled in per request (api.feedback_view)."""
    language = language or current_language()

    def build() -> tuple[dict[str, Any], bytes]:
        with page_budget(context.model):  # one fetch budget for the lot's own metadata and the rest
            batch = find_batch(context, link)
            freshness = context.freshness()
            page_context = PageContext(
                base_url=context.settings.public_base_url,
                chain_id=freshness.chain_id if freshness else context.settings.chain_id,
                contract=freshness.contract if freshness else context.settings.contract_address,
                claim_types=configured_claim_types(context.settings),
            )
            view = product_view(context.model, batch, link, page_context, int(time.time()))
        return view, render("product.html", page=view).encode()

    key = ("page", link, language)  # one page per language
    return await context.pages.get(key, context.version(), in_language(language, build))  # type: ignore[no-any-return]


def with_current_freshness(view: dict[str, Any], context: ApiContext) -> dict[str, Any]:
    """The view with the index's freshness as it is now: JSON gives the second of the last
    check, which the cached page (showing the minute) is not rebuilt for."""
    return {**view, "proof": {**view["proof"], **freshness_view(context.freshness())}}


def link_headers(url: str) -> dict[str, str]:
    """The GS1 resolver's Link header: where this lot's link set is."""
    return {"Link": f'<{url}?linkType=all>; rel="linkset"; type="application/linkset+json"'}


def linkset(view: dict[str, Any]) -> dict[str, Any]:
    """The lot's links as an RFC 9264 link set (GS1 Digital Link resolver, linkType=all)."""
    url = view["url"]
    entry: dict[str, Any] = {
        "anchor": url,
        GS1_VOC + "pip": [{"href": url, "title": view["product"] or "Product page", "type": "text/html"}],
    }
    for link_type, title in LINK_TYPES.items():
        entry[GS1_VOC + link_type.removeprefix("gs1:")] = [
            {"href": f"{url}?linkType={quote(link_type, safe=':')}", "title": title, "type": "application/json"}
        ]
    return {"linkset": [entry]}


def link_type_document(view: dict[str, Any], link_type: str) -> dict[str, Any]:
    """The JSON of one link type."""
    base = {"linkType": link_type, "anchor": view["url"], "batch_id": view["batch_id"], "gtin": view["gtin"], "lot": view["lot"]}
    if link_type == "gs1:certificationInfo":
        return {**base, "claims": view["claims"], "coverage": view["coverage"]}
    if link_type == "gs1:traceability":
        return {
            **base,
            "origins": view["origins"],
            "journey": view["journey"],
            "proof": view["proof"],
            "history": f"/api/v1/batches/{view['batch_id']}/history",
        }
    return {**base, "recalled": bool(view["recalled"]), "recalls": view["recalled"]}


def normalise_link_type(value: str) -> str:
    """`gs1:x` from `gs1:x` or `https://gs1.org/voc/x`."""
    return "gs1:" + value.removeprefix(GS1_VOC) if value.startswith(GS1_VOC) else value


#: How many of a featured product's latest lots the landing page links.
FEATURED_LOTS = 3


def featured_products(context: ApiContext) -> list[dict[str, Any]]:
    """The operator's featured products (settings: featured_products) with their latest
    lots, voided ones left out; a GTIN with no lot yet is left out."""
    featured = []
    for gtin in context.settings.featured_products:
        lots = [b for b in context.model.batches(gtin=gtin, limit=FEATURED_LOTS * 2) if b.status != "voided"]
        if lots:
            featured.append(
                {
                    "gtin": gtin,
                    "product": lots[0].product,
                    "lots": [
                        {"lot": b.lot, "recalled": bool(b.recalled), "path": digital_link(b.gtin, b.lot).path()}
                        for b in lots[:FEATURED_LOTS]
                    ],
                }
            )
    return featured


@router.get("/", response_class=HTMLResponse, summary="Landing page: search, how to read a page, featured products")
async def landing(context: ContextDep) -> HTMLResponse:
    """Search by GTIN + lot, how to read a product page, and the latest lots of the
    products the operator features (never every lot registered: test and unfinished
    lots are no shopper's business)."""

    def build() -> bytes:
        return render("landing.html", featured=featured_products(context)).encode()

    language = current_language()
    return HTMLResponse(await context.pages.get(("landing", language), context.version(), in_language(language, build)))


@router.get(
    "/search", summary="Look a lot up by GTIN and lot", status_code=303, response_class=RedirectResponse, responses=PAGE_ERRORS
)
def search(context: ContextDep, gtin: str = Query(max_length=64), lot: str = Query(max_length=64)) -> Response:
    """Redirect to the lot's Digital Link page (the lot as registered when only its letter
    case differs, and just one lot matches), or say what is wrong with the input."""
    try:
        link = digital_link(gtin, lot.strip())
    except InvalidInputError as exc:
        raise unreadable_code(exc, form={"form_gtin": gtin, "form_lot": lot}, gtin=gtin) from exc
    if context.model.batch_by_gtin_lot(link.gtin, link.lot) is None:
        spellings = context.model.lots_ignoring_case(link.gtin, link.lot)
        if len(spellings) == 1:
            link = replace(link, lot=spellings[0])
    return RedirectResponse(link.path(), status_code=303)


@router.get("/01/{gtin}", summary="A product (GTIN) without a lot", response_class=HTMLResponse, responses=PAGE_ERRORS)
def product_without_lot(gtin: str) -> Response:
    """Pages are per lot: say so, with the search form."""
    try:
        parse_gtin(gtin)
    except InvalidInputError as exc:
        raise unreadable_code(exc, form={"form_gtin": gtin}, gtin=gtin) from exc
    raise PageError(
        404,
        _("Which lot?"),
        _("Product %(gtin)s has a page per lot. Enter the lot printed next to the code.") % {"gtin": gtin},
        form={"form_gtin": gtin},
    )


@router.get(
    "/01/{gtin}/10/{rest:path}",
    summary="GS1 Digital Link resolver (/01/{gtin}/10/{lot}[/21/{serial}])",
    responses=RESOLVER_ANSWERS,
)
async def resolve(
    request: Request,
    context: ContextDep,
    gtin: str,
    rest: str,
    link_type: str | None = Query(
        default=None,
        alias="linkType",
        max_length=200,
        description="gs1:certificationInfo, gs1:traceability, gs1:recallStatus, or all",
    ),
) -> Response:
    """The lot's page (HTML), its data (JSON with `Accept: application/json`), or one of
    its GS1 link types."""
    link = link_from_path(request)
    # Programs (JSON, link types) get the view in English; people the page in their language.
    language = DEFAULT_LANGUAGE if link_type is not None or wants_json(request) else None
    view, html = await cached_page(context, link, language)
    html = await request.app.state.feedback.fill(html, context.model, view, link.path(), language)  # shoppers' feedback
    headers = link_headers(view["url"])
    if link_type is not None or wants_json(request):
        view = with_current_freshness(view, context)
    if link_type is not None:
        requested = normalise_link_type(link_type)
        if requested == "all":
            return Response(json.dumps(linkset(view)), media_type="application/linkset+json", headers=headers)
        if requested in LINK_TYPES:
            return JSONResponse(link_type_document(view, requested), headers=headers)
        if requested != "gs1:pip":
            return JSONResponse(
                {
                    "detail": f"this resolver has no link type {link_type!r} for this lot",
                    "available": ["gs1:pip", *LINK_TYPES, "all"],
                },
                status_code=404,
                headers=headers,
            )
    if wants_json(request):
        return JSONResponse(view, headers=headers)
    return HTMLResponse(html, headers=headers)


@router.get(
    "/labels/01/{gtin}/10/{rest:path}",
    response_class=HTMLResponse,
    summary="Printable label sheet for a lot",
    responses={**PAGE_ERRORS, **OTHER_CASE},
)
def labels(
    request: Request,
    context: ContextDep,
    gtin: str,
    rest: str,
    count: int = Query(default=12, ge=1, le=MAX_LABELS, description="How many labels (1-200)"),
) -> HTMLResponse:
    """A sheet of `count` labels with the product, lot and QR code, ready to print."""
    link = link_from_path(request)
    batch = find_batch(context, link, prefix="/labels")
    url = link.url(context.settings.public_base_url)
    svg = qr_svg(url).decode()
    svg = svg[svg.index("<svg") :]  # inline: drop the XML declaration
    return HTMLResponse(
        render("labels.html", count=count, product=batch.product, gtin=link.gtin, lot=link.lot, url=url, qr_svg=Markup(svg))
    )


@router.get(
    "/proof/{tx_hash}", response_class=HTMLResponse, summary="Proof of one transaction, for people", responses=PAGE_ERRORS
)
def proof_page(
    context: ContextDep,
    tx_hash: str = Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="Transaction hash, 0x + 64 hex"),
) -> HTMLResponse:
    """What a transaction recorded on the ledger in plain words, by whom, when, where (block,
    network) and how to check it; its JSON stays at /api/v1/transactions/{tx_hash}."""
    view = proof_view(context.model, tx_hash, network_of(context.settings, context.freshness()))
    if view is None:
        raise PageError(
            404,
            _("We could not find this proof"),
            _("No ledger event of transaction %(tx_hash)s is known here.") % {"tx_hash": tx_hash},
            _(
                "Open the proof link from a product page again. A transaction from the last few seconds appears "
                "as soon as the index catches up."
            ),
        )
    return HTMLResponse(render("proof.html", proof=view))
