"""Identity modes: `settings.identity` on Extole connections, identify-later marks in identities

Revision ID: 0003_identity_modes
Revises: 0002_extole_settings_names
Create Date: 2026-12-03 16:00:00

Schema: `identities` learns what braze-bridge itself created in Braze for an email
(`created_as`: `alias` for an alias-only profile, `email` for objects sent with the `email`
identifier) and whether that profile was identified with `/users/identify`
(`identified_external_id`, `identified_at`). These marks do not expire with the lookup answer
(`expires_at` only ages the export/ids answer).

Data: every existing Extole connection gets an explicit `settings.identity`: `skip` where it said
`unknown_user: skip`, else `lookup_then_alias` (the behaviour it had). The former `unknown_user`
key is removed. New connections default to `email` (partners/extole/settings.py).

Downgrade: drops the columns and writes `unknown_user` back from `identity` (`skip` stays
`skip`, anything else becomes `alias`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_identity_modes"
down_revision: str | None = "0002_extole_settings_names"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("identities", sa.Column("created_as", sa.String(length=16), nullable=True))
    op.add_column(
        "identities", sa.Column("identified_external_id", sa.String(length=1024), nullable=True)
    )
    op.add_column(
        "identities", sa.Column("identified_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_check_constraint(
        op.f("ck_identities_created_as_known"), "identities", "created_as IN ('alias', 'email')"
    )
    op.execute(
        """
UPDATE connections
SET settings = (coalesce(settings, '{}'::jsonb) - 'unknown_user')
    || jsonb_build_object(
        'identity',
        CASE WHEN settings ->> 'unknown_user' = 'skip' THEN 'skip' ELSE 'lookup_then_alias' END
    )
WHERE source = 'extole' AND NOT coalesce(settings, '{}'::jsonb) ? 'identity'
"""
    )


def downgrade() -> None:
    op.execute(
        """
UPDATE connections
SET settings = (settings - 'identity')
    || jsonb_build_object(
        'unknown_user', CASE WHEN settings ->> 'identity' = 'skip' THEN 'skip' ELSE 'alias' END
    )
WHERE source = 'extole' AND settings ? 'identity'
"""
    )
    op.drop_constraint(op.f("ck_identities_created_as_known"), "identities", type_="check")
    op.drop_column("identities", "identified_at")
    op.drop_column("identities", "identified_external_id")
    op.drop_column("identities", "created_as")
