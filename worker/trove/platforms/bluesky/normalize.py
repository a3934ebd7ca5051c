"""Bluesky posts and reposts as Trove posts: the record (as the repo holds it) is the truth, the AppView's
postView adds counts and the author's handle. Rich text is rendered from facets (UTF-8 byte offsets), every
blob of the record becomes a media item fetched from the author's PDS (never the CDN copy), and the public
allow-list is decided here.

Records are hostile input: `record_problems` checks the lexicon shape of the fields we read (types and
sizes) and `normalize` refuses a malformed record with InvalidEventError naming the field. Facets that
cannot be rendered safely (overlapping, out of range, cutting a character in two, a non-http link) are
shown as plain text, never an error: real posts carry such facets."""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from trove.json_input import unstorable_text
from trove.platforms.base import ContentType, InvalidEventError, MediaRef, NormalizedPost

POST = "app.bsky.feed.post"
REPOST = "app.bsky.feed.repost"
IMAGES = "app.bsky.embed.images"
VIDEO = "app.bsky.embed.video"
EXTERNAL = "app.bsky.embed.external"
RECORD = "app.bsky.embed.record"
RECORD_WITH_MEDIA = "app.bsky.embed.recordWithMedia"
LINK = "app.bsky.richtext.facet#link"
MENTION = "app.bsky.richtext.facet#mention"
TAG = "app.bsky.richtext.facet#tag"
PROFILE_URL = "https://bsky.app/profile/"
HASHTAG_URL = "https://bsky.app/hashtag/"

# The lexicon's limits (a string's maxLength counts UTF-8 bytes). Graphemes are not counted: the byte cap
# already bounds the work, and a PDS enforced the rest when the record was written.
MAX_TEXT_BYTES = 3000
MAX_LANGS = 3
MAX_LANG_BYTES = 128
MAX_TAGS = 8
MAX_TAG_BYTES = 640
MAX_IMAGES = 4
MAX_CAPTIONS = 20
MAX_SELF_LABELS = 10
MAX_LABEL_BYTES = 128
MAX_VIDEO_ALT_BYTES = 10_000
MAX_URI_BYTES = 8192  # atproto's `uri` and `at-uri` formats
MAX_DID_BYTES = 2048
MAX_CID_BYTES = 256
# Not in the lexicon, only there to bound the work a hostile record can cause.
MAX_FACETS = 1000
MAX_FEATURES = 100
MAX_STRING_BYTES = 100_000  # strings the lexicon leaves unbounded (image alt, link card title/description)
MAX_DATETIME_CHARS = 64
MAX_HANDLE_CHARS = 253
MAX_KEYWORDS = 64
COUNTS = ("likeCount", "repostCount", "replyCount", "quoteCount")

DID_RE = re.compile(r"did:[a-z]+:[A-Za-z0-9._:%-]*[A-Za-z0-9._-]")
# The repo's own records: at://<did>/<collection NSID>/<record key>.
AT_URI_RE = re.compile(
    r"at://(did:[a-z]+:[A-Za-z0-9._:%-]*[A-Za-z0-9._-])/([A-Za-z0-9.-]{1,317})/([A-Za-z0-9._:~-]{1,512})"
)
# Blob CIDs go into a URL: only CIDv1 in base32 ("b...") or CIDv0 in base58btc ("Qm..."), nothing else.
CID_RE = re.compile(r"b[a-z2-7]{8,255}|Qm[1-9A-HJ-NP-Za-km-z]{44}")
DATETIME_RE = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,12}))?([Zz]|[+-]\d{2}:\d{2})?")


# --- lexicon shape --------------------------------------------------------------------------------------
def _too_long(value: str, max_bytes: int) -> bool:
    # len() first: a huge string is refused without encoding it.
    return len(value) > max_bytes or len(value.encode("utf-8", "surrogatepass")) > max_bytes


def _string(problems: list[str], where: str, value: Any, max_bytes: int) -> bool:
    if not isinstance(value, str):
        problems.append(f"{where} is not a string")
        return False
    if _too_long(value, max_bytes):
        problems.append(f"{where} is longer than {max_bytes} bytes")
        return False
    return True


