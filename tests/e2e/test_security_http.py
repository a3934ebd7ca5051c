"""Issue 10, items 5, 7, 8, 9 and 11, each as the attack or the bad input first, then the safe outcome:

5. a valid token for a user Trove does not know cannot write (403, not a 500 from a foreign key);
7. a token without `exp` is refused;
8. the Supabase CLI's published JWT secret is only for the local stack: `trove serve` and `trove worker`
   refuse to start without a real secret elsewhere, and the decode path refuses HS256 tokens then;
9. an OAuth connect link completes only in the browser that started it;
11. `trove serve` writes no OAuth code/state, webhook secret or token-like query value to its log."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import HTTPException
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.strava_harness import consent_on_strava, start_connect, strava_env, user
from tests.worker_harness import RING, TEST_KEY, query, scalar

from trove.config import LOCAL_JWT_SECRET, LOCAL_STACK_ENV, PROJECT_ROOT
from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.http.auth import UNKNOWN_USER, decode_user_token, issue_local_token
from trove.http.oauth import BROWSER_COOKIE
from trove.simulators.serve import BackgroundServer

REMOTE_DB = "postgresql://postgres:secret@db.trove-test.invalid:5432/postgres"
NO_TOKEN_CONFIG = "no way to verify user tokens: set SUPABASE_JWT_SECRET"


@pytest.fixture
def service(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The HTTP service alone (no Strava configured) on a real port."""
    monkeypatch.setenv("TROVE_TOKEN_KEYS", f"test:{TEST_KEY}")
    with BackgroundServer(create_app(db_url, RING), free_port()) as server:
        yield server.url


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(**extra: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "sub": "7b0d2c1e-0000-4000-8000-000000000001",
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 60,
        **extra,
    }


def without(mapping: dict[str, object], *names: str) -> dict[str, object]:
    return {k: v for k, v in mapping.items() if k not in names}


# -- 5. a valid token for a user Trove does not know ------------------------------------------------------


def test_writes_with_a_valid_token_for_an_unknown_user_are_403_not_500(service: str, db_url: str) -> None:
    stranger = bearer(issue_local_token(str(uuid.uuid4())))  # signed correctly; no auth.users/public.users row
    account = str(uuid.uuid4())
    attempts = {
        "POST /api/keys": httpx.post(f"{service}/api/keys", json={"name": "site"}, headers=stranger),
        "DELETE /api/keys/{id}": httpx.delete(f"{service}/api/keys/{uuid.uuid4()}", headers=stranger),
        "POST /api/sync/{account}": httpx.post(f"{service}/api/sync/{account}", headers=stranger),
        "POST oauth start": httpx.post(f"{service}/functions/v1/oauth-strava/start", headers=stranger),
    }
    for route, response in attempts.items():
        assert (route, response.status_code, response.json()) == (route, 403, {"detail": UNKNOWN_USER})
    assert scalar(db_url, "select count(*) from public.api_keys") == 0
    assert scalar(db_url, "select count(*) from public.oauth_states") == 0


def test_a_user_deleted_after_signing_in_can_no_longer_create_keys(service: str, db_url: str) -> None:
    user_id, headers = user(db_url, "alice")
    assert httpx.post(f"{service}/api/keys", json={"name": "site"}, headers=headers).status_code == 201
    query(db_url, "delete from auth.users where id = %s returning id", (user_id,))  # the token is still valid
    refused = httpx.post(f"{service}/api/keys", json={"name": "again"}, headers=headers)
    assert refused.status_code == 403 and refused.json() == {"detail": UNKNOWN_USER}
    assert scalar(db_url, "select count(*) from public.api_keys") == 0  # the first key went with the user


def test_a_token_whose_subject_is_not_a_user_id_is_401(service: str) -> None:
    token = jwt.encode(claims(sub="not-a-uuid"), LOCAL_JWT_SECRET, algorithm="HS256")
    response = httpx.post(f"{service}/api/keys", json={"name": "site"}, headers=bearer(token))
    assert response.status_code == 401 and response.json() == {"detail": "the token's subject is not a user id"}


