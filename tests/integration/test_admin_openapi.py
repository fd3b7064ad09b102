"""/openapi.json tells the truth about the admin routes: error bodies and descriptions."""

from __future__ import annotations

import httpx
import pytest

ADMIN_OPERATIONS = [
    ("post", "/v1/tenants", {401, 403, 409, 422}),
    ("get", "/v1/tenants", {401}),
    ("get", "/v1/tenants/{tenant_id}", {401, 404}),
    ("post", "/v1/tenants/{tenant_id}/tokens", {401, 404, 422}),
    ("get", "/v1/tenants/{tenant_id}/tokens", {401, 404}),
    ("delete", "/v1/tenants/{tenant_id}/tokens/{token_id}", {401, 404}),
    ("post", "/v1/connections", {401, 404, 422}),
    ("get", "/v1/connections", {401, 422}),
    ("get", "/v1/connections/{connection_id}", {401, 404}),
    ("patch", "/v1/connections/{connection_id}", {401, 404, 422}),
    ("delete", "/v1/connections/{connection_id}", {401, 404}),
    ("post", "/v1/connections/{connection_id}/test", {401, 404}),
    ("post", "/v1/connections/{connection_id}/rotate-secret", {401, 404, 422}),
    ("post", "/v1/connections/{connection_id}/rotate-content-token", {401, 404}),
    ("post", "/v1/connections/{connection_id}/pause", {401, 404}),
    ("post", "/v1/connections/{connection_id}/resume", {401, 404}),
    ("get", "/v1/connections/{connection_id}/audit", {401, 404}),
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
