"""Issue 17, item 3: the OpenAPI document says what the service really answers. It is valid OpenAPI 3.1; a
client generated from it at test time (operations, parameters and credentials read from the document, no
URL written here) calls the real service with each security scheme; every status the document declares for
an operation is produced here by a real call (the few this stack cannot produce are named, with why); and
schemathesis checks that what the service answers is what the document declares."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import httpx
import jsonschema
import psycopg
import pytest
from openapi_spec_validator import validate
from tests.strava_harness import consent_on_strava, service_stack, subscribe, user

from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.http.auth import issue_local_token
from trove.http.wake import signature as wake_signature
from trove.media.storage import LocalStorage
from trove.simulators.serve import BackgroundServer

JWT, API_KEY = "SupabaseJWT", "ApiKey"

# Declared, and not produced by this stack: (operationId, status) -> why.
NOT_PRODUCED_HERE = {
    ("start", "502"): "Strava's connect start makes no request (Bluesky's does: tests/e2e/test_bluesky.py)",
    ("callback", "502"): "the platform's token endpoint unreachable mid-exchange (the simulator is always up)",
    ("upload_export", "415"): "a form: the generated client sends only declared media types"
    " (tests/e2e/test_import_strava.py sends one)",
    ("oauth_document", "200"): "only a configured Bluesky serves documents (tests/unit/test_bluesky_oauth_client.py)",
}


class GeneratedClient:
    """A client made from the served document: an operation is called by its operationId with its declared
    parameters (each put where the document says), a declared request body, and credentials applied as the
    named security scheme says; anything the document does not declare for the operation is refused."""

    def __init__(self, base_url: str, spec: dict[str, Any]) -> None:
        self.http = httpx.Client(base_url=base_url)  # keeps cookies, as a browser would (the OAuth binding)
        self.schemes: dict[str, Any] = spec["components"]["securitySchemes"]
        self.operations = {
            op["operationId"]: (method.upper(), path, op)
            for path, item in spec["paths"].items()
            for method, op in item.items()
        }

    def credentials(self, scheme: str, secret: str) -> dict[str, str]:
        definition = self.schemes[scheme]
        if definition["type"] == "http" and definition["scheme"].lower() == "bearer":
            return {"Authorization": f"Bearer {secret}"}
        raise AssertionError(f"no way to send {definition}")

    def __call__(
        self,
        operation_id: str,
        auth: tuple[str, str] | None = None,
        body: Any = None,
        content: bytes | None = None,
        **params: Any,
    ) -> httpx.Response:
        method, template, op = self.operations[operation_id]
        declared = {p["name"]: p for p in op.get("parameters", [])}
        assert set(params) <= set(declared), f"{operation_id} has no parameters {set(params) - set(declared)}"
        missing = {n for n, p in declared.items() if p.get("required") and n not in params}
        assert not missing, f"{operation_id} needs {missing}"
        where = {name: declared[name]["in"] for name in params}
        path = template.format(
            **{n: quote(str(v), safe="/" if n == "path" else "") for n, v in params.items() if where[n] == "path"}
        )
        headers = {n: str(v) for n, v in params.items() if where[n] == "header"}
        query = {n: v for n, v in params.items() if where[n] == "query"}
        if auth is not None:
            scheme, secret = auth
            assert {scheme: []} in op.get("security", []), f"{operation_id} does not take {scheme}"
            headers.update(self.credentials(scheme, secret))
        if body is not None or content is not None:
            assert "requestBody" in op, f"{operation_id} takes no body"
            media_type = next(iter(op["requestBody"]["content"]))
            content = content if content is not None else json.dumps(body).encode()
            headers["Content-Type"] = media_type
        return self.http.request(method, path, params=query, headers=headers, content=content)


def media_type_of(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip()


def conforms(spec: dict[str, Any], operation: dict[str, Any], response: httpx.Response) -> None:
    """The response's status, media type and (for the schemas Trove defines) body are the declared ones."""
    declared = operation["responses"].get(str(response.status_code))
    assert declared is not None, f"{operation['operationId']}: {response.status_code} is not declared"
    content = declared.get("content")
    if not content or not response.content:
        return
    got = media_type_of(response)
    matches = [kind for kind in content if fnmatch.fnmatch(got, kind)]
    assert matches, f"{operation['operationId']} {response.status_code}: {got} is not one of {list(content)}"
    schema = content[matches[0]].get("schema", {})
    if "$ref" in schema:
        jsonschema.validate(response.json(), {**schema, "components": spec["components"]})


