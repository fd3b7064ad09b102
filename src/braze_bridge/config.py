"""The one Settings object: every environment variable (docs/contract.md, "2. Configuration";
README's table), read once."""

from __future__ import annotations

import difflib
import os
import secrets
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")
ENV_PREFIX = "BRAZE_BRIDGE_"
# Variables with the prefix that are read outside Settings: the test suite's database, and the
# service URL and admin token of the client commands (`braze-bridge replay`), which a shell
# that also starts the service often has set.
OTHER_KNOWN_VARIABLES = frozenset(
    {"BRAZE_BRIDGE_TEST_DATABASE_URL", "BRAZE_BRIDGE_URL", "BRAZE_BRIDGE_TOKEN"}
)


class Settings(BaseSettings):
    """Service configuration; env vars carry the `BRAZE_BRIDGE_` prefix."""

    model_config = SettingsConfigDict(env_prefix="BRAZE_BRIDGE_", extra="ignore", frozen=True)

    database_url: SecretStr | None = Field(
        default=None, description="Postgres URL; unset starts an embedded Postgres in data_dir"
    )
    data_dir: Path = Field(default=Path(".braze-bridge"))
    secret_key: SecretStr | None = Field(
        default=None, description="Key for secrets at rest; generated into data_dir when embedded"
    )
    old_secret_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Previous secret keys still accepted for decryption (key rotation)",
    )
    bootstrap_token: SecretStr | None = None
    allow_any_braze_url: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1_048_576
    # HTTP limits (docs/ops.md): a request's header block, a webhook's body, an idle
    # keep-alive connection, and open connections plus requests in flight (503 beyond it).
    http_header_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    http_body_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    http_keep_alive_seconds: Annotated[int, Field(ge=1, le=600)] = 5
    http_limit_concurrency: Annotated[int, Field(ge=1)] = 2000
    # Open connections one peer address may hold at once (0 = no cap); behind a proxy every
    # client is the proxy's address (docs/ops.md).
    http_max_connections_per_client: Annotated[int, Field(ge=0)] = 200
    retry_horizon_seconds: Annotated[int, Field(ge=60)] = 86_400
    retention_days: Annotated[int, Field(ge=1)] = 30
    log_level: str = "info"
    public_url: str | None = Field(
        default=None, description="Base URL partners use to reach us (webhook_url); else host:port"
    )
    worker_linger_ms: Annotated[int, Field(ge=0, le=1000)] = 5
    worker_poll_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0
    worker_lease_seconds: Annotated[int, Field(ge=5, le=3600)] = 60
    # /metrics on a listener of its own (the main port's /metrics then answers 404), and/or
    # behind a bearer token (docs/ops.md, "Metrics").
    metrics_port: Annotated[int | None, Field(ge=1, le=65535)] = None
    metrics_host: str | None = Field(default=None, description="metrics bind address; else host")
    metrics_token: SecretStr | None = None
    # A file the worker touches while its loop runs; `braze-bridge worker-health` checks its age.
    worker_heartbeat_file: Path | None = None
    # /users/track requests one tenant may have in flight per worker process (0 = no cap),
    # so a tenant's backlog leaves HTTP slots for the others (docs/delivery.md, "Fair lanes").
    worker_tenant_max_inflight_requests: Annotated[int, Field(ge=0, le=1000)] = 6

    @field_validator("database_url")
    @classmethod
    def _must_be_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        scheme = value.get_secret_value().split("://", 1)[0].lower()
        if "://" not in value.get_secret_value() or scheme not in POSTGRES_SCHEMES:
            raise ValueError(
                f"must be a PostgreSQL URL (postgresql://user:pass@host:5432/db), got scheme {scheme!r}; "
                "PostgreSQL is the only supported database"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.lower()
        if level not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return level

    @field_validator("metrics_token", "metrics_host")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | str | None) -> SecretStr | str | None:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return value if raw and raw.strip() else None

    @property
    def embedded(self) -> bool:
        """True when no database URL is set and we run our own Postgres in data_dir."""
        return self.database_url is None

    @cached_property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"


def known_variables() -> frozenset[str]:
    return frozenset(ENV_PREFIX + name.upper() for name in Settings.model_fields) | (
        OTHER_KNOWN_VARIABLES
    )


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """`BRAZE_BRIDGE_*` names in `environ` that no setting reads (a typo is silently ignored
    otherwise), each with the closest known name, if one is close."""
    known = known_variables()
    environ = os.environ if environ is None else environ
    return [
        (name, _closest(name.upper(), known))
        for name in sorted(environ)
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in known
    ]


def _closest(name: str, known: frozenset[str]) -> str | None:
    # Compared without the shared prefix, which would make every name look alike.
    suffixes = {known_name.removeprefix(ENV_PREFIX): known_name for known_name in known}
    match = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), suffixes, n=1, cutoff=0.6)
    return suffixes[match[0]] if match else None


def load_or_create_secret_key(data_dir: Path) -> str:
    """The embedded quick start keeps a generated key beside its database."""
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key
