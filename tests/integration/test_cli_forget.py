"""`braze-bridge forget`: the forget use case from the shell (docs/privacy.md)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from typer.testing import CliRunner, Result

from braze_bridge.cli import app
from braze_bridge.db.engine import create_engine, create_sessionmaker
from tests.conftest import TEST_SECRET_KEY
from tests.factories import make_connection, make_operations, make_tenant
from tests.integration.test_cli_admin import fetch

PERSON = "ada-ext-9137"


def invoke(database_url: str, *args: str, answer: str | None = None) -> Result:
    env = {"BRAZE_BRIDGE_DATABASE_URL": database_url, "BRAZE_BRIDGE_SECRET_KEY": TEST_SECRET_KEY}
    return CliRunner().invoke(app, list(args), env=env, input=answer)


def seed(database_url: str) -> uuid.UUID:
    """A connection with one pending object of the person and one of someone else."""

    async def run() -> uuid.UUID:
        engine = create_engine(database_url, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as session:
                connection = await make_connection(session, await make_tenant(session))
                await make_operations(session, connection, external_id=PERSON)
                await make_operations(session, connection, external_id="someone-else")
                return connection.id
        finally:
            await engine.dispose()

    return asyncio.run(run())


def person_rows(url: str) -> list[str]:
    rows = fetch(
        url, "SELECT o::text AS row FROM operations o WHERE o::text LIKE $1", f"%{PERSON}%"
    )
    return [r["row"] for r in rows]


@pytest.fixture
def url(database_url: str) -> str:
    return database_url


def test_forget_prints_counts_and_audits_the_command_line(url: str) -> None:
    connection_id = seed(url)

    result = invoke(
        url, "forget", "--connection", str(connection_id), "--external-id", PERSON, "--yes"
    )

    assert result.exit_code == 0, result.output
    assert "objects_cancelled: 1" in result.stdout.splitlines()
    assert PERSON not in result.output
    assert person_rows(url) == []
    statuses = fetch(url, "SELECT status, reason, external_id FROM operations ORDER BY id")
    assert [(r["status"], r["reason"], r["external_id"]) for r in statuses] == [
        ("skipped", "forgotten", None),
        ("pending", None, "someone-else"),
    ]
    [audit] = fetch(
        url, "SELECT actor_token_id, action, counts::text AS counts FROM connection_audit"
    )
    assert (audit["actor_token_id"], audit["action"]) == (uuid.UUID(int=0), "forget")
    assert '"objects_cancelled": 1' in audit["counts"]


def test_forget_asks_first_and_a_no_changes_nothing(url: str) -> None:
    connection_id = seed(url)

    result = invoke(
        url, "forget", "--connection", str(connection_id), "--external-id", PERSON, answer="n\n"
    )

    assert result.exit_code == 1
    assert "nothing was changed" in result.output
    assert len(person_rows(url)) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--external-id", PERSON, "--email", "a@example.com"],
            "give exactly one of --external-id or --email",
        ),
        ([], "give exactly one of --external-id or --email"),
    ],
)
def test_forget_needs_exactly_one_identifier(url: str, args: list[str], message: str) -> None:
    connection_id = seed(url)

    result = invoke(url, "forget", "--connection", str(connection_id), "--yes", *args)

    assert result.exit_code == 2
    assert message in result.output
    assert len(person_rows(url)) == 1


def test_an_unknown_connection_exits_2(url: str) -> None:
    missing = uuid.uuid4()

    result = invoke(
        url, "forget", "--connection", str(missing), "--email", "a@example.com", "--yes"
    )

    assert result.exit_code == 2
    assert f"no connection {missing}" in result.output
