"""A Bluesky (AT Protocol) simulator: one Starlette app on one port plays every service a client meets, with the
paths, field names and shapes of the real ones (see ../shared/fixtures/bluesky), so the same client code works
against bsky.social:

- PLC directory: GET /{did} -> the DID document (its #atproto_pds service is this simulator);
- handle resolution: GET /.well-known/atproto-did (by Host header) and a UDP nameserver (`DnsServer`) answering
  TXT `_atproto.<handle>` -> `did=<did>`;
- PDS: /xrpc/com.atproto.* (identity.resolveHandle, repo.describeRepo, repo.listRecords, repo.getRecord,
  sync.getBlob, sync.getRepo (a signed CAR, `bluesky_export`), server.describeServer) and
  /.well-known/oauth-protected-resource;
- AppView: /xrpc/app.bsky.* (feed.getPosts, feed.getAuthorFeed, actor.getProfile) with CDN-like image URLs
  (/img/...) and video playlists (/watch/...) served here too;
- authorization server: `trove.simulators.bluesky_auth.AtprotoAuthServer`, mounted here (issuer = our base URL);
- Jetstream: WebSocket /subscribe (filters, cursor replay out of an in-memory event log, options_update).

XRPC calls carry Bluesky's rate-limit headers and go through the base `gate` (counting, 429s, scripted 5xx);
reads need no token. Simulator-only controls: /_sim/posts (create, update, hide, delete posts; each repo change
is a Jetstream event), /_sim/config (the base settings plus Jetstream and identity events) and /_sim/stats.

Layout: identifiers and blob bytes, the repo model, the demo data (`DemoData`), AppView views (`AppView`), the
Jetstream log and subscribers, the DNS server, the simulator's routes, and the `trove simulate bluesky` entry.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import hashlib
import json
import random
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from trove.simulators.base import JPEG as TINY_JPEG  # a valid 1x1 JPEG: the base of every image we serve
from trove.simulators.base import PLAYABLE_MP4, FixedWindow, PlatformSimulator, RateLimit
from trove.simulators.bluesky_auth import AtprotoAuthServer

DEMO_HANDLE = "demo.trove.test"
DEFAULT_PORT = 54331
POST = "app.bsky.feed.post"
REPOST = "app.bsky.feed.repost"
PROFILE = "app.bsky.actor.profile"
COUNTS = ("replyCount", "repostCount", "likeCount", "quoteCount")
MAX_SIM_BODY = 256 * 1024
MAX_SUBSCRIBER_MESSAGE = 64 * 1024
MAX_WANTED_COLLECTIONS, MAX_WANTED_DIDS = 100, 10_000
MAX_LOGGED_EVENTS = 100_000

NSID = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]*(\.[a-zA-Z0-9-]+)+$")
NSID_PREFIX = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]*(\.[a-zA-Z0-9-]+)*\.\*$")
DID = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]{1,2000}$")
AT_URI = re.compile(r"^at://([^/?#]+)/([^/?#]+)/([^/?#]+)$")


# --- identifiers ----------------------------------------------------------------------------------------------
B32_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def tid(micros: int, clock_id: int = 0) -> str:
    """A record key / revision: 13 chars of sortable base32 over (microseconds << 10 | clock id), so that
    ordering by TID is ordering by time."""
    value = (micros << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(B32_SORTABLE[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _cid(codec: int, data: bytes) -> str:
    """CIDv1, sha2-256, multibase base32 ('b' + lowercase, no padding)."""
    raw = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def blob_cid(data: bytes) -> str:
    """The CID of a blob: raw codec (0x55), as the PDS computes it ("bafkrei...")."""
    return _cid(0x55, data)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_cid(value: Any) -> str:
    """A record CID with the dag-cbor codec (0x71, "bafyrei...") over the canonical JSON bytes: the right shape
    and stable per content, but not the real DAG-CBOR hash (its repository CAR, `bluesky_export`, carries the
    real ones)."""
    return _cid(0x71, canonical_json(value))


def plc_did(seed: int, handle: str) -> str:
    """did:plc: + 24 base32 chars, derived from the seed and the handle."""
    digest = hashlib.sha256(f"{seed}:{handle}".encode()).digest()
    return "did:plc:" + base64.b32encode(digest).decode().lower()[:24]


def base58btc(data: bytes) -> str:
    number, out = int.from_bytes(data, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        out = B58[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def signing_private_key(seed: int, did: str) -> ec.EllipticCurvePrivateKey:
    """The account's deterministic secp256k1 repo signing key (the simulator signs its repository CARs with it)."""
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    secret = int.from_bytes(hashlib.sha256(f"{seed}:{did}:key".encode()).digest(), "big") % (order - 1) + 1
    return ec.derive_private_key(secret, ec.SECP256K1())


def multikey(key: ec.EllipticCurvePrivateKey) -> str:
    """The publicKeyMultibase of a secp256k1 key ('z' + base58btc(0xe7 0x01 + compressed point)), as a DID
    document's #atproto verification method carries it."""
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    return "z" + base58btc(b"\xe7\x01" + point)


def signing_key(seed: int, did: str) -> str:
    """The publicKeyMultibase of the account's signing key (`signing_private_key`)."""
    return multikey(signing_private_key(seed, did))


def iso(micros: int) -> str:
    """RFC 3339 with milliseconds and Z, as Bluesky writes createdAt/indexedAt."""
    moment = datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def micros_of(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def now_micros() -> int:
    return time.time_ns() // 1000


# --- blob bytes -----------------------------------------------------------------------------------------------
def jpeg_bytes(tag: str) -> bytes:
    """A valid 1x1 JPEG, made unique by a comment segment (after the JFIF APP0 segment, where decoders expect
    it)."""
    comment = tag.encode()[:60_000]
    app0_end = 4 + int.from_bytes(TINY_JPEG[4:6], "big")
    return TINY_JPEG[:app0_end] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + TINY_JPEG[app0_end:]


def png_bytes(tag: str) -> bytes:
    """A valid 1x1 RGBA PNG with a tEXt chunk naming `tag` (its colour comes from it too)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    colour = hashlib.sha256(tag.encode()).digest()[:3]
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0))
        + chunk(b"tEXt", b"Comment\x00" + tag.encode()[:60_000])
        + chunk(b"IDAT", zlib.compress(b"\x00" + colour + b"\xff"))
        + chunk(b"IEND", b"")
    )


def mp4_bytes(tag: str) -> bytes:
    """A video that plays, made unique by a trailing free box naming `tag` (so each blob has its own CID)."""
    free = b"free" + tag.encode()[:60_000]
    return PLAYABLE_MP4 + struct.pack(">I", len(free) + 4) + free


def cdn_bytes(preset: str, cid: str) -> bytes:
    """What the CDN serves for a blob: a re-encoded JPEG, never the original's bytes."""
    return jpeg_bytes(f"cdn {preset} {cid}")


# --- the repo model -------------------------------------------------------------------------------------------
@dataclass
class Blob:
    cid: str
    mime_type: str
    data: bytes

    def ref(self) -> dict[str, Any]:
        return {"$type": "blob", "ref": {"$link": self.cid}, "mimeType": self.mime_type, "size": len(self.data)}


@dataclass
class Record:
    did: str
    collection: str
    rkey: str
    value: dict[str, Any]
    cid: str
    indexed_at: str  # when the AppView saw it: also the author feed's sort key (unique per simulator)
    hidden: bool = False  # taken down by the AppView: still in the repo, absent from views
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    event_us: int | None = None  # time_us of the Jetstream event of its last write

    @property
    def uri(self) -> str:
        return f"at://{self.did}/{self.collection}/{self.rkey}"

    def strong_ref(self) -> dict[str, str]:
        return {"uri": self.uri, "cid": self.cid}

    def listed(self) -> dict[str, Any]:
        """As com.atproto.repo.listRecords / getRecord return it."""
        return {"uri": self.uri, "cid": self.cid, "value": self.value}


@dataclass
class Account:
    did: str
    handle: str
    created_at: str
    key: str  # publicKeyMultibase
    clock_id: int
    chat: str | None = None  # associated.chat.allowIncoming in profile views
    rev: str = ""
    rev_us: int = 0
    active: bool = True
    status: str | None = None  # deactivated, takendown, suspended, deleted
    records: dict[str, dict[str, Record]] = field(default_factory=dict)
    blobs: dict[str, Blob] = field(default_factory=dict)
    # The private half of `key`: what com.atproto.sync.getRepo signs the repository's commit with.
    signer: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False, compare=False)

    def collection(self, name: str) -> dict[str, Record]:
        return self.records.setdefault(name, {})

    def profile(self) -> dict[str, Any]:
        record = self.records.get(PROFILE, {}).get("self")
        return record.value if record is not None else {}

    def post_count(self) -> int:
        return len(self.records.get(POST, {}))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def blob_link(blob: Any) -> str:
    """The CID of a blob ref, new ({"ref": {"$link"}}) or legacy ({"cid"}) form; "" when malformed."""
    blob = _dict(blob)
    return _str(_dict(blob.get("ref")).get("$link")) or _str(blob.get("cid"))


# --- rich text ------------------------------------------------------------------------------------------------
class RichText:
    """Text built piece by piece, with facets indexing UTF-8 byte offsets as Bluesky's do."""

    def __init__(self) -> None:
        self.text = ""
        self.facets: list[dict[str, Any]] = []

    def add(self, text: str, feature: dict[str, Any] | None = None) -> RichText:
        start = len(self.text.encode())
        self.text += text
        if feature is not None:
            end = start + len(text.encode())
            self.facets.append({"features": [feature], "index": {"byteStart": start, "byteEnd": end}})
        return self

    def mention(self, handle: str, did: str) -> RichText:
        return self.add(f"@{handle}", {"$type": "app.bsky.richtext.facet#mention", "did": did})

    def link(self, shown: str, uri: str) -> RichText:
        return self.add(shown, {"$type": "app.bsky.richtext.facet#link", "uri": uri})

    def tag(self, tag: str) -> RichText:
        return self.add(f"#{tag}", {"$type": "app.bsky.richtext.facet#tag", "tag": tag})


