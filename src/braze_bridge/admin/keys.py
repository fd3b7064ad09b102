"""Rotation of BRAZE_BRIDGE_SECRET_KEY itself: re-encrypt every stored secret under it.

Each batch of connections is locked, re-encrypted and committed in its own transaction, so a
large table never sits in one long transaction and an interrupted run can simply be repeated:
values already under the current key are left untouched (the run is idempotent).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import flag_modified

from braze_bridge.db.repositories import alerts as alert_repo
from braze_bridge.db.repositories import connections as connection_repo
from braze_bridge.logging import get_logger
from braze_bridge.security.secrets import SecretBox, SecretDecryptError

log = get_logger(__name__)

SECRET_COLUMNS: Final = (
    "braze_api_key_enc",
    "webhook_secret_enc",
    "previous_webhook_secret_enc",
    "content_token_enc",
)


@dataclass
class KeyRotationReport:
    connections: int = 0
    reencrypted: int = 0
    already_current: int = 0
    # (connection id, column) of ciphertexts no configured key opens; values are never shown.
    unreadable: list[tuple[uuid.UUID, str]] = field(default_factory=list)


def _opens(box: SecretBox, ciphertext: str) -> bool:
    try:
        box.decrypt(ciphertext)
    except SecretDecryptError:
        return False
    return True


async def rotate_secret_key(
    sessionmaker: async_sessionmaker[AsyncSession],
    current_key: str,
    old_keys: Sequence[str],
    *,
    batch_size: int = 200,
) -> KeyRotationReport:
    """Re-encrypt what only an old key opens; count what is current and what nothing opens."""
    box = SecretBox(current_key, old_keys)
    current_only = SecretBox(current_key)
    report = KeyRotationReport()
    after: uuid.UUID | None = None
    while True:
        async with sessionmaker.begin() as session:
            rows = await connection_repo.lock_batch_for_key_rotation(
                session, after=after, limit=batch_size
            )
            for row in rows:
                report.connections += 1
                touched = False
                for column in SECRET_COLUMNS:
                    ciphertext: str | None = getattr(row, column)
                    if ciphertext is None:
                        continue
                    if _opens(current_only, ciphertext):
                        report.already_current += 1
                        continue
                    try:
                        setattr(row, column, box.rotate(ciphertext))
                    except SecretDecryptError:
                        report.unreadable.append((row.id, column))
                        continue
                    report.reencrypted += 1
                    touched = True
                if touched:
                    # Not an admin change: keep updated_at as it is (else onupdate moves it).
                    flag_modified(row, "updated_at")
            # Alert signing secrets (ops/alerts.py) of the same connections.
            for webhook in await alert_repo.lock_webhooks_of(session, [r.id for r in rows]):
                if _opens(current_only, webhook.secret_enc):
                    report.already_current += 1
                    continue
                try:
                    webhook.secret_enc = box.rotate(webhook.secret_enc)
                except SecretDecryptError:
                    report.unreadable.append((webhook.connection_id, "alert_webhooks.secret_enc"))
                    continue
                report.reencrypted += 1
                flag_modified(webhook, "updated_at")
        if not rows:
            break
        after = rows[-1].id
        log.info("admin.key_rotation_batch", done=report.connections)
    log.info(
        "admin.key_rotation_finished",
        connections=report.connections,
        reencrypted=report.reencrypted,
        already_current=report.already_current,
        unreadable=len(report.unreadable),
    )
    return report
