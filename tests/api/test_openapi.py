"""The OpenAPI document describes every answer: each /api/v1 operation (and /healthz) has a
success response with a schema, and its documented errors have one too; and the models
behind those schemas say what the app really answers (validated against the demo, with
no key the models do not name)."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from test_auditor_api import BAG_ID, NARANJOS_ID

from api import schemas
from api.main import create_app
from ledger.config import Settings
from ledger.identifiers import digital_link

Document = dict[str, Any]
Model = TypeVar("Model", bound=BaseModel)


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> Document:
    """The app's OpenAPI document (building it needs no index or chain)."""
    return create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi"))).openapi()


def _resolve(document: Document, schema: Document) -> Document:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    assert ref.startswith("#/components/schemas/"), ref
    name = ref.removeprefix("#/components/schemas/")
    assert name in document["components"]["schemas"], f"{ref} names no component"
    return _resolve(document, document["components"]["schemas"][name])


def _schema_problems(document: Document, where: str, response: Document) -> list[str]:
    """Why a documented response does not describe its body (empty: it does)."""
    content = response.get("content") or {}
    if not content:
        return [f"{where}: no content"]
    problems = []
    for media_type, entry in content.items():
        schema = entry.get("schema") or {}
        resolved = _resolve(document, schema) if schema else {}
        # `{}`, or the `{"type": "object"}` FastAPI infers from a `dict[str, Any]` annotation.
        untyped = not ({"type", "anyOf", "oneOf", "allOf", "properties"} & resolved.keys())
        any_object = resolved.get("type") == "object" and not ({"properties", "required"} & resolved.keys())
        if untyped or any_object:
            problems.append(f"{where} {media_type}: schema {schema!r} says nothing")
    return problems


def _operations(document: Document) -> list[tuple[str, str, Document]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        if path.startswith("/api/v1/") or path == "/healthz"
        for method, operation in operations.items()
        if method in ("get", "post")
    ]


def test_every_api_operation_documents_its_answer_with_a_schema(openapi: Document) -> None:
    operations = _operations(openapi)
    assert len(operations) >= 20, [f"{m} {p}" for m, p, _ in operations]
    problems = []
    for method, path, operation in operations:
        responses = operation["responses"]
        success = [status for status in ("200", "201") if status in responses]
        if not success:
            problems.append(f"{method} {path}: no 200 or 201 response")
        for status in success:
            problems += _schema_problems(openapi, f"{method} {path} {status}", responses[status])
    assert not problems, "\n".join(problems)


def test_every_documented_error_has_the_error_handlers_schema(openapi: Document) -> None:
    problems = []
    for method, path, operation in _operations(openapi):
        errors = {status: r for status, r in operation["responses"].items() if status[0] in "45"}
        if not errors:
            problems.append(f"{method} {path}: documents no error")
        for status, response in errors.items():
            problems += _schema_problems(openapi, f"{method} {path} {status}", response)
    assert not problems, "\n".join(problems)
    # FastAPI's own 422 body is not what api.errors writes: it must not be documented anywhere.
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    problem = openapi["components"]["schemas"]["Problem"]
    assert {"detail", "hint"} <= problem["properties"].keys() and problem["required"] == ["detail"]


def test_pages_qr_codes_and_downloads_declare_their_media_types(openapi: Document) -> None:
    paths = openapi["paths"]
    resolver = paths["/01/{gtin}/10/{rest}"]["get"]["responses"]["200"]["content"]
    assert {"text/html", "application/json", "application/linkset+json"} <= resolver.keys()
    assert resolver["application/json"]["schema"] == {"$ref": "#/components/schemas/ResolverAnswer"}
    assert set(paths["/qr/01/{gtin}/10/{rest}"]["get"]["responses"]["200"]["content"]) == {"image/svg+xml", "image/png"}
    assert "text/html" in paths["/labels/01/{gtin}/10/{rest}"]["get"]["responses"]["200"]["content"]
    assert "text/html" in paths["/"]["get"]["responses"]["200"]["content"]
    download = paths["/api/v1/documents/{sha256_hex}"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "application/octet-stream"} <= download.keys()


# ---------------------------------------------------------------------------- the models against real answers


def undeclared(value: Any, where: str = "") -> list[str]:
    """Keys in a validated answer that its models do not name (kept by `extra="allow"`)."""
    if isinstance(value, BaseModel):
        found = [f"{where}.{key}" for key in (value.model_extra or {})]
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), f"{where}.{name}")
        return found
    if isinstance(value, list):
        return [k for i, item in enumerate(value) for k in undeclared(item, f"{where}[{i}]")]
    if isinstance(value, dict):
        return [k for key, item in value.items() for k in undeclared(item, f"{where}.{key}")]
    return []


