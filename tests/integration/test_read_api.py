"""The read API over real HTTP and real Postgres: filters, both paginations, search with facets, privacy in
public mode, API keys (created, listed, revoked; another user's never reveals a row), bad input, sync now."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb
from tests.worker_harness import RING, TEST_KEY, scalar, until_fresh

from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.http.auth import issue_local_token
from trove.platforms.strava.normalize import public_projection
from trove.platforms.strava.normalize import visibility as strava_visibility
from trove.simulators.serve import BackgroundServer


def seed(db_url: str) -> dict[str, Any]:
    """alice: 30 Strava activities (every 5th followers-only, every 7th private) and 10 Bluesky posts;
    bob: 5 posts."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        ids: dict[str, Any] = {}
        for name in ("alice", "bob"):
            ids[name] = str(conn.execute("select tests.create_user(%s)", (name,)).fetchone()[0])
        accounts = {}
        for name, platform, count in (("alice", "strava", 30), ("alice", "bluesky", 10), ("bob", "bluesky", 5)):
            account = str(
                conn.execute(
                    "insert into public.connected_accounts (user_id, platform, platform_user_id, username)"
                    " values (%s, %s, %s, %s) returning id",
                    (ids[name], platform, f"{name}-{platform}", name),
                ).fetchone()[0]
            )
            accounts[(name, platform)] = account
            for n in range(count):
                post_id = f"{name}-{platform}-{n}"
                if platform == "strava":
                    visibility = "followers_only" if n % 5 == 0 else "everyone"
                    data = {
                        "id": n,
                        "name": f"Run {n}",
                        "sport_type": "Run",
                        "visibility": visibility,
                        "private": n % 7 == 0,
                        "start_latlng": [45.5, -122.6],
                        "map": {"summary_polyline": "abc"},
                    }
                    text = f"Run {n} along the river" if n % 3 == 0 else f"Run {n} in the hills"
                    kind = "activity"
                else:
                    data = {"post": {"author": {"handle": f"{name}.bsky.social"}}}
                    text = f"{name} writes about sourdough bread {n}" if n % 2 == 0 else f"{name} on rivers {n}"
                    kind = "post"
                conn.execute(
                    "insert into public.ingested_posts (platform, account_id, platform_post_id, post_data)"
                    " values (%s, %s, %s, %s)",
                    (platform, account, post_id, json.dumps(data)),
                )
                # The rules for readers as the sync stores them (Strava's normalizer; Bluesky posts are public).
                if platform == "strava":
                    rules = (strava_visibility(data), Jsonb(public_projection(data)), None, "Run")
                else:
                    rules = ("public", Jsonb({}), f"{name}.bsky.social", None)
                conn.execute(
                    "insert into public.posts (account_id, platform, platform_post_id, content_type, text_content,"
                    " created_at_platform, visibility, public_data, author_handle, search_keywords)"
                    " values (%s, %s, %s, %s, %s, timestamptz '2026-01-01' + %s * interval '1 hour', %s, %s, %s, %s)",
                    (account, platform, post_id, kind, text, n * 2 + (1 if platform == "bluesky" else 0), *rules),
                )
        return {"users": ids, "accounts": accounts}