def _integer(problems: list[str], where: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(f"{where} is not an integer")
    elif value < minimum:
        problems.append(f"{where} is less than {minimum}")


def _object(problems: list[str], where: str, value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    problems.append(f"{where} is not an object")
    return None


def _array(problems: list[str], where: str, value: Any, max_items: int) -> list[Any] | None:
    if not isinstance(value, list):
        problems.append(f"{where} is not an array")
        return None
    if len(value) > max_items:
        problems.append(f"{where} has more than {max_items} items")
        return None
    return value


def _required(problems: list[str], where: str, parent: dict[str, Any], key: str) -> bool:
    if key in parent:
        return True
    problems.append(f"{where}.{key} is missing" if where else f"{key} is missing")
    return False


def _strong_ref(problems: list[str], where: str, value: Any) -> None:
    ref = _object(problems, where, value)
    if ref is None:
        return
    if _required(problems, where, ref, "uri") and _string(problems, f"{where}.uri", ref["uri"], MAX_URI_BYTES):
        if not ref["uri"].startswith("at://"):
            problems.append(f"{where}.uri is not an at:// URI")
    if _required(problems, where, ref, "cid"):
        _string(problems, f"{where}.cid", ref["cid"], MAX_CID_BYTES)


def _blob(problems: list[str], where: str, value: Any) -> None:
    blob = _object(problems, where, value)
    if blob is None:
        return
    if "ref" in blob or blob.get("$type") == "blob":
        ref = _object(problems, f"{where}.ref", blob.get("ref"))
        if ref is not None and _required(problems, f"{where}.ref", ref, "$link"):
            _string(problems, f"{where}.ref.$link", ref["$link"], MAX_CID_BYTES)
        if "size" in blob:
            _integer(problems, f"{where}.size", blob["size"], 0)
    elif "cid" in blob:  # the legacy shape: {"cid": ..., "mimeType": ...}
        _string(problems, f"{where}.cid", blob["cid"], MAX_CID_BYTES)
    else:
        problems.append(f"{where} is not a blob (no ref.$link or cid)")
        return
    if _required(problems, where, blob, "mimeType"):
        _string(problems, f"{where}.mimeType", blob["mimeType"], 256)


def _aspect_ratio(problems: list[str], where: str, value: Any) -> None:
    ratio = _object(problems, where, value)
    if ratio is not None:
        for side in ("width", "height"):
            if _required(problems, where, ratio, side):
                _integer(problems, f"{where}.{side}", ratio[side], 1)


def _embed(problems: list[str], where: str, value: Any, *, media_only: bool = False) -> None:
    embed = _object(problems, where, value)
    if embed is None:
        return
    kind = embed.get("$type")
    if not isinstance(kind, str):
        problems.append(f"{where}.$type is missing or not a string")
        return
    if kind == IMAGES:
        if _required(problems, where, embed, "images"):
            images = _array(problems, f"{where}.images", embed["images"], MAX_IMAGES) or []
            for n, item in enumerate(images):
                at = f"{where}.images[{n}]"
                image = _object(problems, at, item)
                if image is None:
                    continue
                if _required(problems, at, image, "image"):
                    _blob(problems, f"{at}.image", image["image"])
                if _required(problems, at, image, "alt"):
                    _string(problems, f"{at}.alt", image["alt"], MAX_STRING_BYTES)
                if "aspectRatio" in image:
                    _aspect_ratio(problems, f"{at}.aspectRatio", image["aspectRatio"])
    elif kind == VIDEO:
        if _required(problems, where, embed, "video"):
            _blob(problems, f"{where}.video", embed["video"])
        if "captions" in embed:
            captions = _array(problems, f"{where}.captions", embed["captions"], MAX_CAPTIONS) or []
            for n, item in enumerate(captions):
                at = f"{where}.captions[{n}]"
                caption = _object(problems, at, item)
                if caption is None:
                    continue
                if _required(problems, at, caption, "lang"):
                    _string(problems, f"{at}.lang", caption["lang"], MAX_LANG_BYTES)
                if _required(problems, at, caption, "file"):
                    _blob(problems, f"{at}.file", caption["file"])
        if "alt" in embed:
            _string(problems, f"{where}.alt", embed["alt"], MAX_VIDEO_ALT_BYTES)
        if "aspectRatio" in embed:
            _aspect_ratio(problems, f"{where}.aspectRatio", embed["aspectRatio"])
    elif kind == EXTERNAL:
        if not _required(problems, where, embed, "external"):
            return
        external = _object(problems, f"{where}.external", embed["external"])
        if external is None:
            return
        for key, cap in (("uri", MAX_URI_BYTES), ("title", MAX_STRING_BYTES), ("description", MAX_STRING_BYTES)):
            if _required(problems, f"{where}.external", external, key):
                _string(problems, f"{where}.external.{key}", external[key], cap)
        if "thumb" in external:
            _blob(problems, f"{where}.external.thumb", external["thumb"])
    elif kind in (RECORD, RECORD_WITH_MEDIA) and media_only:
        problems.append(f"{where}.$type {kind} is not media (images, video or external)")
    elif kind == RECORD:
        if _required(problems, where, embed, "record"):
            _strong_ref(problems, f"{where}.record", embed["record"])
    elif kind == RECORD_WITH_MEDIA:
        if _required(problems, where, embed, "record"):
            quoted = _object(problems, f"{where}.record", embed["record"])
            if quoted is not None and _required(problems, f"{where}.record", quoted, "record"):
                _strong_ref(problems, f"{where}.record.record", quoted["record"])
        if _required(problems, where, embed, "media"):
            _embed(problems, f"{where}.media", embed["media"], media_only=True)
    # Any other $type: the union is open (a newer embed), kept raw and otherwise ignored.


def _facets(problems: list[str], value: Any) -> None:
    facets = _array(problems, "facets", value, MAX_FACETS) or []
    for n, item in enumerate(facets):
        at = f"facets[{n}]"
        facet = _object(problems, at, item)
        if facet is None:
            continue
        if _required(problems, at, facet, "index"):
            index = _object(problems, f"{at}.index", facet["index"])
            if index is not None:
                for key in ("byteStart", "byteEnd"):
                    if _required(problems, f"{at}.index", index, key):
                        _integer(problems, f"{at}.index.{key}", index[key], 0)
        if not _required(problems, at, facet, "features"):
            continue
        for m, entry in enumerate(_array(problems, f"{at}.features", facet["features"], MAX_FEATURES) or []):
            where = f"{at}.features[{m}]"
            feature = _object(problems, where, entry)
            if feature is None:
                continue
            kind = feature.get("$type")
            if not isinstance(kind, str):
                problems.append(f"{where}.$type is missing or not a string")
            for known, key, cap in (
                (LINK, "uri", MAX_URI_BYTES),
                (MENTION, "did", MAX_DID_BYTES),
                (TAG, "tag", MAX_TAG_BYTES),
            ):
                if kind == known and _required(problems, where, feature, key):
                    _string(problems, f"{where}.{key}", feature[key], cap)


def _created_at(problems: list[str], record: dict[str, Any], *, parseable: bool) -> None:
    if _required(problems, "", record, "createdAt") and _string(
        problems, "createdAt", record["createdAt"], MAX_DATETIME_CHARS
    ):
        if parseable and parse_datetime(record["createdAt"]) is None:
            problems.append("createdAt is not an RFC 3339 datetime")


def _problems(collection: str, record: Any, *, parseable_time: bool) -> list[str]:
    if collection not in (POST, REPOST):
        return [f"unknown collection {collection[:100]!r}"]
    if not isinstance(record, dict):
        return ["(record) is not an object"]
    problems: list[str] = []
    if record.get("$type") != collection:
        problems.append(f"$type is not {collection}")
    _created_at(problems, record, parseable=parseable_time)
    if collection == REPOST:
        if _required(problems, "", record, "subject"):
            _strong_ref(problems, "subject", record["subject"])
        if "via" in record:
            _strong_ref(problems, "via", record["via"])
        return problems
    if _required(problems, "", record, "text"):
        _string(problems, "text", record["text"], MAX_TEXT_BYTES)
    if "facets" in record:
        _facets(problems, record["facets"])
    if "reply" in record:
        reply = _object(problems, "reply", record["reply"])
        if reply is not None:
            for key in ("root", "parent"):
                if _required(problems, "reply", reply, key):
                    _strong_ref(problems, f"reply.{key}", reply[key])
    if "embed" in record:
        _embed(problems, "embed", record["embed"])
    if "langs" in record:
        for n, lang in enumerate(_array(problems, "langs", record["langs"], MAX_LANGS) or []):
            _string(problems, f"langs[{n}]", lang, MAX_LANG_BYTES)
    if "tags" in record:
        for n, tag in enumerate(_array(problems, "tags", record["tags"], MAX_TAGS) or []):
            _string(problems, f"tags[{n}]", tag, MAX_TAG_BYTES)
    if "labels" in record:
        labels = _object(problems, "labels", record["labels"])
        if labels is not None and _required(problems, "labels", labels, "values"):
            for n, item in enumerate(_array(problems, "labels.values", labels["values"], MAX_SELF_LABELS) or []):
                label = _object(problems, f"labels.values[{n}]", item)
                if label is not None and _required(problems, f"labels.values[{n}]", label, "val"):
                    _string(problems, f"labels.values[{n}].val", label["val"], MAX_LABEL_BYTES)
    return problems


def record_problems(collection: str, record: Any) -> list[str]:
    """What is wrong with `record` as a record of `collection` (empty: it has the lexicon shape of
    app.bsky.feed.post or app.bsky.feed.repost, as far as Trove reads it). Each problem names the field."""
    if not isinstance(collection, str):
        return ["unknown collection (not a string)"]
    return _problems(collection, record, parseable_time=True)


# --- time -----------------------------------------------------------------------------------------------
def parse_datetime(value: Any) -> datetime | None:
    """An RFC 3339 datetime ("Z" or an offset, any fraction of a second), tz-aware; None when it is not one.
    A datetime without an offset is taken as UTC, as the Bluesky AppView does."""
    if not isinstance(value, str) or len(value) > MAX_DATETIME_CHARS:
        return None
    match = DATETIME_RE.fullmatch(value)
    if match is None:
        return None
    day, clock, fraction, offset = match.groups()
    text = f"{day}T{clock}"
    if fraction:
        text += "." + (fraction + "00000")[:6]  # fromisoformat takes 3 or 6 digits; nanoseconds are cut
    text += "+00:00" if offset in (None, "Z", "z") else offset
    try:
        return datetime.fromisoformat(text)
    except ValueError:  # a month 13, a year 0, an offset of 25 hours
        return None


# --- rich text ------------------------------------------------------------------------------------------
def _safe_link(uri: Any) -> str | None:
    if not isinstance(uri, str) or _too_long(uri, MAX_URI_BYTES):
        return None
    # Browsers drop tabs and newlines inside a URL ("java\tscript:"): a link with any control or space is refused.
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in uri):
        return None
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    try:
        uri.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate
        return None
    return uri


def _feature_href(feature: Any) -> str | None:
    if not isinstance(feature, dict):
        return None
    kind = feature.get("$type")
    if kind == LINK:
        return _safe_link(feature.get("uri"))
    if kind == MENTION:
        did = feature.get("did")
        if isinstance(did, str) and len(did) <= MAX_DID_BYTES and DID_RE.fullmatch(did):
            return PROFILE_URL + did
    elif kind == TAG:
        tag = feature.get("tag")
        if isinstance(tag, str) and tag and not _too_long(tag, MAX_TAG_BYTES):
            try:
                return HASHTAG_URL + quote(tag, safe="")
            except UnicodeEncodeError:  # an unpaired surrogate
                return None
    return None


def _on_boundary(data: bytes, offset: int) -> bool:
    # UTF-8 continuation bytes are 10xxxxxx: an offset there cuts a character in two.
    return offset == len(data) or (data[offset] & 0xC0) != 0x80


def _facet_span(facet: Any, data: bytes) -> tuple[int, int, str] | None:
    if not isinstance(facet, dict):
        return None
    index = facet.get("index")
    if not isinstance(index, dict):
        return None
    start, end = index.get("byteStart"), index.get("byteEnd")
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool):
        return None
    if not 0 <= start < end <= len(data) or not _on_boundary(data, start) or not _on_boundary(data, end):
        return None
    features = facet.get("features")
    if not isinstance(features, list):
        return None
    for feature in features[:MAX_FEATURES]:
        href = _feature_href(feature)
        if href is not None:
            return start, end, href
    return None


