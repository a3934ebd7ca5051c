"""The demo user's password, so a person can sign in to the local stack as demo@trove.local (through the local
stand-in of Supabase Auth, trove.http.local_auth). The demo user itself comes from supabase/seed.sql, without a
password; `set_demo_password` gives it one before the stack is used (`trove run`). The password is generated
once and kept in the state directory (`trove.config.state_dir()`, mode 0600), so it stays the same from run
to run; only its bcrypt hash is in the database."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

import psycopg

from trove.config import state_dir
from trove.queries.local_auth import SET_PASSWORD

DEMO_USER_ID = "00000000-0000-4000-8000-000000000001"  # supabase/seed.sql (as trove.demo has it)
PASSWORD_FILE = "demo-password"
MIN_BYTES, MAX_BYTES = 6, 72  # what the stand-in accepts at sign-up (bcrypt reads no further than 72)


def password_path() -> Path:
    return state_dir() / PASSWORD_FILE


def _kept(path: Path) -> str | None:
    """The password the file keeps, when it keeps one the stand-in would accept; its mode made 0600."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)
    size = len(text.encode())
    if "\n" in text or "\x00" in text or not MIN_BYTES <= size <= MAX_BYTES:
        return None
    return text


def demo_password() -> str:
    """The demo user's password: the one kept in the state directory, or a new random one kept there now."""
    path = password_path()
    kept = _kept(path)
    if kept is not None:
        return kept
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    # Written whole under a temporary name (created 0600), then put in place in one step: a concurrent reader
    # sees no file or the whole password, never a part; of two concurrent writers, the first one's stays.
    temporary = path.with_name(f".{PASSWORD_FILE}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(password + "\n")
        if path.exists():  # there but unusable (emptied, edited): replaced
            os.replace(temporary, path)
            return password
        try:
            os.link(temporary, path)
        except FileExistsError:
            kept = _kept(path)
            if kept is not None:
                return kept
            os.replace(temporary, path)
        return password
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def set_demo_password(conninfo: str, user_id: str = DEMO_USER_ID) -> str:
    """Give the demo user (supabase/seed.sql) its password, hashed with bcrypt, and return the password. Hashes
    again only when the stored hash is not of this password. Raises when the demo user is missing."""
    password = demo_password()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(SET_PASSWORD, {"user": user_id, "password": password}).fetchone()
    if not row or not row[0]:
        raise RuntimeError(
            f"the demo user {user_id} is not in auth.users: load supabase/seed.sql (trove db migrate --seed)"
        )
    return password
