"""Instagram's normalizer alone (no database, no processes): posts from the recorded payloads in
../shared/fixtures/instagram, and hand-written media for the edges (a reel without its video, stories,
hidden like counts, hostile text and URLs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from trove.config import PROJECT_ROOT
from trove.platforms.base import InvalidEventError, MediaRef
from trove.platforms.instagram.normalize import COPYRIGHTED_VIDEO, normalize, parse_time, public_projection

FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures" / "instagram"
PAGE_FILES = [
    "ig_user_media_page1.json",
    "ig_user_media_page2_carousel_with_video_child.json",
    "ig_user_stories_page1.json",
]
CDN = "https://scontent.cdninstagram.test/v/t51/"

REEL: dict[str, Any] = {
    "id": "17900000000000001", "caption": "Sunset #beach #Sun #beach", "media_type": "VIDEO",
    "media_product_type": "REELS", "media_url": CDN + "r.mp4?oh=1", "thumbnail_url": CDN + "r.jpg?oh=2",
    "permalink": "https://www.instagram.com/reel/Cabc/", "shortcode": "Cabc",
    "timestamp": "2024-03-01T12:00:00+0000", "like_count": 5, "comments_count": 2, "username": "alice.ig",
    "is_comment_enabled": True, "owner": {"id": "17841400000000000"}, "ig_id": "123",
}  # fmt: skip


def fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"{path} is not here (../shared/fixtures is absent)")
    return json.loads(path.read_text())


def fixture_media() -> list[dict[str, Any]]:
    media = [fixture("ig_media_carousel_single.json")]
    for name in PAGE_FILES:
        media += fixture(name)["data"]
    return media


def assert_no_cdn_url(public: dict[str, Any]) -> None:
    text = json.dumps(public)
    assert "cdninstagram" not in text
    without_permalink = {key: value for key, value in public.items() if key != "permalink"}
    assert "http" not in json.dumps(without_permalink)


# --- the recorded payloads ------------------------------------------------------------------------------
def test_every_fixture_media_is_a_post_or_refused_for_its_missing_timestamp() -> None:
    for media in fixture_media():
        if "timestamp" not in media:  # the stories fixture asked for id,media_type,media_url,username only
            with pytest.raises(ValueError, match=f"Instagram media {media['id']} has no usable timestamp"):
                normalize(media)
            continue
        post = normalize(media)
        assert post.platform_post_id == media["id"]
        assert post.created_at == parse_time(media["timestamp"])
        assert post.complete and post.visibility == "public" and post.content_type == "post"
        assert post.post_data is media
        assert post.media and all(ref.missing is None and ref.url.startswith("https://") for ref in post.media)
        assert all(ref.media_key.split(":")[0].isdigit() for ref in post.media)  # ids, never URLs
        assert post.permalink == media["permalink"]
        assert post.public_data["permalink"] == media["permalink"]
        assert_no_cdn_url(post.public_data)


def test_a_carousel_is_its_children_in_order_with_the_video_childs_thumbnail() -> None:
    for album in (fixture("ig_media_carousel_single.json"), fixture_media()[3]):
        assert album["id"] == "17896129349106152"
        post = normalize(album)
        children = album["children"]["data"]
        assert [ref.media_key for ref in post.media] == [
            "17889214265226770",
            "17886719108286032",
            "17904922598025487",
            "17904922598025487:thumbnail",
        ]
        assert [ref.url for ref in post.media] == [
            children[0]["media_url"],
            children[1]["media_url"],
            children[2]["media_url"],
            children[2]["thumbnail_url"],
        ]
        assert album["media_url"] == children[0]["media_url"]  # the album's cover is its first child
        assert post.text == "ALBUM" and post.engagement == {"like_count": 1, "comments_count": 0}
        assert post.public_data["children"] == [
            {"id": child["id"], "media_type": child["media_type"], "timestamp": child["timestamp"]}
            for child in children
        ]


def test_the_single_carousel_shows_only_allow_listed_fields() -> None:
    album = fixture("ig_media_carousel_single.json")
    public = public_projection(album)
    assert set(public) == {
        "id", "caption", "media_type", "permalink", "shortcode", "timestamp", "like_count", "comments_count",
        "username", "is_comment_enabled", "children",
    }  # fmt: skip
    assert "owner" not in public and "ig_id" not in public and "media_url" not in public
    assert normalize(album).author_handle == "ikroskun"


def test_a_first_page_post_without_caption_or_username() -> None:
    first = fixture("ig_user_media_page1.json")["data"][0]
    post = normalize(first)
    assert (post.text, post.author_handle, post.search_keywords) == (None, None, None)
    assert post.engagement == {"like_count": 0, "comments_count": 0}
    assert post.media == (MediaRef(first["id"], first["media_url"]),)
    assert post.created_at == datetime(2021, 8, 13, 8, 25, 28, tzinfo=UTC)


def test_a_story_from_the_stories_fixture_with_its_timestamp_is_private() -> None:
    story = fixture("ig_user_stories_page1.json")["data"][0] | {
        "timestamp": "2020-10-20T10:00:00+0000",
        "media_product_type": "STORY",
    }
    post = normalize(story)
    assert (post.content_type, post.visibility, post.search_keywords) == ("story", "private", "story")
    assert post.media == (MediaRef(story["id"], story["media_url"]),)
    assert_no_cdn_url(post.public_data)


# --- parse_time -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["2021-07-26T10:45:20+0000", "2021-07-26T10:45:20Z", "2021-07-26T10:45:20+00:00", "2021-07-26T12:45:20+0200"],
)
def test_parse_time_takes_metas_format_and_iso_offsets(text: str) -> None:
    assert parse_time(text) == datetime(2021, 7, 26, 10, 45, 20, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "2021-07-26", "2021-07-26T10:45:20", "2021-13-26T10:45:20+0000", "x" * 100])
def test_parse_time_refuses_what_is_not_a_meta_timestamp(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


# --- edges ----------------------------------------------------------------------------------------------
def test_a_reel_is_public_with_its_video_thumbnail_and_keywords() -> None:
    post = normalize(REEL)
    assert (post.content_type, post.visibility, post.author_handle) == ("reel", "public", "alice.ig")
    assert post.media == (
        MediaRef(REEL["id"], REEL["media_url"]),
        MediaRef(f"{REEL['id']}:thumbnail", REEL["thumbnail_url"]),
    )
    assert post.search_keywords == "beach Sun reel"
    assert post.permalink == "https://www.instagram.com/reel/Cabc/"
    assert post.engagement == {"like_count": 5, "comments_count": 2}
    assert post.public_data == {
        "id": REEL["id"], "caption": REEL["caption"], "media_type": "VIDEO", "media_product_type": "REELS",
        "permalink": REEL["permalink"], "shortcode": "Cabc", "timestamp": REEL["timestamp"], "like_count": 5,
        "comments_count": 2, "username": "alice.ig", "is_comment_enabled": True,
    }  # fmt: skip


def test_a_reel_with_copyrighted_audio_is_a_missing_video_with_its_thumbnail() -> None:
    reel = {key: value for key, value in REEL.items() if key != "media_url"}
    post = normalize(reel)
    assert post.media == (
        MediaRef(REEL["id"], "", missing=COPYRIGHTED_VIDEO),
        MediaRef(f"{REEL['id']}:thumbnail", REEL["thumbnail_url"]),
    )
    assert "copyrighted audio" in COPYRIGHTED_VIDEO


def test_a_story_is_private() -> None:
    story = REEL | {"media_product_type": "STORY", "permalink": "https://www.instagram.com/stories/alice.ig/1/"}
    del story["like_count"], story["comments_count"]
    post = normalize(story)
    assert (post.content_type, post.visibility, post.engagement) == ("story", "private", None)
    assert post.search_keywords == "beach Sun story"


def test_caption_absent_or_empty_is_no_text() -> None:
    for media in ({k: v for k, v in REEL.items() if k != "caption"}, REEL | {"caption": ""}):
        post = normalize(media)
        assert post.text is None and post.search_keywords == "reel"


def test_hidden_like_count_is_left_out_not_zero() -> None:
    media = {k: v for k, v in REEL.items() if k != "like_count"} | {"comments_count": True}
    post = normalize(media)
    assert post.engagement is None  # a bool is not a count
    assert normalize({k: v for k, v in REEL.items() if k != "like_count"}).engagement == {"comments_count": 2}


def test_a_nul_in_the_caption_is_removed_from_what_is_stored() -> None:
    post = normalize(REEL | {"caption": "a\x00b #t\x00ag \ud800", "username": "x\x00y"})
    assert post.text == "ab #tag \ufffd"
    assert post.public_data["caption"] == "ab #tag \ufffd"
    assert post.author_handle == "xy"
    assert "\x00" not in (post.search_keywords or "")


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "ftp://cdn.test/a.jpg", "file:///etc/passwd", "/relative.jpg", "https://a b", 7]
)
def test_a_media_url_that_is_not_http_is_missing_with_a_reason(url: Any) -> None:
    post = normalize(REEL | {"media_type": "IMAGE", "media_product_type": "FEED", "media_url": url})
    assert post.media == (MediaRef(REEL["id"], "", missing="Instagram gave a media_url that is not an http(s) URL"),)
    video = normalize(REEL | {"thumbnail_url": url})
    assert video.media[1] == MediaRef(
        f"{REEL['id']}:thumbnail", "", missing="Instagram gave a thumbnail_url that is not an http(s) URL"
    )


def test_an_image_without_media_url_is_missing() -> None:
    image = {k: v for k, v in REEL.items() if k not in ("media_url", "thumbnail_url")} | {"media_type": "IMAGE"}
    assert normalize(image).media == (MediaRef(REEL["id"], "", missing="Instagram gave no media_url for this image"),)


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/p/x/",
        "http://www.instagram.com/p/x/",
        "https://www.instagram.com.evil.example/p/x/",
        "https://user@www.instagram.com/p/x/",
        "https://www.instagram.com:444/p/x/",
        "javascript:alert(1)",
        17,
    ],
)
def test_a_permalink_off_instagram_is_dropped(link: Any) -> None:
    post = normalize(REEL | {"permalink": link})
    assert post.permalink is None and "permalink" not in post.public_data


def test_instagram_com_without_www_is_a_permalink() -> None:
    assert normalize(REEL | {"permalink": "https://instagram.com/p/x/"}).permalink == "https://instagram.com/p/x/"


@pytest.mark.parametrize("timestamp", [None, "", "yesterday", 1700000000])
def test_a_media_without_a_parseable_timestamp_is_refused(timestamp: Any) -> None:
    media = REEL | {"timestamp": timestamp}
    with pytest.raises(ValueError, match="has no usable timestamp"):
        normalize(media)
    with pytest.raises(InvalidEventError):
        normalize({k: v for k, v in REEL.items() if k != "timestamp"})


@pytest.mark.parametrize("media_id", [None, "", "abc", "1" * 33, True, -1, "17 9"])
def test_a_media_without_a_decimal_id_is_refused(media_id: Any) -> None:
    with pytest.raises(InvalidEventError, match="id"):
        normalize(REEL | {"id": media_id})


def test_public_data_keeps_only_plain_values_and_never_urls() -> None:
    media = REEL | {
        "caption": {"nested": "x"},
        "like_count": 1.5,
        "children": {"data": [{"id": "1", "media_type": "IMAGE", "media_url": CDN + "c.jpg", "extra": 1}, "junk"]},
        "thumbnail_url": CDN + "t.jpg",
        "profile_picture_url": CDN + "p.jpg",
    }
    public = public_projection(media)
    assert "caption" not in public and "like_count" not in public
    assert public["children"] == [{"id": "1", "media_type": "IMAGE"}]
    assert_no_cdn_url(public)
    assert public_projection("not a dict") == {}  # type: ignore[arg-type]


def test_a_carousel_child_without_an_id_is_left_out_and_the_cover_is_not_a_media() -> None:
    album = REEL | {
        "media_type": "CAROUSEL_ALBUM",
        "media_product_type": "FEED",
        "children": {"data": [{"media_type": "IMAGE", "media_url": CDN + "a.jpg"}, {"id": "2", "media_type": "VIDEO"}]},
    }
    assert normalize(album).media == (MediaRef("2", "", missing=COPYRIGHTED_VIDEO),)
