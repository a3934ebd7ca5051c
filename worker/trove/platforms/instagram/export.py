"""Instagram's "Download your information" export (JSON format) as import records: the account's posts,
reels, stories and archived posts, with the photos and videos the export carries.

The export's content files are in one of three places, by the export's age: `your_instagram_activity/media/`
(2024 on), `your_instagram_activity/content/` (2023) or `content/` (older), each possibly under one top-level
folder (an archive zipped from the unpacked export). Media paths (`uri`) are relative to the export's root:
`media/posts/YYYYMM/<name>.jpg`, `media/reels/...`, `media/stories/...`.

- `posts_N.json`: a list of posts, each `{"media": [...], "title"?, "creation_timestamp"?}`: a single photo
  keeps its caption and time on its one media item, a carousel on the post;
- `reels.json` `{"ig_reels_media": [<post>]}`, `archived_posts.json` `{"ig_archived_post_media": [<post>]}`;
- `stories.json` `{"ig_stories": [<media item>]}`: each story is one media item;
- the owner: `personal_information/personal_information/personal_information.json` (older:
  `account_information/personal_information.json`), `{"profile_user": [{"string_map_data": {"Username":
  {"value"}, "Name": {"value"}}}]}`.

Meta writes every string's UTF-8 bytes as if each byte were a Latin-1 character ("é" arrives as "Ã©"): text is
repaired (encoded as Latin-1, decoded as UTF-8) wherever that round trip works, and kept as it is otherwise.

The export carries no media id, so a post is named by a digest of its kind, creation time and first file
("export:<hex>") and matched to the same post synced from the API by its creation time (to the second). A post
only the export has is private (the export does not say whether the account is public); an archived one is
also unpublished."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from trove.json_input import InvalidJson, parse_json
from trove.platforms.base import (
    ContentType,
    ExportArchiveView,
    ExportFile,
    ExportMatch,
    ExportOwner,
    ExportRecord,
    ExportUnreadable,
)
from trove.platforms.instagram.normalize import (
    EXPORT_PREFIX,
    MAX_CHILDREN,
    MAX_EXPORT_KEY_CHARS,
    normalize,
    storable,
)

Kind = Literal["post", "reel", "story", "archived_post"]

# Newest layout first: a name is read as the first layout it fits (an old layout's `content/` under a
# top-level folder must not swallow the 2023 layout's `your_instagram_activity/content/`).
CONTENT_DIRS = ("your_instagram_activity/media/", "your_instagram_activity/content/", "content/")
CONTENT_FILE_RE = re.compile(r"posts_(\d{1,6})\.json|(reels|stories|archived_posts)\.json")
KINDS: dict[str, Kind] = {"reels": "reel", "stories": "story", "archived_posts": "archived_post"}
# Records come posts first, then reels, stories and archived posts (the import resumes by counting them).
KIND_ORDER: dict[Kind, int] = {"post": 0, "reel": 1, "story": 2, "archived_post": 3}
# The object key each file wraps its list in (posts files are a bare list).
ENVELOPES: dict[Kind, str] = {
    "reel": "ig_reels_media",
    "story": "ig_stories",
    "archived_post": "ig_archived_post_media",
}
CONTENT_TYPES: dict[Kind, ContentType] = {"post": "post", "reel": "reel", "story": "story", "archived_post": "post"}
PRODUCT_TYPES: dict[Kind, str] = {"post": "FEED", "reel": "REELS", "story": "STORY", "archived_post": "FEED"}

PERSONAL_INFORMATION = (
    "personal_information/personal_information/personal_information.json",
    "account_information/personal_information.json",
)
USERNAME_RE = re.compile(r"[A-Za-z0-9._]{1,30}")  # Instagram's own rule for usernames
MAX_NAME_CHARS = 256
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm")
MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z: beyond it a datetime cannot hold the time
DIGEST_CHARS = 32  # 128 bits of SHA-256: ids of one account's posts never collide by chance


# --- text -----------------------------------------------------------------------------------------------
def repair_text(text: str) -> str:
    """Undo Meta's escaping (UTF-8 bytes written as Latin-1 characters). Text that does not round-trip
    (already correct: a lone "é", or anything beyond Latin-1 such as an unescaped emoji) is kept as it is."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def repaired(value: Any) -> Any:
    """`value` with every string in it (keys too) repaired; other values as they are."""
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, dict):
        return {repair_text(key) if isinstance(key, str) else key: repaired(item) for key, item in value.items()}
    if isinstance(value, list):
        return [repaired(item) for item in value]
    return value


# --- where things are -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContentFile:
    entry: str  # its name in the archive
    root: str  # the export's root in the archive ("" or one top-level folder, ending in "/")
    kind: Kind
    number: int  # posts_N's N (0 for the others)

    @property
    def order(self) -> tuple[int, int, str]:
        return KIND_ORDER[self.kind], self.number, self.entry

    @property
    def source(self) -> str:
        """Its name within the export, the same whatever folder the archive wraps the export in."""
        return self.entry[len(self.root) :]


