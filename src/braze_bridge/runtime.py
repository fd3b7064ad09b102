"""Process start-up without the web stack: resolve the database (embedded or given), the
secret key and the migrations. The CLI imports this for every command; only `serve` and `api`
load the FastAPI app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from braze_bridge.config import Settings, load_or_create_secret_key
from braze_bridge.db import migrate
from braze_bridge.db.embedded import EmbeddedPostgres
from braze_bridge.security.secrets import SecretBox


class ConfigurationError(RuntimeError):
    """Settings that cannot work together; the CLI prints the message and exits 2."""


@dataclass(frozen=True)
class Runtime:
    """Settings plus what start-up resolved: the database URL and the secret key."""

    settings: Settings
    database_url: str
    secret_key: str
    embedded: bool


@contextmanager
def open_runtime(
    settings: Settings, *, migrate_embedded: bool = True, share_embedded: bool = False
) -> Iterator[Runtime]:
    """Start the embedded Postgres when no URL is set (migrated to head), stop it on exit.

    `share_embedded` lets admin commands use a server that a running `serve` owns.
    """
    if settings.database_url is not None:
        if settings.secret_key is None:
            raise ConfigurationError(
                "BRAZE_BRIDGE_SECRET_KEY is required with BRAZE_BRIDGE_DATABASE_URL "
                "(it encrypts Braze API keys and webhook secrets at rest)"
            )
        yield Runtime(
            settings,
            settings.database_url.get_secret_value(),
            settings.secret_key.get_secret_value(),
            embedded=False,
        )
        return
    server = EmbeddedPostgres(settings.data_dir, shared=share_embedded)
    url = server.start()
    try:
        if migrate_embedded:
            migrate.upgrade(url)
        key = (
            settings.secret_key.get_secret_value()
            if settings.secret_key
            else load_or_create_secret_key(settings.data_dir)
        )
        yield Runtime(settings, url, key, embedded=True)
    finally:
        server.stop()


def build_secret_box(runtime: Runtime) -> SecretBox:
    return SecretBox(
        runtime.secret_key, [key.get_secret_value() for key in runtime.settings.old_secret_keys]
    )
