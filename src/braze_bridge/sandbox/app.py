"""A Braze REST test double: `/users/track`, `/users/export/ids`, `/users/alias/new`,
`/users/identify`, `/events/list`.

Validates requests the way Braze documents, answers in Braze's shapes with rate-limit headers,
returns 429 when its per-key bucket is empty and injects 5xx at a configurable rate. It keeps
the profiles it was sent (`GET /_sandbox/users/{external_id}`), applying attributes as Braze
does, so a test sees what Braze would store, not only what it answered.
`GET /_sandbox/received` shows what it got; `POST /_sandbox/reset` forgets.

At least as strict as Braze: more objects than the configured cap (75 combined; 50 combined for
the Monthly Active Users CY 24-25 plan; 75 per array for older accounts) is 400 "Max Input
Length Exceeded"; `/users/export/ids` needs `fields_to_export` and takes at most 50
`external_ids`; `attributes_processed` counts distinct users; a purchase in a currency outside
Braze's list is refused; one invalid nested value (a key with a space, a null) drops every
nested update of the request behind a 201; a 429 carries the X-RateLimit-* headers only,
`Retry-After` just when `retry_after_on_429` asks for it. Events and purchases by `user_alias`
are update only; the `email` identifier picks the most recently updated profile with an
external id (several profiles may share an email); `/users/identify` checks its body as Braze
documents and merges only what Braze would.

API keys: any non-empty key has every permission; `invalid` answers 401; a key spelled
`sandbox-perms:users.track,events.list` has only the permissions listed.

Modules: state.py (memory), validation.py (Braze's object rules), profiles.py (what an
attributes object does to a profile), routes.py (the endpoints).
"""

from __future__ import annotations

from fastapi import FastAPI

from braze_bridge.sandbox.routes import router
from braze_bridge.sandbox.state import SandboxConfig, SandboxState

__all__ = ["SandboxConfig", "SandboxState", "create_sandbox_app"]


def create_sandbox_app(config: SandboxConfig | None = None) -> FastAPI:
    """The sandbox as an ASGI app (run by `braze-bridge sandbox`, or in-process by tests)."""
    app = FastAPI(title="braze-bridge Braze sandbox", docs_url=None, redoc_url=None)
    app.state.sandbox = SandboxState.new(config or SandboxConfig())
    app.include_router(router)
    return app