def content_file(entry: str) -> ContentFile | None:
    """`entry` as one of the export's content files, or None."""
    head, _, name = entry.rpartition("/")
    match = CONTENT_FILE_RE.fullmatch(name)
    if match is None or not head:
        return None
    head += "/"
    for directory in CONTENT_DIRS:
        if head == directory:
            root = ""
        elif head.endswith("/" + directory) and head.count("/") == directory.count("/") + 1:
            root = head[: -len(directory)]
        else:
            continue
        if match.group(1) is not None:
            return ContentFile(entry, root, "post", int(match.group(1)))
        return ContentFile(entry, root, KINDS[match.group(2)], 0)
    return None


def content_files(names: Iterable[str]) -> list[ContentFile]:
    """The export's content files in record order: posts_1, posts_2, ... (by number), reels, stories,
    archived posts."""
    found = (content_file(name) for name in names)
    return sorted((file for file in found if file is not None), key=lambda file: file.order)


def read_json(archive: ExportArchiveView, entry: str) -> Any:
    """An entry parsed as JSON (strict UTF-8, depth-limited); ExportUnreadable naming it otherwise. Text
    Postgres cannot store (a NUL) is the import's to refuse, item by item, not the whole file's."""
    try:
        return parse_json(archive.read(entry), storable=False)
    except InvalidJson as error:
        raise ExportUnreadable(f"{entry}: not readable JSON ({error.detail})") from error


def meta_time(ts: int) -> str:
    """The API's timestamp format, so that an export post reads like a synced one."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def creation_time(value: Any) -> int | None:
    """A `creation_timestamp` (Unix seconds); None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_TIMESTAMP:
        return None
    return value


def export_post_id(content_type: ContentType, ts: int, first_uri: str) -> str:
    """A post's id from what the export carries. An archived post gets the id it had as a post, so a post
    archived between two exports stays one post."""
    digest = hashlib.sha256(f"{content_type}:{ts}:{first_uri}".encode()).hexdigest()
    return EXPORT_PREFIX + digest[:DIGEST_CHARS]


# --- the reader -----------------------------------------------------------------------------------------
class InstagramExportReader:
    """`ExportReader` for the JSON export. Reads nothing outside the archive."""

    def recognizes(self, archive: ExportArchiveView) -> bool:
        # By names alone: the content files' names and folders are Instagram's own.
        return bool(content_files(archive.names()))

    def owner(self, archive: ExportArchiveView) -> ExportOwner:
        names = set(archive.names())
        roots = sorted({file.root for file in content_files(names)}) or [""]
        candidates = [root + path for root in roots for path in PERSONAL_INFORMATION]
        entry = next((name for name in candidates if name in names), None)
        if entry is None:
            raise ExportUnreadable(
                f"{candidates[0]}: not in the export (nor {candidates[1]}): it says whose account this is; "
                "export again with 'Personal information' included"
            )
        data = read_json(archive, entry)
        profiles = data.get("profile_user") if isinstance(data, dict) else None
        first = profiles[0] if isinstance(profiles, list) and profiles else None
        fields = first.get("string_map_data") if isinstance(first, dict) else None
        if not isinstance(fields, dict):
            raise ExportUnreadable(
                f"{entry}: no profile_user[0].string_map_data (not Instagram's personal information)"
            )
        username = _label(fields, "Username")
        if username is None or USERNAME_RE.fullmatch(username) is None:
            raise ExportUnreadable(f"{entry}: no Instagram username in it (string_map_data.Username.value)")
        name = _label(fields, "Name")
        display_name = storable(name)[:MAX_NAME_CHARS] if name else None
        return ExportOwner(platform_user_id=None, username=username, display_name=display_name or None)

    async def prepare(self, http: httpx.AsyncClient, owner: ExportOwner) -> dict[str, Any]:
        return {}  # everything is in the archive

    def records(
        self, archive: ExportArchiveView, owner: ExportOwner, context: dict[str, Any]
    ) -> Iterator[ExportRecord]:
        names = set(archive.names())
        for file in content_files(names):
            # One file at a time: a broken file is refused when it is reached, with its name.
            for index, item in enumerate(_items(file, read_json(archive, file.entry))):
                yield _record(file, index, item, names, owner)


def _label(fields: dict[str, Any], label: str) -> str | None:
    """string_map_data[label].value, repaired; None when absent or not text."""
    entry = fields.get(label)
    value = entry.get("value") if isinstance(entry, dict) else None
    return repair_text(value).strip() if isinstance(value, str) else None


def _items(file: ContentFile, data: Any) -> list[Any]:
    """The file's list of posts (or stories); ExportUnreadable when the file is not of its shape."""
    if file.kind == "post":
        if not isinstance(data, list):
            raise ExportUnreadable(f"{file.entry}: expected a list of posts, found {type(data).__name__}")
        return data
    key = ENVELOPES[file.kind]
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ExportUnreadable(f"{file.entry}: expected an object with a list {key!r}")
    return items


