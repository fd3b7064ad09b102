"""/openapi.json tells the truth about the admin routes: error bodies and descriptions."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.rollback

ADMIN_OPERATIONS = [
    ("post", "/v1/tenants", {400, 401, 403, 409, 413, 422}),
    ("get", "/v1/tenants", {401}),
    ("get", "/v1/tenants/{tenant_id}", {401, 404}),
    ("post", "/v1/tenants/{tenant_id}/tokens", {400, 401, 404, 413, 422}),
    ("get", "/v1/tenants/{tenant_id}/tokens", {401, 404}),
    ("delete", "/v1/tenants/{tenant_id}/tokens/{token_id}", {401, 404}),
    ("post", "/v1/connections", {400, 401, 404, 413, 422}),
    ("get", "/v1/connections", {401, 422}),
    ("get", "/v1/connections/{connection_id}", {401, 404}),
    ("patch", "/v1/connections/{connection_id}", {400, 401, 404, 413, 422}),
    ("delete", "/v1/connections/{connection_id}", {401, 404}),
    ("post", "/v1/connections/{connection_id}/test", {401, 404}),
    ("post", "/v1/connections/{connection_id}/rotate-secret", {400, 401, 404, 413, 422}),
    ("post", "/v1/connections/{connection_id}/rotate-content-token", {401, 404}),
    ("post", "/v1/connections/{connection_id}/pause", {401, 404}),
    ("post", "/v1/connections/{connection_id}/resume", {401, 404}),
    ("get", "/v1/connections/{connection_id}/audit", {401, 404}),
    ("get", "/v1/events", {400, 401, 404, 422}),
    ("get", "/v1/events/stream", {401, 404, 422}),
    ("get", "/v1/events/{event_id}", {401, 404}),
    ("post", "/v1/events/replay", {400, 401, 404, 413, 422}),
    ("post", "/v1/events/{event_id}/replay", {401, 404, 409}),
    ("get", "/v1/replays/{job_id}", {401, 404}),
    ("get", "/v1/health", {401}),
]


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, object]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, object] = response.json()
    return document


@pytest.mark.parametrize(("method", "path", "errors"), ADMIN_OPERATIONS)
async def test_route_declares_its_error_answers_with_the_error_body(
    method: str, path: str, errors: set[int], openapi: dict[str, object]
) -> None:
    operation = openapi["paths"][path][method]  # type: ignore[index]
    responses = operation["responses"]
    for code in errors:
        schema = responses[str(code)]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (code, schema)
    assert operation["description"] or operation["summary"]


async def test_write_only_api_key_is_never_part_of_a_read(openapi: dict[str, object]) -> None:
    schemas = openapi["components"]["schemas"]  # type: ignore[index]
    assert "api_key" not in schemas["BrazeRead"]["properties"]
    assert "api_key_last4" in schemas["BrazeRead"]["properties"]
    assert "webhook_secret" not in schemas["ConnectionRead"]["properties"]
    assert "webhook_secret" in schemas["ConnectionCreated"]["properties"]


async def test_admin_routes_declare_the_bearer_scheme(openapi: dict[str, object]) -> None:
    schemes = openapi["components"]["securitySchemes"]  # type: ignore[index]
    assert schemes["HTTPBearer"]["type"] == "http"
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    for method, path, _ in ADMIN_OPERATIONS:
        operation = openapi["paths"][path][method]  # type: ignore[index]
        assert operation["security"] == [{"HTTPBearer": []}], (method, path)


async def test_patch_fields_refused_as_null_are_not_nullable(openapi: dict[str, object]) -> None:
    """An explicit null is a 422 for these fields, so the schema must not offer null."""
    schemas = openapi["components"]["schemas"]  # type: ignore[index]

    def nullable(schema: str, field: str) -> bool:
        prop = schemas[schema]["properties"][field]
        return {"type": "null"} in prop.get("anyOf", []) or prop.get("type") == "null"

    refused = {
        "ConnectionUpdate": ["name", "braze", "webhook_auth", "settings", "limits"],
        "BrazePatch": ["rest_endpoint", "api_key"],
        "WebhookAuthPatch": ["mode"],
        "LimitsPatch": ["track_object_cap", "max_batch_wait_ms"],
    }
    for schema, fields in refused.items():
        assert [f for f in fields if nullable(schema, f)] == [], schema
    # These can be cleared with null, and say so.
    assert nullable("BrazePatch", "app_id")
    assert nullable("WebhookAuthPatch", "username")


async def test_the_export_rate_presets_are_declared_for_input_and_read(
    openapi: dict[str, object],
) -> None:
    """braze-inc/braze-docs `_docs/_api/api_limits.md`: 2,500 /users/export/ids requests a minute
    before 2024-08-22, 250 from then on; the schema offers exactly the presets the API takes."""
    schemas = openapi["components"]["schemas"]  # type: ignore[index]
    presets = ["onboarded_before_2024_08_22", "onboarded_from_2024_08_22", "raised_40_per_second"]
    for schema in ("Limits", "LimitsPatch", "LimitsRead"):
        prop = schemas[schema]["properties"]["export_rate_preset"]
        assert {"enum": presets, "type": "string"} in prop["anyOf"], schema
    assert "2,500" in schemas["Limits"]["properties"]["export_rate_preset"]["description"]
    assert schemas["ConnectionRead"]["properties"]["limits"] == {
        "$ref": "#/components/schemas/LimitsRead"
    }
