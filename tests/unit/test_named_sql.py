"""Named SQL (`db/sql/*.sql`): every query a repository runs exists, once, with its parts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from braze_bridge.db import driver

REPOSITORIES = Path(driver.__file__).parent / "repositories"
# `driver.fetch(session, "name", ...)` and friends, the name being the first string argument.
RUNS = re.compile(
    r"driver\.(?:fetch|fetchrow|fetchval|execute|fetch_on_driver)\(\s*\w+,\s*\"(\w+)\""
)


def test_every_query_a_repository_runs_is_defined() -> None:
    used = {name for path in REPOSITORIES.glob("*.py") for name in RUNS.findall(path.read_text())}
    assert {"claim_due_operations", "ingest_batch", "live_connections"} <= used
    assert used - set(driver.queries()) == set()


def test_included_parts_are_spliced_in() -> None:
    batch = driver.query("ingest_batch")
    assert "-- include:" not in batch
    assert driver.query("connected_content_projection") in batch


def test_a_header_starts_a_query_and_comments_stay_in_it() -> None:
    text = "-- file comment\n\n-- name: one\n-- why\nSELECT 1\n\n-- name: two\nSELECT 2\n"
    assert driver.parse_queries(text) == {"one": "-- why\nSELECT 1", "two": "SELECT 2"}


def test_a_name_defined_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'one' defined twice"):
        driver.parse_queries("-- name: one\nSELECT 1\n-- name: one\nSELECT 2\n")


@pytest.mark.parametrize(("status", "count"), [("UPDATE 3", 3), ("INSERT 0 2", 2), ("SELECT", 0)])
def test_the_command_tag_is_the_row_count(status: str, count: int) -> None:
    assert driver.rowcount(status) == count
