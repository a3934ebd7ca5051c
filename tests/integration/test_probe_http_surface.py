"""Attacker / careless-client probes of the HTTP surface changed by issue 17: the feeds (public mode, the
cache and its ETags, XML built from hostile text), the OAuth catch-all documents route and start's
login_hint, and `trove db dump`. Each test fails on a real defect (its docstring says what an attacker or a
reader gains) or pins an important defence that holds."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest
from lxml import etree
from tests.integration import test_feeds_spec as feeds_spec
from tests.strava_harness import service_stack, user
from tests.worker_harness import until_fresh

from trove.db import schema

# test_feeds_spec's archive over real HTTP: alice ("Alice Example") with a public and a followers-only ride,
# Bluesky posts and a repost; a JWT and an API key (public mode) for alice and bob.
api = feeds_spec.api
A = feeds_spec.A
FRIENDS_ONLY = feeds_spec.FRIENDS_ONLY


def get(api: dict[str, Any], path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.get(f"{api['url']}/api/{path}", params=params, headers=headers)


def db(api: dict[str, Any], sql: str, params: tuple[Any, ...] = ()) -> None:
    with psycopg.connect(api["db"], autocommit=True) as conn:
        conn.execute(sql, params)


# --- the feeds: cache and identity ----------------------------------------------------------------------
def test_a_display_name_change_reaches_the_cached_public_feed(api: dict[str, Any]) -> None:
    """DEFECT. The feeds name the user's display name as author, but changing it does not bump the archive
    version that keys the cache and the ETag (only posts, raw posts, post_media and media_downloads do). A
    user who removes their real name from their profile keeps publishing it on their website's public feed
    for up to 5 minutes (cache hit), and to every feed reader polling with If-None-Match for up to half an
    hour (304 until the signed-link window turns): the README promises the cache is invalidated "the moment
    anything a reader of that user's archive could see changes"."""
    key = api["key"]["alice"]
    first = get(api, "feed.json", key, limit=5)
    assert first.status_code == 200 and first.json()["authors"] == [{"name": "Alice Example"}]
    etag = first.headers["etag"]
    db(api, "update public.users set display_name = 'A. Nonymous' where id = %s", (api["users"]["alice"],))
    conditional = until_fresh(
        lambda: get(api, "feed.json", {**key, "If-None-Match": etag}, limit=5), lambda r: r.status_code != 304
    )
    assert conditional.status_code == 200, "304: the reader keeps the old name"
    fresh = get(api, "feed.json", key, limit=5)
    assert fresh.json()["authors"] == [{"name": "A. Nonymous"}], f"X-Cache: {fresh.headers.get('x-cache')}"
    atom = etree.fromstring(get(api, "feed.atom", key, limit=5).content)
    assert atom.findtext(f"{A}author/{A}name") == "A. Nonymous"


def test_a_feeds_permanent_atom_id_does_not_depend_on_who_warmed_the_cache(api: dict[str, Any]) -> None:
    """DEFECT. The cache key is built from the parsed filters, but the rendering's feed URL (JSON Feed's
    feed_url, Atom's rel="self" and the `urn:uuid:` Atom id derived from it) from the raw query string. Two
    URLs that parse alike (another parameter order, `limit=20` spelled out or left out, ` strava`) share one
    cache entry, so whichever was fetched first after a change names the feed for both: the same
    subscription URL changes its "permanent" Atom id (RFC 4287 §4.2.6) from one archive version to the next,
    and a feed reader that keys on it sees a new feed (every entry again) or follows rel="self" elsewhere."""
    key = api["key"]["alice"]
    mine = f"{api['url']}/api/feed.atom?limit=5&platforms=strava"

    def atom(url: str) -> tuple[str, str]:
        response = httpx.get(url, headers=key)
        assert response.status_code == 200, response.text
        feed = etree.fromstring(response.content)
        self_link = next(link.get("href") for link in feed.findall(f"{A}link") if link.get("rel") == "self")
        return feed.findtext(f"{A}id"), self_link

    cold_id, cold_self = atom(mine)
    assert cold_self == f"{mine}#public"
    # Any change to the archive (a new cache generation); then someone else's spelling of the same filters.
    db(api, "update public.posts set text_content = text_content || ' ' where text_content = 'Evening Ride'")
    atom(f"{api['url']}/api/feed.atom?platforms=strava&limit=5")
    assert atom(mine) == (cold_id, cold_self), "the same URL now names another feed"


def test_the_owners_cached_page_and_etag_never_answer_the_public_feed(api: dict[str, Any]) -> None:
    """DEFENCE HOLDS. The owner's page is rendered first (cache warm, ETag known); the public reader asking for
    the same filters with the owner's ETag gets neither a 304 nor the cached owner page: no followers-only
    permalink, text or author beyond what public mode allows."""
    owner, public = api["jwt"]["alice"], api["key"]["alice"]
    for path in ("posts", "feed.json", "feed.atom"):
        warmed = get(api, path, owner, limit=100)
        assert warmed.status_code == 200 and FRIENDS_ONLY in warmed.text
        answer = get(api, path, {**public, "If-None-Match": warmed.headers["etag"]}, limit=100)
        assert answer.status_code == 200 and answer.headers["x-cache"] == "miss"
        assert answer.headers["etag"] != warmed.headers["etag"]
        assert FRIENDS_ONLY not in answer.text and "Ride with friends" not in answer.text
    # bob's key, with alice's ETags, reads only bob's (public) archive.
    bob = get(api, "feed.json", api["key"]["bob"], limit=100).json()
    assert all("alice" not in (item.get("content_text") or "") for item in bob["items"])


