"""The local stand-in of Supabase Auth's REST API (trove.http.local_auth), over real HTTP on a real port with
real Postgres: sign-up, sign-in, refresh token rotation and reuse detection, sign-out, the user endpoint, the
refusals in Auth's error format, the `supabase_auth` client unchanged against it, and the demo user's password
(trove.demo_login)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from supabase_auth import AsyncGoTrueClient
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError
from tests.worker_harness import RING

from trove.config import LOCAL_JWT_SECRET, LOCAL_STACK_ENV
from trove.db.cluster import free_port
from trove.db.local import apply_seed
from trove.demo_login import DEMO_USER_ID, demo_password, password_path, set_demo_password
from trove.http import local_auth
from trove.http.app import create_app
from trove.http.auth import decode_user_token, issue_local_token
from trove.simulators.serve import BackgroundServer

PASSWORD = "correct horse battery"
VERSION = {"X-Supabase-Api-Version": "2024-01-01"}


@pytest.fixture
def auth(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The HTTP service with the stand-in mounted, on a real port."""
    port = free_port()
    monkeypatch.setenv("TROVE_PUBLIC_URL", f"http://127.0.0.1:{port}")
    app = create_app(db_url, RING)
    local_auth.mount_local_auth(app)
    with BackgroundServer(app, port) as server:
        yield {"url": server.url, "auth": f"{server.url}/auth/v1", "db": db_url}


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
    for query in ("?grant_type=pkce", "?grant_type=", ""):
        response = httpx.post(f"{auth['auth']}/token{query}", json={"email": "x@example.com", "password": PASSWORD})
        assert refused(response, 400, "invalid_credentials") == "unsupported_grant_type"

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
    assert sorted(auth_routes(here)) == ["/auth/v1/logout", "/auth/v1/signup", "/auth/v1/token", "/auth/v1/user"]
    assert "/auth/v1/token" not in str(here.openapi())  # Auth's API, not Trove's


def test_auth_tables_are_the_services_alone(db_url: str) -> None:
    tables = fetch(
        db_url,
        "select c.relname, c.relrowsecurity,"
        " (select count(*) from pg_policy as p where p.polrelid = c.oid),"
        " has_table_privilege('anon', c.oid, 'select, insert, update, delete'),"
        " has_table_privilege('authenticated', c.oid, 'select, insert, update, delete')"
        " from pg_class as c where c.oid in ('auth.sessions'::regclass, 'auth.refresh_tokens'::regclass)"
        " order by c.relname",
    )
    assert tables == [("refresh_tokens", True, 0, False, False), ("sessions", True, 0, False, False)]
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
