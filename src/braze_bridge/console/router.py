"""Serves the console's files. The page holds no data: it calls /v1 with the signed-in token."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from braze_bridge.errors import NotFound

STATIC = Path(__file__).with_name("static")
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "connections.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Everything the page loads comes from here; no inline script, no third-party origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/console")
async def console_page() -> Response:
    return FileResponse(
        STATIC / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS
    )


@router.get("/console/")
async def console_slash() -> Response:
    return RedirectResponse("/console", status_code=308)


@router.get("/console/assets/{name}")
async def console_asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no console asset {name!r}")
    return FileResponse(STATIC / name, media_type=media_type, headers=SECURITY_HEADERS)
