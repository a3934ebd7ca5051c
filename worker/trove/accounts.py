"""Saving a connected platform account (after OAuth): one place for the rules, used by the OAuth callback
and by anything else that connects an account (benchmarks, admin tools)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from trove.crypto import KeyRing, encrypt
from trove.platforms.base import TokenSet
from trove.queries.accounts import CONNECT_ACCOUNT, INSERT_ACCOUNT, LOCK_PLATFORM_ACCOUNT
from trove.queries.queue import ENQUEUE_SYNC
from trove.queries.webhooks import LIVE_SUBSCRIPTION_ID
from trove.tokens import encrypt_binding


class AlreadyConnected(Exception):
    """The platform account belongs to another Trove user."""


@dataclass(frozen=True)
class Connection:
    account_id: str
    created: bool
    sync_log_id: str


async def save_connection(
    conn: AsyncConnection[Any],
    ring: KeyRing,
    *,
    user_id: str,
    platform: str,
    platform_user_id: str,
    username: str,
    tokens: TokenSet,
    scope: str,
    display_name: str | None = None,
    avatar_url: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Connection:
    """Create or refresh the account with encrypted tokens, mark it active, and queue its backfill.
    Runs in the caller's transaction; a reconnect by the same user keeps the archive."""
    cur = await conn.execute(LOCK_PLATFORM_ACCOUNT, (platform, platform_user_id))
    existing = await cur.fetchone()
    if existing and existing[1] != user_id:
        raise AlreadyConnected(f"this {platform} account is connected to another Trove user")
    if existing is None:
        cur = await conn.execute(INSERT_ACCOUNT, (user_id, platform, platform_user_id, username))
        row = await cur.fetchone()
        assert row is not None
        account_id = row[0]
    else:
        account_id = existing[0]
    cur = await conn.execute(LIVE_SUBSCRIPTION_ID, (platform,))
    subscription = await cur.fetchone()
    await conn.execute(
        CONNECT_ACCOUNT,
        {
            "access": encrypt(ring, tokens.access_token, account_id=account_id, column="access_token"),
            "refresh": encrypt(ring, tokens.refresh_token, account_id=account_id, column="refresh_token")
            if tokens.refresh_token
            else None,
            "expires": tokens.expires_at,
            "binding": encrypt_binding(ring, tokens.binding, account_id),
            "refresh_at": tokens.refresh_at,
            "scope": scope,
            "username": username,
            "display_name": display_name,
            "avatar_url": avatar_url,
            "metadata": Jsonb(metadata or {}),
            "subscribed": subscription is not None,
            "subscription_id": subscription[0] if subscription else None,
            "account": account_id,
        },
    )
    cur = await conn.execute(ENQUEUE_SYNC, (account_id, "backfill", "connected"))
    row = await cur.fetchone()
    assert row is not None
    return Connection(account_id, existing is None, row[0])
