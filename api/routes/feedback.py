"""Shoppers' feedback: the one public write besides documents. A plain HTML form (no
account, no script) posts to /feedback and is answered with 303 back to the lot's page, or
with the form again saying what to fix; programs post JSON to /api/v1/feedback. The log
is public (GET /api/v1/feedback/log) so anyone can recompute its hash chain."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.types import Message

from api.deps import ContextDep
from api.feedback_guard import TokenProblem
from api.feedback_view import FeedbackBoard, empty_form
from api.i18n import _
from api.render import render
from api.schemas import INVALID, NOT_FOUND, Feedback, FeedbackLog, FeedbackPost, FeedbackPosted, Responses, problem
from ledger.errors import InvalidInputError
from ledger.feedback.entries import FeedbackRefused, Post, Problem, checked_comment, text_key
from ledger.feedback.store import DuplicateFeedback
from ledger.identifiers import digital_link, parse_gtin
from ledger.records import Batch

router = APIRouter(tags=["feedback"])

#: A form post is small: two hidden fields, a rating and at most 2,000 characters.
MAX_FORM_BYTES = 32 * 1024
#: A JSON post: 2,000 characters of text even if each is sent as a 6-byte `\uXXXX` escape.
MAX_JSON_BYTES = 64 * 1024
BatchId = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="Batch id, 0x + 64 hex")]
POST_ANSWERS: Responses = {
    400: problem("The post was refused: what to fix"),
    404: problem("No such lot"),
    413: problem(f"The body is larger than a post may be ({MAX_JSON_BYTES:,} bytes)"),
    429: problem("Too many posts from this client: `Retry-After` says when to try again"),
}


class BoundedBody(APIRoute):
    """A route whose request body may hold at most MAX_JSON_BYTES: FastAPI reads a JSON
    body whole before validating it, so without this anyone could make a worker hold
    gigabytes (the rate limit only counts once the body is read). 413 at once on a larger
    Content-Length, or as soon as a body without one grows past the limit."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler behind the limit."""
        handler = super().get_route_handler()
        too_large = f"a feedback post may have at most {MAX_JSON_BYTES:,} bytes"

        async def bounded(request: Request) -> Response:
            declared = request.headers.get("content-length", "0")
            if not (declared.isascii() and declared.isdigit()) or int(declared) > MAX_JSON_BYTES:
                raise HTTPException(413, too_large)
            received = 0

            async def receive() -> Message:
                nonlocal received
                message = await request.receive()
                received += len(message.get("body", b""))
                if received > MAX_JSON_BYTES:
                    raise HTTPException(413, too_large)
                return message

            return await handler(Request(request.scope, receive))

        return bounded


async def get_board(request: Request) -> FeedbackBoard:
    """The process's feedback board (set up by the app's lifespan)."""
    return request.app.state.feedback  # type: ignore[no-any-return]


BoardDep = Annotated[FeedbackBoard, Depends(get_board)]


@dataclass
class Refusal(Exception):
    """A post refused: the status, a sentence per field to fix, and the Retry-After of a 429."""

    status: int
    problems: dict[str, str]
    retry_after: int | None = None


def _client(request: Request) -> str:
    # The connection's peer (uvicorn trusts X-Forwarded-For only from FORWARDED_ALLOW_IPS).
    return request.client.host if request.client else "unknown"


