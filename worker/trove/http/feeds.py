"""JSON Feed 1.1 and Atom renderings of a feed page (what personal websites and feed readers consume)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

TITLE = "Trove archive"


def next_page_url(feed_url: str, cursor: str) -> str:
    """The same feed (its filters kept) from the cursor on."""
    return f"{feed_url}{'&' if '?' in feed_url else '?'}{urlencode({'cursor': cursor})}"


def _title(post: dict[str, Any]) -> str:
    text = (post.get("text") or "").strip().splitlines()
    return text[0][:120] if text else f"{post['platform']} {post['content_type']}"


def json_feed(page: dict[str, Any], feed_url: str) -> dict[str, Any]:
    feed: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": TITLE,
        "feed_url": feed_url,
        "items": [
            {
                "id": post["id"],
                "title": _title(post),
                "content_text": post.get("text") or "",
                "date_published": post["created_at"],
                **({"date_modified": post["updated_at"]} if post.get("updated_at") else {}),
                "tags": [post["platform"], post["content_type"]],
                "attachments": [
                    {"url": m["url"], "mime_type": m.get("content_type") or "application/octet-stream"}
                    for m in post["media"]
                ],
            }
            for post in page["posts"]
        ],
    }
    if page.get("next_cursor"):
        feed["next_url"] = next_page_url(feed_url, page["next_cursor"])
    return feed


def atom_feed(page: dict[str, Any], feed_url: str) -> bytes:
    ns = "http://www.w3.org/2005/Atom"
    ET.register_namespace("", ns)
    root = ET.Element(f"{{{ns}}}feed")
    ET.SubElement(root, f"{{{ns}}}title").text = TITLE
    ET.SubElement(root, f"{{{ns}}}id").text = feed_url
    ET.SubElement(root, f"{{{ns}}}link", rel="self", href=feed_url)
    newest = max((p["updated_at"] or p["created_at"] for p in page["posts"]), default=None)
    ET.SubElement(root, f"{{{ns}}}updated").text = newest or datetime.now(UTC).isoformat()
    if page.get("next_cursor"):
        ET.SubElement(root, f"{{{ns}}}link", rel="next", href=next_page_url(feed_url, page["next_cursor"]))
    for post in page["posts"]:
        entry = ET.SubElement(root, f"{{{ns}}}entry")
        ET.SubElement(entry, f"{{{ns}}}id").text = f"urn:uuid:{post['id']}"
        ET.SubElement(entry, f"{{{ns}}}title").text = _title(post)
        ET.SubElement(entry, f"{{{ns}}}published").text = post["created_at"]
        ET.SubElement(entry, f"{{{ns}}}updated").text = post["updated_at"] or post["created_at"]
        ET.SubElement(entry, f"{{{ns}}}content", type="text").text = post.get("text") or ""
        ET.SubElement(entry, f"{{{ns}}}category", term=post["platform"])
        for media in post["media"]:
            ET.SubElement(
                entry,
                f"{{{ns}}}link",
                rel="enclosure",
                href=media["url"],
                type=media.get("content_type") or "application/octet-stream",
            )
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")
