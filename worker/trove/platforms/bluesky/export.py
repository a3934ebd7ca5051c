"""A Bluesky repository export (the CAR file com.atproto.sync.getRepo returns, "Export my data" in the app)
read as records, the way the sync archives them.

The file is a CAR v1: a DAG-CBOR header {version: 1, roots: [commit CID]}, then blocks, each its CID and its
bytes. Every block's bytes must hash (SHA-256) to its CID, or the file is refused naming the block. The root
is the signed commit {did, version: 3, data, rev, prev, sig}: `data` is the root of the Merkle Search Tree
whose entries map "<collection>/<rkey>" to record CIDs. The commit's signature is checked against the
#atproto key of the DID's document (resolved in `prepare`, as the sync resolves it), so a file edited or
forged by anyone but the account's PDS is refused.

Posts and reposts become the same post data the sync stores for a record that arrived without its AppView
view ({uri, cid, value, _pds}): the same AT-URI, so one post whether synced or imported, hydrated later like
a Jetstream record. Blobs are not in a CAR: their MediaRefs point at the PDS's getBlob by CID, as the sync's
do. Records of other collections (likes, follows, the profile) are kept raw only.

Decoding is libipld's (the atproto SDK's DAG-CBOR and CID codec) and the signature check atproto_crypto's;
the CAR framing is read here because libipld's CAR decoder gives no block bytes to hash.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import libipld
from atproto_core.exceptions import AtProtocolError
from atproto_crypto.did import get_did_key, parse_did_key
from atproto_crypto.verify import verify_signature

from trove.json_input import MAX_DEPTH, unstorable_text
from trove.platforms.base import (
    ConnectRefused,
    ExportArchiveView,
    ExportOwner,
    ExportRecord,
    ExportUnreadable,
    InvalidEventError,
    TransientError,
)
from trove.platforms.bluesky.config import BlueskyConfig
from trove.platforms.bluesky.identity import (
    INVALID_HANDLE,
    DidDocument,
    handle_of,
    is_valid_did,
    pds_endpoint,
    resolve_did,
    resolve_handle,
)
from trove.platforms.bluesky.normalize import POST, REPOST, normalize

EVENT_TYPE = "export.record"
CAR_SUFFIXES = (".car", ".car.gz")
MAX_HEADER_BYTES = 64 * 1024  # a header is one map with a root or two: tens of bytes
DAG_CBOR, RAW, SHA2_256, SHA2_256_BYTES = 0x71, 0x55, 0x12, 32
COMMIT_VERSION = 3
SIGNATURE_BYTES = 64  # r || s, 32 bytes each
# An MST key is "<collection NSID>/<record key>" (the same characters normalize's AT_URI_RE takes).
MST_KEY_RE = re.compile(r"([A-Za-z0-9.-]{1,317})/([A-Za-z0-9._:~-]{1,512})")


class _Broken(Exception):
    """What is wrong with the file, said without its name (the reader adds the entry's)."""


class _Unkept(Exception):
    """Why a record's value cannot be stored as JSON (kept with its URI and CID only)."""


# --- CAR framing ------------------------------------------------------------------------------------------
def _varint(data: memoryview, at: int, end: int) -> tuple[int, int]:
    """An unsigned LEB128 number at `at` (at most 9 bytes, as CAR allows) and where it ends."""
    value = shift = 0
    for index in range(at, min(at + 9, end)):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, index + 1
    if at + 9 > end:
        raise _Broken("truncated (the file ends inside a length)")
    raise _Broken(f"a length at byte {at} is longer than 9 bytes (not a CAR)")


def cid_text(cid: bytes) -> str:
    """A binary CID as its string ("bafyrei..."), or its hex when it is no CID at all (for messages)."""
    try:
        return libipld.encode_cid(cid)
    except ValueError:
        return "0x" + cid[:64].hex()


def _header(data: memoryview) -> tuple[bytes, int]:
    """The first root of a CAR v1 header and where the blocks begin; _Broken when it is not one."""
    if not data:
        raise _Broken("empty, not a CAR")
    length, at = _varint(data, 0, len(data))
    if not 0 < length <= MAX_HEADER_BYTES:
        raise _Broken("not a CAR v1 (no header)")
    if at + length > len(data):
        raise _Broken("truncated in its header")
    try:
        header = libipld.decode_dag_cbor(bytes(data[at : at + length]))
    except (ValueError, RecursionError) as error:
        raise _Broken("not a CAR v1 (its header is not DAG-CBOR)") from error
    version = header.get("version") if isinstance(header, dict) else None
    if type(version) is not int or version != 1:  # type(): True == 1 in Python
        raise _Broken("not a CAR v1 (its header says another version)")
    roots = header.get("roots")
    if not isinstance(roots, list) or not roots or not isinstance(roots[0], bytes):
        raise _Broken("a CAR without a root (no commit)")
    try:
        libipld.decode_cid(roots[0])
    except ValueError as error:
        raise _Broken("a CAR whose root is not a CID") from error
    return roots[0], at + length


def _block_cid(data: memoryview, at: int, end: int) -> tuple[bytes, int]:
    """The CID at the start of a block section (CIDv1, SHA-256, as repositories use) and where it ends."""
    version, position = _varint(data, at, end)
    codec, position = _varint(data, position, end)
    code, position = _varint(data, position, end)
    size, position = _varint(data, position, end)
    if version != 1:
        raise _Broken(f"a block at byte {at} has a CID of version {version} (repositories use CIDv1)")
    if code != SHA2_256 or size != SHA2_256_BYTES:
        raise _Broken(f"a block at byte {at} is not addressed by a SHA-256 hash")
    if codec not in (DAG_CBOR, RAW):
        raise _Broken(f"a block at byte {at} has the codec {codec:#x} (repositories hold DAG-CBOR)")
    if position + size > end:
        raise _Broken(f"a block at byte {at} is shorter than its CID")
    return bytes(data[at : position + size]), position + size


def _blocks(data: memoryview, at: int) -> dict[bytes, memoryview]:
    """Every block by its binary CID, each checked to hash to it. A CID given twice keeps its first block
    (both are checked: a duplicate with other bytes fails its own hash)."""
    blocks: dict[bytes, memoryview] = {}
    while at < len(data):
        length, start = _varint(data, at, len(data))
        end = start + length
        if end > len(data):
            raise _Broken(f"truncated: a block at byte {at} needs {length} bytes, {len(data) - start} are left")
        cid, body = _block_cid(data, start, end)
        block = data[body:end]
        if hashlib.sha256(block).digest() != cid[-SHA2_256_BYTES:]:
            raise _Broken(f"the block {cid_text(cid)} does not match its CID (its bytes were altered)")
        blocks.setdefault(cid, block)
        at = end
    return blocks


# --- the commit and the tree ------------------------------------------------------------------------------
def _decode(block: memoryview, what: str) -> Any:
    try:
        return libipld.decode_dag_cbor(bytes(block))
    except (ValueError, RecursionError) as error:
        raise _Broken(f"{what} is not DAG-CBOR ({str(error)[:200]})") from error


def _is_cid(value: Any) -> bool:
    if not isinstance(value, bytes):
        return False
    try:
        libipld.decode_cid(value)
    except ValueError:
        return False
    return True


def _commit(blocks: dict[bytes, memoryview], root: bytes) -> dict[str, Any]:
    """The signed commit at the root, checked to have the v3 shape (its signature is checked in `records`)."""
    block = blocks.get(root)
    if block is None:
        raise _Broken(f"has no commit (the root block {cid_text(root)} is not in the file)")
    commit = _decode(block, "the commit")
    if not isinstance(commit, dict):
        raise _Broken("has no commit (the root block is not a map)")
    did, version = commit.get("did"), commit.get("version")
    if not isinstance(did, str) or not is_valid_did(did):
        raise _Broken("has no commit (the root block names no valid DID)")
    if type(version) is not int or version != COMMIT_VERSION:
        raise _Broken(f"has a commit of version {str(version)[:20]} (only repository version 3 is read)")
    if not _is_cid(commit.get("data")) or not isinstance(commit.get("rev"), str):
        raise _Broken("has no commit (the root block has no tree or no revision)")
    if commit.get("prev") is not None and not _is_cid(commit.get("prev")):
        raise _Broken("has a commit whose prev is not a CID")
    signature = commit.get("sig")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise _Broken(f"has a commit without a valid signature for {did}")
    return commit


def _mst_key(raw: bytes) -> str:
    try:
        key = raw.decode("ascii")
    except UnicodeDecodeError:
        key = ""
    match = MST_KEY_RE.fullmatch(key)
    if match is None or match.group(2) in (".", ".."):
        raise _Broken(f"the tree holds an invalid record key {raw[:120]!r}")
    return key


def _mst_node(blocks: dict[bytes, memoryview], cid: bytes) -> tuple[bytes | None, list[dict[str, Any]]]:
    block = blocks.get(cid)
    if block is None:
        raise _Broken(f"the tree node {cid_text(cid)} is not in the file (truncated?)")
    node = _decode(block, f"the tree node {cid_text(cid)}")
    left, entries = (node.get("l"), node.get("e")) if isinstance(node, dict) else (None, None)
    if not isinstance(entries, list) or not (left is None or isinstance(left, bytes)):
        raise _Broken(f"the tree node {cid_text(cid)} is not an MST node")
    for entry in entries:
        if not (
            isinstance(entry, dict)
            and type(entry.get("p")) is int
            and isinstance(entry.get("k"), bytes)
            and isinstance(entry.get("v"), bytes)
            and (entry.get("t") is None or isinstance(entry.get("t"), bytes))
        ):
            raise _Broken(f"the tree node {cid_text(cid)} has a malformed entry")
    return left, entries


def _walk(blocks: dict[bytes, memoryview], root: bytes) -> list[tuple[str, bytes]]:
    """(MST key, record CID) of every record, in key order: each node's left subtree, then each entry and
    the subtree after it. Without recursion (a hostile tree may be deep); a node linked twice is refused (a
    tree never shares one, and a file that does could make a walk take exponential time)."""
    records: list[tuple[str, bytes]] = []
    seen: set[bytes] = set()
    # (is a record, MST key or b"", CID): popped from the end, so each node's items are pushed reversed.
    stack: list[tuple[bool, bytes, bytes]] = [(False, b"", root)]
    last: bytes | None = None
    while stack:
        is_record, raw_key, cid = stack.pop()
        if is_record:
            key = _mst_key(raw_key)
            if last is not None and raw_key <= last:
                raise _Broken(f"the tree is out of order at {key} (it is not a valid repository)")
            if cid not in blocks:
                raise _Broken(f"the record {key} ({cid_text(cid)}) is not in the file (truncated?)")
            last = raw_key
            records.append((key, cid))
            continue
        if cid in seen:
            raise _Broken(f"the tree node {cid_text(cid)} is linked twice (not a valid repository)")
        seen.add(cid)
        left, entries = _mst_node(blocks, cid)
        items: list[tuple[bool, bytes, bytes]] = [(False, b"", left)] if left is not None else []
        previous = b""
        for entry in entries:
            shared = entry["p"]
            if not 0 <= shared <= len(previous):
                raise _Broken(f"the tree node {cid_text(cid)} has an entry sharing more than the key before it")
            key = previous[:shared] + entry["k"]
            items.append((True, key, entry["v"]))
            if entry["t"] is not None:
                items.append((False, b"", entry["t"]))
            previous = key
        stack.extend(reversed(items))
    return records


@dataclass
class Repository:
    """A CAR read and checked: every block hashes to its CID, the root is a v3 commit, the tree is whole."""

    entry: str
    did: str
    commit: dict[str, Any]
    blocks: dict[bytes, memoryview] = field(repr=False)
    records: list[tuple[str, bytes]] = field(repr=False)  # (MST key, record CID), in key order


def read_repository(entry: str, data: bytes) -> Repository:
    """The repository in a CAR's bytes; ExportUnreadable naming `entry` when it is not a whole, valid one."""
    view = memoryview(data)
    try:
        root, at = _header(view)
        blocks = _blocks(view, at)
        commit = _commit(blocks, root)
        records = _walk(blocks, commit["data"])
    except _Broken as broken:
        raise ExportUnreadable(f"{entry}: {broken}") from None
    return Repository(entry, commit["did"], commit, blocks, records)


def car_problem(data: bytes) -> str | None:
    """Why the bytes do not start with a CAR v1 header (None: they do; nothing past it is read)."""
    try:
        _header(memoryview(data))
    except _Broken as broken:
        return str(broken)
    return None


def is_car(data: bytes) -> bool:
    return car_problem(data) is None


# --- signature --------------------------------------------------------------------------------------------
def atproto_key(doc: DidDocument) -> str:
    """The repository signing key of a DID document (its #atproto verification method) as a did:key;
    ExportUnreadable when it has none we can use (P-256 and secp256k1 are atproto's two)."""
    methods = doc.raw.get("verificationMethod")
    for method in methods if isinstance(methods, list) else []:
        if not isinstance(method, dict) or method.get("id") not in ("#atproto", f"{doc.did}#atproto"):
            continue
        kind, multibase = method.get("type"), method.get("publicKeyMultibase")
        if not isinstance(kind, str) or not isinstance(multibase, str) or len(multibase) > 256:
            break
        try:
            did_key = get_did_key(kind, multibase)
            if did_key is not None:
                parse_did_key(did_key)  # a key that is no point on its curve fails here, not at verification
                return did_key
        except (AtProtocolError, ValueError):
            pass
        break
    raise ExportUnreadable(f"the DID document of {doc.did} has no #atproto signing key to check the export with")


def signature_verifies(commit: dict[str, Any], did_key: str) -> bool:
    """Whether `sig` signs the DAG-CBOR of the commit without it, by `did_key` (low-S ECDSA over SHA-256)."""
    unsigned = {key: value for key, value in commit.items() if key != "sig"}
    try:
        # libipld writes CID-shaped bytes (data, prev) back as links: the bytes the PDS signed.
        return verify_signature(did_key, libipld.encode_dag_cbor(unsigned), commit["sig"])
    except (AtProtocolError, ValueError):
        return False


# --- records ----------------------------------------------------------------------------------------------
def json_form(value: Any, depth: int = 0) -> Any:
    """Decoded DAG-CBOR in atproto's JSON form: links as {"$link": cid}, bytes as {"$bytes": base64}.
    libipld gives both as bytes: bytes that decode as a CID are taken as a link (records of the collections
    we read hold no raw bytes). _Unkept when it is nested deeper than we store or holds a non-finite float."""
    if depth > MAX_DEPTH:
        raise _Unkept(f"the record is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, bytes):
        if _is_cid(value):
            return {"$link": libipld.encode_cid(value)}
        return {"$bytes": base64.b64encode(value).decode("ascii").rstrip("=")}
    if isinstance(value, dict):
        return {key: json_form(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [json_form(item, depth + 1) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise _Unkept("the record holds a number JSON cannot")
    return value


def _value(block: memoryview) -> dict[str, Any]:
    try:
        decoded = libipld.decode_dag_cbor(bytes(block))
    except (ValueError, RecursionError) as error:
        raise _Unkept(f"the record is not DAG-CBOR ({str(error)[:200]})") from error
    value = json_form(decoded)
    if not isinstance(value, dict):
        raise _Unkept("the record is not an object")
    unstorable = unstorable_text(value, "value")
    if unstorable:
        raise _Unkept(unstorable)
    return value


def export_record(repo: Repository, key: str, cid: bytes, pds: str) -> ExportRecord:
    """One record as the import keeps it: its payload the sync's post data without a view ({uri, cid, value,
    _pds}); a post or repost normalized as the sync normalizes it (None for other collections, or with
    `problem` when it does not have its lexicon's shape or cannot be decoded)."""
    collection = key.split("/", 1)[0]
    uri = f"at://{repo.did}/{key}"
    try:
        value = _value(repo.blocks[cid])
    except _Unkept as unkept:
        payload = {"uri": uri, "cid": cid_text(cid), "_pds": pds}
        return ExportRecord(key, EVENT_TYPE, payload, problem=f"{uri}: {unkept}")
    payload = {"uri": uri, "cid": cid_text(cid), "value": value, "_pds": pds}
    if collection not in (POST, REPOST):
        return ExportRecord(key, EVENT_TYPE, payload)
    try:
        post = normalize(dict(payload))
    except InvalidEventError as error:  # kept raw, as the sync keeps a record it cannot read
        return ExportRecord(key, EVENT_TYPE, payload, problem=f"{uri}: {error}")
    return ExportRecord(key, EVENT_TYPE, payload, post=post)


# --- the reader -------------------------------------------------------------------------------------------
class BlueskyExportReader:
    """A repository CAR, uploaded as it is or inside a ZIP (then its entries named *.car or *.car.gz)."""

    def __init__(self, config: BlueskyConfig | None = None) -> None:
        self.config = config or BlueskyConfig.from_env()

    @staticmethod
    def _candidates(archive: ExportArchiveView) -> list[str]:
        """A single file is looked at whatever its name (a CAR is known by its first bytes); in a ZIP only
        the entries named like a CAR are read (reading every media file would cost the whole archive)."""
        names = archive.names()
        if len(names) == 1:
            return names
        return sorted(name for name in names if name.lower().endswith(CAR_SUFFIXES))

    def recognizes(self, archive: ExportArchiveView) -> bool:
        return any(is_car(archive.read_unpacked(name)) for name in self._candidates(archive))

    def _car(self, archive: ExportArchiveView) -> tuple[str, bytes]:
        found: tuple[str, bytes] | None = None
        candidates = self._candidates(archive)
        problem = None
        for name in candidates:
            data = archive.read_unpacked(name)
            problem = car_problem(data)
            if problem is not None:
                continue
            if found is not None:
                raise ExportUnreadable(f"{found[0]}, {name}: two repository CARs in one archive (import each alone)")
            found = (name, data)
        if found is None and len(candidates) == 1:  # the one file there is: say what is wrong with it
            raise ExportUnreadable(f"{candidates[0]}: {problem}")
        if found is None:
            raise ExportUnreadable(f"{archive.name}: no repository CAR in it")
        return found

    def repository(self, archive: ExportArchiveView) -> Repository:
        return read_repository(*self._car(archive))

    def owner(self, archive: ExportArchiveView) -> ExportOwner:
        # The handle is not in the file (only the DID's document says it): the DID stands for the name.
        repo = self.repository(archive)
        return ExportOwner(platform_user_id=repo.did, username=repo.did, display_name=None)

    async def prepare(self, http: httpx.AsyncClient, owner: ExportOwner) -> dict[str, Any]:
        """The account's PDS (where its blobs are) and repository signing key, from its DID document, and its
        handle when it resolves back to the DID ("handle.invalid" if not). ExportUnreadable when the DID
        document cannot be had or names no key; network trouble is a TransientError (worth retrying)."""
        did = owner.platform_user_id
        if did is None:
            raise ExportUnreadable(f"{owner.username}: the export names no account")
        try:
            doc = await resolve_did(http, did, self.config)
            pds = pds_endpoint(doc, insecure=self.config.insecure_http)
        except ConnectRefused as refused:
            raise ExportUnreadable(f"{did}: {refused.detail}") from refused
        return {"pds": pds, "signing_key": atproto_key(doc), "handle": await self._handle(http, doc)}

    async def _handle(self, http: httpx.AsyncClient, doc: DidDocument) -> str:
        """The handle the document claims, when it resolves back to the DID: only a label here, so DNS
        trouble gives "handle.invalid" instead of failing the import."""
        claimed = handle_of(doc)
        if claimed is None:
            return INVALID_HANDLE
        try:
            return claimed if await resolve_handle(http, claimed, self.config) == doc.did else INVALID_HANDLE
        except (ConnectRefused, TransientError):
            return INVALID_HANDLE

    def records(
        self, archive: ExportArchiveView, owner: ExportOwner, context: dict[str, Any]
    ) -> Iterator[ExportRecord]:
        """Every record in MST key order (the same each time), once the commit is shown to be the owner's and
        signed by the key of its DID document."""
        repo = self.repository(archive)
        did_key, pds = context.get("signing_key"), context.get("pds")
        if not isinstance(did_key, str) or not isinstance(pds, str):
            raise ExportUnreadable(f"{repo.entry}: the DID document of {repo.did} was not read (prepare first)")
        if owner.platform_user_id is not None and repo.did != owner.platform_user_id:
            raise ExportUnreadable(f"{repo.entry}: the repository of {repo.did}, not of {owner.platform_user_id}")
        if not signature_verifies(repo.commit, did_key):
            raise ExportUnreadable(f"{repo.entry}: commit signature does not verify for {repo.did}")
        for key, cid in repo.records:
            yield export_record(repo, key, cid, pds)