@pytest.fixture
def api(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[dict[str, Any]]:
    data = seed(db_url)
    port = free_port()
    monkeypatch.setenv("TROVE_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("TROVE_PUBLIC_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TROVE_MEDIA_SIGNING_KEY", "k")
    monkeypatch.setenv("TROVE_TOKEN_KEYS", f"test:{TEST_KEY}")
    with BackgroundServer(create_app(db_url, RING), port) as server:
        data["url"] = server.url
        data["db"] = db_url
        data["jwt"] = {n: {"Authorization": f"Bearer {issue_local_token(u)}"} for n, u in data["users"].items()}
        yield data


def get(api: dict[str, Any], who: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.get(f"{api['url']}/api/posts", params=params, headers=who)


def test_owner_filters_by_platform_type_and_dates(api: dict[str, Any]) -> None:
    alice = api["jwt"]["alice"]
    all_posts = get(api, alice, limit=100).json()["posts"]
    assert len(all_posts) == 40
    assert all(p["text"].startswith(("Run", "alice")) for p in all_posts)  # never bob's
    stamps = [p["created_at"] for p in all_posts]
    assert stamps == sorted(stamps, reverse=True)
    strava = get(api, alice, platforms="strava", limit=100).json()["posts"]
    assert len(strava) == 30 and {p["platform"] for p in strava} == {"strava"}
    assert strava[0]["data"]["start_latlng"] == [45.5, -122.6]  # the owner sees everything they own
    assert len(get(api, alice, types="post", limit=100).json()["posts"]) == 10
    window = get(api, alice, since="2026-01-01T10:00:00Z", until="2026-01-01T20:00:00Z", limit=100).json()["posts"]
    assert len(window) == 10 and all("T1" in p["created_at"] for p in window)


def test_keyset_pagination_has_no_duplicates_or_gaps_while_posts_arrive(api: dict[str, Any]) -> None:
    alice = api["jwt"]["alice"]
    seen: list[str] = []
    page = get(api, alice, limit=7).json()
    seen += [p["id"] for p in page["posts"]]
    # New posts arrive (newer than everything) between pages: keyset pagination is not disturbed.
    with psycopg.connect(api["db"], autocommit=True) as conn:
        conn.execute(
            "insert into public.posts (account_id, platform, platform_post_id, text_content, created_at_platform)"
            " values (%s, 'bluesky', 'late-1', 'breaking news', now())",
            (api["accounts"][("alice", "bluesky")],),
        )
    while page["next_cursor"]:
        page = get(api, alice, limit=7, cursor=page["next_cursor"]).json()
        seen += [p["id"] for p in page["posts"]]
    assert len(seen) == len(set(seen)) == 40
    # Offset pagination (as the seeds ask) covers the same set, now with the new post on top.
    by_offset = [p["id"] for o in range(0, 41, 10) for p in get(api, alice, limit=10, offset=o).json()["posts"]]
    assert len(by_offset) == 41 and set(seen) < set(by_offset)


def test_search_ranks_and_counts_facets(api: dict[str, Any]) -> None:
    alice = api["jwt"]["alice"]
    hits = get(api, alice, q="river", limit=100).json()["posts"]
    assert len(hits) == 10 + 5  # 10 runs "along the river", 5 bluesky posts "on rivers"
    with psycopg.connect(api["db"], autocommit=True) as conn, conn.transaction():
        conn.execute("set local role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": api["users"]["alice"], "role": "authenticated"}),),
        )
        facets = dict(conn.execute("select platform::text, matches from public.search_facets('river')").fetchall())
        ranked = conn.execute("select text_content, rank from public.search_posts('sourdough bread')").fetchall()
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "explain select * from public.posts"
                " where user_id = %s and search_vector @@ websearch_to_tsquery('river')",
                (api["users"]["alice"],),
            ).fetchall()
        )
    assert facets == {"strava": 10, "bluesky": 5}
    assert len(ranked) == 5 and all("sourdough" in t for t, _ in ranked)
    assert [r for _, r in ranked] == sorted((r for _, r in ranked), reverse=True)
    assert "Seq Scan on posts" not in plan
    with psycopg.connect(api["db"], autocommit=True) as conn:
        conn.execute("set enable_seqscan = on")
        feed_plan = "\n".join(
            r[0]
            for r in conn.execute(
                # The feed function's query shape (plpgsql hides its plan from EXPLAIN of the call).
                "explain select p.id from public.posts as p where p.user_id = %s and not p.deleted_on_platform"
                " and (p.created_at_platform, p.id) < (now(), gen_random_uuid())"
                " order by p.created_at_platform desc, p.id desc limit 20",
                (api["users"]["alice"],),
            ).fetchall()
        )
    assert "Seq Scan on posts" not in feed_plan and "posts_user_feed_idx" in feed_plan