# -- 7. tokens without exp ----------------------------------------------------------------------------------


@pytest.fixture
def jwks() -> Iterator[tuple[rsa.RSAPrivateKey, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    public |= {"kid": "key-1", "alg": "RS256", "use": "sig"}

    async def keys(_: object) -> JSONResponse:
        return JSONResponse({"keys": [public]})

    with BackgroundServer(Starlette(routes=[Route("/jwks", keys)]), free_port()) as server:
        yield key, f"{server.url}/jwks"


@pytest.mark.parametrize("missing", ["exp", "sub"])
def test_an_hs256_token_without_exp_or_sub_is_refused(missing: str, service: str, db_url: str) -> None:
    user_id, _ = user(db_url, "alice")
    token = jwt.encode(without(claims(sub=user_id), missing), LOCAL_JWT_SECRET, algorithm="HS256")
    with pytest.raises(HTTPException) as refused:
        decode_user_token(token)
    assert refused.value.status_code == 401
    assert refused.value.detail == f'invalid access token: Token is missing the "{missing}" claim'
    over_http = httpx.get(f"{service}/api/keys", headers=bearer(token))
    assert over_http.status_code == 401 and f'missing the "{missing}" claim' in over_http.json()["detail"]


def test_an_rs256_token_without_exp_is_refused(
    jwks: tuple[rsa.RSAPrivateKey, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, url = jwks
    monkeypatch.setenv("SUPABASE_JWKS_URL", url)
    assert decode_user_token(jwt.encode(claims(), key, algorithm="RS256", headers={"kid": "key-1"}))  # control
    token = jwt.encode(without(claims(), "exp"), key, algorithm="RS256", headers={"kid": "key-1"})
    with pytest.raises(HTTPException) as refused:
        decode_user_token(token)
    assert refused.value.status_code == 401 and 'missing the "exp" claim' in str(refused.value.detail)


# -- 8. the published local JWT secret ----------------------------------------------------------------------


def off_local_stack_env(**extra: str) -> dict[str, str]:
    """An environment as a deployment would have it: no local-stack opt-in, no JWT secret, no JWKS URL."""
    keep = {
        k: v for k, v in os.environ.items() if k not in {LOCAL_STACK_ENV, "SUPABASE_JWT_SECRET", "SUPABASE_JWKS_URL"}
    }
    return {
        **keep,
        "DATABASE_URL": REMOTE_DB,
        "TROVE_TOKEN_KEYS": f"test:{TEST_KEY}",
        "PYTHONPATH": str(PROJECT_ROOT),
    } | extra


def trove(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "trove.cli", *args], env=env, capture_output=True, text=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired as running:
        raise AssertionError(f"`trove {' '.join(args)}` started instead of refusing: {running.stderr!r}") from None


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({}, f"the local stack's published secret is only for `trove run` and the tests ({LOCAL_STACK_ENV}=1)"),
        ({LOCAL_STACK_ENV: "1"}, f"{LOCAL_STACK_ENV}=1 applies only to a database on this machine"),
        ({"SUPABASE_JWT_SECRET": LOCAL_JWT_SECRET}, "SUPABASE_JWT_SECRET is the Supabase CLI's published local secret"),
    ],
    ids=["no-secret", "local-flag-with-a-remote-database", "the-published-secret-set-explicitly"],
)
@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]], ids=["serve", "worker"])
def test_serve_and_worker_refuse_to_start_without_a_secret_off_the_local_stack(
    command: list[str], extra: dict[str, str], why: str
) -> None:
    proc = trove(off_local_stack_env(**extra), *command)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("trove: ") and why in proc.stderr
    if "SUPABASE_JWT_SECRET" not in extra:
        assert NO_TOKEN_CONFIG in proc.stderr and "SUPABASE_JWKS_URL" in proc.stderr