def _record(file: ContentFile, index: int, item: Any, names: set[str], owner: ExportOwner) -> ExportRecord:
    """One post (reel, story, archived post) as a record: its post and files, or kept raw with why not."""
    kind = file.kind
    event_type = f"export.{kind}"
    where = f"{file.entry}: item {index}"
    # A story is one media item; the others list theirs under "media".
    media = [item] if kind == "story" else item.get("media") if isinstance(item, dict) else None
    if not isinstance(item, dict) or not isinstance(media, list) or not media:
        return _unread(file, index, item, f"{where} is not a {kind} with media (kept raw, not archived)")
    first = media[0] if isinstance(media[0], dict) else {}
    ts = creation_time(item.get("creation_timestamp")) or creation_time(first.get("creation_timestamp"))
    if ts is None:
        return _unread(file, index, item, f"{where} has no creation_timestamp (kept raw, not archived)")
    first_uri = first.get("uri") if isinstance(first.get("uri"), str) else ""
    identity = f"{kind}:{ts}:{first_uri}"
    when = meta_time(ts)

    problems: list[str] = []
    if len(media) > MAX_CHILDREN:
        problems.append(f"{len(media)} media, only the first {MAX_CHILDREN} kept")
    described: list[dict[str, Any]] = []
    files: dict[str, ExportFile] = {}
    for position, medium in enumerate(media[:MAX_CHILDREN]):
        uri = medium.get("uri") if isinstance(medium, dict) else None
        if not isinstance(uri, str) or not uri:
            problems.append(f"media {position} has no uri")
            continue
        entry = _entry(file.root, uri, names)
        path = entry[len(file.root) :] if entry is not None else repair_text(uri)
        key = EXPORT_PREFIX + path
        if len(key) > MAX_EXPORT_KEY_CHARS:
            problems.append(f"media {position} has a uri longer than {MAX_EXPORT_KEY_CHARS} characters")
            continue
        own = repaired(medium)
        ctime = creation_time(medium.get("creation_timestamp")) or ts
        about: dict[str, Any] = {
            **own,
            "media_key": key,
            "media_type": "VIDEO" if path.lower().endswith(VIDEO_SUFFIXES) else "IMAGE",
            "timestamp": meta_time(ctime),
        }
        if entry is None:
            about["missing"] = f"the export does not contain {path}"
            problems.append(f"media file {path} is not in the archive")
        elif key not in files:
            files[key] = ExportFile(media_key=key, entry=entry)
        described.append(about)
    if not described:
        return _unread(file, index, item, f"{where}: {'; '.join(problems)} (kept raw, not archived)")

    content_type = CONTENT_TYPES[kind]
    post_data: dict[str, Any] = {
        "id": export_post_id(content_type, ts, first_uri),
        "media_type": "CAROUSEL_ALBUM" if len(described) > 1 else described[0]["media_type"],
        "media_product_type": PRODUCT_TYPES[kind],
        "timestamp": when,
        "username": owner.username,
    }
    caption = _caption(kind, item, first)
    if caption:
        post_data["caption"] = caption
    if len(described) > 1:
        # The API's shape for a carousel's children, in display order (they have no id in an export).
        post_data["children"] = {
            "data": [{"media_type": about["media_type"], "timestamp": about["timestamp"]} for about in described]
        }
    own_fields = {} if kind == "story" else {key: value for key, value in item.items() if key != "media"}
    post_data["trove_export"] = {
        **repaired(own_fields),
        "kind": kind,
        "source": file.source,
        "archived": kind == "archived_post",
        "media": described,
    }
    post = normalize(post_data)
    return ExportRecord(
        identity=identity,
        event_type=event_type,
        payload=item,
        post=post,
        files=tuple(files.values()),
        match=ExportMatch(created_at=post.created_at, content_types=frozenset({content_type})),
        problem=f"{file.entry}: {kind} of {when}: {'; '.join(problems)}" if problems else None,
    )


def _entry(root: str, uri: str, names: set[str]) -> str | None:
    """The archive entry of a media uri (relative to the export's root; written as is or, in some exports,
    escaped like the text), or None when the archive lacks it."""
    for candidate in dict.fromkeys((uri, repair_text(uri), uri.removeprefix("/"))):
        if root + candidate in names:
            return root + candidate
    return None


def _caption(kind: Kind, item: dict[str, Any], first: dict[str, Any]) -> str | None:
    """A carousel's caption is the post's title, a single media's is its own (the post has none)."""
    for title in (None if kind == "story" else item.get("title"), first.get("title")):
        if isinstance(title, str) and title.strip():
            return storable(repair_text(title))
    return None


def _unread(file: ContentFile, index: int, item: Any, problem: str) -> ExportRecord:
    """A record kept raw only: its identity is its place in the file (the same file reads the same)."""
    return ExportRecord(
        identity=f"{file.kind}:unreadable:{file.source}:{index}",
        event_type=f"export.{file.kind}",
        payload=item,
        problem=problem,
    )
