"""Request and response bodies of /v1/tenants and tenant tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from braze_bridge.db.models import ApiToken, Tenant


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


Slug = Annotated[
    str,
    BeforeValidator(_lower),
    StringConstraints(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
    ),
    Field(description="Short unique name: lower-case letters, digits and inner dashes"),
]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: Slug
    name: DisplayName | None = Field(default=None, description="Display name; defaults to slug")


class TenantRead(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, row: Tenant) -> TenantRead:
        return cls(id=row.id, slug=row.slug, name=row.name, created_at=row.created_at)


class TenantPage(BaseModel):
    items: list[TenantRead]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DisplayName = Field(description="What the token is for, e.g. 'terraform'")


class TokenRead(BaseModel):
    """A token as listed: never its value, only the first characters to recognise it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenRead:
        return cls.model_validate(row)


class TokenCreated(TokenRead):
    token: str = Field(description="The bearer token; shown once, stored only as a hash")


class TokenPage(BaseModel):
    items: list[TokenRead]
