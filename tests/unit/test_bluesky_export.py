"""The Bluesky repository CAR reader (issue 14) against the simulator's own export (com.atproto.sync.getRepo):
recognized by its bytes, owned by the commit's DID, every block checked against its CID, the commit's
signature checked with the DID document's key, and records that archive as the same posts the sync makes."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import libipld
import pytest

from trove.db.cluster import free_port
from trove.imports.archive import ExportArchive
from trove.platforms.base import Account, ExportOwner, ExportRecord, ExportUnreadable, NormalizedPost
from trove.platforms.bluesky.config import BlueskyConfig
from trove.platforms.bluesky.export import BlueskyExportReader, is_car
from trove.platforms.bluesky.normalize import POST, REPOST
from trove.platforms.bluesky.sync import BlueskyConnector
from trove.simulators.bluesky import DEMO_HANDLE, PROFILE, BlueskySimulator, DnsServer, blob_cid
from trove.simulators.bluesky_export import build_repo_car, car, repo_record_cid
from trove.simulators.serve import BackgroundServer

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class World:
    sim: BlueskySimulator
    url: str
    config: BlueskyConfig
    reader: BlueskyExportReader
    car: bytes  # the demo account's repository, as the simulator's PDS exports it

    @property
    def did(self) -> str:
        return self.sim.demo_did

    def context(self) -> dict[str, Any]:
        """What prepare() finds, without the network (the tests that are not about prepare)."""
        key = self.sim.accounts[self.did].key
        return {"pds": self.url, "signing_key": f"did:key:{key}", "handle": DEMO_HANDLE}


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    sim = BlueskySimulator(posts=40, seed=7, now=NOW)
    with DnsServer(sim.did_for_handle, 0) as dns, BackgroundServer(sim.app, free_port()) as server:
        sim.base_url = server.url
        config = BlueskyConfig(
            plc_url=server.url, appview_url=server.url, dns=("127.0.0.1", dns.port), insecure_http=True
        )
        response = httpx.get(f"{server.url}/xrpc/com.atproto.sync.getRepo", params={"did": sim.demo_did}, timeout=10)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/vnd.ipld.car"
        yield World(sim, server.url, config, BlueskyExportReader(config), response.content)


def saved(tmp_path: Path, name: str, data: bytes) -> ExportArchive:
    path = tmp_path / name
    path.write_bytes(data)
    return ExportArchive(path)


def zipped(tmp_path: Path, name: str, entries: dict[str, bytes]) -> ExportArchive:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    return saved(tmp_path, name, buffer.getvalue())


def owner_of(world: World) -> ExportOwner:
    return ExportOwner(platform_user_id=world.did, username=world.did)


def read_all(world: World, archive: ExportArchive, context: dict[str, Any] | None = None) -> list[ExportRecord]:
    return list(world.reader.records(archive, owner_of(world), context or world.context()))


def refused(call: Any, *args: Any) -> str:
    with pytest.raises(ExportUnreadable) as caught:
        result = call(*args)
        if isinstance(result, Iterator):
            list(result)
    return str(caught.value)


# --- recognizing ----------------------------------------------------------------------------------------------
def test_a_car_is_recognized_by_its_bytes_not_its_name(world: World, tmp_path: Path) -> None:
    reader = world.reader
    assert world.car == build_repo_car(world.sim), "getRepo serves build_repo_car's CAR"
    assert reader.recognizes(saved(tmp_path, "repo.car", world.car))
    assert reader.recognizes(saved(tmp_path, "export-2026-03-01", world.car)), "no extension needed"
    assert reader.recognizes(zipped(tmp_path, "a.zip", {"repo.car": world.car, "README.txt": b"my export"}))
    assert not reader.recognizes(saved(tmp_path, "posts.car", json.dumps({"posts": []}).encode()))
    assert not reader.recognizes(zipped(tmp_path, "other.zip", {"posts_1.json": b"[]", "media/a.jpg": b"\xff\xd8"}))
    assert not reader.recognizes(saved(tmp_path, "empty.car", b""))
    # The header says another CAR version (v2 wraps a v1): not read as one.
    version_2 = libipld.encode_dag_cbor({"version": 2, "roots": []})
    assert not reader.recognizes(saved(tmp_path, "v2.car", bytes([len(version_2)]) + version_2))
    assert not is_car(b"\xff" * 20), "a length that never ends is not a header"


# --- owner ----------------------------------------------------------------------------------------------------
def test_the_owner_is_the_commits_did(world: World, tmp_path: Path) -> None:
    owner = world.reader.owner(saved(tmp_path, "repo.car", world.car))
    assert owner == ExportOwner(platform_user_id=world.did, username=world.did, display_name=None)
    inside = world.reader.owner(zipped(tmp_path, "a.zip", {"backup/repo.car": world.car, "notes.txt": b"hi"}))
    assert inside == owner


def test_prepare_reads_the_did_document_as_the_sync_does(world: World) -> None:
    async def main() -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            return await world.reader.prepare(http, owner_of(world))

    context = asyncio.run(main())
    account = world.sim.accounts[world.did]
    assert context == {"pds": world.url, "signing_key": f"did:key:{account.key}", "handle": DEMO_HANDLE}

    async def unknown() -> None:
        async with httpx.AsyncClient() as http:
            await world.reader.prepare(http, ExportOwner("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "x"))

    with pytest.raises(ExportUnreadable, match="did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"):
        asyncio.run(unknown())


# --- hostile files --------------------------------------------------------------------------------------------
def test_a_block_whose_bytes_do_not_match_its_cid_is_refused_naming_the_entry_and_cid(
    world: World, tmp_path: Path
) -> None:
    record = sorted(world.sim.accounts[world.did].records[POST].values(), key=lambda r: r.rkey)[3]
    tampered = build_repo_car(world.sim, corrupt=f"{POST}/{record.rkey}")
    assert len(tampered) == len(world.car) and tampered != world.car
    archive = saved(tmp_path, "tampered.car", tampered)
    assert world.reader.recognizes(archive), "it looks like a CAR: reading it is what refuses it"
    message = refused(world.reader.owner, archive)
    assert message.startswith("tampered.car: ")
    assert repo_record_cid(record.value) in message and "does not match its CID" in message
    assert "does not match its CID" in refused(world.reader.records, archive, owner_of(world), world.context())


def test_a_truncated_car_is_refused_naming_the_entry(world: World, tmp_path: Path) -> None:
    header_end = world.car[0] + 1  # a header is shorter than 128 bytes: its length is one byte
    commit_length = (world.car[header_end] & 0x7F) | (world.car[header_end + 1] << 7)  # ~200 bytes: two
    after_commit = header_end + 2 + commit_length  # the file ends where a block does: the tree is missing
    for cut in (3, header_end + 5, after_commit, len(world.car) // 2, len(world.car) - 1):
        archive = saved(tmp_path, f"cut-{cut}.car", build_repo_car(world.sim, truncate=cut))
        message = refused(world.reader.owner, archive)
        assert message.startswith(f"cut-{cut}.car: "), message
        assert "truncated" in message, message
    # A header naming a commit the file does not hold.
    rootless = car(bytes([0x01, 0x71, 0x12, 0x20]) + hashlib.sha256(b"gone").digest(), [])
    assert "has no commit" in refused(world.reader.owner, saved(tmp_path, "headless.car", rootless))


def test_a_commit_signed_with_another_key_is_refused(world: World, tmp_path: Path) -> None:
    forged = saved(tmp_path, "forged.car", build_repo_car(world.sim, wrong_key=True))
    assert world.reader.owner(forged).platform_user_id == world.did, "the DID is read before the signature"
    message = refused(world.reader.records, forged, owner_of(world), world.context())
    assert message == f"forged.car: commit signature does not verify for {world.did}"
    # The right file checked with another account's key (a DID document that is not this one's).
    genuine = saved(tmp_path, "repo.car", world.car)
    alice = world.sim.accounts[world.sim.handles["alice.trove.test"]]
    other = {**world.context(), "signing_key": f"did:key:{alice.key}"}
    assert "does not verify" in refused(world.reader.records, genuine, owner_of(world), other)
    # Nor is it read as someone else's export.
    someone = ExportOwner(platform_user_id=alice.did, username=alice.handle)
    assert "not of" in refused(world.reader.records, genuine, someone, world.context())


# --- records --------------------------------------------------------------------------------------------------
def synced_posts(world: World) -> dict[str, NormalizedPost]:
    """What the sync archives of the demo account (every page of a backfill)."""
    connector = BlueskyConnector(world.config)
    account = Account("acc", "user", "bluesky", world.did, DEMO_HANDLE, None, {})

    async def main() -> dict[str, NormalizedPost]:
        posts: dict[str, NormalizedPost] = {}
        cursor: dict[str, Any] | None = None
        async with httpx.AsyncClient() as http:
            for _ in range(100):
                page = await connector.fetch_page(http, account, "backfill", cursor)
                posts |= {post.platform_post_id: post for post in page.posts}
                cursor = page.next_cursor
                if cursor is None:
                    return posts
        raise AssertionError("the backfill never ended")

    return asyncio.run(main())


def test_posts_and_reposts_are_the_posts_the_sync_makes(world: World, tmp_path: Path) -> None:
    records = read_all(world, saved(tmp_path, "repo.car", world.car))
    imported = {record.post.platform_post_id: record.post for record in records if record.post is not None}
    synced = synced_posts(world)
    assert imported.keys() == synced.keys(), "one post per AT-URI, whichever way it came"
    kinds = {post.content_type for post in imported.values()}
    assert {"post", "reply", "repost"} <= kinds
    for uri, post in imported.items():
        twin = synced[uri]
        assert post.content_type == twin.content_type and post.created_at == twin.created_at, uri
        assert [m.media_key for m in post.media] == [m.media_key for m in twin.media], uri
        assert post.media == twin.media, "the same getBlob URLs at the same PDS"
        assert post.permalink == twin.permalink and post.visibility == twin.visibility
        assert post.post_data["value"] == twin.post_data["value"], "DAG-CBOR decodes to the record's JSON"
        if post.content_type != "repost":  # a repost's text and keywords are its subject's, from the AppView
            assert (post.text, post.html, post.search_keywords) == (twin.text, twin.html, twin.search_keywords)
        # The sync's record had a view; the import's has none yet: the engine hydrates it like a stream record.
        assert "view" not in post.post_data and not post.complete
        # The simulator's listRecords CID is a stand-in; the CAR's is the record's real DAG-CBOR hash.
        assert post.post_data["cid"] == repo_record_cid(twin.post_data["value"])


def test_records_carry_the_sync_shape_and_media_come_from_the_pds(world: World, tmp_path: Path) -> None:
    records = read_all(world, saved(tmp_path, "repo.car", world.car))
    account = world.sim.accounts[world.did]
    with_media = 0
    for record in records:
        collection, rkey = record.identity.split("/")
        assert record.event_type == "export.record" and record.files == () and record.match is None
        assert record.problem is None, record.problem
        assert list(record.payload) == ["uri", "cid", "value", "_pds"]
        assert record.payload["uri"] == f"at://{world.did}/{collection}/{rkey}"
        assert record.payload["_pds"] == world.url
        assert record.payload["value"] == account.records[collection][rkey].value
        if collection not in (POST, REPOST):
            assert record.post is None, "other collections are kept raw only"
            continue
        assert record.post is not None and record.post.post_data == record.payload
        for media in record.post.media:
            with_media += 1
            assert media.url == (
                f"{world.url}/xrpc/com.atproto.sync.getBlob?did={world.did.replace(':', '%3A')}&cid={media.media_key}"
            )
    assert with_media, "the demo has images and videos"
    # The media pipeline downloads them by CID from the PDS, without a token: the original bytes.
    first = next(m for r in records if r.post is not None for m in r.post.media)
    blob = httpx.get(first.url, timeout=10)
    assert blob.status_code == 200 and blob_cid(blob.content) == first.media_key
    profile = next(r for r in records if r.identity == f"{PROFILE}/self")
    assert profile.payload["value"]["avatar"]["ref"] == {"$link": account.profile()["avatar"]["ref"]["$link"]}


def test_records_come_in_the_same_order_on_every_read(world: World, tmp_path: Path) -> None:
    archive = saved(tmp_path, "repo.car", world.car)
    first, second = read_all(world, archive), read_all(world, archive)
    assert [(r.identity, r.payload) for r in first] == [(r.identity, r.payload) for r in second]
    identities = [r.identity for r in first]
    assert identities == sorted(identities, key=str.encode), "the tree's key order"
    account = world.sim.accounts[world.did]
    assert len(identities) == sum(len(records) for records in account.records.values())
    inside = read_all(world, zipped(tmp_path, "a.zip", {"repo.car": world.car, "notes.txt": b"hi"}))
    assert [(r.identity, r.payload) for r in inside] == [(r.identity, r.payload) for r in first]


def test_bytes_and_malformed_posts_are_kept_raw(tmp_path: Path) -> None:
    """Records the sync would not archive as posts are kept raw with the reason; bytes take their JSON form."""
    sim = BlueskySimulator(posts=3, seed=11, now=NOW)
    did = sim.demo_did
    sim.write(did, POST, "3zzzzzzzzzzz2", {"$type": POST, "text": "no time"}, emit=False)
    sim.write(did, "com.example.note", "a", {"$type": "com.example.note", "raw": {"$bytes": "aGVsbG8"}}, emit=False)
    reader = BlueskyExportReader(BlueskyConfig())
    world = World(sim, "https://pds.example", BlueskyConfig(), reader, build_repo_car(sim))
    records = {r.identity: r for r in read_all(world, saved(tmp_path, "repo.car", world.car))}
    broken = records[f"{POST}/3zzzzzzzzzzz2"]
    assert broken.post is None and broken.problem is not None and "createdAt" in broken.problem
    assert broken.payload["value"] == {"$type": POST, "text": "no time"}
    note = records["com.example.note/a"]
    assert note.post is None and note.problem is None
    assert note.payload["value"] == {"$type": "com.example.note", "raw": {"$bytes": "aGVsbG8"}}
