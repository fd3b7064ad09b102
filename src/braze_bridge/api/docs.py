"""/docs (Swagger UI) and /redoc with their scripts and styles served from this process, so
both render with no internet access. The assets ship in the `fastapi-offline` package; only its
static files are used (its FastAPI factory would replace our app class)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS_URL = "/docs-assets"


def assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install_offline_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc from local assets; build the app with docs_url=redoc_url=None."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")

    def local(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_URL}/{name}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{request.scope.get('root_path', '')}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=local(request, "swagger-ui-bundle.js"),
            swagger_css_url=local(request, "swagger-ui.css"),
            swagger_favicon_url=local(request, "favicon.png"),
            # Keep the token typed into "Authorize" across page reloads.
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=f"{request.scope.get('root_path', '')}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=local(request, "redoc.standalone.js"),
            redoc_favicon_url=local(request, "favicon.png"),
            with_google_fonts=False,
        )