LINK_OR_TAG_OR_MENTION = re.compile(r"https?://[^\s<>\"]+|(?<![\w#])#[^\s#.,!?;:()\[\]]{1,64}|(?<!\w)@[\w.-]+\.\w+")


def detect_facets(text: str, handles: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """Facets for the links, #tags and known @mentions in plain text (what the app does when posting)."""
    facets = []
    for match in LINK_OR_TAG_OR_MENTION.finditer(text):
        token = match.group(0)
        if token.startswith("http"):
            token = token.rstrip(".,;:!?)")
        if token.startswith("#"):
            feature = {"$type": "app.bsky.richtext.facet#tag", "tag": token[1:]}
        elif token.startswith("@"):
            did = handles(token[1:])
            if did is None:
                continue
            feature = {"$type": "app.bsky.richtext.facet#mention", "did": did}
        else:
            feature = {"$type": "app.bsky.richtext.facet#link", "uri": token}
        start = len(text[: match.start()].encode())
        facets.append({"features": [feature], "index": {"byteStart": start, "byteEnd": start + len(token.encode())}})
    return facets


# --- demo data ------------------------------------------------------------------------------------------------
PLAIN_TEXTS = [
    "Morning coffee and a long walk before work.",
    "Reading about content-addressed storage again. CIDs everywhere.",
    "Backups are a love letter to your future self.",
    "The city smells like rain and bakeries today.",
    "Keeping an archive of my own posts, just in case.",
    "Small web, big feelings.",
    "Finished the book. The ending made me call my sister.",
    "Bike to work week: day three, legs still attached.",
    "Three things I learned today:\n1. tea before coffee\n2. commit often\n3. never trust a cache",
    '<b>not bold</b> & "quoted" — markup in a post is just text.',
    "Naïve façade, jalapeño crêpes and a smörgåsbord of accents.",
    "Zero-width joiners are fun: 👩‍👩‍👧‍👦 counts as one grapheme, many bytes.",
    "Long thought incoming. " + "The quick brown fox jumps over the lazy dog. " * 5,
]
FOREIGN_TEXTS = [
    (["pt"], "Bom dia! Hoje o céu está lindo em Lisboa."),
    (["de", "en"], "Guten Morgen! Good morning from Köln."),
    (["ja"], "今日はいい天気ですね。散歩に行きます 🌸"),
    (["es"], "¿Alguien más está aprendiendo a tejer? Necesito ayuda."),
    (["fr"], "Le café était trop fort ce matin, mais ça va."),
]
SELF_LABELS = ["graphic-media", "nudity"]
ALT_TEXTS = [
    "A cup of coffee on a wooden table, steam rising.",
    "Sunset over the harbour, orange sky and two sailboats.",
    "A tabby cat asleep on a keyboard.",
    "",
    "Handwritten notes: 'archive everything'.",
]
ASPECTS = [(1080, 1080), (2000, 1438), (1179, 1238), (1999, 1500), (1080, 1920), (1920, 1080)]
LINK_CARDS = [
    ("https://example.com/articles/why-archive", "Why you should archive your posts", "A short essay on data."),
    ("https://example.org/blog/über-backups", "Über Backups", "Notes on keeping your own copies."),
    ("https://news.example.net/2024/protocols", "Protocols, not platforms", "An argument for open protocols."),
]
OTHER_TEXTS = [
    "Sourdough attempt number seven. It finally rose!",
    "New lens day 📷",
    "Anyone else watching the meteor shower tonight?",
    "Hot take: tabs are fine.",
    "The bees are very busy this morning 🐝",
    "Drafting a talk about decentralised identity.",
    "Look at this view.",
    "Weekend plans: nothing, gloriously nothing.",
]
# The demo's post shapes, cycled in this order; after their first use the shapes on the left become the ones on
# the right (one quote of a deleted post and one hidden post are enough).
SHAPES = (
    "plain",
    "facets",
    "reply_self",
    "reply_other",
    "quote",
    "quote_deleted",
    "record_with_media",
    "images",
    "video",
    "external",
    "repost",
    "langs_labels",
    "hidden",
)
ONCE = {"quote_deleted": "quote", "hidden": "plain"}


class DemoData:
    """The demo accounts and their repos: the same content for the same seed (timestamps count back from `now`).

    Two other accounts (alice, bob) post first, so that the demo account's replies, quotes and reposts point at
    earlier posts; one of bob's posts is deleted, so that a quote of it hydrates as #viewNotFound."""

    def __init__(self, sim: BlueskySimulator, seed: int, now: datetime) -> None:
        self.sim = sim
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = now
        self.others: list[Record] = []
        self.deleted: dict[str, str] = {}
        self.alice_reply: Record | None = None
        self.reposted = 0
        self.blobs = 0

    def build(self, posts: int, handle: str = DEMO_HANDLE) -> Account:
        rng = self.rng
        newest = micros_of(self.now) - 30 * 60 * 1_000_000
        times = [newest]
        for _ in range(max(posts, 1) - 1):
            times.append(times[-1] - rng.randint(45, 540) * 60_000_000 - rng.randint(1000, 59_999_999))
        times.reverse()
        start = times[0] - 3 * 86_400_000_000
        created = iso(start - 90 * 86_400_000_000)

        alice = self.sim.add_account("alice.trove.test", created, self.seed, chat="all")
        bob = self.sim.add_account("bob.trove.test", created, self.seed)
        demo = self.sim.add_account(handle, created, self.seed, chat="following")
        self.profile(alice, "Alice Ávila", "Photographer. Café enthusiast ☕️", start)
        self.profile(bob, "Bob 🐝", "Beekeeper & bad puns.", start)
        self.other_posts(alice, bob, start)

        pinned: Record | None = None
        used: set[str] = set()
        for index, at in enumerate(times[:posts]):
            shape = SHAPES[index % len(SHAPES)]
            if shape in used and shape in ONCE:
                shape = ONCE[shape]
            used.add(shape)
            record = self.demo_post(demo, shape, at)
            if shape == "images":
                pinned = record
        self.profile(demo, "Trove Demo", "The demo account of a Trove archive ✨\nPosts of every shape.", start, pinned)
        return demo

    # --- accounts and other people's posts --------------------------------------------------------------
    def profile(self, account: Account, name: str, description: str, at: int, pinned: Record | None = None) -> None:
        value: dict[str, Any] = {
            "$type": PROFILE,
            "displayName": name,
            "description": description,
            "avatar": self.blob(account, "jpeg", f"avatar {account.did}").ref(),
            "banner": self.blob(account, "jpeg", f"banner {account.did}").ref(),
            "createdAt": account.created_at,
        }
        if pinned is not None:
            value["pinnedPost"] = pinned.strong_ref()
        self.sim.write(account.did, PROFILE, "self", value, at, emit=False)

    def other_posts(self, alice: Account, bob: Account, start: int) -> None:
        rng = self.rng
        at = start - 30 * 86_400_000_000
        for n in range(30):
            author = alice if n % 2 == 0 else bob
            at += rng.randint(6, 30) * 3_600_000_000 // 2 + rng.randint(0, 999_999)
            value = self.post_value(rng.choice(OTHER_TEXTS), at)
            if n % 3 == 0:
                value["embed"] = self.images_embed(author, rng.randint(1, 2))
            if n == 7:
                value["embed"] = self.external_embed(author)
            if n == 8:  # alice answers bob: the demo's reply to this one has a grandparent author
                parent = next(r for r in reversed(self.others) if r.did == bob.did)
                value["reply"] = {"root": parent.strong_ref(), "parent": parent.strong_ref()}
            record = self.sim.write(author.did, POST, tid(at, author.clock_id), value, at, emit=False)
            record.counts = self.counts()
            if n == 8:
                self.alice_reply = record
            if n == 5:  # bob deletes this one; the demo quotes it anyway
                self.deleted = record.strong_ref()
                self.sim.remove(bob.did, POST, record.rkey, emit=False)
                continue
            self.others.append(record)
        self.rng.shuffle(self.others)

    def counts(self) -> dict[str, int]:
        rng = self.rng
        likes = int(rng.expovariate(1 / 12))
        return {
            "replyCount": rng.randint(0, 6),
            "repostCount": likes // 5 + rng.randint(0, 2),
            "likeCount": likes,
            "quoteCount": rng.randint(0, 2),
        }

    # --- the demo account's posts -----------------------------------------------------------------------
    def demo_post(self, demo: Account, shape: str, at: int) -> Record:
        rng = self.rng
        created = at
        if shape == "repost":
            subject = self.others[self.reposted % len(self.others)]
            self.reposted += 1
            value = {"$type": REPOST, "subject": subject.strong_ref(), "createdAt": iso(created)}
            return self.sim.write(demo.did, REPOST, tid(at, demo.clock_id), value, at, emit=False)
        value = self.post_value(rng.choice(PLAIN_TEXTS), created)
        own = [r for r in demo.records.get(POST, {}).values() if not r.hidden]
        if shape == "facets":
            text = self.facet_text()
            value["text"], value["facets"] = text.text, text.facets
        elif shape == "reply_self" and own:
            value["reply"] = self.reply_to(rng.choice(own[-8:]))
            value["text"] = rng.choice(["And another thing…", "Update: it worked! 🎉", "(continued) more notes."])
        elif shape == "reply_other":
            parent, self.alice_reply = self.alice_reply or rng.choice(self.others), None
            value["reply"] = self.reply_to(parent)
            value["text"] = rng.choice(["Agreed!", "Ha, same here 😄", "Great shot — where was this?"])
        elif shape in ("quote", "quote_deleted"):
            target = self.deleted if shape == "quote_deleted" else rng.choice(self.others).strong_ref()
            value["embed"] = {"$type": "app.bsky.embed.record", "record": dict(target)}
            value["text"] = rng.choice(["This!", "Worth reading.", "Quoting for later."])
        elif shape == "record_with_media":
            media = self.images_embed(demo, rng.randint(1, 2)) if rng.random() < 0.6 else self.video_embed(demo)
            value["embed"] = {
                "$type": "app.bsky.embed.recordWithMedia",
                "record": {"$type": "app.bsky.embed.record", "record": rng.choice(self.others).strong_ref()},
                "media": media,
            }
        elif shape == "images":
            value["embed"] = self.images_embed(demo, rng.randint(1, 4))
        elif shape == "video":
            value["embed"] = self.video_embed(demo)
            value["text"] = rng.choice(["Short clip from today 🎥", "Sound on!", ""])
        elif shape == "external":
            embed = self.external_embed(demo)
            uri = embed["external"]["uri"]
            text = RichText().add("Interesting read: ").link(uri.removeprefix("https://")[:27] + "...", uri)
            value["text"], value["facets"], value["embed"] = text.text, text.facets, embed
        elif shape == "langs_labels":
            langs, text = rng.choice(FOREIGN_TEXTS)
            value["text"], value["langs"] = text, langs
            value["labels"] = {
                "$type": "com.atproto.label.defs#selfLabels",
                "values": [{"val": rng.choice(SELF_LABELS)}],
            }
        elif shape == "hidden":
            value["text"] = "Testing something, please ignore."
        if shape == "plain" and rng.random() < 0.3:
            value["tags"] = rng.sample(["trove", "archive", "indieweb", "atproto"], 2)
        record = self.sim.write(demo.did, POST, tid(at, demo.clock_id), value, at, emit=False)
        record.counts = self.counts()
        record.hidden = shape == "hidden"
        return record

    def post_value(self, text: str, at: int) -> dict[str, Any]:
        return {"$type": POST, "text": text, "createdAt": iso(at), "langs": ["en"]}

    def reply_to(self, parent: Record) -> dict[str, Any]:
        root = _dict(_dict(parent.value.get("reply")).get("root")) or parent.strong_ref()
        return {"root": dict(root), "parent": parent.strong_ref()}

    def facet_text(self) -> RichText:
        """Emoji, accents and CJK before the facets, so that byte and character offsets differ."""
        alice = self.sim.accounts[self.sim.handles["alice.trove.test"]]
        bob = self.sim.accounts[self.sim.handles["bob.trove.test"]]
        choice = self.rng.randrange(3)
        if choice == 0:
            return (
                RichText()
                .add("Café ☕️ talk with ")
                .mention(alice.handle, alice.did)
                .add(" about ")
                .link("trove.test/über-uns", "https://trove.test/%C3%BCber-uns")
                .add(" 🎉 ")
                .tag("Archivierung")
            )
        if choice == 1:
            return (
                RichText()
                .add("Ñandú 🦤 sightings: ask ")
                .mention(bob.handle, bob.did)
                .add(" — photos at ")
                .link("example.org/ñandú…", "https://example.org/%C3%B1and%C3%BA/photos")
                .add(" ")
                .tag("birds")
            )
        return (
            RichText()
            .add("日本語のテキスト 🌸 ")
            .tag("sakura")
            .add(" ")
            .link("https://example.jp/hanami", "https://example.jp/hanami")
            .add(" cc ")
            .mention(alice.handle, alice.did)
        )

    # --- embeds -----------------------------------------------------------------------------------------
    def blob(self, account: Account, kind: str, tag: str) -> Blob:
        """Named by a counter, not a time: the same seed gives the same blobs (and CIDs) on every run."""
        self.blobs += 1
        return self.sim.add_blob(account.did, kind, f"{self.seed} {self.blobs} {tag}")

    def images_embed(self, account: Account, count: int) -> dict[str, Any]:
        images = []
        for n in range(count):
            kind = "png" if self.rng.random() < 0.3 else "jpeg"
            width, height = self.rng.choice(ASPECTS)
            images.append(
                {
                    "alt": self.rng.choice(ALT_TEXTS),
                    "image": self.blob(account, kind, f"image {n}").ref(),
                    "aspectRatio": {"width": width, "height": height},
                }
            )
        return {"$type": "app.bsky.embed.images", "images": images}

    def video_embed(self, account: Account) -> dict[str, Any]:
        width, height = self.rng.choice([(1920, 1080), (1080, 1920)])
        return {
            "$type": "app.bsky.embed.video",
            "video": self.blob(account, "mp4", "video").ref(),
            "alt": "A short clip of waves on a beach.",
            "aspectRatio": {"width": width, "height": height},
        }

    def external_embed(self, account: Account) -> dict[str, Any]:
        uri, title, description = self.rng.choice(LINK_CARDS)
        external: dict[str, Any] = {"uri": uri, "title": title, "description": description}
        if self.rng.random() < 0.8:
            external["thumb"] = self.blob(account, "jpeg", "thumb").ref()
        return {"$type": "app.bsky.embed.external", "external": external}


# --- AppView views --------------------------------------------------------------------------------------------
class AppView:
    """The AppView's hydration of repo records into app.bsky.* views (postView, feed items, profiles), with
    image URLs on the simulator's CDN paths. Malformed records (they can arrive through /_sim/posts) give
    partial views, never errors."""

    def __init__(self, sim: BlueskySimulator, base: str) -> None:
        self.sim = sim
        self.base = base

    # --- URLs -------------------------------------------------------------------------------------------
    def image_url(self, preset: str, did: str, cid: str) -> str:
        return f"{self.base}/img/{preset}/plain/{did}/{cid}@jpeg"

    def video_url(self, did: str, cid: str, name: str) -> str:
        return f"{self.base}/watch/{quote(did, safe='')}/{cid}/{name}"

    # --- profiles ---------------------------------------------------------------------------------------
    def visible(self, record: Record | None) -> bool:
        if record is None or record.hidden:
            return False
        account = self.sim.accounts.get(record.did)
        return account is not None and account.active

    def profile_basic(self, account: Account) -> dict[str, Any]:
        profile = account.profile()
        view: dict[str, Any] = {"did": account.did, "handle": account.handle}
        if isinstance(profile.get("displayName"), str):
            view["displayName"] = profile["displayName"]
        avatar = blob_link(profile.get("avatar"))
        if avatar:
            view["avatar"] = self.image_url("avatar", account.did, avatar)
        if account.chat is not None:
            view["associated"] = {"chat": {"allowIncoming": account.chat}}
        view["viewer"] = {"muted": False, "blockedBy": False}
        view["labels"] = []
        view["createdAt"] = account.created_at
        return view

    def profile_detailed(self, account: Account) -> dict[str, Any]:
        profile = account.profile()
        view = self.profile_basic(account)
        view.pop("createdAt")
        if isinstance(profile.get("description"), str):
            view["description"] = profile["description"]
        banner = blob_link(profile.get("banner"))
        if banner:
            view["banner"] = self.image_url("banner", account.did, banner)
        view["associated"] = {
            "lists": 0,
            "feedgens": 0,
            "starterPacks": 0,
            "labeler": False,
            **({"chat": {"allowIncoming": account.chat}} if account.chat else {}),
        }
        view["followersCount"] = 42 + len(account.handle)
        view["followsCount"] = 17
        view["postsCount"] = account.post_count()
        view["indexedAt"] = account.created_at
        view["createdAt"] = account.created_at
        pinned = _dict(profile.get("pinnedPost"))
        if pinned:
            view["pinnedPost"] = {"uri": _str(pinned.get("uri")), "cid": _str(pinned.get("cid"))}
        return view

    # --- posts ------------------------------------------------------------------------------------------
    def labels(self, record: Record) -> list[dict[str, Any]]:
        """Self-labels, as the AppView lists them on the post (src = the author)."""
        values = _list(_dict(record.value.get("labels")).get("values"))
        return [
            {
                "src": record.did,
                "uri": record.uri,
                "cid": record.cid,
                "val": _str(v.get("val")),
                "cts": record.indexed_at,
            }
            for v in values
            if isinstance(v, dict) and isinstance(v.get("val"), str)
        ]

    def post_view(self, record: Record) -> dict[str, Any]:
        account = self.sim.accounts[record.did]
        view: dict[str, Any] = {
            "uri": record.uri,
            "cid": record.cid,
            "author": self.profile_basic(account),
            "record": record.value,
        }
        embed = self.embed_view(record.did, record.value.get("embed"), depth=0)
        if embed is not None:
            view["embed"] = embed
        view.update(record.counts)
        view["indexedAt"] = record.indexed_at
        view["viewer"] = {"threadMuted": False, "embeddingDisabled": False}
        view["labels"] = self.labels(record)
        return view

    def embed_view(self, did: str, embed: Any, depth: int) -> dict[str, Any] | None:
        embed = _dict(embed)
        kind = embed.get("$type")
        if kind == "app.bsky.embed.images":
            images = []
            for image in _list(embed.get("images")):
                image = _dict(image)
                cid = blob_link(image.get("image"))
                if not cid:
                    continue
                item: dict[str, Any] = {
                    "thumb": self.image_url("feed_thumbnail", did, cid),
                    "fullsize": self.image_url("feed_fullsize", did, cid),
                    "alt": _str(image.get("alt")),
                }
                if isinstance(image.get("aspectRatio"), dict):
                    item["aspectRatio"] = image["aspectRatio"]
                images.append(item)
            return {"$type": "app.bsky.embed.images#view", "images": images}
        if kind == "app.bsky.embed.video":
            cid = blob_link(embed.get("video"))
            view: dict[str, Any] = {
                "$type": "app.bsky.embed.video#view",
                "cid": cid,
                "playlist": self.video_url(did, cid, "playlist.m3u8"),
                "thumbnail": self.video_url(did, cid, "thumbnail.jpg"),
            }
            if isinstance(embed.get("alt"), str):
                view["alt"] = embed["alt"]
            if isinstance(embed.get("aspectRatio"), dict):
                view["aspectRatio"] = embed["aspectRatio"]
            return view
        if kind == "app.bsky.embed.external":
            external = _dict(embed.get("external"))
            card = {key: _str(external.get(key)) for key in ("uri", "title", "description")}
            thumb = blob_link(external.get("thumb"))
            if thumb:
                card["thumb"] = self.image_url("feed_thumbnail", did, thumb)
            return {"$type": "app.bsky.embed.external#view", "external": card}
        if kind == "app.bsky.embed.record":
            return {"$type": "app.bsky.embed.record#view", "record": self.record_view(embed.get("record"), depth)}
        if kind == "app.bsky.embed.recordWithMedia":
            media = self.embed_view(did, embed.get("media"), depth)
            quoted = _dict(embed.get("record")).get("record")
            view = {
                "$type": "app.bsky.embed.recordWithMedia#view",
                "record": {"record": self.record_view(quoted, depth)},
            }
            if media is not None:
                view["media"] = media
            return view
        return None

    def record_view(self, ref: Any, depth: int) -> dict[str, Any]:
        """A quoted record: #viewRecord, or #viewNotFound when it is gone or hidden."""
        uri = _str(_dict(ref).get("uri"))
        record = self.sim.lookup(uri)
        if record is None or not self.visible(record) or record.collection != POST:
            return {"$type": "app.bsky.embed.record#viewNotFound", "uri": uri, "notFound": True}
        view: dict[str, Any] = {
            "$type": "app.bsky.embed.record#viewRecord",
            "uri": record.uri,
            "cid": record.cid,
            "author": self.profile_basic(self.sim.accounts[record.did]),
            "value": record.value,
            "labels": self.labels(record),
            **{key: record.counts[key] for key in ("likeCount", "replyCount", "repostCount", "quoteCount")},
            "indexedAt": record.indexed_at,
        }
        # Quotes of quotes stop one level down, as on Bluesky.
        nested = self.embed_view(record.did, record.value.get("embed"), depth + 1) if depth < 1 else None
        view["embeds"] = [nested] if nested is not None else []
        return view

    def thread_post(self, ref: Any) -> dict[str, Any]:
        """A reply's root or parent in a feed item: a postView, or #notFoundPost."""
        uri = _str(_dict(ref).get("uri"))
        record = self.sim.lookup(uri)
        if record is None or not self.visible(record) or record.collection != POST:
            return {"$type": "app.bsky.feed.defs#notFoundPost", "uri": uri, "notFound": True}
        return {"$type": "app.bsky.feed.defs#postView", **self.post_view(record)}

    def reply_context(self, record: Record) -> dict[str, Any] | None:
        reply = record.value.get("reply")
        if not isinstance(reply, dict):
            return None
        context = {"root": self.thread_post(reply.get("root")), "parent": self.thread_post(reply.get("parent"))}
        parent = self.sim.lookup(_str(_dict(reply.get("parent")).get("uri")))
        if parent is not None:
            grandparent = self.sim.lookup(_str(_dict(_dict(parent.value.get("reply")).get("parent")).get("uri")))
            if grandparent is not None:
                context["grandparentAuthor"] = self.profile_basic(self.sim.accounts[grandparent.did])
        return context

    def feed_item(self, record: Record) -> dict[str, Any] | None:
        """One getAuthorFeed item: the post (with its reply context), or the repost's subject with the reason."""
        if record.collection == REPOST:
            subject = self.sim.lookup(_str(_dict(record.value.get("subject")).get("uri")))
            if subject is None or not self.visible(subject) or subject.collection != POST:
                return None
            reason = {
                "$type": "app.bsky.feed.defs#reasonRepost",
                "by": self.profile_basic(self.sim.accounts[record.did]),
                "indexedAt": record.indexed_at,
            }
            return {"post": self.post_view(subject), "reason": reason}
        item: dict[str, Any] = {"post": self.post_view(record)}
        reply = self.reply_context(record)
        if reply is not None:
            item["reply"] = reply
        return item


FEED_FILTERS = (
    "posts_with_replies",
    "posts_no_replies",
    "posts_with_media",
    "posts_and_author_threads",
    "posts_with_video",
)


def has_media(value: dict[str, Any], video_only: bool = False) -> bool:
    embed = _dict(value.get("embed"))
    if embed.get("$type") == "app.bsky.embed.recordWithMedia":
        embed = _dict(embed.get("media"))
    kinds = {"app.bsky.embed.video"} if video_only else {"app.bsky.embed.images", "app.bsky.embed.video"}
    return embed.get("$type") in kinds


# --- Jetstream ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    time_us: int
    did: str
    kind: str
    collection: str | None
    text: str  # the frame, encoded once


class EventLog:
    """Every Jetstream event since the simulator started, in time_us order (strictly increasing), addressed by
    absolute position so that subscribers keep their place when the oldest events are trimmed."""

    def __init__(self, cap: int = MAX_LOGGED_EVENTS) -> None:
        self.cap = cap
        self.events: list[Event] = []
        self.times: list[int] = []
        self.start = 0  # absolute position of events[0]
        self.last_us = 0
        self.lock = threading.Lock()

    @property
    def end(self) -> int:
        return self.start + len(self.events)

    def append(self, did: str, kind: str, body: dict[str, Any], collection: str | None = None) -> Event:
        with self.lock:
            time_us = max(now_micros(), self.last_us + 1)
            self.last_us = time_us
            frame = {"did": did, "time_us": time_us, "kind": kind, kind: body}
            text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
            event = Event(time_us, did, kind, collection, text)
            self.events.append(event)
            self.times.append(time_us)
            if len(self.events) > self.cap:
                drop = self.cap // 10
                del self.events[:drop], self.times[:drop]
                self.start += drop
            return event

    def position_for(self, cursor: int) -> int:
        """The position of the first event with time_us >= cursor (the end for a cursor in the future)."""
        with self.lock:
            return self.start + bisect.bisect_left(self.times, cursor)

    def since(self, position: int) -> tuple[list[Event], int]:
        with self.lock:
            offset = max(position - self.start, 0)
            return self.events[offset:], self.end


def parse_filters(collections: Iterable[Any], dids: Iterable[Any]) -> tuple[list[str], set[str]]:
    """wantedCollections (NSIDs or prefixes like app.bsky.feed.*) and wantedDids, validated as Jetstream does."""
    collections, dids = list(collections), list(dids)
    if len(collections) > MAX_WANTED_COLLECTIONS:
        raise ValueError(f"too many wantedCollections (at most {MAX_WANTED_COLLECTIONS})")
    if len(dids) > MAX_WANTED_DIDS:
        raise ValueError(f"too many wantedDids (at most {MAX_WANTED_DIDS})")
    for collection in collections:
        if not isinstance(collection, str) or not (NSID.match(collection) or NSID_PREFIX.match(collection)):
            raise ValueError(f"invalid collection: {str(collection)[:100]!r}")
    for did in dids:
        if not isinstance(did, str) or not DID.match(did):
            raise ValueError(f"invalid did: {str(did)[:100]!r}")
    return collections, set(dids)


@dataclass(eq=False)
class Subscriber:
    websocket: WebSocket
    loop: asyncio.AbstractEventLoop
    wake: asyncio.Event
    position: int
    collections: list[str] = field(default_factory=list)
    dids: set[str] = field(default_factory=set)
    max_size: int = 0
    waiting_for_hello: bool = False
    outbox: list[str] = field(default_factory=list)  # raw frames to send first (the malformed-frame control)
    drop: bool = False
    closed: bool = False
    sent: int = 0

    def wants(self, event: Event) -> bool:
        if self.dids and event.did not in self.dids:
            return False
        if self.max_size and len(event.text.encode()) > self.max_size:
            return False
        if event.kind != "commit" or not self.collections:
            return True  # collection filters apply to commits only
        collection = event.collection or ""
        return any(
            collection.startswith(wanted[:-1]) if wanted.endswith(".*") else collection == wanted
            for wanted in self.collections
        )

    def poke(self) -> None:
        """Wake the sender, from any thread."""
        with contextlib.suppress(RuntimeError):  # its loop is gone: the connection is over anyway
            self.loop.call_soon_threadsafe(self.wake.set)

    def apply(self, message: str) -> None:
        """A subscriber-sourced message: options_update replaces the filters; anything else is ignored."""
        try:
            data = json.loads(message)
        except ValueError:
            return
        if (
            not isinstance(data, dict)
            or data.get("type") != "options_update"
            or not isinstance(data.get("payload"), dict)
        ):
            return
        payload = data["payload"]
        try:
            wanted = [payload.get(key) or [] for key in ("wantedCollections", "wantedDids")]
            if not all(isinstance(value, list) for value in wanted):
                return
            collections, dids = parse_filters(*wanted)
            max_size = int(payload.get("maxMessageSizeBytes") or 0)
        except (ValueError, TypeError):
            return
        self.collections, self.dids, self.max_size = collections, dids, max(max_size, 0)
        self.waiting_for_hello = False


# --- DNS ------------------------------------------------------------------------------------------------------
def answer_dns(wire: bytes, lookup: Callable[[str], str | None], ttl: int = 60) -> bytes | None:
    """The reply to one DNS query: TXT `_atproto.<handle>` -> "did=<did>" for a known handle, NXDOMAIN for any
    other name; None for bytes that are not a DNS query (dropped, as a nameserver does)."""
    try:
        query = dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError):
        return None
    if query.flags & dns.flags.QR:
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
        response.set_rcode(dns.rcode.NOTIMP if query.opcode() != dns.opcode.QUERY else dns.rcode.FORMERR)
        return response.to_wire()
    question = query.question[0]
    name = question.name.to_text(omit_final_dot=True).lower()
    did = lookup(name.removeprefix("_atproto.")) if name.startswith("_atproto.") else None
    if did is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
    elif question.rdtype == dns.rdatatype.TXT and question.rdclass == dns.rdataclass.IN:
        response.answer.append(dns.rrset.from_text(question.name, ttl, "IN", "TXT", f'"did={did}"'))
    return response.to_wire()  # a known name asked for another type: NOERROR with no answer