def test_api_key_reads_only_the_public_view_without_coordinates(api: dict[str, Any]) -> None:
    created = httpx.post(f"{api['url']}/api/keys", json={"name": "my website"}, headers=api["jwt"]["alice"])
    assert created.status_code == 201
    key = created.json()["key"]
    public = get(api, {"Authorization": f"Bearer {key}"}, limit=100, platforms="strava").json()
    assert public["public"] is True
    numbers = {p["data"]["id"] for p in public["posts"]}
    expected = {n for n in range(30) if n % 5 != 0 and n % 7 != 0}
    assert numbers == expected  # followers-only and private activities stay out
    assert all("start_latlng" not in p["data"] and "map" not in p["data"] for p in public["posts"])
    listing = httpx.get(f"{api['url']}/api/keys", headers=api["jwt"]["alice"]).json()["keys"]
    assert [k["name"] for k in listing] == ["my website"] and listing[0]["last_used_at"] is not None
    assert "key" not in listing[0] and "key_hash" not in listing[0]
    assert scalar(api["db"], "select count(*) from public.api_keys where key_hash = %s", (key,)) == 0  # hashed


def test_keys_are_per_user_and_revocation_is_immediate(api: dict[str, Any]) -> None:
    bob_key = httpx.post(f"{api['url']}/api/keys", json={"name": "bob site"}, headers=api["jwt"]["bob"]).json()
    bob_posts = get(api, {"Authorization": f"Bearer {bob_key['key']}"}, limit=100).json()["posts"]
    assert len(bob_posts) == 5 and all(p["text"].startswith("bob") for p in bob_posts)
    assert httpx.delete(f"{api['url']}/api/keys/{bob_key['id']}", headers=api["jwt"]["alice"]).status_code == 404
    assert httpx.delete(f"{api['url']}/api/keys/{bob_key['id']}", headers=api["jwt"]["bob"]).status_code == 200
    revoked = get(api, {"Authorization": f"Bearer {bob_key['key']}"})
    assert revoked.status_code == 401 and revoked.json()["detail"] == "unknown or revoked API key"


@pytest.mark.parametrize(
    ("auth", "detail"),
    [
        (None, "send Authorization: Bearer"),
        ("Bearer trove_abc", "malformed API key"),
        ("Bearer trove_deadbeef_" + "x" * 40, "unknown or revoked API key"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.bad", "invalid access token"),
    ],
)
def test_bad_credentials_are_401_with_a_clear_message(api: dict[str, Any], auth: str | None, detail: str) -> None:
    response = get(api, {"Authorization": auth} if auth else {})
    assert response.status_code == 401 and response.json()["detail"].startswith(detail)


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"limit": 0}, "limit must be between 1 and 100"),
        ({"limit": 101}, "limit must be between 1 and 100"),
        ({"since": "yesterday"}, "since must be an ISO 8601 date or time"),
        ({"until": "2026-01-01T00:00:00"}, "until needs a time zone"),
        ({"cursor": "not-a-cursor"}, "invalid cursor"),
        ({"cursor": "x", "offset": 5}, "use cursor or offset, not both"),
        ({"offset": -1}, "offset must be between 0 and 100000"),
        ({"offset": 50013955922788}, "offset must be between 0 and 100000"),
        ({"platforms": "myspace"}, "unknown platforms: myspace"),
        ({"types": "tweet"}, "unknown types: tweet"),
    ],
)
def test_bad_parameters_are_400(api: dict[str, Any], params: dict[str, Any], detail: str) -> None:
    response = get(api, api["jwt"]["alice"], **params)
    assert response.status_code == 400 and response.json()["detail"].startswith(detail)


