"""Access tokens for a sync: decrypted only in memory, refreshed when they expire within 5 minutes or their
renewal time has come (TokenSet.refresh_at: tokens that lapse unless refreshed).

A refresh holds the account's row lock for its whole duration, so two workers never refresh the same
account at once (platforms that rotate refresh tokens would leave the loser of such a race a dead one).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from psycopg import AsyncConnection

from trove.crypto import KeyRing, decrypt, encrypt
from trove.platforms.base import Account, AuthError, Connector
from trove.queries.accounts import LOAD_ACCOUNT, LOCK_ACCOUNT, SET_REFRESHED_TOKENS
from trove.redact import register_secret

REFRESH_MARGIN = timedelta(minutes=5)


def encrypt_binding(ring: KeyRing, binding: dict[str, Any] | None, account_id: str) -> str | None:
    """TokenSet.binding as stored: encrypted JSON (None for bearer tokens)."""
    if binding is None:
        return None
    return encrypt(ring, json.dumps(binding, sort_keys=True), account_id=account_id, column="token_binding")


def _account(ring: KeyRing, row: tuple[Any, ...]) -> Account:
    account_id, user_id, platform, platform_user_id, username, access, _refresh, _expires, state, bound, _renew = row
    token = decrypt(ring, access, account_id=account_id, column="access_token") if access else None
    register_secret(token)
    binding = json.loads(decrypt(ring, bound, account_id=account_id, column="token_binding")) if bound else None
    return Account(account_id, user_id, platform, platform_user_id, username, token, state or {}, binding)


async def load_account(conn: AsyncConnection[Any], ring: KeyRing, account_id: str) -> Account:
    cur = await conn.execute(LOAD_ACCOUNT, (account_id,))
    row = await cur.fetchone()
    if row is None:
        raise LookupError(f"connected account {account_id} no longer exists")
    return _account(ring, row)


async def fresh_account(
    conn: AsyncConnection[Any],
    ring: KeyRing,
    connector: Connector,
    http: httpx.AsyncClient,
    account_id: str,
    *,
    rejected_token: str | None = None,
) -> Account:
    """The account with a usable access token. `rejected_token`: the platform just refused this token,
    so refresh now, unless another worker already replaced it."""
    async with conn.transaction():
        cur = await conn.execute(LOCK_ACCOUNT, (account_id,))
        row = await cur.fetchone()
        if row is None:
            raise LookupError(f"connected account {account_id} no longer exists")
        account = _account(ring, row)
        expires_at: datetime | None = row[7]
        refresh_ciphertext: str | None = row[6]
        renew_at: datetime | None = row[10]
        now = datetime.now(UTC)
        if rejected_token is not None:
            if account.access_token != rejected_token:
                return account  # someone refreshed it meanwhile
        elif (expires_at is None or expires_at > now + REFRESH_MARGIN) and (renew_at is None or renew_at > now):
            return account
        if refresh_ciphertext is None:
            if rejected_token is not None or account.access_token is None:
                raise AuthError("the access token was refused and there is no refresh token")
            return account
        refresh_token = decrypt(ring, refresh_ciphertext, account_id=account_id, column="refresh_token")
        register_secret(refresh_token)
        # InvalidGrantError propagates
        tokens = await connector.refresh_token(http, refresh_token, account.binding)
        register_secret(tokens.access_token)
        register_secret(tokens.refresh_token)
        await conn.execute(
            SET_REFRESHED_TOKENS,
            {
                "access": encrypt(ring, tokens.access_token, account_id=account_id, column="access_token"),
                "refresh": encrypt(
                    ring, tokens.refresh_token or refresh_token, account_id=account_id, column="refresh_token"
                ),
                "expires": tokens.expires_at,
                "binding": encrypt_binding(ring, tokens.binding, account_id),
                "refresh_at": tokens.refresh_at,
                "scope": tokens.scope,
                "account": account_id,
            },
        )
        return replace(account, access_token=tokens.access_token, binding=tokens.binding)
