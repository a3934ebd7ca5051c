"""Saving a connected platform account (after OAuth): one place for the rules, used by the OAuth callback
and by anything else that connects an account (benchmarks, admin tools)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from trove.crypto import KeyRing, encrypt
from trove.platforms.base import TokenSet


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
    cur = await conn.execute(
        "select id::text, user_id::text from public.connected_accounts"
        " where platform = %s and platform_user_id = %s for update",
        (platform, platform_user_id),
    )
    existing = await cur.fetchone()
    if existing and existing[1] != user_id:
        raise AlreadyConnected(f"this {platform} account is connected to another Trove user")
    if existing is None:
        cur = await conn.execute(
            "insert into public.connected_accounts (user_id, platform, platform_user_id, username)"
            " values (%s, %s, %s, %s) returning id::text",
            (user_id, platform, platform_user_id, username),
        )
        row = await cur.fetchone()
        assert row is not None
        account_id = row[0]
    else:
        account_id = existing[0]
    cur = await conn.execute(
        "select subscription_id from public.webhook_subscriptions where platform = %s and subscription_id is not null",
        (platform,),
    )
    subscription = await cur.fetchone()
    await conn.execute(
        """
        update public.connected_accounts
        set access_token = %s, refresh_token = %s, token_expires_at = %s, scope = %s, username = %s,
            display_name = %s, avatar_url = %s, metadata = metadata || %s, status = 'active', error_count = 0,
            error_message = null, webhook_subscribed = %s, webhook_subscription_id = %s
        where id = %s
        """,
        (
            encrypt(ring, tokens.access_token, account_id=account_id, column="access_token"),
            encrypt(ring, tokens.refresh_token, account_id=account_id, column="refresh_token")
            if tokens.refresh_token
            else None,
            tokens.expires_at,
            scope,
            username,
            display_name,
            avatar_url,
            Jsonb(metadata or {}),
            subscription is not None,
            subscription[0] if subscription else None,
            account_id,
        ),
    )
    cur = await conn.execute("select trove_private.enqueue_sync(%s, 'backfill', 'connected')::text", (account_id,))
    row = await cur.fetchone()
    assert row is not None
    return Connection(account_id, existing is None, row[0])
