"""Instagram "Download your information" exports (JSON format) built for tests: a ZIP laid out as Meta lays it
out, with Meta's text escaping (each UTF-8 byte written as a Latin-1 character, so "é" is "\\u00c3\\u00a9"),
posts (single photos and carousels), reels, stories, archived posts, their media files (tiny valid JPEGs and
MP4s) and the owner's personal information.

Three layouts, by the export's age: "current" (`your_instagram_activity/content/`), "media"
(`your_instagram_activity/media/`, the 2024 renaming) and "old" (`content/`, with the owner in
`account_information/personal_information.json`). Media go under `media/<posts|reels|stories|archived_posts>/
YYYYMM/`, named the way Meta names them, the same for the same account and item every time.

`items_from_simulator` turns an `InstagramSimulator` account's media into items, so that a test can sync the
account from the simulator and then import an export of it whose times are the API's."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from trove.simulators.base import JPEG
from trove.simulators.instagram import MP4, Account

ItemKind = Literal["post", "reel", "story", "archived_post"]
MediaKind = Literal["IMAGE", "VIDEO"]
Layout = Literal["current", "media", "old"]

CONTENT_DIRS: dict[Layout, str] = {
    "current": "your_instagram_activity/content/",
    "media": "your_instagram_activity/media/",
    "old": "content/",
}
PERSONAL_INFORMATION: dict[Layout, str] = {
    "current": "personal_information/personal_information/personal_information.json",
    "media": "personal_information/personal_information/personal_information.json",
    "old": "account_information/personal_information.json",
}
MEDIA_FOLDERS: dict[ItemKind, str] = {
    "post": "posts",
    "reel": "reels",
    "story": "stories",
    "archived_post": "archived_posts",
}
ENVELOPES: dict[ItemKind, str] = {
    "reel": "ig_reels_media",
    "story": "ig_stories",
    "archived_post": "ig_archived_post_media",
}
FILES: dict[ItemKind, str] = {"reel": "reels.json", "story": "stories.json", "archived_post": "archived_posts.json"}
# Fixed entry times: the same items make the same bytes.
ZIP_TIME = (2024, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ExportItem:
    """One post, reel, story or archived post as the export lists it. `media` are its files in display order
    (several: a carousel); `absent` are positions listed in the JSON whose files the ZIP leaves out."""

    kind: ItemKind
    timestamp: int  # creation time, Unix seconds (the API's `timestamp`)
    caption: str | None = None
    media: tuple[MediaKind, ...] = ("IMAGE",)
    absent: frozenset[int] = frozenset()


# --- Meta's text escaping -------------------------------------------------------------------------------
def mojibake(text: str) -> str:
    """Text as Meta writes it: each UTF-8 byte as the Latin-1 character of that value."""
    return text.encode("utf-8").decode("latin-1")


def escaped(value: Any) -> Any:
    if isinstance(value, str):
        return mojibake(value)
    if isinstance(value, dict):
        return {mojibake(key): escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [escaped(item) for item in value]
    return value


def export_json(value: Any) -> bytes:
    """Meta's JSON: two-space indents, every non-ASCII character \\u-escaped after the escaping above."""
    return json.dumps(escaped(value), indent=2, ensure_ascii=True).encode()


# --- the files ------------------------------------------------------------------------------------------
def media_uri(username: str, item: ExportItem, position: int) -> str:
    """Where a file of `item` is, relative to the export's root: Meta's folders and file-name shape
    (`<digits>_<digits>_<digits>_n_<digits>.jpg`), from the account, the item and the position."""
    digest = hashlib.sha256(f"{username}:{item.kind}:{item.timestamp}:{position}".encode()).digest()
    numbers = [str(int.from_bytes(digest[at : at + 8], "big")) for at in range(0, 32, 8)]
    month = datetime.fromtimestamp(item.timestamp, UTC).strftime("%Y%m")
    ext = "mp4" if item.media[position] == "VIDEO" else "jpg"
    name = f"{numbers[0][:9]}_{numbers[1][:15]}_{numbers[2][:19]}_n_{numbers[3][:17]}.{ext}"
    return f"media/{MEDIA_FOLDERS[item.kind]}/{month}/{name}"


def _medium(uri: str, kind: MediaKind, ts: int, title: str) -> dict[str, Any]:
    metadata = "video_metadata" if kind == "VIDEO" else "photo_metadata"
    return {
        "uri": uri,
        "creation_timestamp": ts,
        "media_metadata": {metadata: {"exif_data": [{"source_type": "camera"}]}},
        "title": title,
        "cross_post_source": {"source_app": "FB"},
    }


def item_json(username: str, item: ExportItem) -> dict[str, Any]:
    """An item as its file lists it: a story is one media item; a single photo or reel keeps its caption on its
    media item; a carousel keeps its caption and time on the post, its media items untitled."""
    caption = item.caption or ""
    uris = [media_uri(username, item, position) for position in range(len(item.media))]
    if item.kind == "story":
        return _medium(uris[0], item.media[0], item.timestamp, caption)
    if len(item.media) == 1:
        return {"media": [_medium(uris[0], item.media[0], item.timestamp, caption)]}
    media = [_medium(uri, kind, item.timestamp, "") for uri, kind in zip(uris, item.media, strict=True)]
    return {"media": media, "title": caption, "creation_timestamp": item.timestamp}


