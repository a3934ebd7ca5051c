"""Instagram media (graph.instagram.com, "Instagram API with Instagram Login") as posts: the caption is the
text, every file is a media item keyed by a stable id (a media's or a carousel child's, never its signed CDN
URL), and Instagram's rules for readers are decided here: a professional account's feed and reels are public,
a story is not republished (private), and a public reader sees only an allow-list of plain raw fields (never
the CDN URLs, which are signed and say where the file is served from).

Media objects are hostile input: ids must be decimal, URLs must be http(s), the permalink must be on
instagram.com, and text is made storable (Postgres takes no NUL). A media Instagram gives no file for (a reel
with copyrighted audio) is kept as a media item marked `missing` with the reason, never dropped silently.

A post read from the account's own export (`export`) has no media id: its id is "export:" and a digest, its
files are keyed by their place in the export (copied from the archive, never downloaded), and the export's
own fields are kept under `trove_export`. It is private: an export may come from a private account (the API
reads only professional ones, whose feed is public), and unknown means private; the same post synced from the
API keeps the API's. An archived post is also unpublished (its owner hid it). Everything else is read as for
a media from the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from trove.json_input import unstorable_text
from trove.platforms.base import ContentType, InvalidEventError, MediaRef, NormalizedPost, Visibility

# Raw fields a public reader may see (public mode, public_posts): a field Instagram adds tomorrow stays private
# until somebody decides otherwise. Never media_url / thumbnail_url (signed CDN URLs), owner, ig_id.
PUBLIC_FIELDS = frozenset(
    {
        "id", "caption", "media_type", "media_product_type", "permalink", "shortcode", "timestamp",
        "like_count", "comments_count", "username", "is_comment_enabled",
    }
)  # fmt: skip
PUBLIC_CHILD_FIELDS = frozenset({"id", "media_type", "timestamp"})
PLAIN = (str, int, bool, type(None))

MAX_ID_DIGITS = 32  # Instagram ids are 17-19 digit decimal strings; this bounds what a hostile one can be
MAX_TIME_CHARS = 64
MAX_URL_CHARS = 8192
MAX_HANDLE_CHARS = 64  # Instagram usernames are at most 30 characters
MAX_CHILDREN = 20  # Instagram allows 10 (was 20); more is not Instagram's shape and is cut
MAX_KEYWORDS = 64
MAX_TAG_CHARS = 100
PERMALINK_HOSTS = frozenset({"www.instagram.com", "instagram.com"})
# An export post: the export carries no media id, so the reader names it by a digest of what it does carry.
EXPORT_PREFIX = "export:"
EXPORT_ID_RE = re.compile(r"export:[0-9a-f]{16,64}")
MAX_EXPORT_KEY_CHARS = 1024

COPYRIGHTED_VIDEO = (
    "Instagram does not provide this video (a reel with copyrighted audio is served without its media_url)"
)
NO_IMAGE = "Instagram gave no media_url for this image"
NOT_HTTP = "Instagram gave a {field} that is not an http(s) URL"

TIME_RE = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:?\d{2})")
DECIMAL_RE = re.compile(r"[0-9]{1,32}")  # MAX_ID_DIGITS
# Instagram links #tags made of letters, digits and underscores; "&#39;" and "a#b" are not tags.
SURROGATE_RE = re.compile("[\ud800-\udfff]")  # in a Python str, only an unpaired one is left
HASHTAG_RE = re.compile(r"(?<![\w&#])#(\w+)")


# --- plain values ---------------------------------------------------------------------------------------
def storable(text: str) -> str:
    """`text` as Postgres can store it: NULs removed, unpaired surrogates replaced (U+FFFD). Checked with the
    project's detector first, so ordinary text is returned untouched."""
    if unstorable_text(text) is None:
        return text
    return SURROGATE_RE.sub("\ufffd", text.replace("\x00", ""))