# --- the feeds: hostile text ------------------------------------------------------------------------------
HOSTILE = "]]><entry><id>x</id></entry><!-- &amp; \x01\x08\x0b\x7f\ufffe\u2028 -->\x1f end"


def test_hostile_display_names_and_post_text_still_give_well_formed_feeds(api: dict[str, Any]) -> None:
    """DEFENCE HOLDS. A display name and a public post's text full of markup (`]]>`, a forged <entry>, a
    comment), characters XML 1.0 cannot carry (C0 controls, U+FFFE) and U+2028 neither break the Atom
    document (a strict XML parser reads it) nor inject an element; JSON Feed carries them as data."""
    alice = api["users"]["alice"]
    db(api, "update public.users set display_name = %s where id = %s", (HOSTILE, alice))
    db(
        api,
        "update public.posts set text_content = %s where text_content = 'Evening Ride'",
        (HOSTILE,),
    )
    for who in (api["jwt"]["alice"], api["key"]["alice"]):
        response = get(api, "feed.atom", who, limit=100)
        assert response.status_code == 200
        feed = etree.fromstring(response.content, etree.XMLParser(recover=False, resolve_entities=False))
        entries = feed.findall(f"{A}entry")
        assert all(entry.findtext(f"{A}id") != "x" for entry in entries)
        assert "]]><entry><id>x</id></entry><!-- &amp;" in feed.findtext(f"{A}author/{A}name")
        contents = [entry.findtext(f"{A}content") for entry in entries]
        assert any(c and c.startswith("]]><entry>") for c in contents)
        body = get(api, "feed.json", who, limit=100).json()
        assert any(item["content_text"] == HOSTILE for item in body["items"])


# --- OAuth: the catch-all documents route and start's login_hint ------------------------------------------
def test_oauth_documents_route_and_login_hint_refuse_hostile_input_cleanly(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DEFENCE HOLDS. The catch-all `/functions/v1/oauth-{platform}/{document}` serves only a platform's own
    documents from a dict (no file is read): traversal, encoded slashes, unknown platforms, huge names and
    the other routes' names over GET are a JSON 404, never a file or a 500. start's login_hint is capped
    (512, a 422) and a platform that takes none (Strava) never puts it into the consent URL."""
    with service_stack(db_url, monkeypatch) as stack:
        base = f"{stack['url']}/functions/v1"
        for path in (
            "oauth-strava/..%2F..%2F..%2Fetc%2Fpasswd",
            "oauth-strava/%2e%2e",
            "oauth-strava/start",  # a POST route's name over GET
            "oauth-strava/client-metadata.json",
            "oauth-nosuch/client-metadata.json",
            "oauth-..%2Fwebhook-strava/x",
            "oauth-strava/" + "d" * 6000,
            "oauth-" + "p" * 6000 + "/jwks.json",
        ):
            response = httpx.get(f"{base}/{path}")
            assert response.status_code == 404, (path[:60], response.status_code, response.text[:200])
            assert response.headers["content-type"].startswith("application/json")
            assert "root:" not in response.text
        _, headers = user(db_url, "mallory")
        with httpx.Client() as browser:
            too_long = browser.post(f"{base}/oauth-strava/start", headers=headers, json={"login_hint": "h" * 513})
            assert too_long.status_code == 422
            hint = "alice\r\nLocation: https://evil.example/\x00"
            started = browser.post(f"{base}/oauth-strava/start", headers=headers, json={"login_hint": hint})
            assert started.status_code == 200, started.text
            assert "evil.example" not in started.json()["url"] and "%0D" not in started.json()["url"].upper()


# --- trove db dump ------------------------------------------------------------------------------------------
def test_trove_db_dump_keeps_the_database_password_off_the_command_line() -> None:
    """`trove db dump` must not pass the password as pg_dump's argument: for as long as the dump runs, any
    local user (or any process in a shared container) could read it from `ps` / /proc/<pid>/cmdline. It goes
    in the environment; the dumps the other tests make (their URLs carry a password) prove pg_dump takes it."""
    args, env = schema.pg_dump_command(
        "postgresql://trove:hunter2-s3cret@db.example.com:5432/postgres", schema.PLATFORM_SCHEMAS
    )
    assert not any("hunter2-s3cret" in arg for arg in args), args
    assert env["PGPASSWORD"] == "hunter2-s3cret"
    assert any("db.example.com" in arg for arg in args)


def test_trove_db_dump_carries_schema_and_no_data_or_secrets(api: dict[str, Any]) -> None:
    """DEFENCE HOLDS. The restorable dump of a live database with posts, API keys (their hashes) and
    encrypted tokens holds none of them: schema only (no COPY, no setval), no row of any table."""
    with psycopg.connect(api["db"], autocommit=True) as conn:
        key_hash = conn.execute("select key_hash from public.api_keys limit 1").fetchone()
    dump = schema.restorable_dump(api["db"])
    assert "create table public.posts" in dump.lower()
    for leaked in ("Evening Ride", "Alice Example", "sourdough", str(key_hash[0]) if key_hash else "\x00"):
        assert leaked not in dump, leaked
    assert "\nCOPY " not in dump and "setval(" not in dump