def _plain(chunk: bytes) -> str:
    text = chunk.decode("utf-8", "replace")  # "replace": an unpaired surrogate never reaches the HTML
    return html.escape(text).replace("\r\n", "\n").replace("\n", "<br>")


def facets_to_html(text: str, facets: Any) -> str:
    """`text` as HTML, escaped, with its facets as links (a facet indexes UTF-8 bytes of the text). A facet
    that overlaps an earlier one, falls outside the text, cuts a character in two or links anything but
    http(s) stays plain text. Newlines become <br>."""
    if not isinstance(text, str):
        return ""
    data = text.encode("utf-8", "surrogatepass")
    spans = []
    if isinstance(facets, list):
        for facet in facets[:MAX_FACETS]:
            span = _facet_span(facet, data)
            if span is not None:
                spans.append(span)
    spans.sort(key=lambda span: span[0])  # stable: of two starting at one byte, the first listed wins
    parts: list[str] = []
    position = 0
    for start, end, href in spans:
        if start < position:
            continue  # overlaps one already linked
        parts.append(_plain(data[position:start]))
        parts.append(f'<a href="{html.escape(href, quote=True)}">{_plain(data[start:end])}</a>')
        position = end
    parts.append(_plain(data[position:]))
    return "".join(parts)


# --- media ----------------------------------------------------------------------------------------------
def _blob_cid(blob: Any) -> str | None:
    if not isinstance(blob, dict):
        return None
    ref = blob.get("ref")
    cid = ref.get("$link") if isinstance(ref, dict) else blob.get("cid")  # the legacy shape has a bare cid
    if isinstance(cid, str) and len(cid) <= MAX_CID_BYTES and CID_RE.fullmatch(cid):
        return cid
    return None


