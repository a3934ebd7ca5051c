"""Token encryption: AES-256-GCM with key ids, bound to account and column, rotation through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from trove.crypto import KeyRing, TokenCryptoError, decrypt, encrypt, generate_key, key_id_of

ACCOUNT = "7b0d2c1e-0000-4000-8000-000000000001"


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.parse(f"k1:{generate_key()},k2:{generate_key()}")


def test_round_trip_with_key_id(ring: KeyRing) -> None:
    sealed = encrypt(ring, "strava-access-abc", account_id=ACCOUNT, column="access_token")
    assert sealed.startswith("v1:k1:")
    assert "strava-access-abc" not in sealed
    assert decrypt(ring, sealed, account_id=ACCOUNT, column="access_token") == "strava-access-abc"


def test_same_plaintext_encrypts_differently(ring: KeyRing) -> None:
    one = encrypt(ring, "t", account_id=ACCOUNT, column="access_token")
    assert one != encrypt(ring, "t", account_id=ACCOUNT, column="access_token")


def test_ciphertext_is_bound_to_its_account_and_column(ring: KeyRing) -> None:
    sealed = encrypt(ring, "secret-token-value", account_id=ACCOUNT, column="access_token")
    with pytest.raises(TokenCryptoError) as other_column:
        decrypt(ring, sealed, account_id=ACCOUNT, column="refresh_token")
    with pytest.raises(TokenCryptoError) as other_account:
        decrypt(ring, sealed, account_id="someone-else", column="access_token")
    for error in (other_column.value, other_account.value):
        assert "secret-token-value" not in str(error) and sealed not in str(error)


def test_tampering_is_detected(ring: KeyRing) -> None:
    sealed = encrypt(ring, "t", account_id=ACCOUNT, column="access_token")
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(TokenCryptoError, match="does not decrypt"):
        decrypt(ring, tampered, account_id=ACCOUNT, column="access_token")


def test_unknown_key_id_and_bad_format_are_clear(ring: KeyRing) -> None:
    sealed = encrypt(KeyRing.parse(f"gone:{generate_key()}"), "t", account_id=ACCOUNT, column="access_token")
    with pytest.raises(TokenCryptoError, match="key 'gone', which is not in the key ring"):
        decrypt(ring, sealed, account_id=ACCOUNT, column="access_token")
    with pytest.raises(TokenCryptoError, match="not in the v1 format"):
        decrypt(ring, "plaintext-token", account_id=ACCOUNT, column="access_token")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no token keys configured"),
        ("justakey", "<key id>:<base64url key>"),
        ("k1:c2hvcnQ", "must be 32 bytes"),
    ],
)
def test_bad_key_ring_configuration(spec: str, message: str) -> None:
    with pytest.raises(TokenCryptoError, match=message):
        KeyRing.parse(spec)


def test_current_key_must_be_in_the_ring() -> None:
    with pytest.raises(TokenCryptoError, match="current token key 'k9' is not in the key ring"):
        KeyRing.parse(f"k1:{generate_key()}", "k9")


def test_keys_rotate_re_encrypts_every_token(db_url: str) -> None:
    old, new = generate_key(), generate_key()
    ring_old = KeyRing.parse(f"old:{old}")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select tests.create_user('alice')")
        account_ids = []
        for n in range(3):
            account_id = conn.execute(
                "insert into public.connected_accounts (user_id, platform, platform_user_id, username)"
                " values (tests.id('user', 'alice'), 'strava', %s, 'alice') returning id::text",
                (f"athlete-{n}",),
            ).fetchone()[0]
            conn.execute(
                "update public.connected_accounts set access_token = %s, refresh_token = %s where id = %s",
                (
                    encrypt(ring_old, f"access-{n}", account_id=account_id, column="access_token"),
                    encrypt(ring_old, f"refresh-{n}", account_id=account_id, column="refresh_token"),
                    account_id,
                ),
            )
            account_ids.append(account_id)
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "TROVE_TOKEN_KEYS": f"old:{old},new:{new}",
        "TROVE_TOKEN_KEY_ID": "new",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "trove.cli", "keys", "rotate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "re-encrypted 6 tokens with key 'new'"
    ring_new = KeyRing.parse(f"new:{new}")
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "select id::text, access_token, refresh_token from public.connected_accounts order by platform_user_id"
        ).fetchall()
    for n, (account_id, access, refresh) in enumerate(rows):
        assert key_id_of(access) == key_id_of(refresh) == "new"
        assert decrypt(ring_new, access, account_id=account_id, column="access_token") == f"access-{n}"
        assert decrypt(ring_new, refresh, account_id=account_id, column="refresh_token") == f"refresh-{n}"
    again = subprocess.run(
        [sys.executable, "-m", "trove.cli", "keys", "rotate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.stdout.strip() == "re-encrypted 0 tokens with key 'new'"


def test_keys_rotate_with_a_missing_old_key_fails_clearly_and_changes_nothing(db_url: str) -> None:
    lost = KeyRing.parse(f"lost:{generate_key()}")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select tests.create_user('bob')")
        account_id = conn.execute(
            "insert into public.connected_accounts (user_id, platform, platform_user_id, username)"
            " values (tests.id('user', 'bob'), 'strava', 'b', 'bob') returning id::text"
        ).fetchone()[0]
        sealed = encrypt(lost, "access-secret", account_id=account_id, column="access_token")
        conn.execute("update public.connected_accounts set access_token = %s where id = %s", (sealed, account_id))
    env = {**os.environ, "DATABASE_URL": db_url, "TROVE_TOKEN_KEYS": f"new:{generate_key()}"}
    proc = subprocess.run(
        [sys.executable, "-m", "trove.cli", "keys", "rotate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "key 'lost', which is not in the key ring" in proc.stderr
    assert "access-secret" not in proc.stderr + proc.stdout and sealed not in proc.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select access_token from public.connected_accounts").fetchone() == (sealed,)
