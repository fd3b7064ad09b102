"""Forget a person (GDPR / CCPA erasure) in one connection: optionally ask Braze to delete the
profile, then remove or redact everything braze-bridge holds about them, audited by counts
(docs/privacy.md)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

import httpx
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.admin.connections import effective_settings
from braze_bridge.braze.client import MAX_DELETE_IDENTIFIERS, BrazeClient
from braze_bridge.braze.errors import Unreachable
from braze_bridge.db.models import Connection
from braze_bridge.db.repositories import connections as connection_repo
from braze_bridge.db.repositories import forget as forget_repo
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.privacy import Person
from braze_bridge.errors import NotFound
from braze_bridge.logging import get_logger
from braze_bridge.security.secrets import SecretBox, SecretDecryptError

log = get_logger(__name__)

FORGET_ACTION: Final = "forget"
# The label of the alias-only profiles delivery creates (docs/delivery.md, "Identity").
EMAIL_ALIAS_LABEL: Final = "email"


class ForgetRequest(BaseModel):
    """Exactly one identifier, as the partner sent it (an email is matched case-insensitively)."""

    model_config = ConfigDict(extra="forbid")

    external_id: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None
    email: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ForgetRequest:
        if (self.external_id is None) == (self.email is None):
            raise ValueError("give exactly one of external_id or email")
        return self


@dataclass(frozen=True, slots=True)
class BrazeDeletion:
    """What `/users/delete` said: one request per kind of identifier and batch of 50."""

    requests: int = 0
    failed: int = 0
    # Braze's status per request; None: no answer (timeout, unreachable, unreadable key).
    statuses: list[int | None] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ForgetReport:
    connection_id: uuid.UUID
    # Identifiers the stored events linked to the one asked for (counted, never shown).
    identifiers: int
    counts: dict[str, int]
    braze: BrazeDeletion | None  # None: `settings.privacy.delete_in_braze` is off


def _delete_in_braze(row: Connection) -> bool:
    privacy: Any = effective_settings(row.source, row.settings).get("privacy") or {}
    return bool(privacy.get("delete_in_braze", False))


def braze_delete_bodies(person: Person) -> list[dict[str, list[Any]]]:
    """The `/users/delete` bodies for the person: one kind of identifier per request.

    External ids; the alias-only profile delivery creates for an unknown email
    (`alias_name` = email, `alias_label` = "email"); and the email itself, for profiles Braze
    knows only by email.
    """
    bodies: list[dict[str, list[Any]]] = []
    kinds: list[tuple[str, list[Any]]] = [
        ("external_ids", sorted(person.external_ids)),
        (
            "user_aliases",
            [{"alias_name": e, "alias_label": EMAIL_ALIAS_LABEL} for e in sorted(person.emails)],
        ),
        ("email_addresses", sorted(person.emails)),
    ]
    for kind, values in kinds:
        for start in range(0, len(values), MAX_DELETE_IDENTIFIERS):
            bodies.append({kind: values[start : start + MAX_DELETE_IDENTIFIERS]})
    return bodies


async def _ask_braze(
    http: httpx.AsyncClient, box: SecretBox, row: Connection, person: Person
) -> BrazeDeletion:
    bodies = braze_delete_bodies(person)
    try:
        api_key = box.decrypt(row.braze_api_key_enc)
    except SecretDecryptError:
        return BrazeDeletion(len(bodies), len(bodies), [None] * len(bodies))
    client = BrazeClient(http, row.braze_rest_endpoint, api_key)
    statuses: list[int | None] = []
    for body in bodies:
        try:
            reply = await client.delete_users(body)
        except Unreachable:
            statuses.append(None)
            continue
        statuses.append(reply.status_code)
    failed = sum(1 for s in statuses if s is None or not 200 <= s < 300)
    return BrazeDeletion(len(bodies), failed, statuses)


async def forget_person(
    session: AsyncSession,
    box: SecretBox,
    http: httpx.AsyncClient,
    principal: Principal,
    connection_id: uuid.UUID,
    *,
    external_id: str | None = None,
    email: str | None = None,
) -> ForgetReport:
    """Forget the person with `external_id` or `email` in the connection; commits.

    Braze is asked first (while every identifier is still known), outside any transaction; a
    failed Braze call does not stop the local erasure (the report says it failed, and
    forgetting again retries it with the identifier given).
    """
    row = await connection_repo.get_visible(session, principal, connection_id)
    if row is None:
        raise NotFound(f"no connection {connection_id}")
    asked = Person.of(external_id=external_id, email=email)
    person = await forget_repo.linked_person(session, row.id, asked)
    delete_in_braze = _delete_in_braze(row)
    await session.commit()

    braze = await _ask_braze(http, box, row, person) if delete_in_braze else None

    # Rows written while Braze was asked are found again here.
    person = await forget_repo.linked_person(session, row.id, person)
    counts = await forget_repo.erase_person(session, row.id, row.tenant_id, person)
    if braze is not None:
        counts["braze_delete_requests"] = braze.requests
        counts["braze_delete_failed"] = braze.failed
    await connection_repo.record_audit(
        session,
        row,
        actor_token_id=principal.token_id,
        action=FORGET_ACTION,
        fields=sorted(kind for kind, n in counts.items() if n),
        counts=counts,
    )
    await session.commit()
    log.info("admin.person_forgotten", connection_id=str(row.id), **counts)
    identifiers = len(person.external_ids) + len(person.emails)
    return ForgetReport(row.id, identifiers, counts, braze)