def _media_blobs(media: Any) -> list[Any]:
    if not isinstance(media, dict):
        return []
    kind = media.get("$type")
    if kind == IMAGES and isinstance(media.get("images"), list):
        return [image.get("image") for image in media["images"][:MAX_IMAGES] if isinstance(image, dict)]
    if kind == VIDEO:
        blobs = [media.get("video")]
        captions = media.get("captions")
        if isinstance(captions, list):
            blobs += [caption.get("file") for caption in captions[:MAX_CAPTIONS] if isinstance(caption, dict)]
        return blobs
    if kind == EXTERNAL and isinstance(media.get("external"), dict):
        return [media["external"].get("thumb")]
    return []


def blob_refs(record: Any) -> list[str]:
    """The CIDs of a post record's blobs (images, video and its captions, a link card's thumbnail, the media
    of a quote with media), in order, each once. A blob whose CID is not a plain CID string is left out."""
    if not isinstance(record, dict):
        return []
    embed = record.get("embed")
    blobs = _media_blobs(embed)
    if isinstance(embed, dict) and embed.get("$type") == RECORD_WITH_MEDIA:
        blobs = _media_blobs(embed.get("media"))
    cids: list[str] = []
    for blob in blobs:
        cid = _blob_cid(blob)
        if cid is not None and cid not in cids:
            cids.append(cid)
    return cids


