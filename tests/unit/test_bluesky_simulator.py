"""The Bluesky simulator over real HTTP, WebSocket and UDP on free ports: PDS paging, AppView hydration (hidden posts,
CDN copies of blobs), identity (PLC document, DNS TXT, well-known), Jetstream replay and live events with filters,
XRPC rate limits and faults, and the generated payloads' shapes against ../shared/fixtures/bluesky."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dns.resolver
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from trove.config import PROJECT_ROOT
from trove.db.cluster import free_port
from trove.media.sniff import sniff
from trove.simulators.bluesky import (
    B32_SORTABLE,
    DEMO_HANDLE,
    POST,
    REPOST,
    BlueskySimulator,
    DnsServer,
    blob_cid,
    record_cid,
    tid,
)
from trove.simulators.serve import BackgroundServer

FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures" / "bluesky"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POSTS = 60


def fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"fixture {path} not available")
    if name.endswith(".jsonl"):
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[BlueskySimulator, str]]:
    """A simulator for the read-only tests."""
    sim = BlueskySimulator(posts=POSTS, seed=7, now=NOW)
    with BackgroundServer(sim.app, free_port()) as running:
        yield sim, running.url


@pytest.fixture
def fresh() -> Iterator[tuple[BlueskySimulator, str]]:
    """A simulator of its own, for the tests that change things."""
    sim = BlueskySimulator(posts=20, seed=3, now=NOW)
    with BackgroundServer(sim.app, free_port()) as running:
        yield sim, running.url


def xrpc(url: str, method: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{url}/xrpc/{method}", params=params, timeout=10)


def list_all(url: str, did: str, collection: str, limit: int = 7, reverse: bool = False) -> list[dict[str, Any]]:
    records, cursor = [], None
    for _ in range(1000):
        params: dict[str, Any] = {"repo": did, "collection": collection, "limit": limit}
        if reverse:
            params["reverse"] = "true"
        if cursor:
            params["cursor"] = cursor
        page = xrpc(url, "com.atproto.repo.listRecords", **params)
        assert page.status_code == 200, page.text
        body = page.json()
        records += body["records"]
        if not body["records"]:
            assert "cursor" not in body
            return records
        assert len(body["records"]) <= limit
        cursor = body["cursor"]
    raise AssertionError("listRecords never ended")


def author_feed(url: str, actor: str, **params: Any) -> list[dict[str, Any]]:
    items, cursor = [], None
    for _ in range(1000):
        page = xrpc(
            url, "app.bsky.feed.getAuthorFeed", actor=actor, limit=9, **({"cursor": cursor} if cursor else {}), **params
        )
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["feed"]
        cursor = body.get("cursor")
        if not cursor:
            return items
    raise AssertionError("getAuthorFeed never ended")


def demo_records(sim: BlueskySimulator, collection: str = POST) -> list[Any]:
    return sorted(sim.accounts[sim.demo_did].records[collection].values(), key=lambda r: r.rkey)


# --- PDS --------------------------------------------------------------------------------------------------------
def test_list_records_pages_cover_every_record_once_newest_first(server) -> None:
    sim, url = server
    posts = list_all(url, sim.demo_did, POST)
    reposts = list_all(url, sim.demo_did, REPOST)
    assert len(posts) + len(reposts) == POSTS
    uris = [record["uri"] for record in posts]
    assert len(set(uris)) == len(uris) == len(demo_records(sim))
    rkeys = [uri.rsplit("/", 1)[1] for uri in uris]
    assert rkeys == sorted(rkeys, reverse=True), "newest first by rkey"
    created = [record["value"]["createdAt"] for record in posts]
    assert created == sorted(created, reverse=True), "rkey order is time order (TIDs)"
    assert all(len(rkey) == 13 and set(rkey) <= set(B32_SORTABLE) for rkey in rkeys)
    assert [r["uri"] for r in list_all(url, sim.demo_did, POST, limit=100, reverse=True)] == uris[::-1]
    hidden = [r for r in demo_records(sim) if r.hidden]
    assert hidden and hidden[0].uri in uris, "the PDS lists the post the AppView hides"
    for record in posts[:5]:
        assert record["cid"] == record_cid(record["value"])
    by_handle = xrpc(url, "com.atproto.repo.listRecords", repo=DEMO_HANDLE, collection=POST, limit=1)
    assert by_handle.json()["records"][0]["uri"] == uris[0]


def test_pds_errors_are_xrpc_errors(server) -> None:
    sim, url = server
    unknown = xrpc(url, "com.atproto.repo.listRecords", repo="did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", collection=POST)
    assert unknown.status_code == 400 and unknown.json()["error"] == "InvalidRequest"
    for limit in (0, 101, "many"):
        bad = xrpc(url, "com.atproto.repo.listRecords", repo=sim.demo_did, collection=POST, limit=limit)
        assert bad.status_code == 400 and bad.json()["error"] == "InvalidRequest", limit
    missing = xrpc(url, "com.atproto.repo.getRecord", repo=sim.demo_did, collection=POST, rkey="3zzzzzzzzzzzz")
    assert missing.status_code == 400 and missing.json()["error"] == "RecordNotFound"
    assert missing.json()["message"]
    record = demo_records(sim)[0]
    found = xrpc(url, "com.atproto.repo.getRecord", repo=sim.demo_did, collection=POST, rkey=record.rkey).json()
    assert found == {"uri": record.uri, "cid": record.cid, "value": record.value}
    no_blob = xrpc(url, "com.atproto.sync.getBlob", did=sim.demo_did, cid=blob_cid(b"nothing"))
    assert no_blob.status_code == 400 and no_blob.json()["error"] == "BlobNotFound"
    assert xrpc(url, "com.atproto.nope.nothing").json()["error"] == "MethodNotImplemented"


def test_get_blob_returns_the_original_and_the_cdn_a_different_copy(server) -> None:
    sim, url = server
    seen_types = set()
    for record in demo_records(sim):
        embed = record.value.get("embed", {})
        media = embed.get("media", embed)
        blobs = [image["image"] for image in media.get("images", [])] + ([media["video"]] if "video" in media else [])
        for blob in blobs:
            original = xrpc(url, "com.atproto.sync.getBlob", did=sim.demo_did, cid=blob["ref"]["$link"])
            assert original.status_code == 200
            assert original.headers["content-type"].startswith(blob["mimeType"])
            assert blob_cid(original.content) == blob["ref"]["$link"] and len(original.content) == blob["size"]
            sniffed = sniff(original.content[:64])
            assert sniffed is not None and sniffed[0] == blob["mimeType"]
            seen_types.add(blob["mimeType"])
    assert seen_types == {"image/jpeg", "image/png", "video/mp4"}

    images_post = next(r for r in demo_records(sim) if r.value.get("embed", {}).get("$type") == "app.bsky.embed.images")
    view = xrpc(url, "app.bsky.feed.getPosts", uris=images_post.uri).json()["posts"][0]
    image = view["embed"]["images"][0]
    cid = images_post.value["embed"]["images"][0]["image"]["ref"]["$link"]
    assert image["fullsize"] == f"{url}/img/feed_fullsize/plain/{sim.demo_did}/{cid}@jpeg"
    original = xrpc(url, "com.atproto.sync.getBlob", did=sim.demo_did, cid=cid).content
    for link in (image["fullsize"], image["thumb"], view["author"]["avatar"]):
        copy = httpx.get(link, timeout=10)
        assert copy.status_code == 200 and copy.headers["content-type"] == "image/jpeg"
        assert copy.content != original and sniff(copy.content[:64]) == ("image/jpeg", "jpg")
    assert httpx.get(f"{url}/img/feed_fullsize/plain/{sim.demo_did}/{blob_cid(b'x')}@jpeg").status_code == 404


# --- AppView ----------------------------------------------------------------------------------------------------
def test_get_posts_omits_hidden_and_unknown_posts(server) -> None:
    sim, url = server
    records = demo_records(sim)
    hidden = next(r for r in records if r.hidden)
    shown = [r for r in records if not r.hidden][:3]
    gone = f"at://{sim.demo_did}/{POST}/{tid(1_000_000)}"
    body = xrpc(url, "app.bsky.feed.getPosts", uris=[shown[0].uri, hidden.uri, gone, shown[1].uri, shown[2].uri]).json()
    assert [post["uri"] for post in body["posts"]] == [r.uri for r in shown]
    too_many = xrpc(url, "app.bsky.feed.getPosts", uris=[r.uri for r in records[:26]])
    assert too_many.status_code == 400 and too_many.json()["error"] == "InvalidRequest"
    assert xrpc(url, "app.bsky.feed.getPosts", uris="not-an-at-uri").status_code == 400


def test_author_feed_pages_hide_the_hidden_post_and_show_reposts_and_replies(server) -> None:
    sim, url = server
    items = author_feed(url, DEMO_HANDLE)
    posts = [item for item in items if "reason" not in item]
    reposts = [item for item in items if "reason" in item]
    visible = [r for r in demo_records(sim) if not r.hidden]
    assert sorted(item["post"]["uri"] for item in posts) == sorted(r.uri for r in visible)
    assert len(reposts) == len(demo_records(sim, REPOST))
    assert all(item["reason"]["$type"] == "app.bsky.feed.defs#reasonRepost" for item in reposts)
    assert all(item["reason"]["by"]["did"] == sim.demo_did for item in reposts)
    assert all(item["post"]["author"]["did"] != sim.demo_did for item in reposts)
    replies = [item for item in posts if "reply" in item["post"]["record"]]
    assert replies and all({"root", "parent"} <= set(item["reply"]) for item in replies)
    assert any("grandparentAuthor" in item["reply"] for item in replies)
    assert any(item["reply"]["parent"]["author"]["did"] == sim.demo_did for item in replies), "a reply to self"
    sort_keys = [item["reason"]["indexedAt"] if "reason" in item else item["post"]["indexedAt"] for item in items]
    assert sort_keys == sorted(sort_keys, reverse=True)

    pinned = xrpc(url, "app.bsky.feed.getAuthorFeed", actor=sim.demo_did, includePins="true", limit=5).json()
    profile = xrpc(url, "app.bsky.actor.getProfile", actor=DEMO_HANDLE).json()
    assert pinned["feed"][0]["reason"] == {"$type": "app.bsky.feed.defs#reasonPin"}
    assert pinned["feed"][0]["post"]["uri"] == profile["pinnedPost"]["uri"]
    media = author_feed(url, sim.demo_did, filter="posts_with_media")
    assert media and all("reason" not in item and "embed" in item["post"] for item in media)
    assert xrpc(url, "app.bsky.feed.getAuthorFeed", actor="nobody.trove.test").status_code == 400


def test_demo_posts_cover_every_shape(server) -> None:
    sim, url = server
    records = demo_records(sim)
    embeds = [r.value.get("embed", {}) for r in records]
    kinds = {embed.get("$type") for embed in embeds}
    assert {
        "app.bsky.embed.images", "app.bsky.embed.video", "app.bsky.embed.external", "app.bsky.embed.record",
        "app.bsky.embed.recordWithMedia",
    } <= kinds  # fmt: skip
    images = [embed["images"] for embed in embeds if embed.get("$type") == "app.bsky.embed.images"]
    assert all(1 <= len(group) <= 4 and all("alt" in i and "aspectRatio" in i for i in group) for group in images)
    assert any(len(group) > 1 for group in images)
    assert any("thumb" in embed.get("external", {}) for embed in embeds)
    assert any(r.value.get("labels", {}).get("values") for r in records)
    assert any(r.value.get("langs") not in (None, ["en"]) for r in records)
    assert any(
        r.value.get("reply", {}).get("parent", {}).get("uri", "").startswith(f"at://{sim.demo_did}/") for r in records
    )
    assert any(r.value.get("reply") and sim.demo_did not in r.value["reply"]["parent"]["uri"] for r in records)

    faceted = [r for r in records if r.value.get("facets")]
    assert faceted
    assert any(len(r.value["text"].encode()) != len(r.value["text"]) for r in faceted), "multi-byte text before facets"
    kinds_seen = set()
    for record in faceted:
        text = record.value["text"].encode()
        for facet in record.value["facets"]:
            feature = facet["features"][0]
            piece = text[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode()
            kind = feature["$type"].rsplit("#", 1)[1]
            kinds_seen.add(kind)
            if kind == "mention":
                assert piece == "@" + sim.accounts[feature["did"]].handle
            elif kind == "tag":
                assert piece == "#" + feature["tag"]
    assert kinds_seen == {"mention", "link", "tag"}

    quotes = [r for r in records if r.value.get("embed", {}).get("$type") == "app.bsky.embed.record"]
    views = xrpc(url, "app.bsky.feed.getPosts", uris=[r.uri for r in quotes[:25]]).json()["posts"]
    quoted = {view["embed"]["record"]["$type"] for view in views}
    assert quoted == {"app.bsky.embed.record#viewRecord", "app.bsky.embed.record#viewNotFound"}
    labelled = next(r for r in records if r.value.get("labels"))
    view = xrpc(url, "app.bsky.feed.getPosts", uris=labelled.uri).json()["posts"][0]
    assert view["labels"][0]["val"] == labelled.value["labels"]["values"][0]["val"]
    assert view["labels"][0]["src"] == sim.demo_did

    again = BlueskySimulator(posts=POSTS, seed=7, now=NOW)
    assert [(r.rkey, r.cid) for r in demo_records(again)] == [(r.rkey, r.cid) for r in records], "same seed, same data"


# --- identity ---------------------------------------------------------------------------------------------------
def test_did_document_handle_resolution_and_resource_metadata(server) -> None:
    sim, url = server
    document = httpx.get(f"{url}/{sim.demo_did}", timeout=10)
    assert document.status_code == 200
    doc = document.json()
    assert doc["id"] == sim.demo_did and doc["alsoKnownAs"] == [f"at://{DEMO_HANDLE}"]
    assert doc["service"] == [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": url}]
    assert doc["verificationMethod"][0]["publicKeyMultibase"].startswith("zQ3s")
    assert httpx.get(f"{url}/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", timeout=10).status_code == 404

    resolved = xrpc(url, "com.atproto.identity.resolveHandle", handle=DEMO_HANDLE).json()
    assert resolved == {"did": sim.demo_did}
    assert xrpc(url, "com.atproto.identity.resolveHandle", handle="nobody.test").json()["error"] == "InvalidRequest"
    well_known = httpx.get(f"{url}/.well-known/atproto-did", headers={"host": DEMO_HANDLE}, timeout=10)
    assert well_known.status_code == 200 and well_known.text == sim.demo_did
    assert httpx.get(f"{url}/.well-known/atproto-did", headers={"host": "x.test"}).status_code == 404

    described = xrpc(url, "com.atproto.repo.describeRepo", repo=DEMO_HANDLE).json()
    assert described["did"] == sim.demo_did and POST in described["collections"] and described["handleIsCorrect"]
    resource = httpx.get(f"{url}/.well-known/oauth-protected-resource", timeout=10).json()
    assert resource["resource"] == url and resource["authorization_servers"] == [url]
    assert xrpc(url, "com.atproto.server.describeServer").json()["availableUserDomains"]


def test_dns_answers_atproto_txt_and_nxdomain(server) -> None:
    sim, _ = server
    with DnsServer(sim.did_for_handle) as nameserver:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port, resolver.lifetime = ["127.0.0.1"], nameserver.port, 5
        answer = resolver.resolve(f"_atproto.{DEMO_HANDLE}", "TXT")
        assert [b"".join(rdata.strings).decode() for rdata in answer] == [f"did={sim.demo_did}"]
        with pytest.raises(dns.resolver.NXDOMAIN):
            resolver.resolve("_atproto.nobody.trove.test", "TXT")
        with pytest.raises(dns.resolver.NXDOMAIN):
            resolver.resolve(DEMO_HANDLE, "TXT")
        with pytest.raises(dns.resolver.NoAnswer):
            resolver.resolve(f"_atproto.{DEMO_HANDLE}", "A")


# --- Jetstream --------------------------------------------------------------------------------------------------
async def receive(websocket: Any) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(websocket.recv(), 5))


async def nothing_more(websocket: Any, wait: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(websocket.recv(), wait)


def test_jetstream_replays_from_a_cursor_then_sends_live_events_and_follows_filter_updates(fresh) -> None:
    sim, url = fresh
    ws_url = url.replace("http://", "ws://") + "/subscribe"
    alice = sim.did_for_handle("alice.trove.test")

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            first = (await http.post("/_sim/posts", json={"text": "first #trove https://example.com"})).json()
            second = (await http.post("/_sim/posts", json={"text": "second", "did": "alice.trove.test"})).json()
            assert first["time_us"] < second["time_us"]
            query = f"?wantedCollections=app.bsky.feed.*&cursor={first['time_us']}"
            async with connect(ws_url + query) as websocket:
                replayed = [await receive(websocket), await receive(websocket)]
                assert [event["commit"]["rkey"] for event in replayed] == [first["rkey"], second["rkey"]]
                event = replayed[0]
                assert event["did"] == sim.demo_did and event["kind"] == "commit"
                assert event["commit"]["operation"] == "create" and event["commit"]["collection"] == POST
                assert event["commit"]["record"] == first["value"] and event["commit"]["cid"] == first["cid"]
                assert [f["features"][0]["$type"] for f in first["value"]["facets"]] == [
                    "app.bsky.richtext.facet#tag", "app.bsky.richtext.facet#link",
                ]  # fmt: skip

                live = (await http.post("/_sim/posts", json={"text": "live"})).json()
                created = await receive(websocket)
                assert created["commit"]["rkey"] == live["rkey"] and created["time_us"] > second["time_us"]
                assert (await http.delete(f"/_sim/posts/{live['rkey']}")).status_code == 204
                deleted = await receive(websocket)
                assert deleted["commit"]["operation"] == "delete" and deleted["commit"]["rkey"] == live["rkey"]
                assert "record" not in deleted["commit"] and "cid" not in deleted["commit"]
                assert (
                    xrpc(
                        url, "com.atproto.repo.getRecord", repo=sim.demo_did, collection=POST, rkey=live["rkey"]
                    ).status_code
                    == 400
                )

                payload = {"wantedCollections": [POST], "wantedDids": [alice], "maxMessageSizeBytes": 0}
                update = {"type": "options_update", "payload": payload}
                await websocket.send(json.dumps(update))
                await asyncio.sleep(0.2)
                await http.post("/_sim/posts", json={"text": "from the demo account: filtered out"})
                from_alice = (await http.post("/_sim/posts", json={"text": "hi", "did": alice})).json()
                assert (await receive(websocket))["commit"]["rkey"] == from_alice["rkey"]
                await nothing_more(websocket)

                await http.post("/_sim/config", json={"identity": {"did": alice, "handle": "alice2.trove.test"}})
                identity = await receive(websocket)
                assert identity["kind"] == "identity" and identity["identity"]["handle"] == "alice2.trove.test"
                await http.post("/_sim/config", json={"account": {"did": alice, "active": False}})
                account = await receive(websocket)
                assert account["account"] == {**account["account"], "active": False, "status": "deactivated"}
                refused = xrpc(url, "com.atproto.repo.listRecords", repo=alice, collection=POST)
                assert refused.json()["error"] == "RepoDeactivated"

                await http.post("/_sim/config", json={"malformed_frame": True})
                with pytest.raises(ValueError):
                    await receive(websocket)
                stats = (await http.get("/_sim/stats")).json()
                assert stats["subscribers"] == 1
                await http.post("/_sim/config", json={"drop_subscribers": True})
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(websocket.recv(), 5)

            # A reconnect from the last cursor sees everything again, nothing for a cursor in the future.
            async with connect(f"{ws_url}?cursor={second['time_us']}&wantedDids={sim.demo_did}") as websocket:
                assert (await receive(websocket))["commit"]["rkey"] == live["rkey"]
            async with connect(f"{ws_url}?cursor=9999999999999999") as websocket:
                await nothing_more(websocket)

    asyncio.run(scenario())


def test_jetstream_refuses_bad_subscriptions(fresh) -> None:
    _, url = fresh
    ws_url = url.replace("http://", "ws://") + "/subscribe"

    async def refused(query: str) -> int:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url + query):
                pass
        return info.value.response.status_code

    async def scenario() -> None:
        assert await refused("?compress=true") == 400
        assert await refused("?wantedCollections=not..an..nsid") == 400
        assert await refused("?wantedDids=alice") == 400
        assert await refused("?cursor=yesterday") == 400

    asyncio.run(scenario())


# --- rate limits, faults, tokens, controls ----------------------------------------------------------------------
def test_rate_limit_headers_429_and_scripted_faults(fresh) -> None:
    sim, url = fresh
    ok = xrpc(url, "app.bsky.actor.getProfile", actor=DEMO_HANDLE)
    assert ok.status_code == 200
    assert ok.headers["ratelimit-limit"] == "3000" and ok.headers["ratelimit-policy"] == "3000;w=300"
    assert int(ok.headers["ratelimit-remaining"]) == 2999
    assert int(ok.headers["ratelimit-reset"]) % 300 == 0
    httpx.post(f"{url}/_sim/config", json={"xrpc_limits": [3], "xrpc_usage": [2]}, timeout=10)
    last = xrpc(url, "com.atproto.repo.describeRepo", repo=sim.demo_did)
    assert last.status_code == 200 and last.headers["ratelimit-remaining"] == "0"
    refused = xrpc(url, "com.atproto.repo.describeRepo", repo=sim.demo_did)
    assert refused.status_code == 429 and refused.json()["error"] == "RateLimitExceeded"
    assert refused.headers["ratelimit-remaining"] == "0" and refused.headers["ratelimit-policy"] == "3;w=300"
    errors = xrpc(url, "com.atproto.repo.getRecord", repo=sim.demo_did, collection=POST, rkey="x")
    assert errors.status_code == 429, "refused before anything else"

    httpx.post(f"{url}/_sim/config", json={"xrpc_limits": [3000], "xrpc_usage": [0], "fail_next": [502, 500]})
    assert xrpc(url, "com.atproto.repo.describeRepo", repo=sim.demo_did).json()["error"] == "UpstreamFailure"
    failed = xrpc(url, "com.atproto.repo.describeRepo", repo=sim.demo_did)
    assert failed.status_code == 500 and failed.json()["error"] == "InternalServerError"
    assert "ratelimit-limit" in failed.headers
    assert xrpc(url, "com.atproto.repo.describeRepo", repo=sim.demo_did).status_code == 200

    forged = httpx.get(
        f"{url}/xrpc/com.atproto.repo.listRecords",
        params={"repo": sim.demo_did, "collection": POST},
        headers={"authorization": "DPoP not-a-token"},
        timeout=10,
    )
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_dpop_proof", "no proof with the token"
    assert "www-authenticate" in forged.headers and "dpop-nonce" in forged.headers


def test_sim_controls_hide_count_and_validate(fresh) -> None:
    sim, url = fresh
    record = next(r for r in demo_records(sim) if not r.hidden)
    changed = httpx.put(f"{url}/_sim/posts/{record.rkey}", json={"hidden": True, "likeCount": 99}, timeout=10)
    assert changed.status_code == 200 and changed.json()["likeCount"] == 99
    assert xrpc(url, "app.bsky.feed.getPosts", uris=record.uri).json()["posts"] == []
    httpx.put(f"{url}/_sim/posts/{record.rkey}", json={"hidden": False}, timeout=10)
    view = xrpc(url, "app.bsky.feed.getPosts", uris=record.uri).json()["posts"][0]
    assert view["likeCount"] == 99

    stats = httpx.get(f"{url}/_sim/stats", timeout=10).json()
    assert stats["demo"] == {"did": sim.demo_did, "handle": DEMO_HANDLE}
    assert stats["posts"][sim.demo_did] == len(demo_records(sim))
    assert stats["requests"]["app.bsky.feed.getPosts"] == 2

    assert httpx.post(f"{url}/_sim/posts", json={"text": 5}, timeout=10).status_code == 400
    assert httpx.post(f"{url}/_sim/posts", content=b"[", timeout=10).status_code == 400
    assert httpx.post(f"{url}/_sim/posts", content=b"x" * 300_000, timeout=10).status_code == 413
    assert httpx.delete(f"{url}/_sim/posts/3zzzzzzzzzzzz", timeout=10).status_code == 404
    assert httpx.post(f"{url}/_sim/config", json={"xrpc_limits": "many"}, timeout=10).status_code == 400

    # A record stored as given (hostile input for the consumers) is served, and views of it do not crash.
    odd = httpx.post(f"{url}/_sim/posts", json={"record": {"$type": POST, "text": 7, "embed": "x"}}, timeout=10)
    assert odd.status_code == 201
    assert xrpc(url, "app.bsky.feed.getPosts", uris=odd.json()["uri"]).status_code == 200
    repost = httpx.post(f"{url}/_sim/posts", json={"repost": record.uri}, timeout=10).json()
    assert repost["value"]["subject"] == {"uri": record.uri, "cid": record.cid}


# --- shapes against the recorded payloads -----------------------------------------------------------------------
def keys(value: dict[str, Any]) -> set[str]:
    return set(value)


def test_views_have_the_fixture_key_sets(server) -> None:
    sim, url = server
    page = fixture("getAuthorFeed_page_trimmed.json")
    thread = fixture("getPostThread_recordWithMedia_images.json")
    get_record = fixture("getRecord_post.json")
    events = fixture("jetstream_v1_events.jsonl")

    items = author_feed(url, sim.demo_did)
    real_posts = [item["post"] for item in page["feed"]]
    ours = [item["post"] for item in items]
    assert keys(page) == {"feed", "cursor"}
    post_keys = set.union(*(keys(post) for post in real_posts))
    for post in ours:
        assert keys(post) - {"embed"} == post_keys - {"embed"}
    author_keys = set.union(*(keys(post["author"]) for post in real_posts))
    assert all(keys(post["author"]) <= author_keys for post in ours)
    assert {"did", "handle", "displayName", "avatar", "viewer", "labels", "createdAt"} <= keys(ours[0]["author"])

    real_embeds = {post["embed"]["$type"]: post["embed"] for post in real_posts if "embed" in post}
    real_embeds["app.bsky.embed.recordWithMedia#view"] = thread["thread"]["post"]["embed"]
    our_embeds = {post["embed"]["$type"]: post["embed"] for post in ours if "embed" in post}
    for kind, real in real_embeds.items():
        assert kind in our_embeds, kind
        assert keys(our_embeds[kind]) == keys(real), kind
    assert keys(our_embeds["app.bsky.embed.images#view"]["images"][0]) == {"thumb", "fullsize", "alt", "aspectRatio"}
    cards = [post["embed"]["external"] for post in ours if "external" in post.get("embed", {})]
    assert keys(real_embeds["app.bsky.embed.external#view"]["external"]) in [keys(card) for card in cards]
    real_quoted = real_embeds["app.bsky.embed.record#view"]["record"]
    quoted = [
        post["embed"]["record"] for post in ours if post.get("embed", {}).get("$type") == "app.bsky.embed.record#view"
    ]
    found = next(q for q in quoted if q["$type"] == "app.bsky.embed.record#viewRecord")
    assert keys(found) == keys(real_quoted)
    with_media = our_embeds["app.bsky.embed.recordWithMedia#view"]
    assert keys(with_media["record"]) == keys(thread["thread"]["post"]["embed"]["record"])

    real_reply = next(item for item in page["feed"] if "reply" in item)
    reply = next(item for item in items if "reply" in item and "grandparentAuthor" not in item["reply"])
    assert keys(reply["reply"]) == keys(real_reply["reply"])
    assert keys(reply["reply"]["parent"]) - {"embed"} == keys(real_reply["reply"]["parent"]) - {"embed"}
    real_repost = next(item for item in page["feed"] if "reason" in item)
    repost = next(item for item in items if "reason" in item)
    assert keys(repost["reason"]) == keys(real_repost["reason"])

    listed = xrpc(url, "com.atproto.repo.listRecords", repo=sim.demo_did, collection=POST, limit=1).json()["records"]
    assert keys(listed[0]) == keys(get_record)

    async def one_event() -> dict[str, Any]:
        async with connect(url.replace("http://", "ws://") + "/subscribe") as websocket:
            await asyncio.sleep(0.1)
            sim.write(
                sim.demo_did, POST, None, {"$type": POST, "text": "shape", "createdAt": "2026-03-01T12:00:00.000Z"}
            )
            return await receive(websocket)

    event = asyncio.run(one_event())
    real_create = next(e for e in events if e["kind"] == "commit" and e["commit"]["operation"] == "create")
    assert keys(event) == keys(real_create) and keys(event["commit"]) == keys(real_create["commit"])
    sim.remove(sim.demo_did, POST, event["commit"]["rkey"])
    real_identity = next(e for e in events if e["kind"] == "identity")
    real_account = next(e for e in events if e["kind"] == "account")
    identity = json.loads(sim.set_handle(sim.demo_did, DEMO_HANDLE).text)
    account = json.loads(sim.set_status(sim.demo_did, True).text)
    assert keys(identity) == keys(real_identity) and keys(identity["identity"]) == keys(real_identity["identity"])
    assert keys(account) == keys(real_account) and keys(account["account"]) == keys(real_account["account"])
