"""The local stand-in of Supabase Auth's REST API (trove.http.local_auth), over real HTTP on a real port with
real Postgres: sign-up, sign-in, refresh token rotation and reuse detection, sign-out, the user endpoint, the
refusals in Auth's error format, the `supabase_auth` client unchanged against it, sign-in links (magic links)
in the PKCE flow with the local mailbox, and the demo user's password (trove.demo_login)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import re
import stat
import time
import uuid
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import jwt
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from supabase_auth import AsyncGoTrueClient, AsyncMemoryStorage
from supabase_auth.constants import STORAGE_KEY
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError
from tests.worker_harness import RING

from trove.config import LOCAL_JWT_SECRET, LOCAL_STACK_ENV
from trove.db.cluster import free_port
from trove.db.local import apply_seed
from trove.db.migrate import apply_local_stack
from trove.demo_login import DEMO_USER_ID, demo_password, password_path, set_demo_password
from trove.http import local_auth
from trove.http.app import create_app
from trove.http.auth import decode_user_token, issue_local_token
from trove.http.log_redaction import ArgsRedactor
from trove.simulators.serve import BackgroundServer

PASSWORD = "correct horse battery"
VERSION = {"X-Supabase-Api-Version": "2024-01-01"}


@pytest.fixture
def auth(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The HTTP service with the stand-in mounted, on a real port; its state (the mailbox) in tmp_path."""
    port = free_port()
    monkeypatch.setenv("TROVE_PUBLIC_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TROVE_STATE_DIR", str(tmp_path / "state"))
    app = create_app(db_url, RING)
    local_auth.mount_local_auth(app)
    with BackgroundServer(app, port) as server:
        yield {"url": server.url, "auth": f"{server.url}/auth/v1", "db": db_url, "state": str(tmp_path / "state")}