def _pds_base(pds: Any) -> str | None:
    if not isinstance(pds, str) or len(pds) > MAX_URI_BYTES or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in pds):
        return None
    try:
        parts = urlsplit(pds)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment or "?" in pds:
        return None
    return pds.rstrip("/")


def blob_url(pds: str, did: str, cid: str) -> str:
    """Where the original of a blob is: the PDS's com.atproto.sync.getBlob (query values urlencoded)."""
    return f"{pds.rstrip('/')}/xrpc/com.atproto.sync.getBlob?{urlencode({'did': did, 'cid': cid})}"


def permalink(uri: Any) -> str | None:
    """A post's page on bsky.app from its AT-URI (at://<did>/app.bsky.feed.post/<rkey>); None for anything
    else. A repost record has no page of its own: its link is the reposted post's."""
    if not isinstance(uri, str) or len(uri) > MAX_URI_BYTES:
        return None
    match = AT_URI_RE.fullmatch(uri)
    if match is None or match.group(2) != POST or match.group(3) in (".", ".."):
        return None
    return f"{PROFILE_URL}{match.group(1)}/post/{quote(match.group(3), safe='')}"


# --- the parts of a post --------------------------------------------------------------------------------
def _repo_did(uri: str) -> tuple[str, str] | None:
    """(repo DID, collection) of a record's AT-URI."""
    if len(uri) > MAX_URI_BYTES:
        return None
    match = AT_URI_RE.fullmatch(uri)
    if match is None or match.group(3) in (".", ".."):
        return None
    return match.group(1), match.group(2)


