"""`trove keys rotate`: re-encrypt every stored token with the current key, one account per transaction."""

from __future__ import annotations

import psycopg
from psycopg import sql

from trove.crypto import KeyRing, decrypt, encrypt, needs_rotation
from trove.queries.accounts import ACCOUNTS_WITH_TOKENS, LOCK_TOKENS, SET_TOKEN

TOKEN_COLUMNS = ("access_token", "refresh_token", "token_binding")


def rotate_tokens(conninfo: str, ring: KeyRing) -> int:
    """Returns how many token values were re-encrypted. Safe to run again (already-current ones are skipped)
    and beside running workers (each account is locked while its tokens change)."""
    rotated = 0
    with psycopg.connect(conninfo, autocommit=True) as conn:
        ids = [row[0] for row in conn.execute(ACCOUNTS_WITH_TOKENS)]
        for account_id in ids:
            with conn.transaction():
                row = conn.execute(LOCK_TOKENS, (account_id,)).fetchone()
                if row is None:
                    continue
                updates: dict[str, str] = {}
                for column, value in zip(TOKEN_COLUMNS, row, strict=True):
                    if value is not None and needs_rotation(ring, value):
                        plain = decrypt(ring, value, account_id=str(account_id), column=column)
                        updates[column] = encrypt(ring, plain, account_id=str(account_id), column=column)
                for column, value in updates.items():
                    conn.execute(SET_TOKEN.format(sql.Identifier(column)), (value, account_id))
                rotated += len(updates)
    return rotated
