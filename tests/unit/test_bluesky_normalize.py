"""Bluesky's normalizer alone (no database, no processes): posts, replies and reposts from the recorded
payloads in ../shared/fixtures/bluesky, and hand-written records for every edge: facets by UTF-8 byte offsets,
unsafe links, HTML escaping, each embed type, blob references that could inject into a URL, malformed records
and the lexicon shape the stream consumer checks."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from trove.config import PROJECT_ROOT
from trove.platforms.base import InvalidEventError, MediaRef
from trove.platforms.bluesky.normalize import (
    blob_refs,
    blob_url,
    facets_to_html,
    normalize,
    parse_datetime,
    public_projection,
    record_problems,
)

FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures" / "bluesky"
POST = "app.bsky.feed.post"
REPOST = "app.bsky.feed.repost"
DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
OTHER_DID = "did:plc:z72i7hdynmk6r22z27h6tvur"
PDS = "https://pds.example"
CID_1 = "bafkreia" + "a" * 51
CID_2 = "bafkreib" + "b" * 51
CID_3 = "bafkreic" + "c" * 51
CID_4 = "bafkreid" + "d" * 51
RECORD_CID = "bafyreie" + "e" * 51
CID_V0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
# Every key public_data may hold (for a post, and the repost's `subject`).
PUBLIC_KEYS = {
    "text", "createdAt", "langs", "labels", "reply", "quote", "external", "images", "video",
    "likeCount", "repostCount", "replyCount", "quoteCount",
}  # fmt: skip


# --- helpers --------------------------------------------------------------------------------------------
def fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"{path} is not here (../shared/fixtures is absent)")
    return json.loads(path.read_text())


def blob(cid: str, mime: str = "image/jpeg") -> dict[str, Any]:
    return {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": 1234}


def post_record(text: str = "hello", **fields: Any) -> dict[str, Any]:
    return {"$type": POST, "text": text, "createdAt": "2024-11-03T15:17:43.273Z", **fields}


def post_uri(rkey: str = "3kabcdefghi2a", did: str = DID, collection: str = POST) -> str:
    return f"at://{did}/{collection}/{rkey}"


def post_view(uri: str, record: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "uri": uri,
        "cid": RECORD_CID,
        "author": {"did": uri.split("/")[2], "handle": "alice.example", "avatar": "https://cdn.example/a.jpg"},
        "record": record,
        "indexedAt": "2024-11-03T15:17:44.000Z",
        "viewer": {"repost": "at://did:plc:someone/app.bsky.feed.repost/3kx"},
        "labels": [],
        **extra,
    }


def data(record: dict[str, Any], *, view: Any = None, pds: str | None = PDS, uri: str | None = None) -> dict[str, Any]:
    post_data: dict[str, Any] = {"uri": uri or post_uri(collection=record["$type"]), "cid": RECORD_CID}
    post_data["value"] = record
    if view is not None:
        post_data["view"] = view
    if pds is not None:
        post_data["_pds"] = pds
    return post_data


def byte_span(text: str, part: str) -> dict[str, int]:
    start = text.encode().index(part.encode())
    return {"byteStart": start, "byteEnd": start + len(part.encode())}


def facet(index: dict[str, Any], *features: dict[str, Any]) -> dict[str, Any]:
    return {"index": index, "features": list(features)}


def link(uri: str) -> dict[str, Any]:
    return {"$type": "app.bsky.richtext.facet#link", "uri": uri}


def mention(did: str) -> dict[str, Any]:
    return {"$type": "app.bsky.richtext.facet#mention", "did": did}


def tag(name: str) -> dict[str, Any]:
    return {"$type": "app.bsky.richtext.facet#tag", "tag": name}


def getblob(cid: str, did: str = DID, pds: str = PDS) -> str:
    return f"{pds}/xrpc/com.atproto.sync.getBlob?did={did.replace(':', '%3A')}&cid={cid}"


def feed_post_data(item: dict[str, Any]) -> dict[str, Any]:
    post = item["post"]
    return {"uri": post["uri"], "cid": post["cid"], "value": post["record"], "view": post, "_pds": PDS}


def feed_repost_data(item: dict[str, Any]) -> dict[str, Any]:
    post, reason = item["post"], item["reason"]
    record = {"$type": REPOST, "subject": {"uri": post["uri"], "cid": post["cid"]}, "createdAt": reason["indexedAt"]}
    return {"uri": post["viewer"]["repost"], "cid": RECORD_CID, "value": record, "view": post, "_pds": PDS}


def embedded_posts(value: Any) -> list[dict[str, Any]]:
    """Every app.bsky.feed.post record anywhere in a payload (feed posts, reply parents, quoted posts)."""
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("$type") == POST and "text" in item:
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


# --- the recorded payloads ------------------------------------------------------------------------------
def test_every_recorded_post_record_has_the_lexicon_shape() -> None:
    records = [
        *embedded_posts(fixture("getAuthorFeed_page_trimmed.json")),
        *embedded_posts(fixture("getPostThread_recordWithMedia_images.json")),
        fixture("getRecord_post.json")["value"],
    ]
    assert len(records) >= 10
    for record in records:
        assert record_problems(POST, record) == []


def test_recorded_feed_posts_normalize_as_their_authors_posts() -> None:
    feed = fixture("getAuthorFeed_page_trimmed.json")["feed"]
    for item in feed:
        post_data = feed_post_data(item)
        record, view = post_data["value"], post_data["view"]
        did = post_data["uri"].split("/")[2]
        post = normalize(post_data)
        assert post.platform_post_id == view["uri"]
        assert post.content_type == ("reply" if "reply" in record else "post")
        assert post.created_at == datetime.fromisoformat(record["createdAt"])
        assert post.text == record["text"] and post.html and post.complete and post.published
        assert post.engagement == {key: view[key] for key in ("likeCount", "repostCount", "replyCount", "quoteCount")}
        assert post.author_handle == view["author"]["handle"] and post.visibility == "public"
        assert post.search_keywords == " ".join(record["langs"])
        assert all(ref.url == getblob(ref.media_key, did) for ref in post.media)
        assert [ref.media_key for ref in post.media] == blob_refs(record)
        assert set(post.public_data) <= PUBLIC_KEYS
        assert post.public_data["text"] == record["text"] and post.public_data["likeCount"] == view["likeCount"]
        assert "cdn.bsky.app" not in json.dumps(post.public_data) + "".join(ref.url for ref in post.media)


def test_recorded_reposts_carry_the_subject_never_media_of_their_own() -> None:
    feed = fixture("getAuthorFeed_page_trimmed.json")["feed"]
    reposts = [item for item in feed if item.get("reason", {}).get("$type") == "app.bsky.feed.defs#reasonRepost"]
    assert len(reposts) == 5
    for item in reposts:
        subject = item["post"]
        post = normalize(feed_repost_data(item))
        assert post.content_type == "repost" and post.platform_post_id == subject["viewer"]["repost"]
        assert post.created_at == datetime.fromisoformat(item["reason"]["indexedAt"])
        assert post.text == subject["record"]["text"] and post.media == ()
        assert post.author_handle == subject["author"]["handle"]
        assert post.public_data["repost_of"] == subject["uri"]
        assert post.public_data["subject"]["text"] == subject["record"]["text"]
        assert set(post.public_data["subject"]) <= PUBLIC_KEYS


def test_recorded_images_link_card_quote_and_reply() -> None:
    feed = fixture("getAuthorFeed_page_trimmed.json")["feed"]
    quote, images, external, reply = (normalize(feed_post_data(feed[n])) for n in (1, 2, 3, 4))

    assert quote.public_data["quote"] == feed[1]["post"]["record"]["embed"]["record"]["uri"] and quote.media == ()

    image_did = "did:plc:7i3fhorekojhdjhkbln7q7gq"
    image_cid = "bafkreibjrpi2jgnbphutvdw6hwp4zzehvlsadv6nrmbpdl6r7wzxjjg2j4"
    assert images.media == (MediaRef(image_cid, getblob(image_cid, image_did)),)
    assert images.public_data["images"] == [
        {"alt": "Screenshot of the Go template package documentation.", "aspectRatio": {"height": 1438, "width": 2000}}
    ]

    assert external.html == (
        "One of the best cold opens in Saturday Night Live history. "
        '<a href="https://www.youtube.com/watch?v=e6Funs6yyEw">www.youtube.com/watch?v=e6Fu...</a>'
    )
    assert [ref.media_key for ref in external.media] == ["bafkreify67vpqk7i36rkx5s4b4xqeogovjujckm573ajieq2qloduubtwq"]
    assert external.public_data["external"] == {
        "uri": "https://www.youtube.com/watch?v=e6Funs6yyEw",
        "title": "2024 Pre-Election Cold Open - SNL",
        "description": "YouTube video by Saturday Night Live",
    }

    parent = "at://did:plc:q5wqr7zofdqyqwoki4cby36x/app.bsky.feed.post/3l7war5fryu2y"
    assert reply.content_type == "reply" and reply.public_data["reply"] == {"root": parent, "parent": parent}
    assert reply.html is not None and "<br>" in reply.html
    assert reply.html.endswith(
        '<a href="https://protos.com/no-one-surprised-as-djt-token-has-finally-rugged/">protos.com/no-one-surpr...</a>'
    )


def test_recorded_quote_with_emoji_before_its_link_facet() -> None:
    quoted = fixture("getAuthorFeed_page_trimmed.json")["feed"][1]["post"]["embed"]["record"]["value"]
    assert record_problems(POST, quoted) == []
    rendered = facets_to_html(quoted["text"], quoted["facets"])
    assert rendered.endswith('along the way. 🪽 <a href="https://blueark.app/en-us/">blueark.app/en-us/</a>')


def test_recorded_record_with_media() -> None:
    thread_post = fixture("getPostThread_recordWithMedia_images.json")["thread"]["post"]
    post = normalize({"uri": thread_post["uri"], "cid": thread_post["cid"], "value": thread_post["record"],
                      "view": thread_post, "_pds": PDS})  # fmt: skip
    cid = "bafkreic3cp5ky525vsukjvrzxsc2h3jka2gud74l2hgeatw2rhj2qycnmq"
    assert post.media == (MediaRef(cid, getblob(cid, "did:plc:kvwvcn5iqfooopmyzvb4qzba")),)
    assert post.text is None and post.html is None  # an image with no words
    assert post.engagement == {"likeCount": 0, "repostCount": 0, "replyCount": 0}  # this view has no quoteCount
    assert post.public_data == {
        "text": "", "createdAt": "2023-09-28T12:49:36.735Z", "langs": ["en"],
        "quote": "at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3kahesw26il2z",
        "images": [{"alt": ""}], "likeCount": 0, "repostCount": 0, "replyCount": 0,
    }  # fmt: skip


def test_a_recorded_bare_record_is_a_summary_to_hydrate() -> None:
    post = normalize(fixture("getRecord_post.json"))
    assert post.complete is False and post.engagement is None and post.author_handle is None
    assert post.created_at == datetime(2024, 2, 22, 19, 58, 13, 903293, tzinfo=UTC)
    assert post.text == "new text114" and post.media == () and post.content_type == "post"


def test_recorded_jetstream_records_of_other_collections_are_refused() -> None:
    path = FIXTURES / "jetstream_v1_events.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is not here (../shared/fixtures is absent)")
    commits = [event["commit"] for event in map(json.loads, path.read_text().splitlines()) if "commit" in event]
    created = [commit for commit in commits if commit.get("record")]
    assert created
    for commit in created:
        assert record_problems(commit["collection"], commit["record"]) == [
            f"unknown collection {commit['collection']!r}"
        ]


# --- rich text ------------------------------------------------------------------------------------------
def test_facets_index_utf8_bytes_after_emoji_and_accents() -> None:
    text = "Café 🎉 naïve — see example.com, #trove and @bob.test!"
    assert text.index("example.com") != text.encode().index(b"example.com")  # bytes, not characters
    facets = [
        facet(byte_span(text, "example.com"), link("https://example.com/a?b=1&c=2")),
        facet(byte_span(text, "#trove"), tag("trove")),
        facet(byte_span(text, "@bob.test"), mention(OTHER_DID)),
    ]
    assert facets_to_html(text, facets) == (
        'Café 🎉 naïve — see <a href="https://example.com/a?b=1&amp;c=2">example.com</a>, '
        '<a href="https://bsky.app/hashtag/trove">#trove</a> and '
        f'<a href="https://bsky.app/profile/{OTHER_DID}">@bob.test</a>!'
    )


def test_hashtags_are_url_quoted() -> None:
    text = "#café/x?"
    rendered = facets_to_html(text, [facet(byte_span(text, text), tag("café/x?"))])
    assert rendered == '<a href="https://bsky.app/hashtag/caf%C3%A9%2Fx%3F">#café/x?</a>'


@pytest.mark.parametrize(
    "index",
    [
        {"byteStart": 1, "byteEnd": 4},  # starts inside the 4-byte 🎉
        {"byteStart": 0, "byteEnd": 2},  # ends inside it
        {"byteStart": 0, "byteEnd": 999},  # past the end
        {"byteStart": -1, "byteEnd": 4},
        {"byteStart": 4, "byteEnd": 4},  # empty
        {"byteStart": 6, "byteEnd": 4},  # backwards
        {"byteStart": "0", "byteEnd": "4"},
        {"byteStart": False, "byteEnd": True},
        {"byteStart": 0.0, "byteEnd": 4.0},
        {"byteStart": 0},
        "0-4",
    ],
)
def test_a_facet_that_does_not_fit_the_text_stays_plain(index: Any) -> None:
    text = "🎉 ok"
    assert facets_to_html(text, [facet(index, link("https://example.com"))]) == "🎉 ok"


def test_overlapping_facets_keep_the_first() -> None:
    text = "abcdef"
    facets = [
        facet({"byteStart": 2, "byteEnd": 5}, link("https://second.example")),
        facet({"byteStart": 0, "byteEnd": 3}, link("https://first.example")),
        facet({"byteStart": 0, "byteEnd": 2}, link("https://same-start.example")),
        facet({"byteStart": 5, "byteEnd": 6}, link("https://after.example")),
    ]
    assert (
        facets_to_html(text, facets) == '<a href="https://first.example">abc</a>de<a href="https://after.example">f</a>'
    )


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "https:/no-host",
        "https://exa mple.com",
        "//example.com/no-scheme",
        "http://[::1",
        "https://example.com/\ud800",
        42,
        None,
    ],
)
def test_only_http_links_become_links(uri: Any) -> None:
    text = "click me"
    assert facets_to_html(text, [facet(byte_span(text, "click"), link(uri))]) == "click me"


@pytest.mark.parametrize(
    "feature",
    [
        mention("not-a-did"),
        mention('did:plc:x"onmouseover="alert(1)'),
        mention(123),
        tag(""),
        tag(["x"]),
        {"$type": "app.bsky.richtext.facet#unknown", "uri": "https://example.com"},
        {"uri": "https://example.com"},
        "link",
    ],
)
def test_unusable_features_stay_plain(feature: Any) -> None:
    assert facets_to_html("hello", [facet({"byteStart": 0, "byteEnd": 5}, feature)]) == "hello"


def test_the_first_usable_feature_of_a_facet_wins() -> None:
    features = [link("javascript:x"), tag("t"), link("https://example.com")]
    assert facets_to_html("hello", [facet({"byteStart": 0, "byteEnd": 5}, *features)]) == (
        '<a href="https://bsky.app/hashtag/t">hello</a>'
    )


def test_everything_is_escaped_and_newlines_are_breaks() -> None:
    text = "<script>alert(\"x\")</script> & 'q'\nline 2\r\nline 3 link"
    rendered = facets_to_html(text, [facet(byte_span(text, "link"), link('https://e.example/?q="><img/src=x>'))])
    assert rendered == (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;q&#x27;<br>line 2<br>line 3 "
        '<a href="https://e.example/?q=&quot;&gt;&lt;img/src=x&gt;">link</a>'
    )


@pytest.mark.parametrize("facets", [None, {}, "x", [None, 1, "f", [], {"index": None}], [{"features": "x"}]])
def test_junk_facets_never_crash(facets: Any) -> None:
    assert facets_to_html("a <b>", facets) == "a &lt;b&gt;"


def test_text_that_is_not_valid_unicode_never_crashes() -> None:
    assert facets_to_html("a\ud800b", [facet({"byteStart": 0, "byteEnd": 1}, tag("a"))]) == (
        '<a href="https://bsky.app/hashtag/a">a</a>\ufffd\ufffd\ufffdb'
    )
    assert facets_to_html(None, []) == ""  # type: ignore[arg-type]


# --- embeds and media -----------------------------------------------------------------------------------
def test_images_with_alt_and_aspect_ratio() -> None:
    embed = {
        "$type": "app.bsky.embed.images",
        "images": [
            {"image": blob(CID_1), "alt": "a cat", "aspectRatio": {"width": 4, "height": 3}},
            {"image": blob(CID_2), "alt": ""},
        ],
    }
    post = normalize(data(post_record(embed=embed)))
    assert post.media == (MediaRef(CID_1, getblob(CID_1)), MediaRef(CID_2, getblob(CID_2)))
    assert post.public_data["images"] == [{"alt": "a cat", "aspectRatio": {"width": 4, "height": 3}}, {"alt": ""}]
    assert "image" not in json.dumps(post.public_data["images"]).replace('"images"', "")


def test_the_blob_url_is_the_pds_getblob_with_encoded_values() -> None:
    url = blob_url("https://pds.example/", "did:web:example.com%3A8080", CID_1)
    assert url == f"https://pds.example/xrpc/com.atproto.sync.getBlob?did=did%3Aweb%3Aexample.com%253A8080&cid={CID_1}"


def test_video_with_captions_and_alt() -> None:
    embed = {
        "$type": "app.bsky.embed.video",
        "video": blob(CID_1, "video/mp4"),
        "captions": [{"lang": "en", "file": blob(CID_2, "text/vtt")}],
        "alt": "a dog running",
        "aspectRatio": {"width": 16, "height": 9},
    }
    post = normalize(data(post_record(embed=embed)))
    assert [ref.media_key for ref in post.media] == [CID_1, CID_2]
    assert post.public_data["video"] == {"alt": "a dog running", "aspectRatio": {"width": 16, "height": 9}}


def test_link_card_with_thumb() -> None:
    external = {"uri": "https://example.com/x", "title": "T", "description": "D", "thumb": blob(CID_3)}
    post = normalize(data(post_record(embed={"$type": "app.bsky.embed.external", "external": external})))
    assert post.media == (MediaRef(CID_3, getblob(CID_3)),)
    assert post.public_data["external"] == {"uri": "https://example.com/x", "title": "T", "description": "D"}


@pytest.mark.parametrize(
    "quoted_view",
    [
        {"$type": "app.bsky.embed.record#viewNotFound", "uri": post_uri("3kquoted", OTHER_DID), "notFound": True},
        {"$type": "app.bsky.embed.record#viewBlocked", "uri": post_uri("3kquoted", OTHER_DID), "blocked": True},
        {"$type": "app.bsky.embed.record#viewDetached", "uri": post_uri("3kquoted", OTHER_DID), "detached": True},
        None,
    ],
)
def test_a_quote_of_a_post_gone_missing(quoted_view: Any) -> None:
    quoted = {"uri": post_uri("3kquoted", OTHER_DID), "cid": RECORD_CID}
    record = post_record(embed={"$type": "app.bsky.embed.record", "record": quoted})
    view = post_view(post_uri(), record, embed={"$type": "app.bsky.embed.record#view", "record": quoted_view})
    post = normalize(data(record, view=view))
    assert post.public_data["quote"] == quoted["uri"] and post.media == () and post.content_type == "post"


def test_a_quote_with_media_has_both() -> None:
    quoted = {"uri": post_uri("3kquoted", OTHER_DID), "cid": RECORD_CID}
    embed = {
        "$type": "app.bsky.embed.recordWithMedia",
        "record": {"$type": "app.bsky.embed.record", "record": quoted},
        "media": {"$type": "app.bsky.embed.images", "images": [{"image": blob(CID_1), "alt": "x"}]},
    }
    post = normalize(data(post_record(embed=embed)))
    assert post.media == (MediaRef(CID_1, getblob(CID_1)),)
    assert post.public_data["quote"] == quoted["uri"] and post.public_data["images"] == [{"alt": "x"}]


def test_legacy_blobs_and_one_ref_per_cid() -> None:
    legacy = {"cid": CID_V0, "mimeType": "image/png"}
    images = [{"image": legacy, "alt": ""}, {"image": blob(CID_1), "alt": ""}, {"image": blob(CID_1), "alt": "again"}]
    post = normalize(data(post_record(embed={"$type": "app.bsky.embed.images", "images": images})))
    assert post.media == (MediaRef(CID_V0, getblob(CID_V0)), MediaRef(CID_1, getblob(CID_1)))


@pytest.mark.parametrize(
    "cid",
    [
        f"{CID_1}&did=did:plc:evil",
        f"{CID_1}#x",
        "../../admin",
        CID_1.upper(),
        "bafy",  # too short to be a CID
        "Qm" + "0" * 44,  # "0" is not base58
        "zdj7W" + "a" * 40,  # another multibase
        "bafkrei" + "1" * 52,  # "1" is not base32
    ],
)
def test_a_blob_ref_that_is_not_a_plain_cid_is_skipped(cid: str) -> None:
    images = [{"image": blob(cid), "alt": ""}, {"image": blob(CID_2), "alt": ""}]
    post = normalize(data(post_record(embed={"$type": "app.bsky.embed.images", "images": images})))
    assert post.media == (MediaRef(CID_2, getblob(CID_2)),)


def test_the_repo_did_is_encoded_in_the_url() -> None:
    did = "did:web:pds.example%3A8443"
    post = normalize(data(post_record(embed={"$type": "app.bsky.embed.images", "images": [{"image": blob(CID_1),
                     "alt": ""}]}), uri=post_uri(did=did)))  # fmt: skip
    assert post.media[0].url == f"{PDS}/xrpc/com.atproto.sync.getBlob?did=did%3Aweb%3Apds.example%253A8443&cid={CID_1}"


@pytest.mark.parametrize("pds", [None, "", "javascript:alert(1)", "ftp://pds.example", "https://pds.example/?x=1",
                                 "https://pds.example/#f", "https:///nohost", "https://pds .example", 42])  # fmt: skip
def test_without_a_usable_pds_there_is_no_media_but_everything_else(pds: Any) -> None:
    record = post_record(
        "words", embed={"$type": "app.bsky.embed.images", "images": [{"image": blob(CID_1), "alt": "a"}]}
    )
    post_data = data(record, pds=None)
    if pds is not None:
        post_data["_pds"] = pds
    post = normalize(post_data)
    assert post.media == () and post.text == "words" and post.public_data["images"] == [{"alt": "a"}]


def test_a_pds_with_a_path_and_trailing_slash() -> None:
    images = [{"image": blob(CID_1), "alt": ""}]
    post = normalize(data(post_record(embed={"$type": "app.bsky.embed.images", "images": images}),
                          pds="http://127.0.0.1:8080/"))  # fmt: skip
    assert post.media[0].url == getblob(CID_1, pds="http://127.0.0.1:8080")


def test_blob_refs_of_junk() -> None:
    assert blob_refs(None) == [] and blob_refs({"embed": "x"}) == []
    assert blob_refs({"embed": {"$type": "app.bsky.embed.images", "images": [None, {"image": "x"}]}}) == []
    assert blob_refs({"embed": {"$type": "app.bsky.embed.recordWithMedia", "media": None}}) == []
    assert blob_refs({"embed": {"$type": "app.bsky.embed.external", "external": {}}}) == []


# --- content types --------------------------------------------------------------------------------------
def test_a_reply() -> None:
    parent = {"uri": post_uri("3kparent", OTHER_DID), "cid": RECORD_CID}
    root = {"uri": post_uri("3kroot", OTHER_DID), "cid": RECORD_CID}
    post = normalize(data(post_record("me too", reply={"root": root, "parent": parent})))
    assert post.content_type == "reply"
    assert post.public_data["reply"] == {"root": root["uri"], "parent": parent["uri"]}


def repost_data(subject_view: dict[str, Any] | None, **record_extra: Any) -> dict[str, Any]:
    subject_uri = post_uri("3ksubject", OTHER_DID)
    record = {"$type": REPOST, "subject": {"uri": subject_uri, "cid": RECORD_CID}, "createdAt": "2024-11-04T10:00:00Z"}
    return data({**record, **record_extra}, view=subject_view, uri=post_uri("3krepost", collection=REPOST))


def test_a_repost_shows_the_subject_never_text_of_its_own() -> None:
    subject_uri = post_uri("3ksubject", OTHER_DID)
    subject = post_record("their words #tagged", facets=[facet({"byteStart": 12, "byteEnd": 19}, tag("tagged"))],
                          langs=["de"], embed={"$type": "app.bsky.embed.images", "images": [{"image": blob(CID_1),
                          "alt": "their cat"}]})  # fmt: skip
    view = post_view(subject_uri, subject, likeCount=5, repostCount=2)
    post = normalize(repost_data(view, text="my own words", facets=[]))
    assert post.content_type == "repost" and post.platform_post_id == post_uri("3krepost", collection=REPOST)
    assert post.text == "their words #tagged"
    assert post.html == 'their words <a href="https://bsky.app/hashtag/tagged">#tagged</a>'
    assert post.created_at == datetime(2024, 11, 4, 10, 0, tzinfo=UTC)
    assert post.media == ()  # the subject's blobs are on its author's PDS
    assert post.engagement == {"likeCount": 5, "repostCount": 2}
    assert post.search_keywords == "tagged de" and post.author_handle == "alice.example"
    assert post.public_data == {
        "createdAt": "2024-11-04T10:00:00Z",
        "repost_of": subject_uri,
        "subject": {
            "text": "their words #tagged", "createdAt": "2024-11-03T15:17:43.273Z", "langs": ["de"],
            "images": [{"alt": "their cat"}], "likeCount": 5, "repostCount": 2,
        },
    }  # fmt: skip
    assert "my own words" not in json.dumps(post.public_data)


def test_a_repost_not_hydrated_yet() -> None:
    post = normalize(repost_data(None, text="my own words"))
    assert post.content_type == "repost" and post.text is None and post.html is None
    assert post.complete is False and post.engagement is None and post.author_handle is None
    assert post.public_data == {"createdAt": "2024-11-04T10:00:00Z", "repost_of": post_uri("3ksubject", OTHER_DID)}


def test_a_repost_whose_view_is_another_post_is_refused() -> None:
    with pytest.raises(InvalidEventError, match=r"view\.uri"):
        normalize(repost_data(post_view(post_uri("3kelse", OTHER_DID), post_record("not the subject"))))
    with pytest.raises(InvalidEventError, match=r"view\.uri"):
        normalize(data(post_record(), view=post_view(post_uri("3kelse"), post_record())))


def test_a_full_post_with_its_view() -> None:
    record = post_record(
        "Hi #Python and #trove",
        facets=[facet({"byteStart": 3, "byteEnd": 10}, tag("Python"))],
        tags=["trove", "archive"],
        langs=["en", "fr"],
        labels={"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "nsfw"}]},
    )
    view = post_view(post_uri(), record, likeCount=3, repostCount=1, replyCount=0, quoteCount=2)
    view["likeCount"], view["bookmarkCount"] = 3, 9
    post = normalize(data(record, view=view))
    assert post.engagement == {"likeCount": 3, "repostCount": 1, "replyCount": 0, "quoteCount": 2}
    assert post.search_keywords == "Python trove archive en fr" and post.author_handle == "alice.example"
    assert post.updated_at is None and post.deleted is False and post.visibility == "public"
    assert post.public_data == {
        "text": "Hi #Python and #trove", "createdAt": "2024-11-03T15:17:43.273Z", "langs": ["en", "fr"],
        "labels": ["nsfw"], "likeCount": 3, "repostCount": 1, "replyCount": 0, "quoteCount": 2,
    }  # fmt: skip
    assert post.post_data["value"]["labels"] == record["labels"]  # kept raw


@pytest.mark.parametrize(
    "counts",
    [{"likeCount": "3"}, {"likeCount": True}, {"likeCount": -1}, {"likeCount": 1.5}, {}],
)
def test_counts_that_are_not_counts_are_left_out(counts: dict[str, Any]) -> None:
    post = normalize(data(post_record(), view=post_view(post_uri(), post_record(), **counts)))
    assert post.engagement is None and "likeCount" not in post.public_data


def test_public_projection_of_junk() -> None:
    assert public_projection(None) == {} and public_projection([]) == {}
    assert public_projection({"value": "x", "view": 5}) == {}
    images = [{"alt": 3, "aspectRatio": {"width": "1"}}]
    junk = {"$type": POST, "text": 5, "langs": "en", "reply": {"root": "x"}, "labels": {"values": [{"val": 3}]},
            "embed": {"$type": "app.bsky.embed.images", "images": images}}  # fmt: skip
    assert public_projection({"value": junk}) == {"images": [{"alt": ""}]}


# --- time -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-11-03T15:17:43.273Z", datetime(2024, 11, 3, 15, 17, 43, 273000, tzinfo=UTC)),
        ("2024-11-03T15:17:43Z", datetime(2024, 11, 3, 15, 17, 43, tzinfo=UTC)),
        ("2024-11-03T15:17:43+00:00", datetime(2024, 11, 3, 15, 17, 43, tzinfo=UTC)),
        ("2024-02-22T19:58:13.903293+00:00", datetime(2024, 2, 22, 19, 58, 13, 903293, tzinfo=UTC)),
        ("2024-11-03T15:17:43.123456789Z", datetime(2024, 11, 3, 15, 17, 43, 123456, tzinfo=UTC)),
        ("2024-11-03T15:17:43.1Z", datetime(2024, 11, 3, 15, 17, 43, 100000, tzinfo=UTC)),
        ("2024-11-03t15:17:43z", datetime(2024, 11, 3, 15, 17, 43, tzinfo=UTC)),
        ("2024-11-03T17:17:43+02:00", datetime(2024, 11, 3, 15, 17, 43, tzinfo=UTC)),
        ("2024-11-03T15:17:43", datetime(2024, 11, 3, 15, 17, 43, tzinfo=UTC)),  # no offset: UTC, as the AppView
    ],
)
def test_created_at_in_every_rfc3339_form(value: str, expected: datetime) -> None:
    parsed = parse_datetime(value)
    assert parsed == expected and parsed is not None and parsed.tzinfo is not None
    assert normalize(data(post_record(createdAt=value))).created_at == expected


def test_an_offset_is_kept() -> None:
    parsed = parse_datetime("2024-11-03T17:17:43.5-05:30")
    assert parsed is not None and parsed.utcoffset() == -timedelta(hours=5, minutes=30)
    assert parsed.tzinfo == timezone(-timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    "value",
    ["", "yesterday", "2024-11-03", "2024-13-03T15:17:43Z", "0000-01-01T00:00:00Z", "2024-11-03T15:17:43+25:00",
     "2024-11-03 15:17:43Z", "20241103T151743Z", "2024-11-03T15:17:43Z" + " " * 64, 1730647063, None],
)  # fmt: skip
def test_created_at_that_is_not_a_datetime(value: Any) -> None:
    assert parse_datetime(value) is None


def test_an_unparseable_created_at_falls_back_to_indexed_at() -> None:
    record = post_record(createdAt="not a time")
    post = normalize(data(record, view=post_view(post_uri(), record)))
    assert post.created_at == datetime(2024, 11, 3, 15, 17, 44, tzinfo=UTC)
    with pytest.raises(InvalidEventError, match=r"value\.createdAt"):
        normalize(data(record))
    assert record_problems(POST, record) == ["createdAt is not an RFC 3339 datetime"]


def test_a_repost_never_takes_the_subjects_time() -> None:
    subject_uri = post_uri("3ksubject", OTHER_DID)
    post_data = repost_data(post_view(subject_uri, post_record()), createdAt="garbage")
    with pytest.raises(InvalidEventError, match=r"value\.createdAt"):
        normalize(post_data)


# --- malformed input ------------------------------------------------------------------------------------
ONE_BYTE = {"byteStart": 0, "byteEnd": 1}
REF = {"uri": post_uri(), "cid": RECORD_CID}


def images_embed(**image: Any) -> dict[str, Any]:
    return {"$type": "app.bsky.embed.images", "images": [{"image": blob(CID_1), "alt": "", **image}]}


BAD_POSTS: list[tuple[dict[str, Any], str]] = [
    ({"text": 5}, "text is not a string"),
    ({"text": "é" * 1501}, "text is longer than 3000 bytes"),
    ({"createdAt": 1730647063}, "createdAt is not a string"),
    ({"$type": "app.bsky.feed.like"}, "$type is not app.bsky.feed.post"),
    ({"facets": {}}, "facets is not an array"),
    ({"facets": [{"features": []}] * 1001}, "facets has more than 1000 items"),
    ({"facets": ["x"]}, "facets[0] is not an object"),
    ({"facets": [{"features": []}]}, "facets[0].index is missing"),
    ({"facets": [{"index": {"byteStart": "0", "byteEnd": 1}, "features": []}]},
     "facets[0].index.byteStart is not an integer"),
    ({"facets": [{"index": {"byteStart": -1, "byteEnd": 1}, "features": []}]},
     "facets[0].index.byteStart is less than 0"),
    ({"facets": [{"index": {"byteStart": 0, "byteEnd": 1}}]}, "facets[0].features is missing"),
    ({"facets": [{"index": {"byteStart": 0, "byteEnd": 1}, "features": [{}]}]},
     "facets[0].features[0].$type is missing or not a string"),
    ({"facets": [{"index": {"byteStart": 0, "byteEnd": 1}, "features": [link(None)]}]},
     "facets[0].features[0].uri is not a string"),
    ({"facets": [{"index": ONE_BYTE, "features": [{"$type": "app.bsky.richtext.facet#mention"}]}]},
     "facets[0].features[0].did is missing"),
    ({"facets": [{"index": {"byteStart": 0, "byteEnd": 1}, "features": [tag("x" * 641)]}]},
     "facets[0].features[0].tag is longer than 640 bytes"),
    ({"reply": "at://x"}, "reply is not an object"),
    ({"reply": {"parent": {"uri": post_uri(), "cid": RECORD_CID}}}, "reply.root is missing"),
    ({"reply": {"root": {"uri": "https://x", "cid": RECORD_CID}, "parent": {"uri": post_uri(), "cid": RECORD_CID}}},
     "reply.root.uri is not an at:// URI"),
    ({"reply": {"root": {"uri": post_uri()}, "parent": REF}}, "reply.root.cid is missing"),
    ({"embed": "x"}, "embed is not an object"),
    ({"embed": {"images": []}}, "embed.$type is missing or not a string"),
    ({"embed": {"$type": "app.bsky.embed.images"}}, "embed.images is missing"),
    ({"embed": {"$type": "app.bsky.embed.images", "images": [{"image": blob(CID_1), "alt": ""}] * 5}},
     "embed.images has more than 4 items"),
    ({"embed": images_embed(alt=None)}, "embed.images[0].alt is not a string"),
    ({"embed": {"$type": "app.bsky.embed.images", "images": [{"alt": ""}]}}, "embed.images[0].image is missing"),
    ({"embed": {"$type": "app.bsky.embed.images", "images": [{"image": "bafk", "alt": ""}]}},
     "embed.images[0].image is not an object"),
    ({"embed": {"$type": "app.bsky.embed.images", "images": [{"image": {"mimeType": "image/png"}, "alt": ""}]}},
     "embed.images[0].image is not a blob"),
    ({"embed": {"$type": "app.bsky.embed.images", "images": [{"image": {"$type": "blob", "ref": {"$link": 5},
      "mimeType": "image/png", "size": 1}, "alt": ""}]}}, "embed.images[0].image.ref.$link is not a string"),
    ({"embed": {"$type": "app.bsky.embed.images", "images": [{"image": blob("b" * 300), "alt": ""}]}},
     "embed.images[0].image.ref.$link is longer than 256 bytes"),
    ({"embed": {"$type": "app.bsky.embed.images", "images": [{"image": {"cid": CID_V0}, "alt": ""}]}},
     "embed.images[0].image.mimeType is missing"),
    ({"embed": images_embed(aspectRatio={"width": 0, "height": 3})},
     "embed.images[0].aspectRatio.width is less than 1"),
    ({"embed": images_embed(aspectRatio={"width": 4})}, "embed.images[0].aspectRatio.height is missing"),
    ({"embed": {"$type": "app.bsky.embed.video"}}, "embed.video is missing"),
    ({"embed": {"$type": "app.bsky.embed.video", "video": blob(CID_1), "alt": "x" * 10_001}},
     "embed.alt is longer than 10000 bytes"),
    ({"embed": {"$type": "app.bsky.embed.video", "video": blob(CID_1), "captions": [{"lang": "en"}]}},
     "embed.captions[0].file is missing"),
    ({"embed": {"$type": "app.bsky.embed.external", "external": {"uri": "https://x", "title": "t"}}},
     "embed.external.description is missing"),
    ({"embed": {"$type": "app.bsky.embed.external", "external": {"uri": "https://x", "title": "t", "description": "d",
      "thumb": "x"}}}, "embed.external.thumb is not an object"),
    ({"embed": {"$type": "app.bsky.embed.record", "record": {"uri": post_uri()}}}, "embed.record.cid is missing"),
    ({"embed": {"$type": "app.bsky.embed.recordWithMedia", "record": {"record": REF}}}, "embed.media is missing"),
    ({"embed": {"$type": "app.bsky.embed.recordWithMedia", "record": {"uri": post_uri(), "cid": RECORD_CID},
      "media": images_embed()}}, "embed.record.record is missing"),
    ({"embed": {"$type": "app.bsky.embed.recordWithMedia", "record": {"record": REF},
      "media": {"$type": "app.bsky.embed.record", "record": {}}}},
     "embed.media.$type app.bsky.embed.record is not media"),
    ({"langs": ["en", "fr", "de", "it"]}, "langs has more than 3 items"),
    ({"langs": "en"}, "langs is not an array"),
    ({"langs": [1]}, "langs[0] is not a string"),
    ({"tags": ["a"] * 9}, "tags has more than 8 items"),
    ({"tags": [None]}, "tags[0] is not a string"),
    ({"labels": ["nsfw"]}, "labels is not an object"),
    ({"labels": {"values": [{"val": 1}]}}, "labels.values[0].val is not a string"),
    ({"labels": {"values": [{"val": "x"}] * 11}}, "labels.values has more than 10 items"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "problem"), BAD_POSTS, ids=[problem for _, problem in BAD_POSTS])
def test_a_malformed_post_is_refused_naming_the_field(change: dict[str, Any], problem: str) -> None:
    record = {**post_record(), **change}
    assert problem in "\n".join(record_problems(POST, record))
    if change.get("$type"):
        return  # normalize refuses it sooner, for its $type
    with pytest.raises(InvalidEventError) as refused:
        normalize(data(record, uri=post_uri()))
    assert f"value.{problem}" in str(refused.value)


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"$type": POST, "createdAt": "2024-11-03T15:17:43Z"}, "text is missing"),
        ({"$type": POST, "text": "x"}, "createdAt is missing"),
        ({"$type": REPOST, "createdAt": "2024-11-03T15:17:43Z"}, "subject is missing"),
        ({"$type": REPOST, "createdAt": "2024-11-03T15:17:43Z", "subject": "at://x"}, "subject is not an object"),
        ({"$type": REPOST, "createdAt": "2024-11-03T15:17:43Z", "subject": {"uri": 5, "cid": "b"}},
         "subject.uri is not a string"),
        ({"$type": REPOST, "createdAt": "2024-11-03T15:17:43Z", "subject": {"uri": "at://a/b/c", "cid": "b"},
          "via": {"uri": "at://a/b/c"}}, "via.cid is missing"),
        ({"$type": REPOST, "createdAt": "x", "subject": {"uri": "at://a/b/c", "cid": "b"}},
         "createdAt is not an RFC 3339 datetime"),
    ],
)  # fmt: skip
def test_record_problems_of_missing_parts(record: dict[str, Any], problem: str) -> None:
    assert problem in record_problems(record["$type"], record)


def test_record_problems_accepts_both_collections_and_refuses_others() -> None:
    assert record_problems(POST, post_record()) == []
    repost = {"$type": REPOST, "createdAt": "2024-11-03T15:17:43Z", "subject": {"uri": post_uri(), "cid": RECORD_CID},
              "via": {"uri": post_uri("3kvia"), "cid": RECORD_CID}}  # fmt: skip
    assert record_problems(REPOST, repost) == []
    newer = post_record(embed={"$type": "app.bsky.embed.somethingNew", "x": 1}, futureField={"a": 1})
    assert record_problems(POST, newer) == []  # open unions and new fields
    assert record_problems("app.bsky.feed.like", {"$type": "app.bsky.feed.like"}) == [
        "unknown collection 'app.bsky.feed.like'"
    ]
    assert record_problems(5, {}) == ["unknown collection (not a string)"]  # type: ignore[arg-type]
    assert record_problems(POST, "x") == ["(record) is not an object"]
    assert record_problems(POST, []) == ["(record) is not an object"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"uri": 5}, "uri is missing or not a string"),
        ({"uri": "https://bsky.app/profile/x/post/3k"}, "uri is not at://"),
        ({"uri": "at://alice.example/app.bsky.feed.post/3k"}, "uri is not at://"),  # a handle, not the repo DID
        ({"uri": f"at://{DID}/app.bsky.feed.post/3k?x"}, "uri is not at://"),
        ({"uri": f"at://{DID}/app.bsky.feed.repost/3k"}, "uri names the collection app.bsky.feed.repost"),
        ({"value": None}, "value is missing or not an object"),
        ({"value": {"$type": "app.bsky.feed.like", "createdAt": "2024-11-03T15:17:43Z"}}, "value.$type is not"),
        ({"cid": ["x"]}, "cid is not a CID string"),
        ({"view": "x"}, "view is not an object"),
        ({"value": post_record("nul \x00 byte")}, "field value.text contains a NUL"),
        ({"view": post_view(post_uri(), post_record(), extra="\ud800")}, "field view.extra contains an unpaired"),
    ],
)
def test_malformed_post_data_is_refused_naming_the_field(change: dict[str, Any], problem: str) -> None:
    post_data = {**data(post_record()), **change}
    with pytest.raises(InvalidEventError, match="^" + re.escape(problem)):
        normalize(post_data)


def test_post_data_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidEventError, match="post_data is not an object"):
        normalize([])  # type: ignore[arg-type]


def test_normalize_leaves_post_data_untouched() -> None:
    record = post_record("x", embed=images_embed())
    post_data = data(record, view=post_view(post_uri(), record, likeCount=1))
    before = copy.deepcopy(post_data)
    assert normalize(post_data).post_data is post_data and post_data == before
