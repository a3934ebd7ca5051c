"""Instagram's export reader alone (no database): exports built by trove.simulators.instagram_export in every
layout, read through the real archive wrapper; text repair, carousels, missing files, broken files, and the
posts it makes read again by the normalizer as a synced post would be."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from trove.imports.archive import ExportArchive
from trove.platforms.base import ExportOwner, ExportRecord, ExportUnreadable, InvalidEventError
from trove.platforms.instagram.export import InstagramExportReader, repair_text, repaired
from trove.platforms.instagram.normalize import normalize, parse_time
from trove.simulators.instagram import ALL_MEDIA_FIELDS, InstagramSimulator, meta_time, parse_fields
from trove.simulators.instagram_export import (
    ExportItem,
    build_instagram_export,
    items_from_api_media,
    items_from_simulator,
    media_uri,
    mojibake,
)

USER, NAME = "alice.ig", "Alice Ñandú 🌊"
POSTS = "your_instagram_activity/content/posts_1.json"
PERSONAL = "personal_information/personal_information/personal_information.json"
ITEMS = [
    ExportItem("post", 1_700_000_000, "Café au lait ☕ #coffee #café"),
    ExportItem("post", 1_700_100_000, "東京の夜 🌃 carousel", ("IMAGE", "VIDEO", "IMAGE")),
    ExportItem("post", 1_700_200_000, None),
    ExportItem("reel", 1_700_300_000, "Sound on 🔊 #reels", ("VIDEO",)),
    ExportItem("story", 1_700_400_000, None, ("VIDEO",)),
    ExportItem("story", 1_700_400_100, None, ("IMAGE",)),
    ExportItem("archived_post", 1_600_000_000, "Façade, hidden since"),
]
reader = InstagramExportReader()


def build(tmp_path: Path, items: list[ExportItem] = ITEMS, name: str = "export.zip", **options: Any) -> ExportArchive:
    return ExportArchive(build_instagram_export(tmp_path / name, USER, NAME, items, **options))


def read(archive: ExportArchive) -> list[ExportRecord]:
    return list(reader.records(archive, reader.owner(archive), {}))


def by_time(records: list[ExportRecord]) -> dict[int, ExportRecord]:
    return {int(record.match.created_at.timestamp()): record for record in records if record.match}


# --- which files are exports ----------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["current", "media", "old"])
@pytest.mark.parametrize("root", ["", "instagram-alice.ig-2024-06-13-AbCdEf/"])
def test_every_layout_is_recognized_and_read(tmp_path: Path, layout: str, root: str) -> None:
    archive = build(tmp_path, layout=layout, root=root)
    assert reader.recognizes(archive)
    assert reader.owner(archive).username == USER
    records = read(archive)
    assert [record.event_type for record in records] == [
        *["export.post"] * 3, "export.reel", *["export.story"] * 2, "export.archived_post",
    ]  # fmt: skip
    assert all(record.problem is None and record.post is not None for record in records)
    assert all(file.entry.startswith(root) and file.entry in archive.names() for r in records for file in r.files)


def test_the_same_export_under_a_top_level_folder_makes_the_same_posts(tmp_path: Path) -> None:
    plain = read(build(tmp_path))
    wrapped = read(build(tmp_path, name="wrapped.zip", root="instagram-alice.ig-2024-06-13-AbCdEf"))
    assert [r.post for r in plain] == [r.post for r in wrapped]  # media keys do not carry the folder
    assert [r.identity for r in plain] == [r.identity for r in wrapped]


def zip_of(tmp_path: Path, entries: dict[str, bytes]) -> ExportArchive:
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    return ExportArchive(path)


@pytest.mark.parametrize(
    "entries",
    [
        {"activities.csv": b"Activity ID,Activity Date\n", "activities/1.gpx": b"<gpx/>"},
        {"your_instagram_activity/likes/liked_posts.json": b"[]", PERSONAL: b"{}"},  # no content of one's own
        {"a/b/content/posts_1.json": b"[]"},  # two folders above the content: not an export's root
        {"content/posts.json": b"[]", "content/comments.json": b"[]"},  # not the export's file names
        {"posts_1.json": b"[]"},
    ],
)
def test_other_files_are_not_recognized(tmp_path: Path, entries: dict[str, bytes]) -> None:
    assert not reader.recognizes(zip_of(tmp_path, entries))


def test_a_single_file_is_not_recognized(tmp_path: Path) -> None:
    path = tmp_path / "repo.car"
    path.write_bytes(b"\x3a\xa2eroots")
    assert not reader.recognizes(ExportArchive(path))


# --- the owner ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["current", "old"])
def test_the_owner_is_read_from_the_personal_information_with_its_name_repaired(tmp_path: Path, layout: str) -> None:
    owner = reader.owner(build(tmp_path, layout=layout))
    assert (owner.platform_user_id, owner.username, owner.display_name) == (None, USER, NAME)


def test_an_export_without_personal_information_names_the_entry_it_needs(tmp_path: Path) -> None:
    with pytest.raises(ExportUnreadable, match=f"^{PERSONAL}: not in the export"):
        reader.owner(build(tmp_path, omit=[PERSONAL]))


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"profile_user": [', "not readable JSON"),
        (b'{"profile_user": []}', "no profile_user"),
        (b'{"profile_user": [{"string_map_data": {"Name": {"value": "A"}}}]}', "no Instagram username"),
        (b'{"profile_user": [{"string_map_data": {"Username": {"value": "a b/c"}}}]}', "no Instagram username"),
    ],
)
def test_unusable_personal_information_names_the_entry(tmp_path: Path, content: bytes, why: str) -> None:
    with pytest.raises(ExportUnreadable, match=f"^{PERSONAL}: {why}"):
        reader.owner(build(tmp_path, replace={PERSONAL: content}))


def test_prepare_needs_nothing_from_outside() -> None:
    async def prepare() -> dict[str, object]:
        async with httpx.AsyncClient() as http:
            return await reader.prepare(http, ExportOwner(None, USER))

    assert asyncio.run(prepare()) == {}


# --- text -----------------------------------------------------------------------------------------------
def test_text_escaped_the_way_meta_escapes_it_is_repaired() -> None:
    for text in ["é", "Café ☕", "東京の夜 🌃", "🇵🇹 façade", "plain ascii", ""]:
        assert repair_text(mojibake(text)) == text
    assert repaired({mojibake("clé"): [mojibake("ñ"), 3, None]}) == {"clé": ["ñ", 3, None]}


def test_text_that_is_already_right_is_left_as_it_is() -> None:
    for text in ["é", "Ã", "café", "☕", "東京", "naïve 🎉", "\u00c3\u00a9 and ☕"]:  # the last: mixed, not Meta's
        assert repair_text(text) == text


def test_captions_come_out_repaired_and_the_raw_payload_as_it_was(tmp_path: Path) -> None:
    archive = build(tmp_path)
    assert b'"Caf\\u00c3\\u00a9 au lait \\u00e2\\u0098\\u0095' in archive.read(POSTS)  # as Meta writes it
    records = by_time(read(archive))
    single, carousel = records[1_700_000_000], records[1_700_100_000]
    assert single.post and single.post.text == "Café au lait ☕ #coffee #café"
    assert single.post.search_keywords == "coffee café"
    assert carousel.post and carousel.post.text == "東京の夜 🌃 carousel"
    assert single.payload["media"][0]["title"] == mojibake("Café au lait ☕ #coffee #café")  # kept as read
    assert carousel.payload["title"] == mojibake("東京の夜 🌃 carousel")
    assert records[1_700_200_000].post and records[1_700_200_000].post.text is None  # no caption: no text


def test_a_file_written_in_plain_utf8_reads_untouched(tmp_path: Path) -> None:
    posts = [{"media": [{"uri": "media/posts/202311/a.jpg", "creation_timestamp": 1_700_000_000,
                         "title": "Café ☕ 東京 Ã"}]}]  # fmt: skip
    archive = build(tmp_path, replace={POSTS: json.dumps(posts, ensure_ascii=False)})
    [record] = [r for r in read(archive) if r.event_type == "export.post"]
    assert record.post and record.post.text == "Café ☕ 東京 Ã"
    assert record.problem == f"{POSTS}: post of 2023-11-14T22:13:20+0000: media file media/posts/202311/a.jpg is " \
        "not in the archive"  # fmt: skip


# --- posts ----------------------------------------------------------------------------------------------
def test_a_carousel_keeps_its_files_in_order(tmp_path: Path) -> None:
    item = ITEMS[1]
    record = by_time(read(build(tmp_path)))[item.timestamp]
    uris = [media_uri(USER, item, position) for position in range(3)]
    assert [m["uri"] for m in record.payload["media"]] == uris
    assert record.post is not None
    assert [ref.media_key for ref in record.post.media] == [f"export:{uri}" for uri in uris]
    assert all(ref.url == "" and ref.missing is None for ref in record.post.media)  # copied, never downloaded
    assert [(file.media_key, file.entry) for file in record.files] == [(f"export:{uri}", uri) for uri in uris]
    data = record.post.post_data
    assert (data["media_type"], data["media_product_type"]) == ("CAROUSEL_ALBUM", "FEED")
    assert [child["media_type"] for child in data["children"]["data"]] == ["IMAGE", "VIDEO", "IMAGE"]
    assert record.post.public_data["children"] == data["children"]["data"]
    assert "trove_export" not in record.post.public_data
    assert record.post.permalink is None and record.post.engagement is None
    assert record.post.author_handle == USER


def test_a_missing_media_file_is_a_problem_naming_it_and_the_rest_is_archived(tmp_path: Path) -> None:
    item = dataclasses.replace(ITEMS[1], absent=frozenset({1}))
    [record] = [r for r in read(build(tmp_path, [item])) if r.post]
    gone = media_uri(USER, item, 1)
    assert record.problem is not None and gone in record.problem and record.problem.startswith(POSTS)
    assert record.post is not None
    assert [ref.missing for ref in record.post.media] == [None, f"the export does not contain {gone}", None]
    assert [file.media_key for file in record.files] == [
        f"export:{media_uri(USER, item, 0)}",
        f"export:{media_uri(USER, item, 2)}",
    ]
    assert record.post.text == item.caption and record.match is not None


def test_reels_stories_and_archived_posts_follow_instagrams_rules(tmp_path: Path) -> None:
    records = by_time(read(build(tmp_path)))
    reel, story, archived = records[1_700_300_000].post, records[1_700_400_000].post, records[1_600_000_000].post
    # The export does not say whether the account is public (the API's posts are): unknown means private.
    assert reel and (reel.content_type, reel.visibility, reel.published) == ("reel", "private", True)
    assert reel.search_keywords == "reels reel" and reel.post_data["media_type"] == "VIDEO"
    assert story and (story.content_type, story.visibility, story.published) == ("story", "private", True)
    # An archived post is hidden from the profile by its owner: a post, kept unpublished and private.
    assert archived and (archived.content_type, archived.visibility, archived.published) == ("post", "private", False)
    assert archived.post_data["trove_export"]["archived"] is True
    assert records[1_600_000_000].match and records[1_600_000_000].match.content_types == {"post"}


def test_records_come_posts_files_by_number_then_reels_stories_archived(tmp_path: Path) -> None:
    posts = [ExportItem("post", 1_700_000_000 + n, f"post {n}") for n in range(11)]
    archive = build(tmp_path, [*posts, *ITEMS[3:]], posts_per_file=1)
    sources = [r.post.post_data["trove_export"]["source"] for r in read(archive) if r.post]
    content = "your_instagram_activity/content/"
    assert sources == [
        *[f"{content}posts_{n}.json" for n in range(1, 12)],
        f"{content}reels.json", f"{content}stories.json", f"{content}stories.json", f"{content}archived_posts.json",
    ]  # fmt: skip


# --- broken files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entry", "content", "why"),
    [
        (POSTS, b'[{"media": [', "not readable JSON"),
        (POSTS, b"\xff\xfe[]", "not readable JSON"),
        (POSTS, b'{"ig_posts": []}', "expected a list of posts"),
        ("your_instagram_activity/content/reels.json", b"[]", "expected an object with a list 'ig_reels_media'"),
        ("your_instagram_activity/content/stories.json", b'{"ig_stories": {}}', "expected an object with a list"),
    ],
)
def test_a_broken_file_is_unreadable_naming_the_entry(tmp_path: Path, entry: str, content: bytes, why: str) -> None:
    archive = build(tmp_path, replace={entry: content})
    with pytest.raises(ExportUnreadable, match=f"^{entry}: {why}"):
        read(archive)


def test_an_item_without_time_or_media_is_kept_raw_with_why(tmp_path: Path) -> None:
    posts = [{"media": [{"uri": "x.jpg"}], "title": "no time"}, "not a post", {"media": []}]
    records = read(build(tmp_path, [], replace={POSTS: json.dumps(posts)}))
    assert [r.post for r in records] == [None, None, None]
    assert [r.payload for r in records] == posts
    assert records[0].problem == f"{POSTS}: item 0 has no creation_timestamp (kept raw, not archived)"
    assert records[1].problem == f"{POSTS}: item 1 is not a post with media (kept raw, not archived)"
    assert [r.identity for r in records] == [f"post:unreadable:{POSTS}:{n}" for n in range(3)]


# --- the same posts every time --------------------------------------------------------------------------
def test_export_posts_normalize_again_to_the_same_post(tmp_path: Path) -> None:
    for record in read(build(tmp_path)):
        assert record.post is not None
        assert normalize(record.post.post_data) == record.post
        stored = json.loads(json.dumps(record.post.post_data))  # as jsonb gives it back
        assert normalize(stored) == record.post
        assert record.post.platform_post_id.startswith("export:")


def test_identities_and_ids_are_stable_across_reads_and_builds(tmp_path: Path) -> None:
    first = build(tmp_path)
    again = build(tmp_path, name="again.zip")
    runs = [read(first), read(first), read(again)]
    for run in runs[1:]:
        assert [r.identity for r in run] == [r.identity for r in runs[0]]
        assert [r.post for r in run] == [r.post for r in runs[0]]
        assert [r.payload for r in run] == [r.payload for r in runs[0]]
    identities = [r.identity for r in runs[0]]
    assert len(set(identities)) == len(identities)
    assert identities[0] == f"post:1700200000:{media_uri(USER, ITEMS[2], 0)}"  # newest first, as Meta lists


def test_an_archived_post_keeps_the_id_it_had_as_a_post(tmp_path: Path) -> None:
    post = {"media": [{"uri": "media/posts/202201/a.jpg", "creation_timestamp": 1_650_000_000, "title": "x"}]}
    archived = "your_instagram_activity/content/archived_posts.json"
    before = read(build(tmp_path, [], name="before.zip", replace={POSTS: json.dumps([post])}))
    after = read(
        build(tmp_path, [], name="after.zip", replace={archived: json.dumps({"ig_archived_post_media": [post]})})
    )
    assert before[0].post and after[0].post
    assert before[0].post.platform_post_id == after[0].post.platform_post_id  # archived in between: one post
    assert (before[0].identity, after[0].identity) == ("post:1650000000:media/posts/202201/a.jpg",
                                                       "archived_post:1650000000:media/posts/202201/a.jpg")  # fmt: skip
    assert (before[0].post.published, after[0].post.published) == (True, False)


def test_match_times_are_the_creation_timestamps(tmp_path: Path) -> None:
    records = read(build(tmp_path))
    expected = {(item.timestamp, "reel" if item.kind == "reel" else "story" if item.kind == "story" else "post")
                for item in ITEMS}  # fmt: skip
    seen = set()
    for record in records:
        assert record.match is not None and record.post is not None
        assert record.match.created_at == record.post.created_at
        assert record.match.created_at.tzinfo == UTC and record.match.created_at.microsecond == 0
        [content_type] = record.match.content_types
        seen.add((int(record.match.created_at.timestamp()), content_type))
    assert seen == expected


# --- from the simulator ---------------------------------------------------------------------------------
def test_an_export_of_a_simulator_account_matches_its_api_media(tmp_path: Path) -> None:
    sim = InstagramSimulator(client_id="c", client_secret="s")
    sim.base_url = "http://127.0.0.1:9"
    account = sim.add_account(posts=24, stories=2)
    archive = ExportArchive(build_instagram_export(tmp_path / "sim.zip", account.username, account.name,
                                                   items_from_simulator(account)))  # fmt: skip
    assert reader.owner(archive).username == account.username
    records = [r for r in read(archive) if r.post]
    assert not [r.problem for r in records if r.problem]
    fields = parse_fields(ALL_MEDIA_FIELDS)
    api = [normalize(sim.media_json(media, fields)) for media in [*account.media, *account.stories]]
    assert len(records) == len(api)
    found = {(r.match.created_at, next(iter(r.match.content_types))): r.post for r in records if r.match}
    for synced in api:
        exported = found[(synced.created_at, synced.content_type)]
        assert exported.text == synced.text
        assert len(exported.media) == len({ref.media_key.partition(":")[0] for ref in synced.media})
    carousel = next(m for m in account.media if m.children)
    assert found[(parse_time(meta_time(carousel.timestamp)), "post")].post_data["children"]["data"] == [
        {"media_type": child.media_type, "timestamp": meta_time(carousel.timestamp)} for child in carousel.children
    ]


def test_items_from_api_media_payloads() -> None:
    media = [
        {"id": "1", "caption": "hi é", "media_type": "IMAGE", "media_product_type": "FEED",
         "timestamp": "2024-03-01T12:00:00+0000"},
        {"id": "2", "media_type": "VIDEO", "media_product_type": "REELS", "timestamp": "2024-03-02T12:00:00+0000"},
        {"id": "3", "media_type": "CAROUSEL_ALBUM", "timestamp": "2024-03-03T12:00:00+0000",
         "children": {"data": [{"id": "4", "media_type": "VIDEO"}, {"id": "5", "media_type": "IMAGE"}]}},
    ]  # fmt: skip
    assert items_from_api_media(media) == [
        ExportItem("post", int(datetime(2024, 3, 1, 12, tzinfo=UTC).timestamp()), "hi é", ("IMAGE",)),
        ExportItem("reel", int(datetime(2024, 3, 2, 12, tzinfo=UTC).timestamp()), None, ("VIDEO",)),
        ExportItem("post", int(datetime(2024, 3, 3, 12, tzinfo=UTC).timestamp()), None, ("VIDEO", "IMAGE")),
    ]


# --- the normalizer's export path -----------------------------------------------------------------------
def test_the_normalizer_refuses_a_malformed_export_id_and_foreign_media_keys() -> None:
    base = {"timestamp": "2024-03-01T12:00:00+0000", "media_type": "IMAGE"}
    for bad in ["export:", "export:xyz", "export:" + "a" * 65, "export:ABCDEF0123456789"]:
        with pytest.raises(InvalidEventError, match="needs an id"):
            normalize({**base, "id": bad})
    post = normalize({**base, "id": "export:" + "0" * 32, "trove_export": {"media": [
        {"media_key": "https://cdn.example/x.jpg"}, {"media_key": "export:media/a.jpg"}, "junk",
        {"media_key": "export:media/b.jpg", "missing": "gone"},
    ]}})  # fmt: skip
    assert [(ref.media_key, ref.url, ref.missing) for ref in post.media] == [
        ("export:media/a.jpg", "", None),
        ("export:media/b.jpg", "", "gone"),
    ]