class AtprotoDnsProtocol(asyncio.DatagramProtocol):
    def __init__(self, lookup: Callable[[str], str | None]) -> None:
        self.lookup = lookup
        self.transport: asyncio.DatagramTransport | None = None
        self.queries = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # the selector loop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.queries += 1
        reply = answer_dns(data, self.lookup)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def start_dns(
    lookup: Callable[[str], str | None], port: int = 0, host: str = "127.0.0.1"
) -> tuple[asyncio.DatagramTransport, AtprotoDnsProtocol]:
    """The nameserver in the running loop (port 0: any free port; see transport.get_extra_info("sockname"))."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: AtprotoDnsProtocol(lookup), local_addr=(host, port)
    )
    return transport, protocol


class DnsServer:
    """The nameserver in a daemon thread with its own loop: `with DnsServer(sim.did_for_handle) as dns: dns.port`
    (or start()/stop())."""

    def __init__(self, lookup: Callable[[str], str | None], port: int = 0, host: str = "127.0.0.1") -> None:
        self.lookup, self.host, self.port = lookup, host, port
        self.loop = asyncio.new_event_loop()
        self.protocol: AtprotoDnsProtocol | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            transport, self.protocol = self.loop.run_until_complete(start_dns(self.lookup, self.port, self.host))
        except OSError as exc:
            self.error = exc
            self.ready.set()
            return
        self.port = int(transport.get_extra_info("sockname")[1])
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            transport.close()
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.close()

    def start(self) -> DnsServer:
        self.thread.start()
        if not self.ready.wait(10) or self.error is not None:
            raise RuntimeError(f"DNS server on {self.host}:{self.port} did not start: {self.error}")
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


# --- the simulator --------------------------------------------------------------------------------------------
class XrpcError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


XRPC_SERVER_ERRORS = {
    500: "InternalServerError",
    501: "MethodNotImplemented",
    502: "UpstreamFailure",
    503: "NotEnoughResources",
    504: "UpstreamTimeout",
}
INACTIVE_REPO = {"deactivated": "RepoDeactivated", "takendown": "RepoTakendown", "suspended": "RepoSuspended"}
INACTIVE_ACCOUNT = {"deactivated": "AccountDeactivated", "takendown": "AccountTakedown"}


class BlueskySimulator(PlatformSimulator[str]):
    """Owner = DID. `posts` records (posts and reposts) in the demo account's repo, generated from `seed`;
    `now` anchors the demo timeline (default: the current time)."""

    def __init__(
        self,
        *,
        posts: int = 300,
        seed: int = 1,
        now: datetime | None = None,
        handle: str = DEMO_HANDLE,
        rate_limit: tuple[int, int] = (3000, 300),
        token_ttl: int = 3600,
    ) -> None:
        self.accounts: dict[str, Account] = {}
        self.handles: dict[str, str] = {}
        self.repo_lock = threading.RLock()
        self.xrpc = RateLimit(FixedWindow(rate_limit[0], rate_limit[1]))
        self.events = EventLog()
        self.subscribers: set[Subscriber] = set()
        self.seq = 1_000_000  # identity and account events
        self.last_write_us = 0
        self.auth: AtprotoAuthServer  # made by platform_routes(), which the base constructor calls
        # ATProto clients have no secret: client_id is their metadata URL (the auth server checks it).
        super().__init__(client_id="", client_secret="", token_ttl=token_ttl, seed=seed)
        demo = DemoData(self, seed, now or datetime.now(UTC)).build(posts, handle)
        self.demo_did = demo.did

    # --- repo writes ------------------------------------------------------------------------------------
    def add_account(self, handle: str, created_at: str, seed: int = 1, chat: str | None = None) -> Account:
        did = plc_did(seed, handle)
        clock_id = int.from_bytes(hashlib.sha256(did.encode()).digest()[:2], "big") & 0x3FF
        signer = signing_private_key(seed, did)
        account = Account(did, handle.lower(), created_at, multikey(signer), clock_id, chat, signer=signer)
        with self.repo_lock:
            self.accounts[did] = account
            self.handles[account.handle] = did
        return account

    def add_blob(self, did: str, kind: str, tag: str) -> Blob:
        """A small blob that sniffs as its type: kind is jpeg, png or mp4."""
        makers = {"jpeg": (jpeg_bytes, "image/jpeg"), "png": (png_bytes, "image/png"), "mp4": (mp4_bytes, "video/mp4")}
        make, mime_type = makers[kind]
        data = make(tag)
        blob = Blob(blob_cid(data), mime_type, data)
        with self.repo_lock:
            self.accounts[did].blobs[blob.cid] = blob
        return blob

    def _write_clock(self, at: int | None) -> int:
        """The time of a write: `at` (the demo data, unique by construction), or now but at least a millisecond
        after every earlier write, so that indexedAt (the author feed's cursor) stays unique."""
        with self.repo_lock:
            if at is None:
                at = max(now_micros(), self.last_write_us + 1000)
            self.last_write_us = max(self.last_write_us, at)
            return at

    def write(
        self,
        did: str,
        collection: str,
        rkey: str | None,
        value: dict[str, Any],
        at: int | None = None,
        emit: bool = True,
    ) -> Record:
        """Create or replace a record (a Jetstream create/update event when `emit`)."""
        micros = self._write_clock(at)
        with self.repo_lock:
            account = self.accounts[did]
            rkey = rkey or tid(micros, account.clock_id)
            previous = account.collection(collection).get(rkey)
            record = Record(did, collection, rkey, value, record_cid(value), iso(micros))
            if previous is not None:
                record.counts, record.hidden = previous.counts, previous.hidden
            account.collection(collection)[rkey] = record
            self._new_rev(account)
        if emit:
            operation = "update" if previous is not None else "create"
            body = {"record": value, "cid": record.cid}
            record.event_us = self._commit(account, operation, record.collection, rkey, body).time_us
        return record

    def remove(self, did: str, collection: str, rkey: str, emit: bool = True) -> Record | None:
        with self.repo_lock:
            account = self.accounts[did]
            record = account.collection(collection).pop(rkey, None)
            if record is None:
                return None
            self._new_rev(account)
        if emit:
            self._commit(account, "delete", collection, rkey, {})
        return record

    @staticmethod
    def _new_rev(account: Account) -> None:
        account.rev_us = max(now_micros(), account.rev_us + 1)
        account.rev = tid(account.rev_us, account.clock_id)

    def _commit(self, account: Account, operation: str, collection: str, rkey: str, extra: dict[str, Any]) -> Event:
        body = {"rev": account.rev, "operation": operation, "collection": collection, "rkey": rkey, **extra}
        return self.emit(account.did, "commit", body, collection)

    def set_handle(self, did: str, handle: str) -> Event:
        """A handle change: DID document, DNS and views follow; a Jetstream identity event."""
        with self.repo_lock:
            account = self.accounts[did]
            self.handles.pop(account.handle, None)
            account.handle = handle.lower()
            self.handles[account.handle] = did
            self.seq += 1
            body = {"did": did, "handle": account.handle, "seq": self.seq, "time": iso(now_micros())}
        return self.emit(did, "identity", body)

    def set_status(self, did: str, active: bool, status: str | None = None) -> Event:
        """An account (de)activation: PDS and AppView refuse an inactive repo; a Jetstream account event."""
        with self.repo_lock:
            account = self.accounts[did]
            account.active, account.status = active, (None if active else status or "deactivated")
            self.seq += 1
            body: dict[str, Any] = {"active": active, "did": did, "seq": self.seq, "time": iso(now_micros())}
            if account.status is not None:
                body["status"] = account.status
        return self.emit(did, "account", body)

    def emit(self, did: str, kind: str, body: dict[str, Any], collection: str | None = None) -> Event:
        event = self.events.append(did, kind, body, collection)
        for subscriber in list(self.subscribers):
            subscriber.poke()
        return event

    # --- lookups ----------------------------------------------------------------------------------------
    def did_for_handle(self, handle: str) -> str | None:
        return self.handles.get(handle.lower().rstrip("."))

    def resolve_login(self, hint: str) -> str | None:
        """A login_hint (handle, @handle or DID) -> a DID we host."""
        hint = hint.strip().removeprefix("@")
        return hint if hint in self.accounts else self.did_for_handle(hint)

    def account_for(self, actor: str) -> Account | None:
        did = actor if actor.startswith("did:") else self.did_for_handle(actor)
        return self.accounts.get(did or "")

    def lookup(self, uri: str) -> Record | None:
        match = AT_URI.match(uri)
        if match is None:
            return None
        account = self.account_for(match.group(1))
        return account.records.get(match.group(2), {}).get(match.group(3)) if account is not None else None

    def find_post(self, did: str, rkey: str) -> Record | None:
        account = self.accounts.get(did)
        if account is None:
            return None
        return account.records.get(POST, {}).get(rkey) or account.records.get(REPOST, {}).get(rkey)

    def did_document(self, account: Account, base: str) -> dict[str, Any]:
        return {
            "@context": [
                "https://www.w3.org/ns/did/v1",
                "https://w3id.org/security/multikey/v1",
                "https://w3id.org/security/suites/secp256k1-2019/v1",
            ],
            "id": account.did,
            "alsoKnownAs": [f"at://{account.handle}"],
            "verificationMethod": [
                {
                    "id": f"{account.did}#atproto",
                    "type": "Multikey",
                    "controller": account.did,
                    "publicKeyMultibase": account.key,
                }
            ],
            "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": base}],
        }

    # --- base hooks -------------------------------------------------------------------------------------
    def rate_limits(self) -> dict[str, RateLimit]:
        return {"xrpc": self.xrpc}

    def rate_headers(self) -> dict[str, str]:
        window = self.xrpc.windows[0]
        return {
            "ratelimit-limit": str(window.limit),
            "ratelimit-remaining": str(max(window.limit - window.used, 0)),
            "ratelimit-reset": str(window.resets_at()),
            "ratelimit-policy": f"{window.limit};w={window.seconds}",
        }

    def rate_limited(self, headers: dict[str, str]) -> Response:
        return self.xrpc_error(XrpcError(429, "RateLimitExceeded", "Rate Limit Exceeded"), headers)

    def server_error(self, status: int, headers: dict[str, str]) -> Response:
        name = XRPC_SERVER_ERRORS.get(status, "InternalServerError")
        return self.xrpc_error(XrpcError(status, name, "Internal Server Error"), headers)

    def authenticate(self, request: Request) -> tuple[str | None, Response | None]:
        """Reads are public: no Authorization header is fine. A token that is presented must be good (a DPoP-bound
        token with its proof, checked by the auth server), so that expired or revoked tokens make clients refresh."""
        if not request.headers.get("authorization"):
            return None, None
        return self.auth.authenticate(request)

    @staticmethod
    def xrpc_error(error: XrpcError, headers: dict[str, str]) -> JSONResponse:
        return JSONResponse({"error": error.error, "message": error.message}, status_code=error.status, headers=headers)

    # --- XRPC -------------------------------------------------------------------------------------------
    def xrpc_methods(self) -> dict[str, Callable[[Request, str], Response]]:
        return {
            "com.atproto.identity.resolveHandle": self.resolve_handle,
            "com.atproto.repo.describeRepo": self.describe_repo,
            "com.atproto.repo.listRecords": self.list_records,
            "com.atproto.repo.getRecord": self.get_record,
            "com.atproto.sync.getBlob": self.get_blob,
            "com.atproto.sync.getRepoStatus": self.get_repo_status,
            "com.atproto.sync.getRepo": self.get_repo,
            "com.atproto.server.describeServer": self.describe_server,
            "app.bsky.feed.getPosts": self.get_posts,
            "app.bsky.feed.getAuthorFeed": self.get_author_feed,
            "app.bsky.actor.getProfile": self.get_profile,
        }

    async def xrpc_call(self, request: Request) -> Response:
        method = request.path_params["method"]
        handler = self.xrpc_methods().get(method)
        if handler is None:
            self._count("xrpc.unknown")
            return self.xrpc_error(XrpcError(501, "MethodNotImplemented", "Method Not Implemented"), {})
        _, refused, headers = await self.gate(request, method, [self.xrpc])
        if refused is not None:
            return refused
        if request.headers.get("authorization"):
            headers = {**headers, **self.auth.nonce_headers()}  # DPoP clients learn the current nonce from us
        try:
            response = handler(request, str(request.base_url).rstrip("/"))
        except XrpcError as error:
            return self.xrpc_error(error, headers)
        response.headers.update(headers)
        return response

    @staticmethod
    def param(request: Request, name: str) -> str:
        value = request.query_params.get(name)
        if not value:
            raise XrpcError(400, "InvalidRequest", f'Error: Params must have the property "{name}"')
        if len(value) > 8192:
            raise XrpcError(400, "InvalidRequest", f"Error: {name} is too long")
        return value

    @staticmethod
    def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise XrpcError(400, "InvalidRequest", f"Error: {name} must be an integer") from None
        if value < low:
            raise XrpcError(400, "InvalidRequest", f"Error: {name} can not be less than {low}")
        if value > high:
            raise XrpcError(400, "InvalidRequest", f"Error: {name} can not be greater than {high}")
        return value

    @staticmethod
    def bool_param(request: Request, name: str) -> bool:
        raw = request.query_params.get(name, "false")
        if raw not in ("true", "false"):
            raise XrpcError(400, "InvalidRequest", f"Error: {name} must be a boolean")
        return raw == "true"

    def repo(self, actor: str) -> Account:
        """The repo a PDS call names (DID or handle); inactive repos are refused as the PDS does."""
        account = self.account_for(actor)
        if account is None:
            raise XrpcError(400, "InvalidRequest", f"Could not find repo: {actor[:200]}")
        if not account.active and account.status is not None:
            name = INACTIVE_REPO.get(account.status, "RepoDeactivated")
            raise XrpcError(400, name, f"Repo has been {account.status}: {account.did}")
        return account

    def actor(self, actor: str) -> Account:
        """The account an AppView call names."""
        account = self.account_for(actor)
        if account is None:
            raise XrpcError(400, "InvalidRequest", "Profile not found")
        if not account.active and account.status is not None:
            name = INACTIVE_ACCOUNT.get(account.status, "AccountDeactivated")
            raise XrpcError(400, name, f"Account is {account.status}")
        return account

    # PDS
    def resolve_handle(self, request: Request, base: str) -> Response:
        did = self.did_for_handle(self.param(request, "handle"))
        if did is None:
            raise XrpcError(400, "InvalidRequest", "Unable to resolve handle")
        return JSONResponse({"did": did})

    def get_repo_status(self, request: Request, base: str) -> Response:
        """Whether the repo is active, and why not (answered for inactive repos too, as the PDS does)."""
        did = self.param(request, "did")
        account = self.account_for(did)
        if account is None or account.did != did:
            raise XrpcError(400, "RepoNotFound", f"Could not find repo for DID: {did[:200]}")
        body: dict[str, Any] = {"did": account.did, "active": account.active, "rev": account.rev}
        if not account.active and account.status is not None:
            body["status"] = account.status
        return JSONResponse(body)

    def describe_repo(self, request: Request, base: str) -> Response:
        account = self.repo(self.param(request, "repo"))
        return JSONResponse(
            {
                "handle": account.handle,
                "did": account.did,
                "didDoc": self.did_document(account, base),
                "collections": sorted(name for name, records in account.records.items() if records),
                "handleIsCorrect": True,
            }
        )

    def list_records(self, request: Request, base: str) -> Response:
        account = self.repo(self.param(request, "repo"))
        collection = self.param(request, "collection")
        if not NSID.match(collection):
            raise XrpcError(400, "InvalidRequest", "Error: collection must be a valid nsid")
        limit = self.int_param(request, "limit", 50, 1, 100)
        reverse = self.bool_param(request, "reverse")
        cursor = request.query_params.get("cursor")
        records = sorted(list(account.records.get(collection, {}).values()), key=lambda r: r.rkey, reverse=not reverse)
        if cursor:
            records = [r for r in records if (r.rkey > cursor if reverse else r.rkey < cursor)]
        page = records[:limit]
        body: dict[str, Any] = {"records": [record.listed() for record in page]}
        if page:  # as the PDS does: a cursor whenever the page is not empty
            body["cursor"] = page[-1].rkey
        return JSONResponse(body)

    def get_record(self, request: Request, base: str) -> Response:
        account = self.repo(self.param(request, "repo"))
        collection, rkey = self.param(request, "collection"), self.param(request, "rkey")
        record = account.records.get(collection, {}).get(rkey)
        wanted_cid = request.query_params.get("cid")
        if record is None or (wanted_cid and wanted_cid != record.cid):
            uri = f"at://{account.did}/{collection}/{rkey}"
            raise XrpcError(400, "RecordNotFound", f"Could not locate record: {uri[:300]}")
        return JSONResponse(record.listed())

    def get_blob(self, request: Request, base: str) -> Response:
        did, cid = self.param(request, "did"), self.param(request, "cid")
        account = self.accounts.get(did)
        if account is None:
            raise XrpcError(400, "RepoNotFound", f"Could not find repo for DID: {did[:200]}")
        blob = account.blobs.get(cid)
        if blob is None:
            raise XrpcError(400, "BlobNotFound", "Blob not found")
        return Response(
            blob.data,
            media_type=blob.mime_type,
            headers={"x-content-type-options": "nosniff", "content-security-policy": "default-src 'none'; sandbox"},
        )

    def get_repo(self, request: Request, base: str) -> Response:
        """The whole repository as a signed CAR (commit v3, MST, records), as a PDS exports it."""
        from trove.simulators.bluesky_export import build_repo_car  # it builds on this module

        did = self.param(request, "did")
        account = self.repo(did)
        if account.did != did:
            raise XrpcError(400, "RepoNotFound", f"Could not find repo for DID: {did[:200]}")
        return Response(build_repo_car(self, did), media_type="application/vnd.ipld.car")

    async def sim_export(self, request: Request) -> Response:
        """The demo account's repository CAR ("export my data"): `trove run` imports it."""
        from trove.simulators.bluesky_export import build_repo_car  # it builds on this module

        data = build_repo_car(self, self.demo_did)
        disposition = 'attachment; filename="repo.car"'
        return Response(data, media_type="application/vnd.ipld.car", headers={"Content-Disposition": disposition})

    def describe_server(self, request: Request, base: str) -> Response:
        host = request.url.hostname or "localhost"
        return JSONResponse(
            {
                "did": f"did:web:{host}",
                "availableUserDomains": [".trove.test"],
                "inviteCodeRequired": False,
                "phoneVerificationRequired": False,
                "links": {},
                "contact": {},
            }
        )

    # AppView
    def get_profile(self, request: Request, base: str) -> Response:
        account = self.actor(self.param(request, "actor"))
        return JSONResponse(AppView(self, base).profile_detailed(account))

    def get_posts(self, request: Request, base: str) -> Response:
        uris = request.query_params.getlist("uris")
        if not uris:
            raise XrpcError(400, "InvalidRequest", 'Error: Params must have the property "uris"')
        if len(uris) > 25:
            raise XrpcError(400, "InvalidRequest", "Error: uris must not have more than 25 elements")
        if any(len(uri) > 8192 or not AT_URI.match(uri) for uri in uris):
            raise XrpcError(400, "InvalidRequest", "Error: uris/0 must be a valid at-uri")
        view = AppView(self, base)
        posts = []
        for uri in dict.fromkeys(uris):
            record = self.lookup(uri)
            if record is not None and record.collection == POST and view.visible(record):
                posts.append(view.post_view(record))
        return JSONResponse({"posts": posts})

    def get_author_feed(self, request: Request, base: str) -> Response:
        account = self.actor(self.param(request, "actor"))
        limit = self.int_param(request, "limit", 50, 1, 100)
        feed_filter = request.query_params.get("filter", "posts_with_replies")
        if feed_filter not in FEED_FILTERS:
            raise XrpcError(400, "InvalidRequest", f"Error: filter must be one of {', '.join(FEED_FILTERS)}")
        include_pins = self.bool_param(request, "includePins")
        cursor = request.query_params.get("cursor")
        view = AppView(self, base)
        entries = [r for r in self._feed_records(account, feed_filter) if cursor is None or r.indexed_at < cursor]
        entries.sort(key=lambda r: r.indexed_at, reverse=True)
        feed: list[dict[str, Any]] = []
        last = None
        for record in entries:
            if len(feed) >= limit:
                break
            last = record
            item = view.feed_item(record)  # None: a repost of a post that is gone
            if item is not None:
                feed.append(item)
        if include_pins and cursor is None:  # the pinned post first, on the first page only
            pinned = self.lookup(_str(_dict(account.profile().get("pinnedPost")).get("uri")))
            if pinned is not None and view.visible(pinned) and pinned.collection == POST:
                feed.insert(0, {"post": view.post_view(pinned), "reason": {"$type": "app.bsky.feed.defs#reasonPin"}})
        body: dict[str, Any] = {"feed": feed}
        if last is not None:
            body["cursor"] = last.indexed_at
        return JSONResponse(body)

    def _feed_records(self, account: Account, feed_filter: str) -> list[Record]:
        posts = [r for r in account.records.get(POST, {}).values() if not r.hidden]
        reposts = list(account.records.get(REPOST, {}).values())
        if feed_filter == "posts_no_replies":
            posts = [r for r in posts if "reply" not in r.value]
        elif feed_filter in ("posts_with_media", "posts_with_video"):
            return [r for r in posts if has_media(r.value, video_only=feed_filter == "posts_with_video")]
        elif feed_filter == "posts_and_author_threads":
            posts = [
                r
                for r in posts
                if "reply" not in r.value
                or _str(_dict(_dict(r.value.get("reply")).get("root")).get("uri")).startswith(f"at://{account.did}/")
            ]
        return posts + reposts

    # --- other HTTP roles -------------------------------------------------------------------------------
    async def plc_resolve(self, request: Request) -> Response:
        did = request.path_params["did"]
        if not did.startswith("did:plc:"):
            return JSONResponse({"message": "Not Found"}, status_code=404)
        self._count("plc.resolve")
        account = self.accounts.get(did)
        if account is None:
            return JSONResponse({"message": f"DID not registered: {did[:100]}"}, status_code=404)
        if account.status == "deleted":
            return JSONResponse({"message": f"DID not available: {did}"}, status_code=410)
        document = self.did_document(account, str(request.base_url).rstrip("/"))
        return JSONResponse(document, media_type="application/did+ld+json")

    async def atproto_did(self, request: Request) -> Response:
        self._count("well_known.atproto_did")
        did = self.did_for_handle(request.url.hostname or "")
        if did is None:
            return PlainTextResponse("User not found", status_code=404)
        return PlainTextResponse(did)

    async def protected_resource(self, request: Request) -> Response:
        self._count("well_known.oauth_protected_resource")
        base = str(request.base_url).rstrip("/")
        issuer = self.auth.issuer(request)  # the PDS is its own entryway
        return JSONResponse(
            {
                "resource": base,
                "authorization_servers": [issuer],
                "scopes_supported": [],
                "bearer_methods_supported": ["header"],
                "resource_documentation": "https://atproto.com",
            }
        )

    def _blob_for(self, did: str, cid: str) -> Blob | None:
        account = self.accounts.get(did)
        return account.blobs.get(cid) if account is not None else None

    async def cdn_image(self, request: Request) -> Response:
        self._count("cdn.img")
        preset, did = request.path_params["preset"], request.path_params["did"]
        cid, _, _format = request.path_params["name"].partition("@")
        if preset not in ("avatar", "avatar_thumbnail", "banner", "feed_thumbnail", "feed_fullsize"):
            return PlainTextResponse("Not Found", status_code=404)
        if self._blob_for(did, cid) is None:
            return PlainTextResponse("Not Found", status_code=404)
        return Response(
            cdn_bytes(preset, cid), media_type="image/jpeg", headers={"cache-control": "public, max-age=604800"}
        )

    async def video_file(self, request: Request) -> Response:
        self._count("video")
        did, cid, name = request.path_params["did"], request.path_params["cid"], request.path_params["name"]
        blob = self._blob_for(did, cid)
        if blob is None or not blob.mime_type.startswith("video/"):
            return PlainTextResponse("Not Found", status_code=404)
        if name == "thumbnail.jpg":
            return Response(cdn_bytes("video_thumbnail", cid), media_type="image/jpeg")
        if name == "playlist.m3u8":
            playlist = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n360p/video.m3u8\n"
            return Response(playlist, media_type="application/vnd.apple.mpegurl")
        return PlainTextResponse("Not Found", status_code=404)

    # --- Jetstream --------------------------------------------------------------------------------------
    async def subscribe(self, websocket: WebSocket) -> None:
        self._count("jetstream.subscribe")
        params = websocket.query_params
        try:
            collections, dids = parse_filters(params.getlist("wantedCollections"), params.getlist("wantedDids"))
            cursor = int(params["cursor"]) if params.get("cursor") else None
            max_size = int(params.get("maxMessageSizeBytes") or 0)
            if params.get("compress", "false").lower() not in ("false", "0", ""):
                raise ValueError("compress is not supported by the simulator")
        except ValueError as error:
            await self._deny(websocket, str(error))
            return
        await websocket.accept()
        subscriber = Subscriber(
            websocket,
            asyncio.get_running_loop(),
            asyncio.Event(),
            self.events.end if cursor is None else self.events.position_for(cursor),
            collections,
            dids,
            max(max_size, 0),
            waiting_for_hello=params.get("requireHello", "false").lower() == "true",
        )
        self.subscribers.add(subscriber)
        reader = asyncio.create_task(self._read_messages(subscriber))
        try:
            await self._send_events(subscriber)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the subscriber went away while we were sending
        finally:
            reader.cancel()
            self.subscribers.discard(subscriber)

    async def _deny(self, websocket: WebSocket, message: str) -> None:
        """Refuse the upgrade with a 400, as Jetstream does (a policy close where the server cannot)."""
        try:
            await websocket.send_denial_response(PlainTextResponse(message, status_code=400))
        except RuntimeError:
            await websocket.close(code=1008, reason=message[:120])

    async def _read_messages(self, subscriber: Subscriber) -> None:
        try:
            while True:
                message = await subscriber.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None or len(text) > MAX_SUBSCRIBER_MESSAGE:
                    continue
                subscriber.apply(text)
                subscriber.wake.set()
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        finally:
            subscriber.closed = True
            subscriber.wake.set()

    async def _send_events(self, subscriber: Subscriber) -> None:
        """Replay from the subscriber's position, then wait for more: one loop, so replay and live never
        overlap or leave a gap."""
        websocket = subscriber.websocket
        while not subscriber.closed:
            subscriber.wake.clear()
            if subscriber.drop:
                await websocket.close(code=1001, reason="going away")
                return
            while subscriber.outbox:
                await websocket.send_text(subscriber.outbox.pop(0))
            if not subscriber.waiting_for_hello:
                events, subscriber.position = self.events.since(subscriber.position)
                for event in events:
                    if subscriber.closed or subscriber.drop:
                        break
                    if subscriber.wants(event):
                        await websocket.send_text(event.text)
                        subscriber.sent += 1
            if not subscriber.drop and not subscriber.outbox:
                await subscriber.wake.wait()

    # --- /_sim controls ---------------------------------------------------------------------------------
    async def _sim_body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_SIM_BODY:
            raise XrpcError(413, "PayloadTooLarge", f"body over {MAX_SIM_BODY} bytes")
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
            raise XrpcError(400, "InvalidRequest", "body is not JSON") from None
        if not isinstance(body, dict):
            raise XrpcError(400, "InvalidRequest", "body must be a JSON object")
        return body

    def _sim_did(self, value: Any) -> str:
        did = self.resolve_login(value) if isinstance(value, str) else self.demo_did
        if did is None:
            raise XrpcError(404, "NotFound", f"no account {str(value)[:100]}")
        return did

    async def sim_posts(self, request: Request) -> Response:
        """POST {"text", "did"?, "langs"?, "images"? (0..4), "reply_to"? (at-uri), "quote"? (at-uri)} creates a
        post (facets detected in the text); {"repost": at-uri} a repost; {"record": {...}} stores that record
        value as given (any shape, for hostile-input tests). Each is a Jetstream create."""
        try:
            body = await self._sim_body(request)
            did = self._sim_did(body.get("did"))
            if "repost" in body:
                subject = self.lookup(_str(body["repost"]))
                if subject is None:
                    raise XrpcError(404, "NotFound", "no such post to repost")
                now = iso(now_micros())
                record = self.write(
                    did, REPOST, None, {"$type": REPOST, "subject": subject.strong_ref(), "createdAt": now}
                )
            else:
                record = self.write(did, POST, None, self._sim_post_value(did, body))
        except XrpcError as error:
            return self.xrpc_error(error, {})
        return JSONResponse({**record.listed(), "rkey": record.rkey, "time_us": record.event_us}, status_code=201)

    def _sim_post_value(self, did: str, body: dict[str, Any]) -> dict[str, Any]:
        if isinstance(body.get("record"), dict):
            return body["record"]
        text = body.get("text")
        if not isinstance(text, str) or len(text.encode()) > 3000:
            raise XrpcError(400, "InvalidRequest", "text must be a string of at most 3000 bytes")
        value: dict[str, Any] = {"$type": POST, "text": text, "createdAt": iso(now_micros())}
        facets = detect_facets(text, self.did_for_handle)
        if facets:
            value["facets"] = facets
        langs = body.get("langs", ["en"])
        if not isinstance(langs, list) or not all(isinstance(lang, str) for lang in langs) or len(langs) > 3:
            raise XrpcError(400, "InvalidRequest", "langs must be a list of at most 3 language tags")
        value["langs"] = langs
        images = body.get("images", 0)
        if not isinstance(images, int) or not 0 <= images <= 4:
            raise XrpcError(400, "InvalidRequest", "images must be 0..4")
        media = None
        if images:
            tag = f"sim {now_micros()}"
            media = {
                "$type": "app.bsky.embed.images",
                "images": [
                    {"alt": f"Image {n + 1}", "image": self.add_blob(did, "jpeg", f"{tag} {n}").ref(),
                     "aspectRatio": {"width": 1200, "height": 900}}
                    for n in range(images)
                ],
            }  # fmt: skip
            value["embed"] = media
        if body.get("quote") is not None:
            quoted = self.lookup(_str(body["quote"]))
            if quoted is None:
                raise XrpcError(404, "NotFound", "no such post to quote")
            record_embed = {"$type": "app.bsky.embed.record", "record": quoted.strong_ref()}
            value["embed"] = (
                {"$type": "app.bsky.embed.recordWithMedia", "record": record_embed, "media": media}
                if media
                else record_embed
            )
        if body.get("reply_to") is not None:
            parent = self.lookup(_str(body["reply_to"]))
            if parent is None or parent.collection != POST:
                raise XrpcError(404, "NotFound", "no such post to reply to")
            root = _dict(_dict(parent.value.get("reply")).get("root")) or parent.strong_ref()
            value["reply"] = {"root": dict(root), "parent": parent.strong_ref()}
        return value

    async def sim_post(self, request: Request) -> Response:
        """PUT {"did"?, "hidden"?, "replyCount"/"repostCount"/"likeCount"/"quoteCount"?, "record"?}: AppView state
        (no event), or a new record value (a Jetstream update). DELETE (?did=): a Jetstream delete."""
        rkey = request.path_params["rkey"]
        try:
            body = await self._sim_body(request) if request.method == "PUT" else {}
            did = self._sim_did(body.get("did", request.query_params.get("did")))
            record = self.find_post(did, rkey)
            if record is None:
                raise XrpcError(404, "NotFound", f"no post or repost {rkey[:20]} in {did}")
        except XrpcError as error:
            return self.xrpc_error(error, {})
        if request.method == "DELETE":
            self.remove(did, record.collection, rkey)
            return Response(status_code=204)
        if isinstance(body.get("record"), dict):
            record = self.write(did, record.collection, rkey, body["record"])
        if "hidden" in body:
            record.hidden = bool(body["hidden"])
        for key in COUNTS:
            if isinstance(body.get(key), int):
                record.counts[key] = max(body[key], 0)
        return JSONResponse({**record.listed(), "hidden": record.hidden, **record.counts})

    def configure(self, body: dict[str, Any]) -> None:
        """The base settings (fail_next, blip_rate, xrpc_limits, xrpc_usage, expire_tokens, ...) and:
        drop_subscribers: true closes every Jetstream connection; malformed_frame: true (or a string) sends every
        subscriber a frame that is not a valid event; identity: {"did"?, "handle"} changes a handle; account:
        {"did"?, "active", "status"?} (de)activates an account. Then the auth server's own settings."""
        self._check_config(body)
        super().configure(body)
        if body.get("malformed_frame"):
            frame = body["malformed_frame"]
            text = frame if isinstance(frame, str) else '{"did":"did:plc:broken","time_us":1,"kind":"commit","commit":{'
            for subscriber in list(self.subscribers):
                subscriber.outbox.append(text[:MAX_SUBSCRIBER_MESSAGE])
                subscriber.poke()
        if isinstance(body.get("identity"), dict):
            identity = body["identity"]
            handle = identity.get("handle")
            if isinstance(handle, str) and handle:
                self.set_handle(self._sim_did(identity.get("did")), handle)
        if isinstance(body.get("account"), dict):
            account = body["account"]
            status = account.get("status")
            self.set_status(
                self._sim_did(account.get("did")),
                bool(account.get("active", False)),
                status if isinstance(status, str) else None,
            )
        if body.get("drop_subscribers"):
            for subscriber in list(self.subscribers):
                subscriber.drop = True
                subscriber.poke()
        self.auth.configure(body)

    def _check_config(self, body: dict[str, Any]) -> None:
        """Refuse, before anything changes, the base settings the base would half-apply or store broken."""
        windows = len(self.xrpc.windows)
        for key in ("xrpc_limits", "xrpc_usage"):
            value = body.get(key)
            if key in body and not (
                isinstance(value, list)
                and len(value) == windows
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value)
            ):
                raise ValueError(f"{key} must be a list of {windows} non-negative integers")
        fail_next = body.get("fail_next", [])
        if not isinstance(fail_next, list) or not all(isinstance(n, int) and 400 <= n <= 599 for n in fail_next):
            raise ValueError("fail_next must be a list of HTTP error statuses")
        for key in ("fail_later_in", "fail_later_status", "expire_tokens_in"):
            if body.get(key) is not None and not isinstance(body[key], int):
                raise ValueError(f"{key} must be an integer or null")

    async def sim_config(self, request: Request) -> Response:
        try:
            body = await self._sim_body(request)
            self.configure(body)
        except XrpcError as error:
            return self.xrpc_error(error, {})
        except (KeyError, TypeError, ValueError) as error:
            return JSONResponse({"error": "InvalidRequest", "message": str(error)[:300]}, status_code=400)
        return JSONResponse(self.stats())

    def stats(self) -> dict[str, Any]:
        accounts = {
            did: {
                "handle": account.handle,
                "posts": len(account.records.get(POST, {})),
                "reposts": len(account.records.get(REPOST, {})),
                "records": sum(len(records) for records in account.records.values()),
                "hidden": sum(1 for r in account.records.get(POST, {}).values() if r.hidden),
                "active": account.active,
            }
            for did, account in list(self.accounts.items())
        }
        return {
            **super().stats(),
            "demo": {"did": self.demo_did, "handle": self.accounts[self.demo_did].handle},
            "accounts": accounts,
            "posts": {did: entry["posts"] for did, entry in accounts.items()},
            "subscribers": len(self.subscribers),
            "events": self.events.end,
            "last_time_us": self.events.last_us or None,
            **self.auth.stats(),
        }

    # --- routes -----------------------------------------------------------------------------------------
    def platform_routes(self) -> list[BaseRoute]:
        # Called by the base constructor once its token store exists, which the auth server works on.
        self.auth = AtprotoAuthServer(self, self.resolve_login, default_login=lambda: self.demo_did)
        return [
            Route("/xrpc/{method}", self.xrpc_call, methods=["GET"]),
            Route("/.well-known/atproto-did", self.atproto_did, methods=["GET"]),
            Route("/.well-known/oauth-protected-resource", self.protected_resource, methods=["GET"]),
            *self.auth.routes(),
            WebSocketRoute("/subscribe", self.subscribe),
            Route("/img/{preset}/plain/{did}/{name}", self.cdn_image, methods=["GET"]),
            Route("/watch/{did}/{cid}/{name}", self.video_file, methods=["GET"]),
            Route("/_sim/posts", self.sim_posts, methods=["POST"]),
            Route("/_sim/export", self.sim_export, methods=["GET"]),
            Route("/_sim/posts/{rkey}", self.sim_post, methods=["PUT", "DELETE"]),
            # The PLC directory answers at the root: /{did}. Last, so that it never shadows a route above.
            Route("/{did}", self.plc_resolve, methods=["GET"]),
        ]


