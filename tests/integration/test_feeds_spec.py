"""The feeds against the specifications they claim, checked by validators no one here wrote (issue 17): Atom
by RFC 4287's own RELAX NG schema (Appendix B, with its Schematron rules) and by feedparser; JSON Feed by a
JSON Schema of JSON Feed 1.1 with the `jsonschema` package. Over real HTTP and Postgres, for the owner (a
Supabase JWT) and the public feed (an API key), with posts stored the way the sync stores them (each
platform's normalizer builds its permalink)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
import jsonschema
import psycopg
import pytest
from lxml import etree, isoschematron
from tests.integration.test_read_api import seed
from tests.worker_harness import RING, TEST_KEY, scalar

from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.http.auth import issue_local_token
from trove.http.feeds import describe
from trove.platforms.bluesky import normalize as bluesky
from trove.platforms.strava import normalize as strava
from trove.simulators.serve import BackgroundServer
from trove.store import store_post
from trove.tokens import load_account

DATA = Path(__file__).parent / "data"
ATOM_NS = "http://www.w3.org/2005/Atom"
A = f"{{{ATOM_NS}}}"
CID = "bafyreie" + "e" * 51
ALICE_DID = "did:plc:alicealicealicealice"
BOB_DID = "did:plc:bobbobbobbobbobbobbob"


def atom_validators() -> tuple[etree.RelaxNG, isoschematron.Schematron]:
    """RFC 4287's RELAX NG schema, and its Schematron rules (the `s:rule` annotations a RELAX NG validator
    skips: an author on the feed or every entry; content or an alternate link on every entry), each rule in a
    pattern of its own as the RFC states them."""
    grammar = etree.parse(str(DATA / "atom.rng"))
    rules = grammar.findall(".//{http://www.ascc.net/xml/schematron}rule")
    assert len(rules) == 3
    sch = "http://purl.oclc.org/dsdl/schematron"
    schema = etree.Element(f"{{{sch}}}schema", nsmap={None: sch})
    etree.SubElement(schema, f"{{{sch}}}ns", prefix="atom", uri=ATOM_NS)
    for rule in rules:
        pattern = etree.SubElement(schema, f"{{{sch}}}pattern")
        iso_rule = etree.SubElement(pattern, f"{{{sch}}}rule", context=rule.get("context"))
        for check in rule:
            etree.SubElement(iso_rule, f"{{{sch}}}assert", test=check.get("test")).text = check.text
    return etree.RelaxNG(grammar), isoschematron.Schematron(schema)


def json_feed_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((DATA / "jsonfeed-1.1.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    checker = cls.FORMAT_CHECKER
    assert "date-time" in checker.checkers  # RFC 3339 dates are really checked, not skipped
    return cls(schema, format_checker=checker)


def store(db_url: str, account_id: str, posts: list[Any]) -> None:
    """Posts stored the way the sync engine stores them."""

    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            account = await load_account(conn, RING, account_id)
            for post in posts:
                await store_post(conn, account, post, None)
            await conn.commit()

    asyncio.run(run())


@pytest.fixture
def api(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """test_read_api's archive (alice: 30 Strava activities, 10 Bluesky posts; bob: 5), alice named, and
    newer posts stored through the normalizers: a public and a followers-only ride, a Bluesky post and a
    repost with no text of its own."""
    data = seed(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update public.users set display_name = 'Alice Example' where id = %s", (data["users"]["alice"],))
    store(
        db_url,
        data["accounts"][("alice", "strava")],
        [
            strava.normalize(
                {
                    "id": 987654321,
                    "name": "Evening Ride",
                    "sport_type": "Ride",
                    "start_date": "2026-02-01T12:00:00Z",
                    "visibility": "everyone",
                }
            ),
            strava.normalize(
                {
                    "id": 987654322,
                    "name": "Ride with friends",
                    "sport_type": "Ride",
                    "start_date": "2026-02-01T13:00:00Z",
                    "visibility": "followers_only",
                }
            ),
        ],
    )
    store(
        db_url,
        data["accounts"][("alice", "bluesky")],
        [
            bluesky.normalize(
                {
                    "uri": f"at://{ALICE_DID}/app.bsky.feed.post/3kabcdefghi2b",
                    "cid": CID,
                    "value": {
                        "$type": "app.bsky.feed.post",
                        "text": "hello from the sky",
                        "createdAt": "2026-02-01T11:00:00Z",
                    },
                }
            ),
            bluesky.normalize(
                {
                    "uri": f"at://{ALICE_DID}/app.bsky.feed.repost/3kabcdefghi2c",
                    "cid": CID,
                    "value": {
                        "$type": "app.bsky.feed.repost",
                        "subject": {"uri": f"at://{BOB_DID}/app.bsky.feed.post/3kzzzzzzzzz2a", "cid": CID},
                        "createdAt": "2026-02-01T10:00:00Z",
                    },
                }
            ),
        ],
    )
    port = free_port()
    monkeypatch.setenv("TROVE_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("TROVE_PUBLIC_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TROVE_MEDIA_SIGNING_KEY", "k")
    monkeypatch.setenv("TROVE_TOKEN_KEYS", f"test:{TEST_KEY}")
    with BackgroundServer(create_app(db_url, RING), port) as server:
        data["url"] = server.url
        data["db"] = db_url
        data["jwt"] = {n: {"Authorization": f"Bearer {issue_local_token(u)}"} for n, u in data["users"].items()}
        data["key"] = {}
        for name, headers in data["jwt"].items():
            key = httpx.post(f"{server.url}/api/keys", json={"name": "site"}, headers=headers).json()["key"]
            data["key"][name] = {"Authorization": f"Bearer {key}"}
        yield data


PERMALINKS = {
    "Evening Ride": "https://www.strava.com/activities/987654321",
    "hello from the sky": f"https://bsky.app/profile/{ALICE_DID}/post/3kabcdefghi2b",
    # A repost has no page of its own: its link is the reposted post's.
    None: f"https://bsky.app/profile/{BOB_DID}/post/3kzzzzzzzzz2a",
}
FRIENDS_ONLY = "https://www.strava.com/activities/987654322"


def fetch(api: dict[str, Any], path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
    response = httpx.get(f"{api['url']}/api/{path}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response


def test_the_normalizers_permalinks_are_stored_and_public_mode_shows_only_public_ones(api: dict[str, Any]) -> None:
    with psycopg.connect(api["db"], autocommit=True) as conn:
        stored = dict(
            conn.execute("select text_content, permalink from public.posts where permalink is not null").fetchall()
        )
    assert stored == {**PERMALINKS, "Ride with friends": FRIENDS_ONLY}
    owner = fetch(api, "posts", api["jwt"]["alice"], limit=100).json()["posts"]
    assert {p["permalink"] for p in owner if p["permalink"]} == {*PERMALINKS.values(), FRIENDS_ONLY}
    public = fetch(api, "posts", api["key"]["alice"], limit=100).json()["posts"]
    assert {p["permalink"] for p in public if p["permalink"]} == set(PERMALINKS.values())


@pytest.mark.parametrize("mode", ["jwt", "key"])
def test_atom_is_valid_by_rfc_4287s_relax_ng_schema_and_feedparser(api: dict[str, Any], mode: str) -> None:
    relaxng, schematron = atom_validators()
    for params in ({"limit": 100}, {"limit": 5, "platforms": "bluesky"}, {"limit": 3, "q": "nothing matches this"}):
        response = fetch(api, "feed.atom", api[mode]["alice"], **params)
        document = etree.fromstring(response.content)
        assert relaxng.validate(document), str(relaxng.error_log)
        assert schematron.validate(document), str(schematron.error_log)
        parsed = feedparser.parse(response.content)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        assert parsed.feed.author == "Alice Example"
    feed = etree.fromstring(fetch(api, "feed.atom", api[mode]["alice"], limit=100).content)
    assert feed.findtext(f"{A}author/{A}name") == "Alice Example"
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{A}link")}
    assert links["alternate"] == f"{api['url']}/api/posts?limit=100"  # the feed's home: the same archive
    alternates = {
        entry.findtext(f"{A}content"): [
            link.get("href") for link in entry.findall(f"{A}link") if link.get("rel") == "alternate"
        ]
        for entry in feed.findall(f"{A}entry")
    }
    assert alternates["Evening Ride"] == [PERMALINKS["Evening Ride"]]
    assert alternates["hello from the sky"] == [PERMALINKS["hello from the sky"]]
    repost = alternates["Repost on bluesky · 1 February 2026"]  # no text: described, never empty
    assert repost == [PERMALINKS[None]]
    assert ("Ride with friends" in alternates) == (mode == "jwt")
    parsed = feedparser.parse(fetch(api, "feed.atom", api[mode]["alice"], limit=100).content)
    assert {e.title: e.link for e in parsed.entries}["Evening Ride"] == PERMALINKS["Evening Ride"]
    # The validators are no rubber stamp: without its author (RFC 4287 §4.1.1) the feed is refused.
    feed.remove(feed.find(f"{A}author"))
    assert relaxng.validate(feed) and not schematron.validate(feed)


@pytest.mark.parametrize("mode", ["jwt", "key"])
def test_json_feed_is_valid_by_the_json_feed_1_1_schema(api: dict[str, Any], mode: str) -> None:
    validator = json_feed_validator()
    for params in ({"limit": 100}, {"limit": 5, "platforms": "bluesky"}, {"limit": 3, "q": "nothing matches this"}):
        body = fetch(api, "feed.json", api[mode]["alice"], **params).json()
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
        assert errors == []
        assert all(item.get("content_text") or item.get("content_html") for item in body["items"])
    body = fetch(api, "feed.json", api[mode]["alice"], limit=100, platforms="strava,bluesky").json()
    assert (
        body["home_page_url"] == f"{api['url']}/api/posts?limit=100&platforms=bluesky%2Cstrava"
    )  # canonical: the same for every spelling
    assert body["authors"] == [{"name": "Alice Example"}]
    items = {item.get("url"): item for item in body["items"]}
    assert items[PERMALINKS["Evening Ride"]]["content_text"] == "Evening Ride"
    repost = items[PERMALINKS[None]]
    assert repost["title"] == repost["summary"] == repost["content_text"] == "Repost on bluesky · 1 February 2026"
    assert (FRIENDS_ONLY in items) == (mode == "jwt")
    # A bad item is caught: the schema is not a rubber stamp.
    broken = {**body, "items": [{**body["items"][0], "content_text": None}]}
    assert not validator.is_valid(broken)


def test_owner_and_public_feeds_each_have_their_own_identity(api: dict[str, Any]) -> None:
    def identity(who: dict[str, str]) -> tuple[str, str]:
        json_feed = fetch(api, "feed.json", who, limit=5).json()
        atom = etree.fromstring(fetch(api, "feed.atom", who, limit=5).content)
        return json_feed["feed_url"], atom.findtext(f"{A}id")

    owner, public = identity(api["jwt"]["alice"]), identity(api["key"]["alice"])
    assert owner[0] == f"{api['url']}/api/feed.json?limit=5"
    assert public[0] == f"{api['url']}/api/feed.json?limit=5#public"
    assert owner[1] != public[1] and owner[1].startswith("urn:uuid:") and public[1].startswith("urn:uuid:")
    assert identity(api["jwt"]["alice"]) == owner  # permanent
    bob_owner, bob_public = identity(api["jwt"]["bob"]), identity(api["key"]["bob"])
    assert len({owner[1], public[1], bob_owner[1], bob_public[1]}) == 4  # an Atom id is universally unique
    # The public feed's next page is fetched at its URL (the fragment is only its name).
    body = fetch(api, "feed.json", api["key"]["alice"], limit=5).json()
    assert body["next_url"].startswith(f"{api['url']}/api/feed.json?limit=5&cursor=")


def test_a_post_without_text_is_described_by_what_it_has() -> None:
    post = {
        "platform": "bluesky",
        "content_type": "post",
        "created_at": datetime(2026, 3, 3, 23, 30, tzinfo=UTC).isoformat(),
        "media": [{"content_type": "image/jpeg"}, {"content_type": "image/png"}, {"content_type": "video/mp4"}],
    }
    assert describe(post) == "Post on bluesky · 3 March 2026 · 2 photos · 1 video"
    assert describe({**post, "media": [{"content_type": None}]}) == "Post on bluesky · 3 March 2026 · 1 file"


def test_the_author_falls_back_when_the_user_has_no_display_name(api: dict[str, Any]) -> None:
    assert scalar(api["db"], "select display_name from public.users where id = %s", (api["users"]["bob"],)) is None
    body = fetch(api, "feed.json", api["key"]["bob"]).json()
    assert body["authors"] == [{"name": "Trove user"}]
    assert json_feed_validator().is_valid(body)
