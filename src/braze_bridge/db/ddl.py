"""Schema objects the ORM models cannot declare: the statement triggers that delete child rows.

The hot tables carry no per-row foreign-key checks where ingest and settle would pay for them
on every insert (`event_bodies`, `operations`, `attempt_operations`, `content_rewards`): the
writers insert those rows joined to parents they just wrote or hold. What ON DELETE CASCADE
did for them is done here, by one AFTER DELETE trigger per parent table, run once per
statement over the deleted rows (`gone`), which costs nothing on insert.

Declared once: the baseline migration creates every trigger of `DELETE_TRIGGERS`, and
tests/integration/test_storage_cascades.py checks that every table holding an `event_id`,
`operation_id` or `connection_id` has a delete path (a cascading key or one of these). A new
child table without a foreign key gets its DELETE here, and a migration that runs
`replace_function()` for the changed trigger.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeleteTrigger:
    """After a DELETE on `parent`, delete each `(child table, column)` row naming a gone id."""

    name: str
    parent: str
    function: str
    children: tuple[tuple[str, str], ...]

    def _function_sql(self, verb: str) -> str:
        deletes = "".join(
            f"    DELETE FROM {table} WHERE {column} IN (SELECT id FROM gone);\n"  # noqa: S608 - names from this module
            for table, column in self.children
        )
        return (
            f"{verb} FUNCTION {self.function}() RETURNS trigger\n"
            f"LANGUAGE plpgsql AS $$\nBEGIN\n{deletes}    RETURN NULL;\nEND $$"
        )

    def create_function(self) -> str:
        return self._function_sql("CREATE")

    def replace_function(self) -> str:
        return self._function_sql("CREATE OR REPLACE")

    def create_trigger(self) -> str:
        return (
            f"CREATE TRIGGER {self.name} AFTER DELETE ON {self.parent}\n"
            "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT\n"
            f"EXECUTE FUNCTION {self.function}()"
        )

    def drop(self) -> list[str]:
        return [
            f"DROP TRIGGER {self.name} ON {self.parent}",
            f"DROP FUNCTION {self.function}()",
        ]


DELETE_TRIGGERS = (
    # A connection's or tenant's deletion reaches events through `events.connection_id`.
    DeleteTrigger(
        "delete_event_rows",
        "events",
        "rows_of_deleted_events",
        (("event_bodies", "event_id"), ("operations", "event_id")),
    ),
    DeleteTrigger(
        "delete_attempt_operations",
        "delivery_attempts",
        "attempt_operations_of_deleted_attempts",
        (("attempt_operations", "attempt_id"),),
    ),
    DeleteTrigger(
        "delete_attempt_operations",
        "operations",
        "attempt_operations_of_deleted_operations",
        (("attempt_operations", "operation_id"),),
    ),
    DeleteTrigger(
        "delete_content_rewards",
        "connections",
        "content_rewards_of_deleted_connections",
        (("content_rewards", "connection_id"),),
    ),
)


def create_statements() -> list[str]:
    """Every function, then every trigger, in the order the baseline runs them."""
    return [t.create_function() for t in DELETE_TRIGGERS] + [
        t.create_trigger() for t in DELETE_TRIGGERS
    ]


def drop_statements() -> list[str]:
    return [sql for t in reversed(DELETE_TRIGGERS) for sql in t.drop()]
