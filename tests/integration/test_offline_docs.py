"""/docs and /redoc render with no internet: every script, style and icon they load is served
by the app itself, and the OpenAPI schema declares the bearer scheme that Swagger UI's
"Authorize" button fills in (docs/contract.md, "4. Admin API")."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.rollback

# What a page loads: src/href attributes, ReDoc's spec-url, Swagger UI's `url:` option.
ASSET = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_only_local_assets(client: httpx.AsyncClient, page: str) -> None:
    html = await client.get(page)

    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    urls = [a or b for a, b in ASSET.findall(html.text)]
    assert urls, html.text
    assert not re.search(r"https?://", html.text), "a page that needs the internet"
    for url in urls:
        assert url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0
    assert "/openapi.json" in urls  # the schema, fetched too


async def test_swagger_ui_assets_are_the_real_bundle(client: httpx.AsyncClient) -> None:
    script = await client.get("/docs-assets/swagger-ui-bundle.js")
    style = await client.get("/docs-assets/swagger-ui.css")

    assert "SwaggerUIBundle" in script.text
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert style.headers["content-type"].startswith("text/css")


async def test_openapi_declares_the_bearer_scheme_used_by_admin_routes(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()

    schemes = schema["components"]["securitySchemes"]
    bearer = {
        name
        for name, scheme in schemes.items()
        if scheme["type"] == "http" and scheme["scheme"].lower() == "bearer"
    }
    assert bearer, schemes
    tenants = schema["paths"]["/v1/tenants"]["get"]
    assert any(set(requirement) & bearer for requirement in tenants["security"])