def _quoted_uri(embed: Any) -> str | None:
    if not isinstance(embed, dict):
        return None
    quoted = embed.get("record")
    if embed.get("$type") == RECORD_WITH_MEDIA:
        quoted = quoted.get("record") if isinstance(quoted, dict) else None
    elif embed.get("$type") != RECORD:
        return None
    uri = quoted.get("uri") if isinstance(quoted, dict) else None
    return uri if isinstance(uri, str) and not _too_long(uri, MAX_URI_BYTES) else None


def _hashtags(record: dict[str, Any]) -> list[str]:
    tags: list[str] = []
    facets = record.get("facets")
    for facet in facets[:MAX_FACETS] if isinstance(facets, list) else []:
        features = facet.get("features") if isinstance(facet, dict) else None
        for feature in features[:MAX_FEATURES] if isinstance(features, list) else []:
            if isinstance(feature, dict) and feature.get("$type") == TAG:
                tags.append(feature.get("tag"))
    extra = record.get("tags")
    if isinstance(extra, list):
        tags += extra[:MAX_TAGS]
    return [tag for tag in tags if isinstance(tag, str) and tag and not _too_long(tag, MAX_TAG_BYTES)]


def _langs(record: dict[str, Any]) -> list[str]:
    langs = record.get("langs")
    if not isinstance(langs, list):
        return []
    return [lang for lang in langs[:MAX_LANGS] if isinstance(lang, str) and not _too_long(lang, MAX_LANG_BYTES)]


def _search_keywords(record: dict[str, Any]) -> str | None:
    words: list[str] = []
    for word in [*_hashtags(record), *_langs(record)]:
        word = " ".join(word.split())
        if word and word not in words:
            words.append(word)
    return " ".join(words[:MAX_KEYWORDS]) or None


def _engagement(view: Any) -> dict[str, int] | None:
    if not isinstance(view, dict):
        return None
    counts = {key: view[key] for key in COUNTS if type(view.get(key)) is int and view[key] >= 0}
    return counts or None


def _author_handle(view: Any) -> str | None:
    author = view.get("author") if isinstance(view, dict) else None
    handle = author.get("handle") if isinstance(author, dict) else None
    return handle if isinstance(handle, str) and 0 < len(handle) <= MAX_HANDLE_CHARS else None


# --- public allow-list ----------------------------------------------------------------------------------
def _public_string(value: Any, max_bytes: int = MAX_STRING_BYTES) -> str | None:
    return value if isinstance(value, str) and not _too_long(value, max_bytes) else None