def test_sync_now_returns_the_log_to_poll_and_only_for_the_owner(api: dict[str, Any]) -> None:
    account = api["accounts"][("alice", "strava")]
    started = httpx.post(f"{api['url']}/api/sync/{account}", headers=api["jwt"]["alice"])
    assert started.status_code == 202
    log_id = started.json()["sync_log_id"]
    again = httpx.post(f"{api['url']}/api/sync/{account}", headers=api["jwt"]["alice"]).json()["sync_log_id"]
    assert again == log_id  # joins the sync in flight
    status = httpx.get(f"{api['url']}/api/sync/{log_id}/status", headers=api["jwt"]["alice"]).json()
    assert (status["status"], status["sync_type"]) == ("queued", "manual")
    assert httpx.post(f"{api['url']}/api/sync/{account}", headers=api["jwt"]["bob"]).status_code == 404
    assert httpx.get(f"{api['url']}/api/sync/{log_id}/status", headers=api["jwt"]["bob"]).status_code == 404
    assert httpx.get(f"{api['url']}/api/sync/not-a-uuid/status", headers=api["jwt"]["alice"]).status_code == 404


def test_responses_are_cached_invalidated_by_a_change_and_answer_304(api: dict[str, Any]) -> None:
    alice, bob = api["jwt"]["alice"], api["jwt"]["bob"]
    first = get(api, alice, limit=5)
    assert first.headers["x-cache"] == "miss"
    second = get(api, alice, limit=5)
    assert second.headers["x-cache"] == "hit" and second.json() == first.json()
    etag = second.headers["etag"]
    assert get(api, {**alice, "If-None-Match": etag}, limit=5).status_code == 304
    assert get(api, bob, limit=5).headers["x-cache"] == "miss"  # per user
    bob_etag = get(api, bob, limit=5).headers["etag"]
    # alice's archive changes: her cache is invalid, bob's is untouched.
    with psycopg.connect(api["db"], autocommit=True) as conn:
        conn.execute("update public.posts set text_content = 'edited' where platform_post_id = 'alice-strava-29'")
    fresh = until_fresh(lambda: get(api, {**alice, "If-None-Match": etag}, limit=5), lambda r: r.status_code != 304)
    assert fresh.status_code == 200 and fresh.headers["x-cache"] == "miss" and fresh.headers["etag"] != etag
    assert "edited" in [p["text"] for p in fresh.json()["posts"]]
    assert get(api, {**bob, "If-None-Match": bob_etag}, limit=5).status_code == 304


