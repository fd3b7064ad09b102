"""`braze-bridge rotate-key`: re-encrypt every stored secret under a new secret key."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.admin.keys import rotate_secret_key
from braze_bridge.db.models import AlertWebhook
from braze_bridge.security.secrets import SecretBox
from tests.conftest import TEST_SECRET_KEY
from tests.factories import MadeConnection, make_connection, make_tenant
from tests.integration.admin_support import load_connection

pytestmark = pytest.mark.rollback

NEW_KEY = "the-new-secret-key-2027"
NEW_BOX = SecretBox(NEW_KEY)


async def seed(session: AsyncSession) -> list[MadeConnection]:
    """Three connections under the old key: one mid-rotation, one deleted, one plain."""
    tenant = await make_tenant(session)
    rotating = await make_connection(session, tenant)
    rotating.row.previous_webhook_secret_enc = SecretBox(TEST_SECRET_KEY).encrypt("whsec_old")
    deleted = await make_connection(session, tenant)
    deleted.row.deleted_at = deleted.row.created_at
    plain = await make_connection(session, tenant)
    await session.commit()
    return [rotating, deleted, plain]


async def assert_readable_with_the_new_key_alone(
    sessionmaker: async_sessionmaker[AsyncSession], made: MadeConnection
) -> None:
    row = await load_connection(sessionmaker, made.id)
    assert NEW_BOX.decrypt(row.braze_api_key_enc) == made.api_key
    assert NEW_BOX.decrypt(row.webhook_secret_enc) == made.webhook_secret
    assert NEW_BOX.decrypt(row.content_token_enc or "") == made.content_token


class TestRotateSecretKey:
    async def test_every_secret_moves_to_the_new_key_and_nothing_else_changes(
        self, session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        made = await seed(session)
        before = {m.id: await load_connection(sessionmaker, m.id) for m in made}

        report = await rotate_secret_key(sessionmaker, NEW_KEY, [TEST_SECRET_KEY], batch_size=2)

        assert (report.connections, report.reencrypted, report.already_current) == (3, 10, 0)
        assert report.unreadable == []
        for m in made:
            await assert_readable_with_the_new_key_alone(sessionmaker, m)
            row = await load_connection(sessionmaker, m.id)
            assert (row.updated_at, row.version) == (before[m.id].updated_at, before[m.id].version)
        rotating = await load_connection(sessionmaker, made[0].id)
        assert NEW_BOX.decrypt(rotating.previous_webhook_secret_enc or "") == "whsec_old"

    async def test_a_second_run_changes_nothing(
        self, session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        made = await seed(session)
        await rotate_secret_key(sessionmaker, NEW_KEY, [TEST_SECRET_KEY])
        after_first = (await load_connection(sessionmaker, made[0].id)).braze_api_key_enc

        again = await rotate_secret_key(sessionmaker, NEW_KEY, [TEST_SECRET_KEY])

        assert (again.reencrypted, again.already_current, again.unreadable) == (0, 10, [])
        assert (await load_connection(sessionmaker, made[0].id)).braze_api_key_enc == after_first

    async def test_unreadable_values_are_reported_and_the_rest_still_rotate(
        self, session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        made = await seed(session)
        made[2].row.content_token_enc = SecretBox("a-key-nobody-listed").encrypt("bbc_lost")
        await session.commit()

        report = await rotate_secret_key(sessionmaker, NEW_KEY, [TEST_SECRET_KEY], batch_size=1)

        assert report.unreadable == [(made[2].id, "content_token_enc")]
        assert report.reencrypted == 9
        await assert_readable_with_the_new_key_alone(sessionmaker, made[0])
        row = await load_connection(sessionmaker, made[2].id)
        assert NEW_BOX.decrypt(row.braze_api_key_enc) == made[2].api_key


async def run_cli(database_url: str, old_keys: list[str]) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "BRAZE_BRIDGE_DATABASE_URL": database_url,
        "BRAZE_BRIDGE_SECRET_KEY": NEW_KEY,
        "BRAZE_BRIDGE_OLD_SECRET_KEYS": json.dumps(old_keys),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "braze_bridge",
        "rotate-key",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class TestRotateKeyCommand:
    async def test_command_reports_counts_and_fails_on_unreadable_values(
        self,
        fresh_database: str,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        made = await seed(session)

        missing_old_key = await run_cli(fresh_database, [])
        done = await run_cli(fresh_database, [TEST_SECRET_KEY])

        code, out, err = missing_old_key
        assert code == 1
        assert "unreadable: 10" in out
        assert f"connection {made[0].id} braze_api_key_enc" in err
        assert "BRAZE_BRIDGE_OLD_SECRET_KEYS" in err
        code, out, err = done
        assert code == 0, err
        assert "connections: 3  re-encrypted: 10  already current: 0  unreadable: 0" in out
        for m in made:
            await assert_readable_with_the_new_key_alone(sessionmaker, m)
            assert m.api_key not in out + err


async def test_alert_signing_secrets_move_to_the_new_key(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A connection's alert webhook secret (docs/ops.md, "Alerts") is re-encrypted too."""
    made = await make_connection(session, await make_tenant(session))
    session.add(
        AlertWebhook(
            connection_id=made.id,
            tenant_id=made.row.tenant_id,
            url="https://hooks.example.com/x",
            secret_enc=SecretBox(TEST_SECRET_KEY).encrypt("alsec_signing"),
        )
    )
    await session.commit()

    report = await rotate_secret_key(sessionmaker, NEW_KEY, [TEST_SECRET_KEY])

    assert (report.reencrypted, report.unreadable) == (4, [])
    async with sessionmaker() as check:
        stored = await check.get(AlertWebhook, made.id)
        assert stored is not None
        assert NEW_BOX.decrypt(stored.secret_enc) == "alsec_signing"