def decimal_id(value: Any) -> str | None:
    """An Instagram id as a string: a decimal string of 1-32 digits or a positive int (Meta's ids are decimal
    strings; a number is accepted as it says the same). None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if 0 < value < 10**MAX_ID_DIGITS else None
    if isinstance(value, str) and DECIMAL_RE.fullmatch(value):
        return value
    return None


def parse_time(value: str) -> datetime:
    """Meta's timestamps ("2021-07-26T10:45:20+0000"; "Z" and "+00:00" too), as an aware UTC datetime.
    ValueError when `value` is not one (Meta always sends an offset: a bare time is not guessed at)."""
    if not isinstance(value, str) or len(value) > MAX_TIME_CHARS:
        raise ValueError("not a Meta timestamp (expected e.g. 2021-07-26T10:45:20+0000)")
    match = TIME_RE.fullmatch(value)
    if match is None:
        raise ValueError(f"not a Meta timestamp: {value!r} (expected e.g. 2021-07-26T10:45:20+0000)")
    day, clock, fraction, offset = match.groups()
    text = f"{day}T{clock}"
    if fraction:
        text += "." + (fraction + "00000")[:6]  # fromisoformat takes 3 or 6 digits; nanoseconds are cut
    if offset in ("Z", "z"):
        offset = "+00:00"
    elif ":" not in offset:
        offset = f"{offset[:3]}:{offset[3:]}"
    try:
        return datetime.fromisoformat(text + offset).astimezone(UTC)
    except (ValueError, OverflowError) as error:  # a month 13, an hour 25, a year 1 before UTC's year 1
        raise ValueError(f"not a valid time: {value!r}") from error


def _http_url(value: Any) -> str | None:
    """`value` when it is an absolute http(s) URL with no space or control character; None otherwise."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL_CHARS:
        return None
    # Browsers drop tabs and newlines inside a URL: any control character or space is refused.
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in value) or unstorable_text(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value


def permalink(media: dict[str, Any]) -> str | None:
    """The media's page on Instagram: its `permalink` when that is an https URL on (www.)instagram.com, with
    no user, password or port; None otherwise (a reader's link must not lead anywhere else)."""
    url = _http_url(media.get("permalink"))
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.netloc.lower() not in PERMALINK_HOSTS:
        return None
    return url


# --- media ----------------------------------------------------------------------------------------------
def _file(key: str, raw: Any, field: str, absent: str) -> MediaRef:
    """One file: downloadable when `raw` is an http(s) URL, else recorded as missing with why."""
    if raw is None:
        return MediaRef(key, "", missing=absent)
    url = _http_url(raw)
    if url is None:
        return MediaRef(key, "", missing=NOT_HTTP.format(field=field))
    return MediaRef(key, url)


def _files(item: dict[str, Any], key: str) -> list[MediaRef]:
    """The files of one media or carousel child: a video and its thumbnail, or an image."""
    if item.get("media_type") == "VIDEO":
        files = [_file(key, item.get("media_url"), "media_url", COPYRIGHTED_VIDEO)]
        if item.get("thumbnail_url") is not None:
            files.append(_file(f"{key}:thumbnail", item["thumbnail_url"], "thumbnail_url", ""))
        return files
    return [_file(key, item.get("media_url"), "media_url", NO_IMAGE)]


def _children(media: dict[str, Any]) -> list[dict[str, Any]]:
    children = media.get("children")
    data = children.get("data") if isinstance(children, dict) else None
    if not isinstance(data, list):
        return []
    return [child for child in data[:MAX_CHILDREN] if isinstance(child, dict)]


def media_refs(media: dict[str, Any], media_id: str) -> tuple[MediaRef, ...]:
    """The files of a media in display order. A carousel's are its children's (the album's own media_url is a
    copy of the first child's); a child without a decimal id cannot be keyed stably and is left out."""
    if media.get("media_type") != "CAROUSEL_ALBUM":
        return tuple(_files(media, media_id))
    refs: list[MediaRef] = []
    for child in _children(media):
        child_id = decimal_id(child.get("id"))
        if child_id is not None:
            refs.extend(_files(child, child_id))
    return tuple(refs)


def export_id(value: Any) -> str | None:
    """An export post's id ("export:" and a hex digest); None for anything else."""
    return value if isinstance(value, str) and EXPORT_ID_RE.fullmatch(value) else None


def export_media_refs(post_data: dict[str, Any]) -> tuple[MediaRef, ...]:
    """An export post's files in display order, under the keys the export reader gave them: no URL (the
    import copies them from the archive), or `missing` with why where the archive lacks the file."""
    export = post_data.get("trove_export")
    media = export.get("media") if isinstance(export, dict) else None
    refs: list[MediaRef] = []
    for item in media[:MAX_CHILDREN] if isinstance(media, list) else []:
        key = item.get("media_key") if isinstance(item, dict) else None
        if not isinstance(key, str) or not key.startswith(EXPORT_PREFIX) or len(key) > MAX_EXPORT_KEY_CHARS:
            continue  # not a key the reader wrote: nothing to link it to
        missing = item.get("missing")
        refs.append(MediaRef(storable(key), "", missing=storable(missing) if isinstance(missing, str) else None))
    return tuple(refs)


def archived(post_data: dict[str, Any]) -> bool:
    """An export's archived post: hidden from the profile by its owner, so kept unpublished."""
    export = post_data.get("trove_export")
    return isinstance(export, dict) and export.get("archived") is True


# --- the parts of a post --------------------------------------------------------------------------------
def content_type(media: dict[str, Any]) -> ContentType:
    """REELS are reels, STORY stories, anything else (FEED, or no media_product_type asked for) a post."""
    product = media.get("media_product_type")
    if product == "REELS":
        return "reel"
    return "story" if product == "STORY" else "post"


def visibility(media: dict[str, Any]) -> Visibility:
    """Only professional accounts can be archived through this API, and their feed and reels are public. A
    story is shown for 24 hours by the owner's choice: it is not republished in public feeds."""
    return "private" if media.get("media_product_type") == "STORY" else "public"


def engagement(media: dict[str, Any]) -> dict[str, int] | None:
    """The counts Instagram gave (like_count is absent when the owner hides it: not a zero)."""
    counts = {
        key: media[key]
        for key in ("like_count", "comments_count")
        if type(media.get(key)) is int and 0 <= media[key] < 2**63
    }
    return counts or None


def _handle(media: dict[str, Any]) -> str | None:
    username = media.get("username")
    if isinstance(username, str) and 0 < len(username) <= MAX_HANDLE_CHARS:
        return storable(username)
    return None


def search_keywords(media: dict[str, Any]) -> str | None:
    """The caption's hashtags (without "#", each once) and "reel"/"story" for those, so search finds them."""
    caption = media.get("caption")
    words: list[str] = []
    for tag in HASHTAG_RE.findall(caption) if isinstance(caption, str) else []:
        if len(tag) <= MAX_TAG_CHARS and tag not in words and len(words) < MAX_KEYWORDS:
            words.append(tag)
    kind = content_type(media)
    if kind in ("reel", "story") and kind not in words:
        words.append(kind)
    return storable(" ".join(words)) or None


def _public_value(value: Any) -> Any:
    return storable(value) if isinstance(value, str) else value


def public_projection(media: dict[str, Any]) -> dict[str, Any]:
    """The raw fields of a media a public reader may see: the allow-list's plain values (a value of another
    shape is left out), the permalink only when it is Instagram's, and each carousel child's id, type and
    time. No URL of Instagram's CDN ever."""
    if not isinstance(media, dict):
        return {}
    public = {
        key: _public_value(value)
        for key, value in media.items()
        if key in PUBLIC_FIELDS and key != "permalink" and isinstance(value, PLAIN)
    }
    link = permalink(media)
    if link is not None:
        public["permalink"] = link
    if isinstance(media.get("children"), dict):
        public["children"] = [
            {
                key: _public_value(value)
                for key, value in child.items()
                if key in PUBLIC_CHILD_FIELDS and isinstance(value, PLAIN)
            }
            for child in _children(media)
        ]
    return public


def normalize(post_data: dict[str, Any]) -> NormalizedPost:
    """One media object (from /me/media, /me/stories or /{media-id}, or an export post) as a post.
    InvalidEventError (a ValueError) when it has no decimal (or export) id or no parseable timestamp: a post
    cannot be placed without them."""
    if not isinstance(post_data, dict):
        raise InvalidEventError("an Instagram media must be a JSON object")
    media_id = decimal_id(post_data.get("id"))
    export = media_id is None and export_id(post_data.get("id")) is not None
    if export:
        media_id = post_data["id"]
    if media_id is None:
        raise InvalidEventError("an Instagram media needs an id of 1 to 32 decimal digits")
    try:
        created_at = parse_time(post_data.get("timestamp"))  # type: ignore[arg-type]
    except ValueError as error:
        raise InvalidEventError(f"Instagram media {media_id} has no usable timestamp: {error}") from error
    caption = post_data.get("caption")
    return NormalizedPost(
        platform_post_id=media_id,
        created_at=created_at,
        post_data=post_data,
        content_type=content_type(post_data),
        text=(storable(caption) or None) if isinstance(caption, str) else None,
        published=not (export and archived(post_data)),
        engagement=engagement(post_data),
        media=export_media_refs(post_data) if export else media_refs(post_data, media_id),
        complete=True,
        visibility="private" if export else visibility(post_data),
        public_data=public_projection(post_data),
        author_handle=_handle(post_data),
        search_keywords=search_keywords(post_data),
        permalink=permalink(post_data),
    )