@pytest.fixture
def stack(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("TROVE_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("TROVE_MEDIA_SIGNING_KEY", "k")
    monkeypatch.setenv("STRAVA_WEBHOOK_VERIFY_TOKEN", "verify-me")
    monkeypatch.setenv("TROVE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TROVE_IMPORT_MAX_BYTES", "4096")
    monkeypatch.setenv("TROVE_WAKE_SECRET", "w" * 40)
    monkeypatch.delenv("TROVE_RELAY_SECRET", raising=False)
    with service_stack(db_url, monkeypatch) as found:
        found["spec"] = httpx.get(f"{found['url']}/openapi.json").json()
        yield found


def test_the_document_is_valid_openapi_31_with_both_schemes_and_the_feed_media_types(stack: dict[str, Any]) -> None:
    spec = stack["spec"]
    validate(spec)  # OpenAPI 3.1 (the version is read from the document)
    assert spec["openapi"].startswith("3.1")
    schemes = spec["components"]["securitySchemes"]
    assert schemes[JWT] == {**schemes[JWT], "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes[API_KEY]["type"] == "http" and schemes[API_KEY]["scheme"] == "bearer"
    for item in spec["paths"].values():
        for op in item.values():
            assert all(p["name"].lower() != "authorization" for p in op.get("parameters", [])), op["operationId"]
            for status, response in op["responses"].items():
                if status >= "400" and status not in ("422",):
                    assert response.get("content"), (op["operationId"], status)
    feeds = {"posts": "application/json", "json_feed": "application/feed+json", "atom_feed": "application/atom+xml"}
    client = GeneratedClient(stack["url"], spec)
    for operation_id, media_type in feeds.items():
        op = client.operations[operation_id][2]
        assert list(op["responses"]["200"]["content"]) == [media_type]
        assert op["security"] == [{JWT: []}, {API_KEY: []}]
        assert "304" in op["responses"]
    assert client.operations["create_key"][2]["security"] == [{JWT: []}]
    assert "security" not in client.operations["health"][2]


def test_a_generated_client_calls_the_service_with_each_security_scheme(stack: dict[str, Any]) -> None:
    client = GeneratedClient(stack["url"], stack["spec"])
    _, alice = user(stack["db"], "alice")
    jwt = (JWT, alice["Authorization"].split(" ", 1)[1])
    made = client("create_key", auth=jwt, body={"name": "my site"})
    assert made.status_code == 201, made.text
    key = (API_KEY, made.json()["key"])
    as_owner, as_key = client("posts", auth=jwt), client("posts", auth=key)
    assert as_owner.status_code == as_key.status_code == 200
    assert as_owner.json()["public"] is False and as_key.json()["public"] is True
    feed = client("atom_feed", auth=key)
    assert feed.status_code == 200 and media_type_of(feed) == "application/atom+xml"
    assert client("list_keys", auth=jwt).json()["keys"][0]["name"] == "my site"
    # An API key is read-only: the document does not offer it for writes, and the service refuses it.
    with pytest.raises(AssertionError, match="does not take ApiKey"):
        client("create_key", auth=key, body={"name": "x"})
    method, path, _ = client.operations["list_keys"]  # sent anyway, past the client: refused
    assert client.http.request(method, path, headers=client.credentials(*key)).status_code == 401


def test_every_declared_status_is_one_the_service_answers(stack: dict[str, Any], tmp_path: Path) -> None:
    spec = stack["spec"]
    client = GeneratedClient(stack["url"], spec)
    db = stack["db"]
    seen: dict[tuple[str, str], httpx.Response] = {}

    def expect(status: int, operation_id: str, **kwargs: Any) -> httpx.Response:
        response = client(operation_id, **kwargs)
        assert response.status_code == status, f"{operation_id}: {response.status_code} {response.text[:300]}"
        conforms(spec, client.operations[operation_id][2], response)
        seen[(operation_id, str(status))] = response
        return response

    _, alice = user(db, "alice")
    _, bob = user(db, "bob")
    jwt = (JWT, alice["Authorization"].split(" ", 1)[1])
    bob_jwt = (JWT, bob["Authorization"].split(" ", 1)[1])
    stranger = (JWT, issue_local_token(str(uuid.uuid4())))  # a valid token, no Trove user
    missing = str(uuid.uuid4())
    huge = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'

    expect(200, "health")
    with BackgroundServer(create_app(f"postgresql://127.0.0.1:{free_port()}/nothing"), free_port()) as down:
        degraded = GeneratedClient(down.url, spec)
        response = degraded("health")
        assert response.status_code == 503
        conforms(spec, degraded.operations["health"][2], response)
        seen[("health", "503")] = response

    # API keys (JWT only).
    key = expect(201, "create_key", auth=jwt, body={"name": "site"}).json()
    expect(400, "create_key", auth=jwt, body={"name": "  "})
    expect(401, "create_key", body={"name": "site"})
    expect(403, "create_key", auth=stranger, body={"name": "site"})
    expect(413, "create_key", auth=jwt, content=huge)
    expect(422, "create_key", auth=jwt, body={})
    expect(200, "list_keys", auth=jwt)
    expect(401, "list_keys")
    expect(400, "revoke_key", auth=jwt, key_id="\x00")
    expect(401, "revoke_key", key_id=missing)
    expect(403, "revoke_key", auth=stranger, key_id=missing)
    expect(404, "revoke_key", auth=jwt, key_id=missing)
    spare = expect(201, "create_key", auth=jwt, body={"name": "spare"}).json()
    expect(200, "revoke_key", auth=jwt, key_id=spare["id"])
    expect(401, "posts", auth=(API_KEY, spare["key"]))  # revoked
    api_key = (API_KEY, key["key"])

    # OAuth connect with the Strava simulator (a bob connecting alice's athlete is a conflict).
    athlete = stack["sim"].add_athlete(activities=0)
    expect(400, "start", auth=jwt, platform="strava", body={"redirect_to": "https://elsewhere.example/"})
    expect(401, "start", platform="strava")
    expect(403, "start", auth=stranger, platform="strava")
    expect(404, "start", auth=jwt, platform="nope")
    expect(413, "start", auth=jwt, platform="strava", content=huge)
    expect(422, "start", auth=jwt, platform="strava", body={"redirect_to": 5})
    expect(503, "start", auth=jwt, platform="bluesky")

    def connect(who: tuple[str, str], status: int, **body: Any) -> httpx.Response:
        started = expect(200, "start", auth=who, platform="strava", body=body).json()
        consent = consent_on_strava(client.http, started["url"], athlete_id=athlete.id)
        assert consent.status_code == 302, consent.text
        params = {k: v[0] for k, v in parse_qs(urlparse(consent.headers["location"]).query).items()}
        return expect(status, "callback", platform="strava", **params)

    account_id = connect(jwt, 201).json()["account_id"]
    connect(jwt, 200)
    assert connect(jwt, 303, redirect_to="/settings").headers["location"].startswith("/settings?connected=strava")
    client.http.cookies.clear()  # bob in his own browser
    connect(bob_jwt, 409)
    expect(400, "callback", platform="strava")
    expect(404, "callback", platform="nope", state="x")
    expect(503, "callback", platform="bluesky", state="x")
    handoff = expect(200, "start", auth=jwt, platform="strava", body={"handoff": True}).json()["handoff_url"]
    query = {k: v[0] for k, v in parse_qs(urlparse(handoff).query).items()}
    expect(302, "handoff_to_browser", platform="strava", **query)
    expect(400, "handoff_to_browser", platform="strava")
    expect(404, "handoff_to_browser", platform="nope")
    expect(503, "handoff_to_browser", platform="bluesky")
    expect(404, "oauth_document", platform="strava", document="client-metadata.json")

    # Sync now, and its status.
    sync = expect(202, "request_sync", auth=jwt, account_id=account_id).json()
    expect(400, "request_sync", auth=jwt, account_id="\x00")
    expect(401, "request_sync", account_id=account_id)
    expect(403, "request_sync", auth=stranger, account_id=account_id)
    expect(404, "request_sync", auth=bob_jwt, account_id=account_id)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("update public.connected_accounts set status = 'token_expired' where id = %s", (account_id,))
        post_id = conn.execute(
            "insert into public.posts (account_id, platform, platform_post_id, content_type, text_content,"
            " created_at_platform, visibility) values (%s, 'strava', '1', 'activity', 'Run', now(), 'public')"
            " returning id",
            (account_id,),
        ).fetchone()[0]
    expect(409, "request_sync", auth=jwt, account_id=account_id)
    expect(200, "sync_status", auth=jwt, sync_log_id=sync["sync_log_id"])
    expect(400, "sync_status", auth=jwt, sync_log_id="\x00")
    expect(401, "sync_status", sync_log_id=sync["sync_log_id"])
    expect(404, "sync_status", auth=bob_jwt, sync_log_id=sync["sync_log_id"])

    # Imports: an export file handed in, its progress.
    handed_in = expect(202, "upload_export", auth=jwt, content=b"PK\x05\x06" + b"\x00" * 18).json()
    expect(400, "upload_export", auth=jwt, content=b"")
    expect(401, "upload_export", content=b"x")
    expect(403, "upload_export", auth=stranger, content=b"x")
    expect(413, "upload_export", auth=jwt, content=b"x" * 5000)
    expect(200, "import_status", auth=jwt, import_id=handed_in["import_id"])
    expect(400, "import_status", auth=jwt, import_id="\x00")
    expect(401, "import_status", import_id=handed_in["import_id"])
    expect(404, "import_status", auth=bob_jwt, import_id=handed_in["import_id"])

    # The wake endpoint (pg_net): the shared secret, then a bounded drain (nothing queued here).
    stamp = str(int(time.time()))
    signed = {"X-Trove-Wake-Timestamp": stamp, "X-Trove-Wake-Signature": wake_signature("w" * 40, stamp, b"")}
    assert expect(200, "wake", **signed).json()["draining"] is False
    expect(403, "wake", **{**signed, "X-Trove-Wake-Signature": "0" * 64})
    expect(403, "wake")
    os.environ["TROVE_WAKE_SECRET"] = ""  # (the fixture's monkeypatch restores it)
    expect(404, "wake", **signed)
    os.environ["TROVE_WAKE_SECRET"] = "w" * 40

    # The feed in its three renderings, with either credential.
    for operation_id in ("posts", "json_feed", "atom_feed"):
        page = expect(200, operation_id, auth=api_key)
        expect(200, operation_id, auth=jwt)
        expect(304, operation_id, auth=api_key, **{"If-None-Match": page.headers["ETag"]})
        expect(400, operation_id, auth=jwt, limit=0)
        expect(401, operation_id)
        expect(422, operation_id, auth=jwt, limit="many")
    expect(200, "post_media", auth=jwt, post_id=post_id)
    expect(400, "post_media", auth=jwt, post_id="\x00")
    expect(401, "post_media", post_id=post_id)
    expect(404, "post_media", auth=bob_jwt, post_id=post_id)

    # Media files: signed URLs of the local backend.
    storage = LocalStorage.from_environment()
    photo, absent = (f"{uuid.uuid4()}/strava/{digit * 64}.jpg" for digit in "01")
    (storage.root / photo).parent.mkdir(parents=True)
    (storage.root / photo).write_bytes(b"\xff\xd8" + b"0" * 100)

    def signed(path: str) -> dict[str, str]:
        url = asyncio.run(storage.signed_url(path))
        return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}

    expect(200, "serve_media", path=photo, **signed(photo))
    expect(206, "serve_media", path=photo, Range="bytes=0-9", **signed(photo))
    expect(400, "serve_media", path=photo, Range="bytes=x", **signed(photo))
    expect(403, "serve_media", path=photo)
    expect(404, "serve_media", path=absent, **signed(absent))
    expect(416, "serve_media", path=photo, Range="bytes=5000-6000", **signed(photo))

    # Webhooks: Strava's need our secret path segment.
    subscription_id = subscribe(stack)
    secret = str(stack["sim"].subscription["callback_url"]).rsplit("/", 1)[1]
    verify = os.environ["STRAVA_WEBHOOK_VERIFY_TOKEN"]
    event = {
        "aspect_type": "update",
        "event_time": 1516126040,
        "object_id": 1360128428,
        "object_type": "activity",
        "owner_id": 134815,
        "subscription_id": int(subscription_id),
    }
    for operation_id in ("handshake", "receive"):
        body = {"body": event} if operation_id == "receive" else {}
        expect(403, operation_id, platform="strava", **body)
        expect(404, operation_id, platform="nope", **body)
    expect(413, "receive", platform="strava", content=b"x" * (64 * 1024 + 1))
    expect(200, "receive_with_secret", platform="strava", secret=secret, body=event)
    expect(400, "receive_with_secret", platform="strava", secret=secret, body={"object_type": "activity"})
    expect(403, "receive_with_secret", platform="strava", secret="B" * 43, body=event)
    expect(404, "receive_with_secret", platform="nope", secret=secret, body=event)
    expect(413, "receive_with_secret", platform="strava", secret=secret, content=b"x" * (64 * 1024 + 1))
    hub = {"hub.mode": "subscribe", "hub.challenge": "c", "hub.verify_token": verify}
    assert expect(200, "handshake_with_secret", platform="strava", secret=secret, **hub).json() == {
        "hub.challenge": "c"
    }
    expect(400, "handshake_with_secret", platform="strava", secret=secret, **{**hub, "hub.mode": "other"})
    expect(403, "handshake_with_secret", platform="strava", secret="B" * 43)
    expect(404, "handshake_with_secret", platform="nope", secret=secret)

    # Behind the Edge Function relays (TROVE_RELAY_SECRET set): the relayed URLs answer nobody else.
    os.environ["TROVE_RELAY_SECRET"] = "r" * 40  # (the fixture's monkeypatch restores it)
    values = {"platform": "strava", "secret": secret, "document": "client-metadata.json"}
    for path, item in spec["paths"].items():
        for op in item.values():
            if path.startswith("/functions/v1/") and path != "/functions/v1/wake":
                required = {p["name"] for p in op.get("parameters", []) if p.get("required")}
                expect(401, op["operationId"], **{name: values[name] for name in required})
    os.environ["TROVE_RELAY_SECRET"] = ""

    declared = {
        (op["operationId"], status)
        for item in spec["paths"].values()
        for op in item.values()
        for status in op["responses"]
    }
    assert set(NOT_PRODUCED_HERE) <= declared, "a named exception is no longer declared"
    assert declared - set(NOT_PRODUCED_HERE) - set(seen) == set(), "declared, never answered"
    assert set(seen) - declared == set()


def test_schemathesis_finds_only_documented_statuses_media_types_and_bodies(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    _, alice = user(stack["db"], "alice")
    key = httpx.post(f"{stack['url']}/api/keys", json={"name": "fuzz"}, headers=alice).json()["key"]
    for credentials in (alice["Authorization"], f"Bearer {key}"):  # each scheme (an API key: 401 on writes)
        check_with_schemathesis(stack["url"], credentials, tmp_path)


def check_with_schemathesis(url: str, credentials: str, home: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "15",
            "--seed",
            "7",
            "--header",
            f"Authorization: {credentials}",
            "--exclude-path-regex",
            "^/functions/v1/oauth-.*/callback$",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "", "HOME": str(home)},
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
