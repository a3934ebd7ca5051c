"""Read API cache hits answered before routing (trove.http.fast_read) answer exactly what the routes answer from
the cache, and leave everything else to the routes: misses, refusals, revoked keys, expired tokens, archive
changes, parameters the framework parses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.worker_harness import RING, scalar, until_fresh

from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.http.auth import issue_local_token
from trove.http.fast_read import CachedReads
from trove.simulators.serve import BackgroundServer

SAME = ("content-type", "etag", "cache-control", "vary", "content-length")


@pytest.fixture
def service(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("TROVE_PLATFORMS", "")
    answered: list[str] = []
    original = CachedReads.from_cache

    async def counted(self: CachedReads, scope: Any) -> Any:
        answer = await original(self, scope)
        if answer is not None:
            answered.append(scope["path"])
        return answer

    monkeypatch.setattr(CachedReads, "from_cache", counted)
    user = str(scalar(db_url, "select tests.create_user('alice')"))
    scalar(db_url, "select tests.create_archive('alice')")
    port = free_port()
    app = create_app(db_url, RING)
    with BackgroundServer(app, port) as server:
        jwt = {"Authorization": f"Bearer {issue_local_token(user)}"}
        key = httpx.post(f"{server.url}/api/keys", json={"name": "site"}, headers=jwt).json()
        yield {
            "url": server.url,
            "db": db_url,
            "user": user,
            "jwt": jwt,
            "key": {"Authorization": f"Bearer {key['key']}"},
            "key_id": key["id"],
            "answered": answered,
            "app": app,
        }


@pytest.mark.parametrize("path", ["/api/posts", "/api/feed.json", "/api/feed.atom"])
@pytest.mark.parametrize("who", ["jwt", "key"])
def test_a_hit_is_answered_before_routing_exactly_as_the_route_would(
    service: dict[str, Any], path: str, who: str
) -> None:
    url, headers = service["url"] + path, service[who]
    params = {"limit": "5", "types": "activity"}
    miss = httpx.get(url, params=params, headers=headers)
    assert miss.status_code == 200 and miss.headers["x-cache"] == "miss"
    assert service["answered"] == []
    hit = httpx.get(url, params=params, headers=headers)
    assert hit.status_code == 200 and hit.headers["x-cache"] == "hit"
    assert service["answered"] == [path]
    assert hit.content == miss.content
    assert {h: hit.headers.get(h) for h in SAME} == {h: miss.headers.get(h) for h in SAME}
    # A client that has it: 304 with the same validators, before routing too.
    again = httpx.get(url, params=params, headers={**headers, "If-None-Match": miss.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == miss.headers["etag"] and again.headers["vary"] == "Authorization"
    assert service["answered"] == [path, path]


def test_everything_unusual_goes_to_the_routes(service: dict[str, Any]) -> None:
    url, jwt = service["url"] + "/api/posts", service["jwt"]
    httpx.get(url, headers=jwt)
    assert httpx.get(url, headers=jwt).headers["x-cache"] == "hit"
    assert len(service["answered"]) == 1
    for params, status in (
        ({"limit": "abc"}, 422),
        ({"limit": "0"}, 400),
        ({"limit": "+5"}, 200),  # the framework's number parsing, not ours
        ({"platforms": "myspace"}, 400),
        ({"q": "a\x01b"}, 400),
        ({"cursor": "x", "offset": "3"}, 400),
    ):
        response = httpx.get(url, params=params, headers=jwt)
        assert response.status_code == status, (params, response.text)
    assert httpx.get(url).status_code == 401
    expired = {"Authorization": f"Bearer {issue_local_token(service['user'], ttl_seconds=-5)}"}
    assert httpx.get(url, headers=expired).status_code == 401
    assert len(service["answered"]) == 1  # none of those was answered before routing


def test_revocation_is_seen_at_once_and_archive_changes_as_announced(service: dict[str, Any]) -> None:
    url, key, jwt = service["url"] + "/api/posts", service["key"], service["jwt"]
    httpx.get(url, headers=key)
    assert httpx.get(url, headers=key).headers["x-cache"] == "hit"
    httpx.get(url, headers=jwt)
    assert httpx.get(url, headers=jwt).headers["x-cache"] == "hit"
    scalar(
        service["db"],
        "update public.posts set text_content = 'changed' where user_id = %s returning 1",
        (service["user"],),
    )
    changed = until_fresh(lambda: httpx.get(url, headers=jwt), lambda r: r.headers["x-cache"] == "miss")
    assert "changed" in changed.text
    assert httpx.delete(f"{service['url']}/api/keys/{service['key_id']}", headers=jwt).status_code == 200
    revoked = httpx.get(url, headers=key)
    assert revoked.status_code == 401 and revoked.json()["detail"] == "unknown or revoked API key"


def test_a_miss_authenticates_a_key_once(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """What the fast path learned on a miss (who, the archive version) is handed on, not asked again."""
    import trove.http.read as read

    calls: list[str] = []
    original = read.reader_for

    async def counted(pool: Any, authorization: str | None) -> Any:
        calls.append(authorization or "")
        return await original(pool, authorization)

    monkeypatch.setattr(read, "reader_for", counted)
    monkeypatch.setattr("trove.http.fast_read.reader_for", counted)
    response = httpx.get(service["url"] + "/api/posts", params={"limit": "7"}, headers=service["key"])
    assert response.status_code == 200 and response.headers["x-cache"] == "miss"
    assert len(calls) == 1


def test_a_miss_of_the_posts_page_is_answered_before_routing_exactly_as_the_route_would(
    service: dict[str, Any],
) -> None:
    url, jwt = service["url"] + "/api/posts", service["jwt"]
    httpx.get(url, params={"limit": "2"}, headers=jwt)  # the first request reads the platform names, as the route
    routed = httpx.get(url, params={"limit": "+4"}, headers=jwt)  # a number only the framework parses: the route
    assert routed.status_code == 200 and routed.headers["x-cache"] == "miss"
    assert service["answered"] == []
    service["app"].state.cache.entries.clear()  # the same page, not kept: a miss again
    early = httpx.get(url, params={"limit": "4"}, headers=jwt)
    assert early.status_code == 200 and early.headers["x-cache"] == "miss"
    assert service["answered"] == ["/api/posts"]
    assert early.content == routed.content and early.json()["posts"]
    assert {h: early.headers.get(h) for h in SAME} == {h: routed.headers.get(h) for h in SAME}
    # A page Postgres refuses goes on to the route, which says why in its own words.
    refused = httpx.get(url, params={"cursor": "garbage!"}, headers=jwt)
    assert refused.status_code == 400 and refused.json()["detail"] == "invalid cursor"
    assert service["answered"] == ["/api/posts"]
    # A key's miss (public mode) too.
    public = httpx.get(url, params={"limit": "3"}, headers=service["key"])
    assert public.status_code == 200 and public.headers["x-cache"] == "miss" and public.json()["public"] is True
    assert service["answered"] == ["/api/posts", "/api/posts"]