def _public_ratio(value: Any) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    width, height = value.get("width"), value.get("height")
    if type(width) is int and type(height) is int:
        return {"width": width, "height": height}
    return None


def _public_media(media: Any, public: dict[str, Any]) -> None:
    if not isinstance(media, dict):
        return
    kind = media.get("$type")
    if kind == IMAGES and isinstance(media.get("images"), list):
        images = []
        for image in media["images"][:MAX_IMAGES]:
            if not isinstance(image, dict):
                continue
            entry: dict[str, Any] = {"alt": _public_string(image.get("alt")) or ""}
            ratio = _public_ratio(image.get("aspectRatio"))
            if ratio:
                entry["aspectRatio"] = ratio
            images.append(entry)
        public["images"] = images
    elif kind == VIDEO:
        video: dict[str, Any] = {"alt": _public_string(media.get("alt"), MAX_VIDEO_ALT_BYTES) or ""}
        ratio = _public_ratio(media.get("aspectRatio"))
        if ratio:
            video["aspectRatio"] = ratio
        public["video"] = video
    elif kind == EXTERNAL and isinstance(media.get("external"), dict):
        external = media["external"]
        card = {key: _public_string(external.get(key)) for key in ("uri", "title", "description")}
        public["external"] = {key: value for key, value in card.items() if value is not None}


