"""The supported PostgreSQL range is 15 (this suite's server, the lowest) to 18 (the embedded
one); `braze-bridge check`, the container healthcheck, names the server's version and refuses
one older than the range (README, "Requirements")."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy.ext.asyncio import AsyncEngine

from braze_bridge.db.engine import MIN_POSTGRES_MAJOR, server_major_version
from tests.conftest import TEST_SECRET_KEY
from tests.support.processes import cli_env


async def test_the_suite_runs_on_the_oldest_supported_server(engine: AsyncEngine) -> None:
    # Every other test in this suite then exercises the lowest supported version.
    assert await server_major_version(engine) == MIN_POSTGRES_MAJOR


def test_check_names_the_server_version(database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "braze_bridge", "check"],
        env=cli_env(
            BRAZE_BRIDGE_DATABASE_URL=database_url, BRAZE_BRIDGE_SECRET_KEY=TEST_SECRET_KEY
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"PostgreSQL {MIN_POSTGRES_MAJOR}")