def _accept(board: BoardDep, context: ContextDep, request: Request, post: FeedbackPost) -> tuple[Batch, dict[str, Any]]:
    """Run every check on `post` and append it; the lot and the appended entry (as JSON)."""
    wait = board.limiter.take(_client(request))
    if wait is not None:
        minutes = max(1, wait // 60)
        raise Refusal(
            429,
            {"form": _("You have sent several comments in a short time. Please try again in %(n)s minutes.") % {"n": minutes}},
            wait,
        )
    batch = context.model.batch(post.batch_id.lower())
    if batch is None:
        raise Refusal(404, {"form": _("This lot is not on the ledger.")})
    if post.website:
        raise Refusal(400, {"form": _("Please leave the field “Leave this empty” empty.")})
    try:
        board.tokens.check(post.token, batch.batch_id)
    except TokenProblem as exc:
        raise Refusal(400, {"form": _token_sentence(exc.kind)}) from None
    try:
        content = checked_comment(
            Post(post.rating, post.text, post.question), batch.batch_id, batch.gtin, batch.lot, int(time.time())
        )
        entry = board.store.append(content, batch_id=batch.batch_id, gtin=batch.gtin, text_key=text_key(content["text"]))
    except FeedbackRefused as exc:
        raise Refusal(400, {name: problem_sentence(problem) for name, problem in exc.problems.items()}) from None
    except DuplicateFeedback:
        raise Refusal(400, {"text": _("This lot already has a comment with exactly this text.")}) from None
    page = f"{digital_link(batch.gtin, batch.lot).path()}#comment-{entry.sequence}"
    return batch, {"sequence": entry.sequence, "entry_hash": entry.entry_hash, "content_hash": entry.content_hash, "page": page}


def problem_sentence(problem: Problem) -> str:
    """What to fix, in the shopper's language (the texts of ledger.feedback.entries.ENGLISH)."""
    sentences = {
        "too_long": _("The comment is %(length)s characters long; please keep it to %(limit)s."),
        "controls": _("The comment contains invisible control characters; please type it again without them."),
        "links": _("The comment contains more than %(limit)s link; please leave links out."),
        "rating": _("The rating must be a number of stars from 1 to 5."),
        "empty": _("Please choose a rating or write a comment (or both)."),
        "question_empty": _("Please write your question."),
    }
    return sentences[problem.code] % problem.params


def _token_sentence(kind: str) -> str:
    if kind == "too_fast":
        return _("That was very quick: please check your comment and send it again.")
    if kind == "expired":
        return _("This form was open for a long time and has expired: please send it again.")
    return _("This form could not be checked: please send it again from the lot's page.")


def _cross_site(request: Request) -> bool:
    """Whether the browser says the form was sent from another site's page. Form tokens are
    public (GET /api/v1/batches/{id}/feedback), so a busy site could otherwise have each of
    its visitors' browsers post for it, every one under its own address and rate limit.
    Programs and old browsers send no Sec-Fetch-Site; a JSON post from another site's page
    needs CORS, which this API does not grant."""
    return request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")


def _form_fields(body: bytes) -> dict[str, str]:
    """The urlencoded form's fields (first value of each), UTF-8 only."""
    try:
        pairs = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refusal(400, {"form": _("The form could not be read: please send it again from the lot's page.")}) from exc
    return {key: values[0] for key, values in pairs.items()}


def _post_from_form(fields: dict[str, str]) -> FeedbackPost:
    batch_id = fields.get("batch_id", "")
    if not (batch_id.startswith("0x") and len(batch_id) == 66):
        raise Refusal(400, {"form": _("The form could not be read: please send it again from the lot's page.")})
    rating = fields.get("rating", "")
    return FeedbackPost.model_construct(
        batch_id=batch_id,
        token=fields.get("token", "")[:64],
        rating=rating or None,
        text=fields.get("text", "")[:20_000],
        question=fields.get("question") in ("1", "on", "yes", "true"),
        website=fields.get("website", ""),
    )


@router.get("/feedback", response_class=HTMLResponse, include_in_schema=False)
def form_page(
    context: ContextDep, board: BoardDep, batch_id: Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{64}$")]
) -> HTMLResponse:
    """The form on a page of its own, with every comment on the lot, newest first (the lot's
    page carries the form and the latest comments)."""
    batch = context.model.batch(batch_id.lower())
    if batch is None:
        raise HTTPException(404, f"no lot {batch_id} on this ledger")
    form = empty_form(batch.batch_id, board.tokens.issue(batch.batch_id), digital_link(batch.gtin, batch.lot).path())
    comments = board.lot(context.model, batch.batch_id)["comments"][::-1]
    return HTMLResponse(
        render(
            "feedback_page.html",
            form=form,
            product=batch.product,
            lot=batch.lot,
            comments=comments,
            heading=_("Rate this lot, or ask the maker"),
        )
    )


@router.post("/feedback", include_in_schema=False, status_code=303)
async def post_form(request: Request, context: ContextDep, board: BoardDep) -> Response:
    """The HTML form: 303 to the lot's page at the new comment, or the form again with what to fix."""
    body = b""
    async for chunk in request.stream():  # never more than the limit in memory
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            break
    fields: dict[str, str] = {}
    post: FeedbackPost | None = None
    try:
        if len(body) > MAX_FORM_BYTES:
            raise Refusal(400, {"text": _("The comment is far too long; please keep it to 2,000 characters.")})
        fields = _form_fields(body)
        post = _post_from_form(fields)
        if _cross_site(request):  # before the rate limit: the visitor's own posts stay theirs
            raise Refusal(400, {"form": _token_sentence("invalid")})
        posted = _accept(board, context, request, post)[1]
    except Refusal as refusal:
        return _form_again(context, board, fields, post, refusal)
    return RedirectResponse(posted["page"], status_code=303)


def _form_again(
    context: ContextDep, board: FeedbackBoard, fields: dict[str, str], post: FeedbackPost | None, refusal: Refusal
) -> Response:
    """The form with what was typed and what to fix (a fresh token), at the refusal's status."""
    batch = context.model.batch(post.batch_id.lower()) if post is not None else None
    headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else None
    page_path = digital_link(batch.gtin, batch.lot).path() if batch else None
    form = empty_form(
        batch.batch_id if batch else "",
        board.tokens.issue(batch.batch_id) if batch else "",
        page_path or "/",
        rating=fields.get("rating"),
        text=fields.get("text", "")[:20_000],
        question=fields.get("question"),
        errors=refusal.problems,
    )
    html = render(
        "feedback_page.html",
        form=form,
        product=batch.product if batch else None,
        lot=batch.lot if batch else None,
        heading=_("Check your comment"),
    )
    return HTMLResponse(html, status_code=refusal.status, headers=headers)


def post_json(request: Request, context: ContextDep, board: BoardDep, post: FeedbackPost) -> Response:
    """Programs' way to post: fetch a `form_token` from GET /api/v1/batches/{batch_id}/feedback,
    wait the minimum fill time (a few seconds), then post. Nothing personal is stored."""
    try:
        posted = _accept(board, context, request, post)[1]
    except Refusal as refusal:
        body = {"detail": " ".join(refusal.problems.values()), "hint": "fields: " + ", ".join(refusal.problems)}
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else None
        return JSONResponse(body, status_code=refusal.status, headers=headers)
    return JSONResponse(posted, status_code=201)


router.add_api_route(
    "/api/v1/feedback",
    post_json,
    methods=["POST"],
    status_code=201,
    response_model=FeedbackPosted,
    summary="Rate a lot and/or leave a comment or question",
    responses={**POST_ANSWERS, **INVALID},
    route_class_override=BoundedBody,
)


@router.get(
    "/api/v1/batches/{batch_id}/feedback",
    response_model=Feedback,
    response_model_exclude_unset=True,
    summary="A lot's feedback: summary, comments, replies, tombstones",
    responses={**NOT_FOUND, **INVALID},
)
def lot_feedback(context: ContextDep, board: BoardDep, batch_id: BatchId) -> dict[str, Any]:
    """Ratings, comments and questions on one lot with the maker's answers and tombstones,
    and a form token for posting."""
    batch = context.model.batch(batch_id.lower())
    if batch is None:
        raise HTTPException(404, f"no lot {batch_id} on this ledger")
    return {**board.lot(context.model, batch.batch_id), "form_token": board.tokens.issue(batch.batch_id)}


@router.get(
    "/api/v1/products/{gtin}/feedback",
    response_model=Feedback,
    response_model_exclude_unset=True,
    summary="A product's feedback over all its lots",
    responses={400: problem("The GTIN is not valid"), **INVALID},
)
def product_feedback(context: ContextDep, board: BoardDep, gtin: Annotated[str, Path(max_length=14)]) -> dict[str, Any]:
    """Ratings, comments and questions on every lot of a GTIN."""
    try:
        normal = parse_gtin(gtin)
    except InvalidInputError as exc:
        raise HTTPException(400, str(exc)) from exc
    return board.product(context.model, normal)


@router.get(
    "/api/v1/feedback/log", response_model=FeedbackLog, summary="The public feedback log, hash-chained", responses={**INVALID}
)
def feedback_log(
    board: BoardDep,
    after: Annotated[int, Query(ge=0, description="Entries after this position")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size")] = 500,
) -> dict[str, Any]:
    """Every entry with its content (null once erased), content hash and entry hash:
    entry_hash = sha256(RFC 8785 JSON of ["provenance-feedback/1", previous entry_hash,
    content_hash, sequence]), content_hash = sha256(RFC 8785 JSON of content); the first
    entry's previous hash is 0x00…00. Compare the head with the Anchored events of the
    server's anchoring account on the Anchors contract."""
    found = board.store.log(after, limit)
    head = board.store.head()
    return {
        "entries": [entry.public() for entry in found],
        "head": head.hash,
        "count": head.count,
        "next_after": found[-1].sequence if len(found) == limit else None,
    }