def test_serve_refuses_a_public_address_with_the_local_secret(db_url: str) -> None:
    env = {**off_local_stack_env(), "DATABASE_URL": db_url, LOCAL_STACK_ENV: "1"}
    proc = trove(env, "serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert proc.returncode == 1
    assert "refusing to listen on 0.0.0.0 with the local stack's published JWT secret" in proc.stderr


def test_serve_starts_off_the_local_stack_with_its_own_secret(tmp_path: Path) -> None:
    """The control: the refusal is about the secret, not about remote databases."""
    port = free_port()
    env = off_local_stack_env(SUPABASE_JWT_SECRET="a-real-project-secret-of-at-least-32-characters")
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trove.cli", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "trove serve did not come up"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_hs256_tokens_are_refused_when_no_secret_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    forged = jwt.encode(claims(), LOCAL_JWT_SECRET, algorithm="HS256")  # anyone can: the secret is published
    assert decode_user_token(forged)  # the tests are the local stack: accepted here...
    for env in (
        {LOCAL_STACK_ENV: None, "SUPABASE_JWT_SECRET": None},  # ...not without the opt-in
        {LOCAL_STACK_ENV: "1", "DATABASE_URL": REMOTE_DB},  # ...nor against someone else's database
        {LOCAL_STACK_ENV: None, "SUPABASE_JWT_SECRET": LOCAL_JWT_SECRET},  # ...nor when set by hand
    ):
        with monkeypatch.context() as scoped:
            for name, value in env.items():
                if value is None:
                    scoped.delenv(name, raising=False)
                else:
                    scoped.setenv(name, value)
            with pytest.raises(HTTPException) as refused:
                decode_user_token(forged)
            assert refused.value.status_code == 401, env
            assert refused.value.detail == "HS256 tokens are not accepted here (no SUPABASE_JWT_SECRET)"
    monkeypatch.delenv(LOCAL_STACK_ENV)
    monkeypatch.setenv("SUPABASE_JWT_SECRET", "a-real-project-secret-of-at-least-32-characters")
    assert decode_user_token(jwt.encode(claims(), "a-real-project-secret-of-at-least-32-characters")).id


# -- 9. the OAuth flow is bound to the browser that started it -----------------------------------------------


def binding_cookie(response: httpx.Response, name: str = BROWSER_COOKIE) -> Any:
    cookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    return cookie[name]


def test_a_connect_link_completed_in_another_browser_connects_nothing(stack: dict[str, Any]) -> None:
    victim_athlete = stack["sim"].add_athlete(activities=2)
    _, bob = user(stack["db"], "bob")  # the attacker: a Trove user of their own
    alice_id, alice = user(stack["db"], "alice")
    with httpx.Client() as bobs_browser, httpx.Client() as victims_browser:
        link = start_connect(stack, bobs_browser, bob)["url"]
        # The victim gets Bob's link, approves on Strava in their own browser, which returns to our callback.
        # They even have a binding cookie of their own (a connect they started themselves).
        alices_link = start_connect(stack, victims_browser, alice)["url"]
        consent = consent_on_strava(victims_browser, link, sim_athlete=victim_athlete.id)
        callback = consent.headers["location"]
        refused = victims_browser.get(callback)
        assert refused.status_code == 400 and refused.json()["error"] == "wrong_browser", refused.text
        assert "started in another browser" in refused.json()["detail"]
        assert scalar(stack["db"], "select count(*) from public.connected_accounts") == 0
        assert scalar(stack["db"], "select count(*) from public.sync_logs") == 0
        # The state was consumed: the code that reached the wrong browser is no use from Bob's either.
        replay = bobs_browser.get(callback)
        assert replay.status_code == 400 and replay.json()["detail"] == "this connect link was already used"
        # A browser with no cookie at all is refused the same way.
        link = start_connect(stack, bobs_browser, bob)["url"]
        with httpx.Client() as cookieless:
            callback = consent_on_strava(cookieless, link, sim_athlete=victim_athlete.id).headers["location"]
            assert "cookie" not in {k.lower() for k in cookieless.build_request("GET", callback).headers}
            stranger = cookieless.get(callback)
        assert stranger.status_code == 400 and stranger.json()["error"] == "wrong_browser"
        assert scalar(stack["db"], "select count(*) from public.connected_accounts") == 0
        assert scalar(stack["db"], "select count(*) from public.oauth_states where used_at is not null") == 2
        # The victim's own connect, in her own browser, still works, and connects her athlete to her.
        consent = consent_on_strava(victims_browser, alices_link, sim_athlete=victim_athlete.id)
        assert victims_browser.get(consent.headers["location"]).status_code == 201
    assert query(stack["db"], "select user_id::text, platform_user_id from public.connected_accounts") == [
        (alice_id, str(victim_athlete.id))
    ]


def test_the_binding_cookie_is_httponly_lax_scoped_and_stored_only_hashed(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    athlete = stack["sim"].add_athlete()
    _, headers = user(stack["db"], "alice")
    with httpx.Client() as browser:
        first = browser.post(f"{stack['url']}/functions/v1/oauth-strava/start", headers=headers)
        cookie = binding_cookie(first)
        assert cookie["httponly"] and cookie["samesite"] == "lax" and not cookie["secure"]
        assert cookie["path"] == "/functions/v1/oauth-strava" and int(cookie["max-age"]) == 600
        stored = [r[0] for r in query(stack["db"], "select browser_hash from public.oauth_states")]
        assert stored == [hashlib.sha256(cookie.value.encode()).hexdigest()]
        # A second tab in the same browser keeps the same binding: the first tab's link still works.
        second = browser.post(f"{stack['url']}/functions/v1/oauth-strava/start", headers=headers)
        assert binding_cookie(second).value == cookie.value
        consent = consent_on_strava(browser, first.json()["url"], sim_athlete=athlete.id)
        assert browser.get(consent.headers["location"]).status_code == 201
    # On https the cookie is a __Host- cookie: Secure, Path=/, no Domain, so no sibling subdomain can plant a
    # value the attacker knows (cookie tossing) and a planted plain-named one is never read.
    monkeypatch.setenv("TROVE_PUBLIC_URL", "https://trove.example.org")
    planted = {"Cookie": f"{BROWSER_COOKIE}={'A' * 43}"}
    secure = httpx.post(f"{stack['url']}/functions/v1/oauth-strava/start", headers={**headers, **planted})
    host_cookie = binding_cookie(secure, f"__Host-{BROWSER_COOKIE}")
    assert host_cookie["secure"] and host_cookie["path"] == "/" and not host_cookie["domain"]
    assert host_cookie.value != "A" * 43


def test_handoff_links_exist_only_on_the_local_stack(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    athlete = stack["sim"].add_athlete()
    _, headers = user(stack["db"], "alice")
    started = httpx.post(f"{stack['url']}/functions/v1/oauth-strava/start", headers=headers, json={"handoff": True})
    assert started.status_code == 200 and "set-cookie" not in started.headers
    with httpx.Client() as browser:  # the browser the `trove run` user opens the printed link in
        handed = browser.get(started.json()["handoff_url"])
        assert handed.status_code == 302 and handed.headers["location"] == started.json()["url"]
        consent = consent_on_strava(browser, handed.headers["location"], sim_athlete=athlete.id)
        assert browser.get(consent.headers["location"]).status_code == 201
    secret = "a-real-project-secret-of-at-least-32-characters"
    monkeypatch.delenv(LOCAL_STACK_ENV)
    monkeypatch.setenv("SUPABASE_JWT_SECRET", secret)
    token = jwt.encode(claims(sub=scalar(stack["db"], "select tests.id('user', 'alice')::text")), secret)
    refused = httpx.post(
        f"{stack['url']}/functions/v1/oauth-strava/start", headers=bearer(token), json={"handoff": True}
    )
    assert refused.status_code == 403 and "local stack only" in refused.json()["detail"]
    gone = httpx.get(f"{stack['url']}/functions/v1/oauth-strava/handoff", params={"state": "s", "browser": "b" * 43})
    assert gone.status_code == 404 and "set-cookie" not in gone.headers


# -- 11. no secrets in the log of `trove serve` ---------------------------------------------------------------

SECRETS = {
    "code": "CODE-0f9a8b7c6d",
    "state": "STATE-1e2d3c4b5a",
    "path": "PATHSECRET-9z8y7x6w",
    "verify": "VERIFY-5v4u3t2s",
    "query": "QUERYSECRET-1r2q3p",
    "token": "TOKEN-4o5n6m7l",
    "key": "KEY-8k9j0i1h",
    "access": "ACCESS-2g3f4e5d",
}


@pytest.mark.parametrize("processes", [1, 2])
def test_trove_serve_logs_no_oauth_code_state_or_webhook_secret(db_url: str, tmp_path: Path, processes: int) -> None:
    """With one process and with several (`--processes`: each child process redacts its own logs)."""
    port = free_port()
    env = {
        **strava_env(db_url, "http://127.0.0.1:9"),  # nothing is ever exchanged: the state is unknown
        "TROVE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TROVE_STATE_DIR": str(tmp_path),
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trove.cli", "serve", "--port", str(port), "--processes", str(processes)],
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                httpx.get(f"{base}/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "trove serve did not come up"
                time.sleep(0.1)
        s = SECRETS
        callback = httpx.get(
            f"{base}/functions/v1/oauth-strava/callback",
            params={"code": s["code"], "state": s["state"], "scope": "read,activity:read_all"},
        )
        assert callback.status_code == 400  # unknown state: refused, and logged
        httpx.get(
            f"{base}/functions/v1/webhook-strava/{s['path']}",
            params={"hub.mode": "subscribe", "hub.challenge": "c", "hub.verify_token": s["verify"]},
        )
        httpx.post(f"{base}/functions/v1/webhook-strava", params={"secret": s["query"]}, json={})
        httpx.get(f"{base}/health", params={"token": s["token"], "key": s["key"], "access_token": s["access"]})
        deadline = time.monotonic() + 10
        while "GET /health?token=" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log_path.read_text()
    leaked = sorted(name for name, value in SECRETS.items() if value in text)
    assert not leaked, text
    # The requests are still there, recognizable.
    assert "GET /functions/v1/oauth-strava/callback?code=[redacted]&state=[redacted]&scope=[redacted]" in text
    assert "GET /functions/v1/webhook-strava/[redacted]?hub.mode=[redacted]" in text
    assert "hub.verify_token=[redacted]" in text
    assert "POST /functions/v1/webhook-strava?secret=[redacted]" in text
    assert "GET /health?token=[redacted]&key=[redacted]&access_token=[redacted]" in text


# -- found by probing: a cached feed is shared by every reader, so nothing in it may come from the request ------
def test_a_forged_host_header_cannot_poison_the_cached_feeds(stack: dict[str, Any]) -> None:
    _, headers = user(stack["db"], "alice")
    key = httpx.post(f"{stack['url']}/api/keys", headers=headers, json={"name": "site"}).json()["key"]
    reader = {"Authorization": f"Bearer {key}"}
    for path in ("/api/feed.json?limit=2", "/api/feed.atom?limit=2"):
        forged = httpx.get(
            f"{stack['url']}{path}", headers={**reader, "Host": "evil.example", "X-Forwarded-Proto": "https"}
        )
        honest = httpx.get(f"{stack['url']}{path}", headers=reader)
        assert forged.status_code == honest.status_code == 200
        for response in (forged, honest):
            assert "evil.example" not in response.text
            assert f"{stack['url']}/api/feed." in response.text  # links on the configured public URL
