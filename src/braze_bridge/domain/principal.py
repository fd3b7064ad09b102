"""Who is calling the admin API: an operator (every tenant) or one tenant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: uuid.UUID
    tenant_id: uuid.UUID | None

    @property
    def is_operator(self) -> bool:
        return self.tenant_id is None

    def can_see(self, tenant_id: uuid.UUID) -> bool:
        return self.tenant_id is None or self.tenant_id == tenant_id