def personal_information(username: str, name: str) -> dict[str, Any]:
    def label(value: str) -> dict[str, Any]:
        return {"href": "", "value": value, "timestamp": 0}

    return {
        "profile_user": [
            {
                "string_map_data": {
                    "Email": label(f"{username}@example.org"),
                    "Name": label(name),
                    "Username": label(username),
                    "Bio": label("Archiving my life one post at a time ✨"),
                    "Private Account": label("False"),
                }
            }
        ]
    }


def export_entries(
    username: str,
    name: str,
    items: Iterable[ExportItem],
    *,
    layout: Layout = "current",
    posts_per_file: int | None = None,
) -> dict[str, bytes]:
    """Every entry of the export (relative to its root), in the order they are zipped. Items are listed
    newest first within their file, as Meta lists them; posts go `posts_per_file` to a file (all in
    posts_1.json by default)."""
    items = sorted(items, key=lambda item: item.timestamp, reverse=True)
    content = CONTENT_DIRS[layout]
    entries: dict[str, bytes] = {PERSONAL_INFORMATION[layout]: export_json(personal_information(username, name))}
    posts = [item_json(username, item) for item in items if item.kind == "post"]
    size = posts_per_file or max(len(posts), 1)
    for number, start in enumerate(range(0, max(len(posts), 1), size), 1):
        entries[f"{content}posts_{number}.json"] = export_json(posts[start : start + size])
    for kind, file in FILES.items():
        listed = [item_json(username, item) for item in items if item.kind == kind]
        if listed:
            entries[content + file] = export_json({ENVELOPES[kind]: listed})
    for item in items:
        for position, kind in enumerate(item.media):
            if position not in item.absent:
                entries[media_uri(username, item, position)] = MP4 if kind == "VIDEO" else JPEG
    return entries


def build_instagram_export(
    path: Path,
    username: str,
    name: str,
    items: Iterable[ExportItem],
    *,
    layout: Layout = "current",
    root: str = "",
    posts_per_file: int | None = None,
    replace: Mapping[str, bytes | str] | None = None,
    omit: Iterable[str] = (),
) -> Path:
    """Write the export of `username` (display name `name`) holding `items` to `path` (a ZIP); its path.
    `root`: a top-level folder the entries are under (an export zipped again after unpacking it, e.g.
    "instagram-alice-2024-06-13/"). `replace`: entries (relative to the root) written instead of, or besides,
    the built ones (a damaged file); `omit`: entries left out (no personal information)."""
    entries = export_entries(username, name, items, layout=layout, posts_per_file=posts_per_file)
    for entry, data in (replace or {}).items():
        entries[entry] = data.encode() if isinstance(data, str) else data
    for entry in omit:
        entries.pop(entry, None)
    prefix = root.strip("/") + "/" if root.strip("/") else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, data in entries.items():
            archive.writestr(zipfile.ZipInfo(prefix + entry, date_time=ZIP_TIME), data, zipfile.ZIP_DEFLATED)
    return path


# --- from the simulator's data --------------------------------------------------------------------------
def items_from_simulator(account: Account, *, stories: bool = True) -> list[ExportItem]:
    """The items of a simulator account's export: every feed post and reel not deleted (a carousel's
    children in order) and, with `stories`, its stories; at the API's times and with its captions."""
    items: list[ExportItem] = []
    for media in account.media:
        if media.deleted:
            continue
        kinds = [child.media_type for child in media.children if not child.deleted] or [media.media_type]
        kind: ItemKind = "reel" if media.product == "REELS" else "post"
        items.append(ExportItem(kind, media.timestamp, media.caption, tuple(_media_kind(k) for k in kinds)))
    for story in account.stories if stories else []:
        if not story.deleted:
            items.append(ExportItem("story", story.timestamp, None, (_media_kind(story.media_type),)))
    return items


def items_from_api_media(media: Iterable[Mapping[str, Any]]) -> list[ExportItem]:
    """The items of an export from media objects as the API gives them (id, caption, media_type,
    media_product_type, timestamp, children{media_type}): for a test that holds payloads, not the simulator."""
    items: list[ExportItem] = []
    for medium in media:
        ts = int(datetime.strptime(medium["timestamp"], "%Y-%m-%dT%H:%M:%S%z").timestamp())
        product = medium.get("media_product_type", "FEED")
        kind: ItemKind = "reel" if product == "REELS" else "story" if product == "STORY" else "post"
        children = (medium.get("children") or {}).get("data") or []
        kinds = [child.get("media_type", "IMAGE") for child in children] or [medium.get("media_type", "IMAGE")]
        items.append(ExportItem(kind, ts, medium.get("caption"), tuple(_media_kind(k) for k in kinds)))
    return items


def _media_kind(media_type: str) -> MediaKind:
    return "VIDEO" if media_type == "VIDEO" else "IMAGE"