def sign_up(auth: dict[str, str], email: str, password: str = PASSWORD, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{auth['auth']}/signup", json={"email": email, "password": password, **kwargs})


def sign_in(auth: dict[str, str], email: str, password: str = PASSWORD, **kwargs: Any) -> httpx.Response:
    body = {"email": email, "password": password}
    return httpx.post(f"{auth['auth']}/token", params={"grant_type": "password"}, json=body, **kwargs)


def refresh(auth: dict[str, str], token: str) -> httpx.Response:
    return httpx.post(f"{auth['auth']}/token", params={"grant_type": "refresh_token"}, json={"refresh_token": token})


def get_user(auth: dict[str, str], access_token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {access_token}"} if access_token is not None else {}
    return httpx.get(f"{auth['auth']}/user", headers=headers)


def logout(auth: dict[str, str], access_token: str, scope: str | None = None) -> httpx.Response:
    params = {"scope": scope} if scope is not None else {}
    return httpx.post(f"{auth['auth']}/logout", params=params, headers={"Authorization": f"Bearer {access_token}"})


def refused(response: httpx.Response, status: int, code: str) -> str:
    """Auth's error (the format without a version header): the status, the code; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and body["error_code"] == code, body
    assert response.headers["x-sb-error-code"] == code
    return str(body["msg"])


def fetch(db: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db, autocommit=True) as conn:
        return conn.execute(sql.encode(), params).fetchall()


def test_sign_up_makes_a_confirmed_user_and_a_session(auth: dict[str, str]) -> None:
    response = sign_up(auth, "Ada@Example.COM", data={"name": "Ada"})
    assert response.status_code == 200, response.text
    session = response.json()
    assert session["token_type"] == "bearer" and session["expires_in"] == 3600
    assert abs(session["expires_at"] - (time.time() + 3600)) < 60
    user = session["user"]
    assert user["email"] == "ada@example.com"  # lowercased, as Auth stores it
    assert user["aud"] == "authenticated" and user["role"] == "authenticated"
    assert user["email_confirmed_at"] and user["confirmed_at"] and user["last_sign_in_at"]
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert user["user_metadata"] == {"name": "Ada"}
    assert response.headers["cache-control"] == "no-store"

    # The trigger on auth.users made Trove's user; the password is a bcrypt hash of Auth's cost.
    assert fetch(auth["db"], "select email from public.users where id = %s", user["id"]) == [("ada@example.com",)]
    (stored,) = fetch(auth["db"], "select encrypted_password from auth.users where id = %s", user["id"])[0]
    assert stored.startswith("$2a$10$") and PASSWORD not in stored

    # The access token is a Supabase access token: Trove's own check takes it, with Supabase's claims.
    assert decode_user_token(session["access_token"]).id == user["id"]
    claims = jwt.decode(session["access_token"], LOCAL_JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["iss"] == f"{auth['url']}/auth/v1"
    assert claims["sub"] == user["id"] and claims["role"] == "authenticated" and claims["email"] == user["email"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["aal"] == "aal1" and claims["amr"][0]["method"] == "password" and claims["is_anonymous"] is False
    assert claims["user_metadata"] == {"name": "Ada"} and claims["app_metadata"]["provider"] == "email"
    sessions = fetch(auth["db"], "select id::text from auth.sessions where user_id = %s", user["id"])
    assert sessions == [(claims["session_id"],)]

    # Only the refresh token's SHA-256 is stored.
    tokens = [row[0] for row in fetch(auth["db"], "select token from auth.refresh_tokens")]
    assert tokens == [hashlib.sha256(session["refresh_token"].encode()).hexdigest()]


def test_sign_in_and_the_one_answer_for_wrong_credentials(auth: dict[str, str]) -> None:
    user_id = sign_up(auth, "grace@example.com").json()["user"]["id"]
    signed_in = sign_in(auth, "Grace@Example.com")
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["id"] == user_id
    assert decode_user_token(signed_in.json()["access_token"]).id == user_id
    assert fetch(auth["db"], "select count(*) from auth.sessions where user_id = %s", user_id) == [(2,)]

    wrong_password = sign_in(auth, "grace@example.com", "not the password")
    unknown_email = sign_in(auth, "nobody@example.com", "not the password")
    assert refused(wrong_password, 400, "invalid_credentials") == "Invalid login credentials"
    assert wrong_password.json() == unknown_email.json()
    assert wrong_password.headers.get("content-type") == unknown_email.headers.get("content-type")
    # A user without a password (one made by other means) is refused alike.
    fetch(auth["db"], "insert into auth.users (id, aud, role, email) values (gen_random_uuid(), 'authenticated',"
          " 'authenticated', 'nopassword@example.com') returning id")  # fmt: skip
    assert sign_in(auth, "nopassword@example.com", "anything").json() == wrong_password.json()
    refused(httpx.post(f"{auth['auth']}/token?grant_type=password", json={"password": "x"}), 400, "validation_failed")


def test_refresh_rotates_and_reuse_after_the_interval_ends_the_session(
    auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = sign_up(auth, "linus@example.com").json()
    second = refresh(auth, first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["user"]["id"] == first["user"]["id"]
    assert decode_user_token(rotated["access_token"]).id == first["user"]["id"]
    assert (
        jwt.decode(rotated["access_token"], options={"verify_signature": False})["session_id"]
        == jwt.decode(first["access_token"], options={"verify_signature": False})["session_id"]
    )
    revoked = fetch(auth["db"], "select revoked from auth.refresh_tokens order by id")
    assert revoked == [(True,), (False,)]

    # Within the reuse interval a used token gets the session's current token (a client that lost the answer).
    again = refresh(auth, first["refresh_token"])
    assert again.status_code == 200 and again.json()["refresh_token"] == rotated["refresh_token"]
    third = refresh(auth, rotated["refresh_token"]).json()
    assert refresh(auth, first["refresh_token"]).json()["refresh_token"] == third["refresh_token"]
    assert fetch(auth["db"], "select count(*) from auth.refresh_tokens where not revoked") == [(1,)]

    # After it, a reuse is taken as a stolen token: refused, and the whole session ends.
    monkeypatch.setattr(local_auth, "REUSE_INTERVAL_SECONDS", 0.0)
    assert refused(refresh(auth, first["refresh_token"]), 400, "refresh_token_already_used") == (
        "Invalid Refresh Token: Already Used"
    )
    refused(refresh(auth, third["refresh_token"]), 400, "refresh_token_not_found")
    refused(get_user(auth, third["access_token"]), 403, "session_not_found")
    assert fetch(auth["db"], "select count(*) from auth.sessions") == [(0,)]

    # The user signs in again as usual.
    assert sign_in(auth, "linus@example.com").status_code == 200
    refused(refresh(auth, "x" * 43), 400, "refresh_token_not_found")
    refused(refresh(auth, "short"), 400, "validation_failed")
    refused(refresh(auth, ""), 400, "validation_failed")


def test_racing_refreshes_of_one_token_all_get_its_successor(auth: dict[str, str]) -> None:
    session = sign_up(auth, "tabs@example.com").json()

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient() as client:
            body = {"refresh_token": session["refresh_token"]}
            url = f"{auth['auth']}/token?grant_type=refresh_token"
            return await asyncio.gather(*(client.post(url, json=body) for _ in range(6)))

    answers = asyncio.run(race())
    assert [answer.status_code for answer in answers] == [200] * 6
    assert len({answer.json()["refresh_token"] for answer in answers}) == 1  # one successor, every tab has it
    assert fetch(auth["db"], "select count(*), count(*) filter (where not revoked) from auth.refresh_tokens") == [
        (2, 1)
    ]


def test_logout_ends_sessions_by_scope(auth: dict[str, str]) -> None:
    sign_up(auth, "barbara@example.com")
    one, two, three = (sign_in(auth, "barbara@example.com").json() for _ in range(3))

    refused(logout(auth, one["access_token"], "everywhere"), 400, "validation_failed")
    assert logout(auth, one["access_token"], "local").status_code == 204
    refused(refresh(auth, one["refresh_token"]), 400, "refresh_token_not_found")
    refused(get_user(auth, one["access_token"]), 403, "session_not_found")
    assert get_user(auth, two["access_token"]).status_code == 200

    assert logout(auth, two["access_token"], "others").status_code == 204
    refused(refresh(auth, three["refresh_token"]), 400, "refresh_token_not_found")
    assert refresh(auth, two["refresh_token"]).status_code == 200

    four = sign_in(auth, "barbara@example.com").json()
    assert logout(auth, four["access_token"]).status_code == 204  # no scope: Auth's default, global
    assert fetch(auth["db"], "select count(*) from auth.sessions") == [(0,)]
    refused(logout(auth, four["access_token"]), 403, "session_not_found")  # signed out already
    refused(httpx.post(f"{auth['auth']}/logout"), 401, "no_authorization")


def test_user_endpoint_takes_only_valid_tokens_of_live_users(auth: dict[str, str]) -> None:
    session = sign_up(auth, "edsger@example.com", data={"lang": "nl"}).json()
    user_id = session["user"]["id"]
    shown = get_user(auth, session["access_token"])
    assert shown.status_code == 200
    assert shown.json()["id"] == user_id and shown.json()["user_metadata"] == {"lang": "nl"}

    now = int(time.time())
    claims = {"sub": user_id, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 600}
    expired = jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, LOCAL_JWT_SECRET, algorithm="HS256")
    foreign = jwt.encode(claims, "another-projects-secret-of-at-least-32-chars", algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    refused(get_user(auth, None), 401, "no_authorization")
    assert "expired" in refused(get_user(auth, expired), 403, "bad_jwt")
    refused(get_user(auth, foreign), 403, "bad_jwt")
    refused(get_user(auth, unsigned), 403, "bad_jwt")
    refused(get_user(auth, "not-a-jwt"), 403, "bad_jwt")
    refused(get_user(auth, issue_local_token(str(uuid.uuid4()))), 403, "user_not_found")
    # A token without a session (the demo's, the tests') is a user's token all the same.
    assert get_user(auth, issue_local_token(user_id)).json()["id"] == user_id


def test_sign_up_refusals(auth: dict[str, str]) -> None:
    weak = sign_up(auth, "short@example.com", "five5")
    assert refused(weak, 422, "weak_password") == "Password should be at least 6 characters."
    assert weak.json()["weak_password"] == {"reasons": ["length"]}
    refused(sign_up(auth, "long@example.com", "x" * 73), 400, "validation_failed")
    refused(sign_up(auth, "long@example.com", "é" * 37), 400, "validation_failed")  # 74 bytes
    assert sign_up(auth, "long@example.com", "x" * 72).status_code == 200
    # bcrypt reads 72 bytes: more does not sign in by its first 72.
    assert sign_in(auth, "long@example.com", "x" * 72).status_code == 200
    refused(sign_in(auth, "long@example.com", "x" * 73), 400, "invalid_credentials")
    refused(sign_up(auth, "nopassword@example.com", ""), 400, "validation_failed")
    for email in ("not-an-email", "a@b@example.com", "spaces in@example.com", "user@-example.com", "user@"):
        assert "invalid format" in refused(sign_up(auth, email), 400, "validation_failed")
    refused(sign_up(auth, "a" * 250 + "@example.com"), 400, "validation_failed")
    refused(httpx.post(f"{auth['auth']}/signup", json={"password": PASSWORD}), 400, "validation_failed")
    refused(httpx.post(f"{auth['auth']}/signup", json={"phone": "+15555550100", "password": PASSWORD}), 400,
            "phone_provider_disabled")  # fmt: skip

    assert sign_up(auth, "taken@example.com").status_code == 200
    assert refused(sign_up(auth, "TAKEN@example.com"), 422, "user_already_exists") == "User already registered"
    assert fetch(auth["db"], "select count(*) from auth.users where email = 'taken@example.com'") == [(1,)]

    url = f"{auth['auth']}/signup"
    big = b'{"email": "big@example.com", "password": "' + b"x" * (local_auth.MAX_BODY_BYTES) + b'"}'
    refused(httpx.post(url, content=big), 413, "request_entity_too_large")
    refused(httpx.post(url, content=iter([big[:40_000], big[40_000:]])), 413, "request_entity_too_large")  # chunked
    refused(httpx.post(url, content=b"x" * (2 * 1024 * 1024)), 413, "request_entity_too_large")  # past the app's cap
    for body in (b"{", b"", b"[]", b'"text"', b"\xff\xfe{}", b"[" * 100 + b"]" * 100):
        refused(httpx.post(url, content=body), 400, "bad_json")
    for fields in ({"email": 1}, {"password": ["x"]}, {"data": "text"}, {"password": "nul\u0000byte"}):
        refused(httpx.post(url, json={"email": "types@example.com", "password": PASSWORD, **fields}), 400, "bad_json")
    nan = b'{"email": "nan@example.com", "password": "correct horse", "data": {"n": NaN}}'
    refused(httpx.post(url, content=nan), 400, "bad_json")
    assert fetch(auth["db"], "select count(*) from auth.users") == [(2,)]


def test_grant_types_and_error_formats(auth: dict[str, str]) -> None:
    for query in ("?grant_type=authorization_code", "?grant_type=", ""):
        response = httpx.post(f"{auth['auth']}/token{query}", json={"email": "x@example.com", "password": PASSWORD})
        assert refused(response, 400, "invalid_credentials") == "unsupported_grant_type"
    pkce = httpx.post(f"{auth['auth']}/token?grant_type=pkce", json={"email": "x@example.com", "password": PASSWORD})
    assert "both auth code and code verifier" in refused(pkce, 400, "validation_failed")

    # A client asking for API version 2024-01-01 (supabase_auth does) gets that version's error body.
    versioned = sign_in(auth, "nobody@example.com", headers=VERSION)
    assert versioned.status_code == 400
    assert versioned.json() == {"code": "invalid_credentials", "message": "Invalid login credentials"}
    assert versioned.headers["x-supabase-api-version"] == "2024-01-01"
    legacy = sign_in(auth, "nobody@example.com", headers={"X-Supabase-Api-Version": "2023-06-01"})
    assert legacy.json() == {"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}
    assert "x-supabase-api-version" not in legacy.headers


def test_the_supabase_auth_client_works_unchanged(auth: dict[str, str]) -> None:
    async def flow() -> None:
        client = AsyncGoTrueClient(url=auth["auth"], auto_refresh_token=False, persist_session=False)
        async with client:
            signed_up = await client.sign_up({"email": "Alan@Example.com", "password": PASSWORD})
            assert signed_up.session is not None and signed_up.user is not None
            assert signed_up.user.email == "alan@example.com"
            with pytest.raises(AuthApiError) as duplicate:
                await client.sign_up({"email": "alan@example.com", "password": PASSWORD})
            assert duplicate.value.code == "user_already_exists" and duplicate.value.status == 422
            with pytest.raises(AuthWeakPasswordError):
                await client.sign_up({"email": "weak@example.com", "password": "123"})

            with pytest.raises(AuthApiError) as wrong:
                await client.sign_in_with_password({"email": "alan@example.com", "password": "wrong password"})
            assert wrong.value.message == "Invalid login credentials" and wrong.value.code == "invalid_credentials"
            signed_in = await client.sign_in_with_password({"email": "alan@example.com", "password": PASSWORD})
            assert signed_in.session is not None and signed_in.user is not None
            assert signed_in.user.id == signed_up.user.id

            refreshed = await client.refresh_session()
            assert refreshed.session is not None
            assert refreshed.session.refresh_token != signed_in.session.refresh_token
            assert decode_user_token(refreshed.session.access_token).id == signed_in.user.id

            shown = await client.get_user()
            assert shown is not None and shown.user.id == signed_in.user.id and shown.user.email == "alan@example.com"

            await client.sign_out()
            assert await client.get_session() is None
            with pytest.raises(AuthApiError) as gone:
                await client.get_user(refreshed.session.access_token)
            assert gone.value.code == "session_not_found"
            with pytest.raises(AuthApiError) as used:
                await client.refresh_session(refreshed.session.refresh_token)
            assert used.value.code == "refresh_token_not_found"

    asyncio.run(flow())
    assert fetch(auth["db"], "select count(*) from auth.sessions") == [(0,)]


def test_no_password_or_token_reaches_a_log(auth: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    session = sign_up(auth, "logs@example.com").json()
    rotated = refresh(auth, session["refresh_token"]).json()
    sign_in(auth, "logs@example.com", "a wrong password")
    logout(auth, rotated["access_token"])
    for secret in (PASSWORD, "a wrong password", session["refresh_token"], rotated["refresh_token"]):
        assert secret not in caplog.text
    assert session["access_token"] not in caplog.text


def test_mounted_only_on_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    def auth_routes(app: FastAPI) -> list[str]:
        return [c.path_format for c in iter_route_contexts(app.routes) if c.path_format.startswith("/auth/v1/")]

    monkeypatch.setenv(LOCAL_STACK_ENV, "0")
    elsewhere = FastAPI()
    local_auth.mount_local_auth(elsewhere)
    assert auth_routes(elsewhere) == []

    monkeypatch.setenv(LOCAL_STACK_ENV, "1")
    here = FastAPI()
    local_auth.mount_local_auth(here)
    local_auth.mount_local_auth(here)  # once, however often it is asked
    assert sorted(set(auth_routes(here))) == [
        "/auth/v1/logout",
        "/auth/v1/otp",
        "/auth/v1/signup",
        "/auth/v1/token",
        "/auth/v1/user",
        "/auth/v1/verify",
    ]
    assert "/auth/v1/token" not in str(here.openapi())  # Auth's API, not Trove's


def test_auth_tables_are_the_services_alone(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        apply_local_stack(conn)  # again: supabase/local/*.sql are idempotent
    tables = fetch(
        db_url,
        "select c.relname, c.relrowsecurity,"
        " (select count(*) from pg_policy as p where p.polrelid = c.oid),"
        " has_table_privilege('anon', c.oid, 'select, insert, update, delete'),"
        " has_table_privilege('authenticated', c.oid, 'select, insert, update, delete')"
        " from pg_class as c where c.oid in ('auth.sessions'::regclass, 'auth.refresh_tokens'::regclass,"
        " 'auth.flow_state'::regclass, 'auth.one_time_tokens'::regclass, 'auth.mfa_amr_claims'::regclass)"
        " order by c.relname",
    )
    assert tables == [
        (name, True, 0, False, False)
        for name in ("flow_state", "mfa_amr_claims", "one_time_tokens", "refresh_tokens", "sessions")
    ]
    assert fetch(db_url, "select has_sequence_privilege('authenticated', 'auth.refresh_tokens_id_seq', 'usage')") == [
        (False,)
    ]


def test_the_demo_user_signs_in_with_its_kept_password(
    auth: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TROVE_STATE_DIR", str(tmp_path / "state"))
    apply_seed(auth["db"])
    password = set_demo_password(auth["db"])
    assert password == demo_password()  # kept: the same every time
    path = password_path()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    (stored,) = fetch(auth["db"], "select encrypted_password from auth.users where id = %s", DEMO_USER_ID)[0]
    assert stored.startswith("$2a$10$")
    assert set_demo_password(auth["db"]) == password
    assert fetch(auth["db"], "select encrypted_password from auth.users where id = %s", DEMO_USER_ID) == [(stored,)]

    signed_in = sign_in(auth, "demo@trove.local", password)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["id"] == DEMO_USER_ID
    assert decode_user_token(signed_in.json()["access_token"]).id == DEMO_USER_ID

    # A password file opened up, or emptied, is put right.
    path.chmod(0o644)
    assert demo_password() == password and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.write_text("")
    renewed = set_demo_password(auth["db"])
    assert renewed != password and sign_in(auth, "demo@trove.local", renewed).status_code == 200
    refused(sign_in(auth, "demo@trove.local", password), 400, "invalid_credentials")

    fetch(auth["db"], "delete from auth.users where id = %s returning id", DEMO_USER_ID)
    with pytest.raises(RuntimeError, match="seed"):
        set_demo_password(auth["db"])


# Sign-in links (magic links), the PKCE flow, as the web app uses them.

CALLBACK = "/app/auth/callback"
VERIFIER_KEY = f"{STORAGE_KEY}-code-verifier"  # where supabase_auth keeps the PKCE flow's code verifier


def callback(auth: dict[str, str], query: str = "") -> str:
    return f"{auth['url']}{CALLBACK}{query}"


def client_for(auth: dict[str, str], storage: AsyncMemoryStorage | None = None, flow: str = "pkce") -> Any:
    return AsyncGoTrueClient(
        url=auth["auth"], auto_refresh_token=False, persist_session=False, flow_type=flow, storage=storage
    )


def request_link(
    auth: dict[str, str],
    email: str,
    redirect: str | None = None,
    *,
    create: bool = False,
    flow: str = "pkce",
    **options: Any,
) -> str | None:
    """`sign_in_with_otp` as the web app calls it; the code verifier the client made (None: implicit flow)."""

    async def ask() -> str | None:
        storage = AsyncMemoryStorage()
        async with client_for(auth, storage, flow) as client:
            settings = {"should_create_user": create, **options}
            if redirect is not None:
                settings["email_redirect_to"] = redirect
            answer = await client.sign_in_with_otp({"email": email, "options": settings})
            assert answer.user is None and answer.session is None
        return await storage.get_item(VERIFIER_KEY)

    return asyncio.run(ask())


def exchange(auth: dict[str, str], code: str, verifier: str) -> Any:
    """`exchange_code_for_session` as the web app's callback calls it: a fresh client, its own verifier."""

    async def swap() -> Any:
        async with client_for(auth) as client:
            return await client.exchange_code_for_session(
                {"auth_code": code, "code_verifier": verifier, "redirect_to": callback(auth)}
            )

    return asyncio.run(swap())


def exchange_refused(auth: dict[str, str], code: str, verifier: str) -> AuthApiError:
    with pytest.raises(AuthApiError) as refusal:
        exchange(auth, code, verifier)
    return refusal.value


def mails(auth: dict[str, str]) -> list[Path]:
    return sorted((Path(auth["state"]) / "mailbox").glob("*.eml"))


def read_mail(path: Path) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    return message


def link_in(path: Path) -> str:
    body = read_mail(path).get_body(("plain",))
    assert body is not None
    links = re.findall(r"https?://\S+/auth/v1/verify\?\S+", body.get_content())
    assert len(links) == 1
    return str(links[0])


def latest_link(auth: dict[str, str]) -> str:
    return link_in(mails(auth)[-1])


def link_params(link: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(link).query))


def follow(link: str) -> httpx.Response:
    """The browser opening the link: one request, the redirect not followed."""
    return httpx.get(link, follow_redirects=False)


def code_from(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    return dict(parse_qsl(urlsplit(response.headers["location"]).query))["code"]


def challenge_of(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def amr_of(access_token: str) -> list[str]:
    claims = jwt.decode(access_token, LOCAL_JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    return [entry["method"] for entry in claims["amr"]]


def link_refused(response: httpx.Response, auth: dict[str, str], *, pkce: bool = True) -> dict[str, str]:
    """A refused link's redirect: to the callback, Auth's error in the fragment (and the query, PKCE)."""
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == callback(auth)
    fragment = dict(parse_qsl(location.fragment, keep_blank_values=True))
    assert fragment["sb"] == ""
    query = dict(parse_qsl(location.query))
    if pkce:
        assert {key: query[key] for key in ("error", "error_code", "error_description")} == {
            key: fragment[key] for key in ("error", "error_code", "error_description")
        }
    else:
        assert "error_code" not in query and "code" not in query
    return fragment


def test_magic_link_sign_in_with_the_pkce_flow(auth: dict[str, str]) -> None:
    user_id = sign_up(auth, "ada@example.com").json()["user"]["id"]
    verifier = request_link(auth, "Ada@Example.com", callback(auth, "?next=%2Fapp%2Farchive"))
    assert verifier and len(verifier) >= 43

    # The email: to the user, with a link to Auth's /verify carrying the token, the type and the redirect.
    (path,) = mails(auth)
    message = read_mail(path)
    assert message["To"] == "ada@example.com" and message["Subject"] == "Your Magic Link"
    assert message["From"] and message["Date"] and message["Message-ID"]
    link = link_in(path)
    html = message.get_body(("html",))
    assert html is not None and link.replace("&", "&amp;") in html.get_content()
    assert link.startswith(f"{auth['auth']}/verify?")
    params = link_params(link)
    token = params["token"]
    assert token.startswith("pkce_") and params["type"] == "magiclink"
    assert params["redirect_to"] == callback(auth, "?next=%2Fapp%2Farchive")

    # Stored: the token's SHA-256 only, and the flow state with the client's challenge.
    stored = fetch(
        auth["db"], "select user_id::text, token_type::text, token_hash, relates_to from auth.one_time_tokens"
    )
    assert stored == [(user_id, "recovery_token", hashlib.sha256(token.encode()).hexdigest(), "ada@example.com")]
    flows = fetch(
        auth["db"],
        "select user_id::text, code_challenge, code_challenge_method::text, provider_type, authentication_method,"
        " auth_code_issued_at from auth.flow_state",
    )
    assert flows == [(user_id, challenge_of(verifier), "s256", "magiclink", "magiclink", None)]
    everything = str(fetch(auth["db"], "select row_to_json(t)::text from auth.one_time_tokens as t")) + str(
        fetch(auth["db"], "select row_to_json(f)::text from auth.flow_state as f")
    )
    assert token not in everything and token[5:] not in everything and verifier not in everything

    # Opening the link: used up, and a redirect to the callback with the auth code (its own query kept).
    opened = follow(link)
    assert opened.status_code == 303 and opened.headers["cache-control"] == "no-store"
    location = urlsplit(opened.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == callback(auth)
    query = dict(parse_qsl(location.query))
    assert query["next"] == "/app/archive" and uuid.UUID(query["code"])
    assert fetch(auth["db"], "select count(*) from auth.one_time_tokens") == [(0,)]
    assert fetch(auth["db"], "select auth_code_issued_at is not null from auth.flow_state") == [(True,)]

    # The callback exchanges the code with the verifier: a session like a password sign-in's, amr magiclink.
    signed_in = exchange(auth, query["code"], verifier)
    assert signed_in.session is not None and signed_in.user is not None
    assert signed_in.user.id == user_id and signed_in.user.email == "ada@example.com"
    assert decode_user_token(signed_in.session.access_token).id == user_id
    assert amr_of(signed_in.session.access_token) == ["magiclink"]
    assert fetch(auth["db"], "select count(*) from auth.flow_state") == [(0,)]
    refreshed = refresh(auth, signed_in.session.refresh_token).json()
    assert amr_of(refreshed["access_token"]) == ["magiclink"]  # the session keeps how it was signed in to
    assert get_user(auth, refreshed["access_token"]).json()["id"] == user_id

    # The code is exchanged once; the link is used once.
    reused = exchange_refused(auth, query["code"], verifier)
    assert reused.code == "flow_state_not_found" and reused.status == 404
    again = link_refused(follow(link), auth)
    assert again["error"] == "access_denied" and again["error_code"] == "otp_expired"
    assert again["error_description"] == "Email link is invalid or has expired"


def test_the_code_needs_its_verifier_and_is_short_lived(auth: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    sign_up(auth, "grace@example.com")
    verifier = request_link(auth, "grace@example.com", callback(auth))
    assert verifier is not None
    code = code_from(follow(latest_link(auth)))

    for wrong in ("x" * 64, verifier[:-1] + ("a" if verifier[-1] != "a" else "b"), challenge_of(verifier)):
        refusal = exchange_refused(auth, code, wrong)
        assert refusal.code == "bad_code_verifier" and refusal.status == 400
    assert refusal.message == "code challenge does not match previously saved code verifier"
    assert exchange(auth, code, verifier).session is not None  # a wrong verifier does not spend the code

    unknown = exchange_refused(auth, str(uuid.uuid4()), verifier)
    assert unknown.code == "flow_state_not_found" and unknown.status == 404
    url = f"{auth['auth']}/token?grant_type=pkce"
    refused(httpx.post(url, json={"auth_code": code}), 400, "validation_failed")
    refused(httpx.post(url, json={"code_verifier": verifier}), 400, "validation_failed")
    refused(httpx.post(url, json={"auth_code": "x" * 300, "code_verifier": verifier}), 404, "flow_state_not_found")

    # The code must be exchanged within FLOW_STATE_SECONDS of the link's opening.
    monkeypatch.setattr(local_auth, "EMAIL_INTERVAL_SECONDS", 0.0)
    verifier = request_link(auth, "grace@example.com", callback(auth))
    assert verifier is not None
    code = code_from(follow(latest_link(auth)))
    monkeypatch.setattr(local_auth, "FLOW_STATE_SECONDS", 0.0)
    expired = exchange_refused(auth, code, verifier)
    assert expired.code == "flow_state_expired" and expired.status == 422


def test_an_expired_link_is_refused(auth: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    sign_up(auth, "linus@example.com")
    request_link(auth, "linus@example.com", callback(auth))
    monkeypatch.setattr(local_auth, "LINK_VALIDITY_SECONDS", 0.0)
    refusal = link_refused(follow(latest_link(auth)), auth)
    assert refusal["error_code"] == "otp_expired" and refusal["error"] == "access_denied"
    assert fetch(auth["db"], "select auth_code_issued_at from auth.flow_state") == [(None,)]  # no code issued


def test_one_email_a_minute_and_a_new_link_replaces_the_old(
    auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up(auth, "barbara@example.com")
    first_verifier = request_link(auth, "barbara@example.com", callback(auth))
    first_link = latest_link(auth)
    with pytest.raises(AuthApiError) as limited:
        request_link(auth, "barbara@example.com", callback(auth))
    assert limited.value.status == 429 and limited.value.code == "over_email_send_rate_limit"
    assert re.fullmatch(r"For security purposes, you can only request this after 5\d seconds\.", limited.value.message)
    assert len(mails(auth)) == 1  # nothing sent, nothing replaced
    assert len(fetch(auth["db"], "select id from auth.flow_state")) == 1

    monkeypatch.setattr(local_auth, "EMAIL_INTERVAL_SECONDS", 0.0)
    second_verifier = request_link(auth, "barbara@example.com", callback(auth))
    assert second_verifier is not None and first_verifier is not None
    assert len(mails(auth)) == 2 and latest_link(auth) != first_link
    assert fetch(auth["db"], "select count(*) from auth.one_time_tokens") == [(1,)]
    assert fetch(auth["db"], "select count(*) from auth.flow_state") == [(1,)]
    assert link_refused(follow(first_link), auth)["error_code"] == "otp_expired"
    code = code_from(follow(latest_link(auth)))
    assert exchange_refused(auth, code, first_verifier).code == "bad_code_verifier"
    assert exchange(auth, code, second_verifier).session is not None


def test_unknown_addresses_are_signed_up_only_when_asked(auth: dict[str, str]) -> None:
    with pytest.raises(AuthApiError) as refusal:
        request_link(auth, "nobody@example.com", callback(auth))
    # Auth's answer (which does tell that the address has no account): no email, no user.
    assert refusal.value.status == 422 and refusal.value.code == "otp_disabled"
    assert refusal.value.message == "Signups not allowed for otp"
    assert mails(auth) == [] and fetch(auth["db"], "select count(*) from auth.users") == [(0,)]

    verifier = request_link(auth, "New@Example.com", callback(auth), create=True, data={"name": "New"})
    assert verifier is not None
    ((user_id, confirmed, password, metadata),) = fetch(
        auth["db"],
        "select id::text, email_confirmed_at is not null, encrypted_password, raw_user_meta_data from auth.users"
        " where email = 'new@example.com'",
    )
    assert confirmed and password.startswith("$2a$10$") and metadata == {"name": "New"}
    signed_in = exchange(auth, code_from(follow(latest_link(auth))), verifier)
    assert signed_in.user is not None and signed_in.user.id == user_id
    assert signed_in.user.user_metadata == {"name": "New"}


def test_redirects_stay_on_the_sites_origin(auth: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_auth, "EMAIL_INTERVAL_SECONDS", 0.0)
    sign_up(auth, "edsger@example.com")
    site = auth["url"]
    netloc = urlsplit(site).netloc
    port = urlsplit(site).port
    attempts = [
        "https://evil.example/app/auth/callback",
        f"http://{netloc}@evil.example/app/auth/callback",
        f"http://evil.example\\@{netloc}/app/auth/callback",
        f"http://evil.example%5C@{netloc}/app/auth/callback",
        "//evil.example/app/auth/callback",
        "javascript:alert(document.domain)",
        f"https://{netloc}/app/auth/callback",  # another scheme
        f"http://127.0.0.1:{(port or 80) + 1}/app/auth/callback",  # another port
        f"http://localhost:{port}/app/auth/callback",  # another host
        f"http://{netloc}\t.evil.example/app/auth/callback",
        "http://" + "a" * 3000,
    ]
    for attempt in attempts:
        request_link(auth, "edsger@example.com", attempt)
        assert link_params(latest_link(auth))["redirect_to"] == site, attempt
    verifier = request_link(auth, "edsger@example.com", callback(auth))
    assert verifier is not None
    link = latest_link(auth)

    # A link whose redirect_to was changed on the way sends the browser to the site, never elsewhere.
    tampered = link.replace(
        f"redirect_to={quote(callback(auth), safe='')}", "redirect_to=https%3A%2F%2Fevil.example%2F"
    )
    assert tampered != link
    opened = follow(tampered)
    assert opened.status_code == 303 and opened.headers["location"].startswith(f"{site}?code=")
    refusal = follow(tampered)
    assert refusal.headers["location"].startswith(f"{site}?error=access_denied")
    assert exchange(auth, code_from(opened), verifier).session is not None


def test_link_requests_are_checked_as_auth_checks_them(auth: dict[str, str]) -> None:
    url = f"{auth['auth']}/otp"
    sign_up(auth, "alan@example.com")
    good = {"email": "alan@example.com", "create_user": False, "code_challenge": "a" * 43}
    plain = refused(httpx.post(url, json={**good, "code_challenge_method": "plain"}), 400, "validation_failed")
    assert "plain" in plain and "only s256" in plain
    refused(httpx.post(url, json={**good, "code_challenge_method": "S512"}), 400, "validation_failed")
    refused(httpx.post(url, json=good), 400, "validation_failed")  # a challenge without its method
    refused(httpx.post(url, json={**good, "code_challenge": None, "code_challenge_method": "s256"}), 400,
            "validation_failed")  # fmt: skip
    for challenge in ("a" * 42, "a" * 129, "a" * 42 + "+"):
        body = {**good, "code_challenge": challenge, "code_challenge_method": "s256"}
        assert "code challenge" in refused(httpx.post(url, json=body), 400, "validation_failed")
    refused(httpx.post(url, json={"email": "not-an-email", "create_user": False}), 400, "validation_failed")
    refused(httpx.post(url, json={"phone": "+15555550100"}), 400, "phone_provider_disabled")
    refused(httpx.post(url, json={}), 400, "validation_failed")
    refused(httpx.post(url, json={"email": "alan@example.com", "channel": "sms"}), 400, "validation_failed")
    refused(httpx.post(url, json={"email": "alan@example.com", "create_user": "yes"}), 400, "bad_json")
    refused(httpx.post(url, json={"email": "alan@example.com", "data": [1]}), 400, "bad_json")
    assert mails(auth) == []

    # The answer to a sent link, as Auth's: an empty object.
    sent = httpx.post(url, json={**good, "code_challenge_method": "s256"}, headers=VERSION)
    assert sent.status_code == 200 and sent.json() == {}
    versioned = httpx.post(url, json={"email": "nobody@example.com", "create_user": False}, headers=VERSION)
    assert versioned.status_code == 422
    assert versioned.json() == {"code": "otp_disabled", "message": "Signups not allowed for otp"}


def test_verify_refusals_the_implicit_flow_and_token_hashes(
    auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_auth, "EMAIL_INTERVAL_SECONDS", 0.0)
    user_id = sign_up(auth, "tony@example.com").json()["user"]["id"]
    verify = f"{auth['auth']}/verify"
    refused(httpx.get(verify, params={"token": "pkce_x"}), 400, "validation_failed")
    refused(httpx.get(verify, params={"type": "magiclink"}), 400, "validation_failed")
    target = {"redirect_to": callback(auth)}
    unknown = httpx.get(verify, params={"token": "pkce_" + "0" * 56, "type": "magiclink", **target})
    assert link_refused(unknown, auth)["error_code"] == "otp_expired"
    assert link_refused(httpx.get(verify, params={"token": "0" * 56, "type": "magiclink", **target}), auth,
                        pkce=False)["error_code"] == "otp_expired"  # fmt: skip
    bad_type = link_refused(httpx.get(verify, params={"token": "pkce_x", "type": "sms", **target}), auth)
    assert bad_type["error"] == "invalid_request" and bad_type["error_code"] == "validation_failed"

    # The implicit flow (no code challenge): the link's token is unmarked, the session comes in the fragment.
    assert request_link(auth, "tony@example.com", callback(auth), flow="implicit") is None
    link = latest_link(auth)
    assert not link_params(link)["token"].startswith("pkce_")
    opened = follow(link)
    assert opened.status_code == 303
    location = urlsplit(opened.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == callback(auth) and not location.query
    fragment = dict(parse_qsl(location.fragment, keep_blank_values=True))
    assert fragment["type"] == "magiclink" and fragment["token_type"] == "bearer" and fragment["sb"] == ""
    assert decode_user_token(fragment["access_token"]).id == user_id
    assert amr_of(fragment["access_token"]) == ["otp"]
    assert refresh(auth, fragment["refresh_token"]).status_code == 200

    # verify_otp with a link's token hash (an app verifying links itself): a session at once, once.
    request_link(auth, "tony@example.com", callback(auth))
    token = link_params(latest_link(auth))["token"]

    async def verify_hash(token_hash: str) -> Any:
        async with client_for(auth, flow="implicit") as client:
            return await client.verify_otp({"token_hash": token_hash, "type": "magiclink"})

    verified = asyncio.run(verify_hash(token))
    assert verified.session is not None and verified.user is not None and verified.user.id == user_id
    assert amr_of(verified.session.access_token) == ["otp"]
    assert fetch(auth["db"], "select count(*) from auth.flow_state") == [(0,)]
    with pytest.raises(AuthApiError) as used:
        asyncio.run(verify_hash(token))
    assert used.value.code == "otp_expired" and used.value.status == 403

    # Six-digit codes are never sent here; the other refusals are Auth's.
    code = httpx.post(verify, json={"type": "email", "email": "tony@example.com", "token": "123456"})
    assert refused(code, 403, "otp_expired") == "Token has expired or is invalid"
    refused(httpx.post(verify, json={"type": "magiclink"}), 400, "validation_failed")
    refused(httpx.post(verify, json={"token_hash": token}), 400, "validation_failed")
    refused(httpx.post(verify, json={"type": "magiclink", "token_hash": token, "token": "1"}), 400, "validation_failed")
    refused(httpx.post(verify, json={"type": "magiclink", "token_hash": token, "email": "tony@example.com"}), 400,
            "validation_failed")  # fmt: skip
    refused(httpx.post(verify, json={"type": "sms", "token_hash": token}), 400, "validation_failed")


def test_the_mailbox_is_the_users_alone(auth: dict[str, str]) -> None:
    mailbox = Path(auth["state"]) / "mailbox"
    mailbox.mkdir(parents=True, mode=0o755)
    mailbox.chmod(0o755)
    sign_up(auth, "ken@example.com")
    request_link(auth, "ken@example.com", callback(auth))
    (path,) = mails(auth)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(mailbox).st_mode) == 0o700  # tightened
    assert re.fullmatch(r"\d{8}T\d{12}Z-[0-9a-f]{8}\.eml", path.name)
    assert path.read_bytes().count(link_in(path).encode()) == 1  # the link on one line, as it is


def test_no_link_token_code_or_verifier_reaches_a_log(auth: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # uvicorn's access log as the service sets it up (trove.http.log_redaction): its lines hold each request's
    # query string, the link's token and the callback's code among them.
    access = logging.getLogger("uvicorn.access")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler, redactor, level = Collect(), ArgsRedactor(), access.level
    access.addHandler(handler)
    access.addFilter(redactor)
    access.setLevel(logging.INFO)
    try:
        sign_up(auth, "logs@example.com")
        verifier = request_link(auth, "logs@example.com", callback(auth))
        assert verifier is not None
        link = latest_link(auth)
        opened = follow(link)
        code = code_from(opened)
        session = exchange(auth, code, verifier).session
        follow(link)  # used: refused
    finally:
        access.removeHandler(handler)
        access.removeFilter(redactor)
        access.setLevel(level)
    token = link_params(link)["token"]
    # The service's records: not those of this test's own HTTP clients (the browser's, the web app's).
    client = ("httpx", "httpcore", "asyncio")
    service = [record.getMessage() for record in caplog.records if not record.name.startswith(client)]
    assert any("a sign-in email was written to" in line for line in service)
    assert any("/auth/v1/verify?token=[redacted]" in line for line in lines), lines
    logged = "\n".join(service + lines)
    for secret in (token, token[5:], code, verifier, session.access_token, session.refresh_token):
        assert secret not in logged


def test_racing_requests_get_one_email_one_code_one_session(auth: dict[str, str]) -> None:
    sign_up(auth, "race@example.com")
    verifier = "v" * 50
    body = {"email": "race@example.com", "create_user": False, "code_challenge": challenge_of(verifier),
            "code_challenge_method": "s256"}  # fmt: skip

    async def race(send: Any, times: int = 6) -> list[httpx.Response]:
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(*(send(client) for _ in range(times)))

    asked = asyncio.run(race(lambda client: client.post(f"{auth['auth']}/otp", json=body)))
    assert sorted(answer.status_code for answer in asked) == [200] + [429] * 5
    (path,) = mails(auth)
    link = link_in(path)
    opened = asyncio.run(race(lambda client: client.get(link)))
    queries = [dict(parse_qsl(urlsplit(answer.headers["location"]).query)) for answer in opened]
    codes = [query["code"] for query in queries if "code" in query]
    assert len(codes) == 1 and all(answer.status_code == 303 for answer in opened)
    url = f"{auth['auth']}/token?grant_type=pkce"
    swapped = asyncio.run(
        race(lambda client: client.post(url, json={"auth_code": codes[0], "code_verifier": verifier}))
    )
    assert sorted(answer.status_code for answer in swapped) == [200] + [404] * 5
    methods = fetch(auth["db"], "select authentication_method, count(*) from auth.mfa_amr_claims group by 1 order by 1")
    assert methods == [("magiclink", 1), ("password", 1)]  # the sign-up's, and the one link's
