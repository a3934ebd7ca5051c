"""Supabase JWTs: HS256 with the project secret, and asymmetric keys published at a JWKS URL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import HTTPException
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from trove.db.cluster import free_port
from trove.http.auth import decode_user_token, issue_local_token
from trove.simulators.serve import BackgroundServer

USER = "7b0d2c1e-0000-4000-8000-000000000001"


@pytest.fixture
def jwks() -> Iterator[tuple[rsa.RSAPrivateKey, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public |= {"kid": "key-1", "alg": "RS256", "use": "sig"}

    async def keys(_: object) -> JSONResponse:
        return JSONResponse({"keys": [public]})

    with BackgroundServer(Starlette(routes=[Route("/jwks", keys)]), free_port()) as server:
        yield key, f"{server.url}/jwks"


def claims(**extra: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": USER, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 60, **extra}


def test_hs256_token_with_the_project_secret() -> None:
    assert decode_user_token(issue_local_token(USER)).id == USER


def test_rs256_token_verified_through_jwks(
    jwks: tuple[rsa.RSAPrivateKey, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, url = jwks
    monkeypatch.setenv("SUPABASE_JWKS_URL", url)
    token = jwt.encode(claims(), key, algorithm="RS256", headers={"kid": "key-1"})
    assert decode_user_token(token).id == USER


def test_rs256_token_signed_by_another_key_is_refused(
    jwks: tuple[rsa.RSAPrivateKey, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = jwks
    monkeypatch.setenv("SUPABASE_JWKS_URL", url)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), stranger, algorithm="RS256", headers={"kid": "key-1"})
    with pytest.raises(HTTPException) as refused:
        decode_user_token(token)
    assert refused.value.status_code == 401 and "invalid access token" in str(refused.value.detail)


@pytest.mark.parametrize(
    ("token_claims", "detail"),
    [  # built when the test runs, not at collection: a token made then could expire before its test runs
        (lambda: claims(role="anon"), "the token is not a signed-in user's"),
        (lambda: claims(aud="something-else"), "invalid access token"),
        (lambda: claims(exp=int(time.time()) - 5), "the access token has expired"),
    ],
    ids=["anon", "other-audience", "expired"],
)
def test_tokens_that_are_not_a_signed_in_users_are_refused(
    token_claims: Callable[[], dict[str, object]], detail: str
) -> None:
    token = jwt.encode(token_claims(), "super-secret-jwt-token-with-at-least-32-characters-long", algorithm="HS256")
    with pytest.raises(HTTPException) as refused:
        decode_user_token(token)
    assert refused.value.status_code == 401 and detail in str(refused.value.detail)


def test_a_verified_token_is_kept_until_it_expires_and_never_past_a_change_of_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trove.http import auth

    monkeypatch.setenv("SUPABASE_JWT_SECRET", "s" * 40)
    token = jwt.encode(claims(exp=int(time.time()) + 2), "s" * 40, algorithm="HS256")
    calls: list[str] = []
    verify = auth.verify_user_token
    monkeypatch.setattr(auth, "verify_user_token", lambda t: calls.append(t) or verify(t))
    assert decode_user_token(token).id == USER
    assert decode_user_token(token).id == USER
    assert len(calls) == 1  # the second time from what was verified
    monkeypatch.setenv("SUPABASE_JWT_SECRET", "t" * 40)  # rotated: verified afresh, and refused
    with pytest.raises(HTTPException) as refused:
        decode_user_token(token)
    assert refused.value.status_code == 401 and len(calls) == 2
    monkeypatch.setenv("SUPABASE_JWT_SECRET", "s" * 40)
    time.sleep(2.2)  # past its exp: never served from what was kept
    with pytest.raises(HTTPException) as expired:
        decode_user_token(token)
    assert expired.value.detail == "the access token has expired"