def _public_record(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        return {}
    public: dict[str, Any] = {}
    text = _public_string(record.get("text"), MAX_TEXT_BYTES)
    if text is not None:
        public["text"] = text
    created = _public_string(record.get("createdAt"), MAX_DATETIME_CHARS)
    if created is not None:
        public["createdAt"] = created
    langs = _langs(record)
    if langs:
        public["langs"] = langs
    # Self-labels ("nsfw", "graphic-media"...) are content warnings a reader needs to see.
    labels = record.get("labels")
    values = labels.get("values") if isinstance(labels, dict) else None
    if isinstance(values, list):
        vals = [
            _public_string(label.get("val"), MAX_LABEL_BYTES)
            for label in values[:MAX_SELF_LABELS]
            if isinstance(label, dict)
        ]
        if any(vals):
            public["labels"] = [val for val in vals if val]
    reply = record.get("reply")
    if isinstance(reply, dict):
        refs = {key: reply[key].get("uri") for key in ("root", "parent") if isinstance(reply.get(key), dict)}
        refs = {key: uri for key, uri in refs.items() if _public_string(uri, MAX_URI_BYTES)}
        if refs:
            public["reply"] = refs
    embed = record.get("embed")
    quoted = _quoted_uri(embed)
    if quoted is not None:
        public["quote"] = quoted
    if isinstance(embed, dict) and embed.get("$type") == RECORD_WITH_MEDIA:
        embed = embed.get("media")
    _public_media(embed, public)
    return public


def public_projection(post_data: Any) -> dict[str, Any]:
    """What a public reader may see of a post: its text, time, languages, self-labels, the URIs it replies to,
    quotes or reposts, a link card's uri/title/description, alt texts and aspect ratios, and the counts.
    Never the raw view (avatars, viewer state, other people's profiles) nor blob references."""
    if not isinstance(post_data, dict):
        return {}
    value, view = post_data.get("value"), post_data.get("view")
    counts = _engagement(view) or {}
    if isinstance(value, dict) and value.get("$type") == REPOST:
        public: dict[str, Any] = {}
        created = _public_string(value.get("createdAt"), MAX_DATETIME_CHARS)
        if created is not None:
            public["createdAt"] = created
        subject = value.get("subject")
        subject_uri = _public_string(subject.get("uri"), MAX_URI_BYTES) if isinstance(subject, dict) else None
        if subject_uri is not None:
            public["repost_of"] = subject_uri
        if isinstance(view, dict):
            public["subject"] = _public_record(view.get("record")) | counts
        return public
    return _public_record(value) | counts


# --- normalize ------------------------------------------------------------------------------------------
def _pds_media(post_data: dict[str, Any], did: str, record: dict[str, Any]) -> tuple[MediaRef, ...]:
    pds = _pds_base(post_data.get("_pds"))
    if pds is None:
        return ()
    return tuple(MediaRef(media_key=cid, url=blob_url(pds, did, cid)) for cid in blob_refs(record))


def _shown_text(record: Any) -> tuple[str | None, str | None]:
    """(text, html) of a record, or (None, None) when it has no usable text."""
    text = record.get("text") if isinstance(record, dict) else None
    if not isinstance(text, str) or not text or _too_long(text, MAX_TEXT_BYTES):
        return None, None
    return text, facets_to_html(text, record.get("facets"))


def normalize(post_data: dict[str, Any]) -> NormalizedPost:
    """One post or repost record (post_data: uri, cid, value, optional view and _pds) as a post. InvalidEventError
    when it is not of Bluesky's shape, naming the field."""
    if not isinstance(post_data, dict):
        raise InvalidEventError("post_data is not an object")
    uri, value, view = post_data.get("uri"), post_data.get("value"), post_data.get("view")
    if not isinstance(uri, str):
        raise InvalidEventError("uri is missing or not a string")
    if not isinstance(value, dict):
        raise InvalidEventError("value is missing or not an object")
    collection = value.get("$type")
    if collection not in (POST, REPOST):
        raise InvalidEventError(f"value.$type is not {POST} or {REPOST}")
    repo = _repo_did(uri)
    if repo is None:
        raise InvalidEventError("uri is not at://<did>/<collection>/<record key>")
    did, uri_collection = repo
    if uri_collection != collection:
        raise InvalidEventError(f"uri names the collection {uri_collection}, value.$type is {collection}")
    if "cid" in post_data and not (isinstance(post_data["cid"], str) and len(post_data["cid"]) <= MAX_CID_BYTES):
        raise InvalidEventError("cid is not a CID string")
    # An unparseable createdAt is not refused here: the AppView's indexedAt stands in for it below.
    problems = _problems(collection, value, parseable_time=False)
    if problems:
        raise InvalidEventError("; ".join(f"value.{problem}" for problem in problems[:5]))
    if view is not None and not isinstance(view, dict):
        raise InvalidEventError("view is not an object")
    unstorable = unstorable_text(post_data)
    if unstorable:
        raise InvalidEventError(unstorable)

    repost = collection == REPOST
    # A repost's view is the subject's postView: it must be the post the record names, as a post's is itself.
    shown_uri = value["subject"]["uri"] if repost else uri
    if isinstance(view, dict) and view.get("uri") != shown_uri:
        raise InvalidEventError(f"view.uri is not {shown_uri}")

    created_at = parse_datetime(value["createdAt"])
    if created_at is None and not repost and isinstance(view, dict):
        created_at = parse_datetime(view.get("indexedAt"))  # the subject's indexedAt is not the repost's time
    if created_at is None:
        raise InvalidEventError("value.createdAt is not an RFC 3339 datetime")

    content_type: ContentType
    if repost:
        # Only the subject's own text, never anything the reposter's record carries; the subject's blobs live on
        # its author's PDS, not ours: a repost has no media of its own.
        content_type = "repost"
        shown = view.get("record") if isinstance(view, dict) else None
        text, rendered = _shown_text(shown)
        media: tuple[MediaRef, ...] = ()
    else:
        content_type = "reply" if "reply" in value else "post"
        shown = value
        text, rendered = _shown_text(value)
        media = _pds_media(post_data, did, value)
    return NormalizedPost(
        platform_post_id=uri,
        created_at=created_at,
        post_data=post_data,
        content_type=content_type,
        text=text,
        html=rendered,
        updated_at=None,
        published=True,
        deleted=False,
        engagement=_engagement(view),
        media=media,
        complete="view" in post_data,
        visibility="public",
        public_data=public_projection(post_data),
        author_handle=_author_handle(view),
        search_keywords=_search_keywords(shown) if isinstance(shown, dict) else None,
        permalink=permalink(shown_uri),
    )