def check(model: type[Model], body: Any) -> Model:
    """`body` is what `model` says, key for key."""
    answer = model.model_validate(body)
    assert not undeclared(answer), f"{model.__name__} does not name {undeclared(answer)}"
    return answer


def test_the_auditor_api_answers_what_its_models_say(client: TestClient, site: Any) -> None:
    accounts = site.connection.w3.eth.accounts
    batches = client.get("/api/v1/batches", params={"limit": 500}).json()
    check(schemas.BatchPage, batches)
    uids = []
    for batch in batches["items"]:
        check(schemas.Batch, client.get(f"/api/v1/batches/{batch['batch_id']}").json())
        claims = client.get(f"/api/v1/batches/{batch['batch_id']}/claims").json()
        check(schemas.BatchClaims, claims)
        uids += [c["uid"] for c in claims["claims"]]
    assert {c.status for uid in uids for c in [check(schemas.ClaimAt, client.get(f"/api/v1/claims/{uid}").json())]} >= {
        "valid",
        "revoked",
    }
    history = client.get(f"/api/v1/batches/{BAG_ID}/history").json()
    check(schemas.BatchHistory, history)
    check(schemas.Transaction, client.get(f"/api/v1/transactions/{history['events'][0]['tx_hash']}").json())
    check(schemas.Lineage, client.get(f"/api/v1/batches/{BAG_ID}/lineage").json())
    check(schemas.Lineage, client.get(f"/api/v1/batches/{NARANJOS_ID}/lineage", params={"direction": "down"}).json())
    check(schemas.ActorPage, client.get("/api/v1/actors", params={"limit": 500}).json())
    for address in accounts[:12]:
        actor = client.get(f"/api/v1/actors/{address}")
        if actor.status_code == 200:
            check(schemas.ActorDetail, actor.json())
        check(schemas.ActorClaims, client.get(f"/api/v1/actors/{address}/claims").json())
    check(schemas.IndexStatus, client.get("/api/v1/index").json())
    check(schemas.LicenceList, client.get("/api/v1/licences").json())
    check(schemas.AuditReport, client.get("/api/v1/audit").json())
    check(schemas.AuditReport, client.get(f"/api/v1/audit/batches/{BAG_ID}").json())
    check(schemas.Health, client.get("/healthz").json())
    check(schemas.ProofBundle, client.get(f"/api/v1/batches/{BAG_ID}/proof").json())


def test_a_lineage_leaf_keeps_its_shape(client: TestClient) -> None:
    """Answers go through their models without gaining keys: a leaf has no `inputs: null`."""
    tree = client.get(f"/api/v1/batches/{BAG_ID}/lineage", params={"depth": 1}).json()["tree"]
    leaf = tree["inputs"][0]
    assert "inputs" not in leaf and "outputs" not in leaf and "outputs" not in tree


def test_the_resolvers_json_answers_what_its_models_say(client: TestClient) -> None:
    for batch in client.get("/api/v1/batches", params={"limit": 500}).json()["items"]:
        path = digital_link(batch["gtin"], batch["lot"]).path()
        check(schemas.ProductPage, client.get(path, headers={"Accept": "application/json"}).json())
        check(schemas.Linkset, client.get(path, params={"linkType": "all"}).json())
        check(schemas.CertificationInfo, client.get(path, params={"linkType": "gs1:certificationInfo"}).json())
        check(schemas.Traceability, client.get(path, params={"linkType": "gs1:traceability"}).json())
        check(schemas.RecallStatus, client.get(path, params={"linkType": "gs1:recallStatus"}).json())
    check(schemas.LinkTypeProblem, client.get(path, params={"linkType": "gs1:nothing"}).json())


def test_errors_answer_what_the_problem_model_says(client: TestClient) -> None:
    not_found = check(schemas.Problem, client.get(f"/api/v1/batches/0x{'ab' * 32}").json())
    assert isinstance(not_found.detail, str)
    invalid = check(schemas.Problem, client.get("/api/v1/batches/not-an-id").json())
    assert isinstance(invalid.detail, list) and invalid.detail[0].loc == ["path", "batch_id"]
    check(schemas.Problem, client.get("/api/v1/batches", params={"gtin": "123"}).json())
    check(schemas.Problem, client.get("/qr/01/09506000134352/10/X").json())
    check(schemas.Problem, client.get(f"/api/v1/documents/{'00' * 32}").json())
