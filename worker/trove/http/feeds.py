"""JSON Feed 1.1 and Atom (RFC 4287) renderings of a feed page (what personal websites and feed readers
consume). tests/integration/test_feeds_spec.py validates both against the specifications' own schemas."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit
from xml.etree import ElementTree as ET

TITLE = "Trove archive"
ATOM = "http://www.w3.org/2005/Atom"
# Characters XML 1.0 cannot carry (control characters, unpaired surrogates, U+FFFE/U+FFFF): left out of Atom.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class FeedInfo:
    """What a feed says about itself. The owner's feed (a Supabase JWT) and the public one (an API key) are
    fetched at the same URL but hold different posts, so each has its own identity: the public feed's URL
    carries `#public`, and its Atom id differs too (an Atom id is per user as well: the URL names no user)."""

    url: str  # where the feed is fetched, with its filters and no page position: next pages build on it
    home: str  # the same archive as a JSON page (/api/posts with the same filters): the feed's alternate
    author: str  # the user's display name
    owner_id: str
    public: bool

    @property
    def identity(self) -> str:
        """JSON Feed's feed_url (its identifier) and Atom's rel="self"."""
        return f"{self.url}#public" if self.public else self.url

    @property
    def atom_id(self) -> str:
        """A permanent, universally unique id (RFC 4287 §4.2.6): the user and the feed's URL without its
        origin (a new public URL for the service keeps every feed's id)."""
        parts = urlsplit(self.identity)
        local = urlunsplit(("", "", parts.path, parts.query, parts.fragment))
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'trove:{self.owner_id}:{local}')}"


def next_page_url(feed_url: str, cursor: str) -> str:
    """The same feed (its filters kept) from the cursor on."""
    return f"{feed_url}{'&' if '?' in feed_url else '?'}{urlencode({'cursor': cursor})}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def describe(post: dict[str, Any]) -> str:
    """What a post without text still says: its kind, platform, day and media, e.g. "Repost on <platform> ·
    3 March 2026" or "Post on <platform> · 3 March 2026 · 2 photos"."""
    created = datetime.fromisoformat(post["created_at"]).astimezone(UTC)
    parts = [f"{post['content_type'].capitalize()} on {post['platform']}", f"{created.day} {created:%B %Y}"]
    kinds = [(m.get("content_type") or "").split("/")[0] for m in post["media"]]
    for kind, word in (("image", "photo"), ("video", "video"), ("audio", "audio file")):
        if kinds.count(kind):
            parts.append(_plural(kinds.count(kind), word))
    others = len(kinds) - sum(kinds.count(k) for k in ("image", "video", "audio"))
    if others:
        parts.append(_plural(others, "file"))
    return " · ".join(parts)


def _text(post: dict[str, Any]) -> str | None:
    text = (post.get("text") or "").strip()
    return text or None


def _title(post: dict[str, Any]) -> str:
    text = _text(post)
    return text.splitlines()[0][:120] if text else describe(post)


def json_feed(page: dict[str, Any], info: FeedInfo) -> dict[str, Any]:
    items = []
    for post in page["posts"]:
        text = _text(post)
        items.append(
            {
                "id": post["id"],
                **({"url": post["permalink"]} if post.get("permalink") else {}),
                "title": _title(post),
                # A post without text is described (JSON Feed needs content_text or content_html, never "").
                "content_text": text or describe(post),
                **({} if text else {"summary": describe(post)}),
                "date_published": post["created_at"],
                **({"date_modified": post["updated_at"]} if post.get("updated_at") else {}),
                "tags": [post["platform"], post["content_type"]],
                "attachments": [
                    {"url": m["url"], "mime_type": m.get("content_type") or "application/octet-stream"}
                    for m in post["media"]
                ],
            }
        )
    feed: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": TITLE,
        "home_page_url": info.home,
        "feed_url": info.identity,
        "authors": [{"name": info.author}],
        "items": items,
    }
    if page.get("next_cursor"):
        feed["next_url"] = next_page_url(info.url, page["next_cursor"])
    return feed


def _element(parent: ET.Element, name: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{name}", {k: NOT_XML.sub("", v) for k, v in attributes.items()})
    if text is not None:
        element.text = NOT_XML.sub("", text)
    return element


def atom_feed(page: dict[str, Any], info: FeedInfo) -> bytes:
    ET.register_namespace("", ATOM)
    root = ET.Element(f"{{{ATOM}}}feed")
    _element(root, "title", TITLE)
    _element(root, "id", info.atom_id)
    author = _element(root, "author")  # RFC 4287 §4.1.1: on the feed, so every entry has it
    _element(author, "name", info.author)
    _element(root, "link", rel="self", type="application/atom+xml", href=info.identity)
    _element(root, "link", rel="alternate", type="application/json", href=info.home)
    newest = max((p["updated_at"] or p["created_at"] for p in page["posts"]), default=None)
    _element(root, "updated", newest or datetime.now(UTC).isoformat())
    if page.get("next_cursor"):
        _element(
            root, "link", rel="next", type="application/atom+xml", href=next_page_url(info.url, page["next_cursor"])
        )
    for post in page["posts"]:
        entry = _element(root, "entry")
        _element(entry, "id", f"urn:uuid:{post['id']}")
        _element(entry, "title", _title(post))
        _element(entry, "published", post["created_at"])
        _element(entry, "updated", post["updated_at"] or post["created_at"])
        if post.get("permalink"):
            _element(entry, "link", rel="alternate", type="text/html", href=post["permalink"])
        _element(entry, "content", _text(post) or describe(post), type="text")
        _element(entry, "category", term=post["platform"])
        for media in post["media"]:
            _element(
                entry,
                "link",
                rel="enclosure",
                href=media["url"],
                type=media.get("content_type") or "application/octet-stream",
            )
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")