# --- `trove simulate bluesky` ---------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser, default_port: int = DEFAULT_PORT) -> None:
    parser.add_argument("--port", type=int, default=default_port, help="HTTP + WebSocket port (every role)")
    parser.add_argument("--posts", type=int, default=300, help="posts and reposts of the demo account")
    parser.add_argument("--seed", type=int, default=1, help="the demo data's seed (same seed, same content)")
    parser.add_argument("--dns-port", type=int, default=0, help="UDP port of the _atproto TXT nameserver (0: none)")
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)


def serve(args: argparse.Namespace) -> None:
    """Run until stopped: the app in the foreground (redacted logs), the nameserver in a thread."""
    from trove.http.log_redaction import serve_redacted

    host = getattr(args, "host", "127.0.0.1")
    simulator = BlueskySimulator(posts=args.posts, seed=getattr(args, "seed", 1))
    demo = simulator.accounts[simulator.demo_did]
    print(f"simulated {demo.handle} ({demo.did}) with {args.posts} posts", flush=True)
    dns_server = None
    if getattr(args, "dns_port", 0):
        dns_server = DnsServer(simulator.did_for_handle, args.dns_port, host).start()
        print(f"_atproto TXT nameserver on udp {host}:{dns_server.port}", flush=True)
    try:
        serve_redacted(simulator.app, args.port, host)
    finally:
        if dns_server is not None:
            dns_server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="trove-bluesky-simulator", description="the Bluesky / AT Protocol simulator")
    add_arguments(parser)
    serve(parser.parse_args(argv))


if __name__ == "__main__":
    main()
