"""Extole: connections stored before native Extole names keep their Braze names and Basic auth

Revision ID: 0002_extole_settings_names
Revises: 0001_baseline
Create Date: 2026-12-03 13:10:00

Data only: it rewrites connection settings written by builds before native Extole names (the
schema is the baseline's). On a new database it runs before any connection exists and
changes nothing.

The default Braze event for a created share link is now `extole_share_link_created`, the name
Extole's own Braze integration sends. Every existing Extole connection gets the old default,
`extole_created_share_link`, written into `settings.event_names.share_link_created` (an override
it already has under that key, or under the old default's name, is kept), so the Canvases it
feeds keep triggering.

Extole's HTTP_Basic key sends `base64(<key>)` alone. Basic connections were given the username
`extole` by default, which made every such webhook a 401. The username is removed from Extole
Basic connections that have exactly that default; without a username the key alone, or any
`user:key`, is accepted, so no sender that worked before is refused now.

Downgrade: the written name is what the old code sends anyway, so it stays; the username comes
back on Extole Basic connections that have none.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_extole_settings_names"
down_revision: str | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
UPDATE connections
SET settings = jsonb_set(
    coalesce(settings, '{}'::jsonb),
    '{event_names}',
    coalesce(settings -> 'event_names', '{}'::jsonb)
        || jsonb_build_object(
            'share_link_created',
            coalesce(settings -> 'event_names' ->> 'extole_created_share_link',
                     'extole_created_share_link')
        )
)
WHERE source = 'extole'
  AND NOT coalesce(settings -> 'event_names', '{}'::jsonb) ? 'share_link_created'
"""
    )
    op.execute(
        """
UPDATE connections SET webhook_username = NULL
WHERE source = 'extole' AND webhook_auth_mode = 'basic' AND webhook_username = 'extole'
"""
    )


def downgrade() -> None:
    op.execute(
        """
UPDATE connections SET webhook_username = 'extole'
WHERE source = 'extole' AND webhook_auth_mode = 'basic' AND webhook_username IS NULL
"""
    )
