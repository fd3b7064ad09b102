"""Alembic driven from code: upgrade/downgrade, and the head revision for /readyz."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

import braze_bridge


def migrations_dir() -> Path:
    """Installed wheels carry `_migrations`; a source checkout has `migrations/` at the top."""
    packaged = Path(braze_bridge.__file__).parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(braze_bridge.__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Run from a thread or the main thread, never inside a running event loop."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


@cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
