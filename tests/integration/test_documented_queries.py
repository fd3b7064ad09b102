"""Every `GET /v1/events` query the docs show (README, docs/ops.md, docs/contract.md) returns
what the docs say, against one seeded set of events; a new documented query must be added here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.domain.statuses import EventStatus
from tests.integration.test_event_log_truth import event_of
from tests.ops_factories import Tenancy

pytestmark = pytest.mark.rollback

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "ops.md", ROOT / "docs" / "contract.md"]
# `localhost:8000/v1/events?…` in a command, and `| \`query\` |` rows of the examples table.
CURL = re.compile(r"localhost:8000/v1/events(?:\?([^\"'\s`]*))?(?=[\"'\s`])")
TABLE_ROW = re.compile(r"^\| `([a-z_]+=[^`]*)` \|", re.MULTILINE)

SEEDED: dict[str, tuple[dict[str, str | None], str, EventStatus]] = {
    "ada-by-email": (
        {"external_id": None, "email": "ada@example.com"},
        "shared",
        EventStatus.DELIVERED,
    ),
    "ada-by-id": (
        {"external_id": "ada-7", "email": "Ada@Example.com"},
        "reward_fulfilled",
        EventStatus.DEAD,
    ),
    "grace": (
        {"external_id": "grace-1", "email": "grace@example.com"},
        "reward_fulfilled",
        EventStatus.DELIVERED,
    ),
    "graham": ({"external_id": "graham", "email": None}, "reward_sent", EventStatus.QUEUED),
    "untyped-reward": ({"external_id": "zed", "email": None}, "reward", EventStatus.DELIVERED),
}
EVERYONE = set(SEEDED)
EXPECTED: dict[str, set[str]] = {
    "": EVERYONE,
    "user=ada@example.com": {"ada-by-email", "ada-by-id"},
    "user=ada@example.com&limit=20": {"ada-by-email", "ada-by-id"},
    "user=grace@example.com": {"grace"},
    "user=grace-1": {"grace"},
    "user_prefix=gra": {"grace", "graham"},
    "kind=reward_fulfilled": {"ada-by-id", "grace"},
    "kind=reward": {"ada-by-id", "grace", "graham", "untyped-reward"},
    "kind=reward_fulfilled&status=dead": {"ada-by-id"},
    "status=queued": {"graham"},
}


def documented_queries() -> set[str]:
    found: set[str] = set()
    for path in DOCS:
        content = path.read_text()
        found |= {match.group(1) or "" for match in CURL.finditer(content)}
        found |= set(TABLE_ROW.findall(content))
    return found


def test_every_documented_query_is_checked() -> None:
    assert documented_queries() == set(EXPECTED)


async def test_documented_queries_return_what_the_docs_say(
    client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
) -> None:
    names: dict[str, str] = {}
    for name, (user, kind, status) in SEEDED.items():
        names[str((await event_of(session, tenancy.conn_a, user, kind=kind, status=status)).id)] = (
            name
        )
    await event_of(
        session, tenancy.conn_b, {"external_id": "grace-1", "email": "grace@example.com"}
    )

    for query, expected in EXPECTED.items():
        response = await client.get(
            "/v1/events", params=parse_qsl(query), headers=tenancy.headers_a()
        )
        assert response.status_code == 200, (query, response.text)
        assert {names[item["id"]] for item in response.json()["items"]} == expected, query


async def test_the_documented_answer_has_the_fields_of_a_real_one(
    client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
) -> None:
    await event_of(session, tenancy.conn_a, {"external_id": "ada-7", "email": "ada@example.com"})
    ops = (ROOT / "docs" / "ops.md").read_text()
    block = ops[ops.index("Answer:\n\n```json\n") :].split("```json\n", 1)[1].split("```", 1)[0]
    documented: dict[str, Any] = json.loads(block)

    real = (await client.get("/v1/events", headers=tenancy.headers_a())).json()

    assert set(documented) == set(real)
    assert set(documented["items"][0]) == set(real["items"][0])
