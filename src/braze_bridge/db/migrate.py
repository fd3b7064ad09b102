"""Alembic driven from code: upgrade/downgrade, and the head revision for /readyz.

Alembic is imported by each function, not at module load: a delivery worker on an already
migrated database never pays for importing it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import braze_bridge

if TYPE_CHECKING:
    from alembic.config import Config


def migrations_dir() -> Path:
    """Installed wheels carry `_migrations`; a source checkout has `migrations/` at the top."""
    packaged = Path(braze_bridge.__file__).parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(braze_bridge.__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Run from a thread or the main thread, never inside a running event loop."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


@cache
def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