def test_an_etag_does_not_outlive_the_signed_media_links_in_its_page(
    api: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page carries signed media URLs valid for an hour: half an hour on, the same archive gets a new ETag
    (a 200 with fresh links), never a 304 that keeps a client on links about to expire."""
    from trove.http import read

    alice = api["jwt"]["alice"]
    etag = get(api, alice, limit=5).headers["etag"]
    assert get(api, {**alice, "If-None-Match": etag}, limit=5).status_code == 304
    later = read.link_window() + 1
    monkeypatch.setattr(read, "link_window", lambda: later)
    renewed = get(api, {**alice, "If-None-Match": etag}, limit=5)
    assert renewed.status_code == 200 and renewed.headers["etag"] != etag and renewed.headers["x-cache"] == "miss"


def test_json_feed_and_atom_renderings(api: dict[str, Any]) -> None:
    import xml.etree.ElementTree as ET

    key = httpx.post(f"{api['url']}/api/keys", json={"name": "site"}, headers=api["jwt"]["alice"]).json()["key"]
    auth = {"Authorization": f"Bearer {key}"}
    feed = httpx.get(f"{api['url']}/api/feed.json", params={"limit": 5, "platforms": "strava"}, headers=auth)
    assert feed.headers["content-type"].startswith("application/feed+json")
    body = feed.json()
    assert body["version"] == "https://jsonfeed.org/version/1.1" and len(body["items"]) == 5
    assert body["next_url"].startswith(f"{api['url']}/api/feed.json?limit=5&platforms=strava&cursor=")
    following = httpx.get(body["next_url"], headers=auth).json()  # the next page keeps the filters
    assert len(following["items"]) == 5 and {i["id"] for i in following["items"]}.isdisjoint(
        {i["id"] for i in body["items"]}
    )
    assert all("strava" in i["tags"] for i in body["items"] + following["items"])
    assert following["next_url"].startswith(f"{api['url']}/api/feed.json?limit=5&platforms=strava&cursor=")
    assert all(item["date_published"] and item["id"] for item in body["items"])
    atom = httpx.get(f"{api['url']}/api/feed.atom", params={"platforms": "strava"}, headers=auth)
    assert atom.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(atom.content)
    entries = root.findall("{http://www.w3.org/2005/Atom}entry")
    assert len(entries) == 20
    assert all(e.find("{http://www.w3.org/2005/Atom}category").get("term") == "strava" for e in entries)
    links = {link.get("rel"): link.get("href") for link in root.findall("{http://www.w3.org/2005/Atom}link")}
    assert links["next"].startswith(f"{api['url']}/api/feed.atom?platforms=strava&cursor=")


def test_openapi_schema_and_no_server_errors_on_any_input(api: dict[str, Any], tmp_path: Any) -> None:
    """Every documented operation, fuzzed from the OpenAPI schema with a signed-in user's token: whatever the
    input, the service answers with a clear 4xx, never a 5xx."""
    import os
    import subprocess
    import sys

    schema = httpx.get(f"{api['url']}/openapi.json").json()
    assert {"/api/posts", "/api/keys", "/api/sync/{account_id}", "/health"} <= set(schema["paths"])
    token = api["jwt"]["alice"]["Authorization"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{api['url']}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--seed",  # a fixed seed: CI is repeatable; vary it by hand to explore (it found two 500s so far)
            "7",
            "--header",
            f"Authorization: {token}",
            "--exclude-path-regex",
            "^/functions/v1/oauth-.*/callback$",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_redis_cache_is_shared_by_several_service_processes(
    api: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import shutil
    import subprocess
    import time

    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is missing: scripts/install-system-deps.sh installs it")
    port = free_port()
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        import redis as redis_client

        client = redis_client.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis_client.ConnectionError:
                time.sleep(0.05)
        monkeypatch.setenv("TROVE_REDIS_URL", f"redis://127.0.0.1:{port}/0")
        one, two = free_port(), free_port()
        with (
            BackgroundServer(create_app(api["db"], RING), one) as first,
            BackgroundServer(create_app(api["db"], RING), two) as second,
        ):
            alice = api["jwt"]["alice"]
            miss = httpx.get(f"{first.url}/api/posts", params={"limit": 3}, headers=alice)
            hit = httpx.get(f"{second.url}/api/posts", params={"limit": 3}, headers=alice)
            assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
            assert hit.json()["posts"] == miss.json()["posts"]
            assert 0 < client.ttl(next(iter(client.scan_iter("trove:posts:*")))) <= 300
            with psycopg.connect(api["db"], autocommit=True) as conn:
                conn.execute(
                    "update public.posts set text_content = 'changed' where platform_post_id = 'alice-strava-29'"
                )
            after = until_fresh(
                lambda: httpx.get(f"{second.url}/api/posts", params={"limit": 3}, headers=alice),
                lambda r: r.headers["x-cache"] == "miss",
            )
            assert after.json()["posts"][0]["text"] == "changed"
    finally:
        redis.terminate()
        redis.wait(timeout=10)


@pytest.mark.parametrize("name", ["nul\u0000byte", "\ud800lone surrogate", "   "])
def test_key_names_postgres_cannot_store_are_400(api: dict[str, Any], name: str) -> None:
    response = httpx.post(
        f"{api['url']}/api/keys",
        content=json.dumps({"name": name}).encode(),
        headers={**api["jwt"]["alice"], "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert scalar(api["db"], "select count(*) from public.api_keys") == 0
