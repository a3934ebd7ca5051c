"""The Bluesky simulator's repository export: a CAR v1 as com.atproto.sync.getRepo returns it, built from an
account's records in the simulator (a signed commit v3, the Merkle Search Tree, every record as DAG-CBOR).

The commit is signed with the account's own key (`Account.signer`), whose public half the simulator's DID
document serves as #atproto, so an importer verifies it exactly as it would a real PDS's export. Blobs are
not in the CAR (they never are): the PDS serves them by CID. For hostile-input tests the CAR can be built
broken: a record block whose bytes no longer match its CID, cut short, or signed with another key.

Records live in the simulator as JSON (blob refs as {"$link": ...}); here they become DAG-CBOR (links as
CIDs, {"$bytes": ...} as bytes), so their CIDs are the real ones, not the simulator's `record_cid`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import libipld
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from trove.simulators.bluesky import BlueskySimulator, now_micros, tid

DAG_CBOR = 0x71
SHA2_256 = 0x12
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
CURVE_ORDERS = {
    "secp256k1": SECP256K1_ORDER,
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
}


# --- blocks -----------------------------------------------------------------------------------------------
def cid_bytes(data: bytes) -> bytes:
    """The binary CIDv1 (dag-cbor, sha2-256) of a DAG-CBOR block."""
    return bytes([0x01, DAG_CBOR, SHA2_256, 0x20]) + hashlib.sha256(data).digest()


def cid_text(cid: bytes) -> str:
    return libipld.encode_cid(cid)


def to_dag(value: Any) -> Any:
    """A record in atproto's JSON form as the data model: {"$link": cid} -> a CID, {"$bytes": b64} -> bytes."""
    if isinstance(value, dict):
        if set(value) == {"$link"} and isinstance(value["$link"], str):
            try:
                _base, raw = libipld.decode_multibase(value["$link"])
                libipld.decode_cid(raw)
            except ValueError:
                pass  # not a CID: kept as the map it is
            else:
                return raw  # libipld writes bytes that are a CID as a link (tag 42)
        if set(value) == {"$bytes"} and isinstance(value["$bytes"], str):
            text = value["$bytes"]
            return base64.b64decode(text + "=" * (-len(text) % 4))
        return {key: to_dag(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_dag(item) for item in value]
    return value


def record_block(value: dict[str, Any]) -> tuple[bytes, bytes]:
    """(CID, DAG-CBOR bytes) of a record. ValueError: it has no DAG-CBOR form (an integer beyond 64 bits)."""
    data = libipld.encode_dag_cbor(to_dag(value))
    return cid_bytes(data), data


def repo_record_cid(value: dict[str, Any]) -> str:
    """The CID a record has in the repository (its DAG-CBOR hash), as a string."""
    return cid_text(record_block(value)[0])


# --- the Merkle Search Tree -------------------------------------------------------------------------------
def key_layer(key: str) -> int:
    """The MST layer of a key: leading zero bits of its SHA-256, counted in pairs (a fanout of 4)."""
    zeros = 0
    for byte in hashlib.sha256(key.encode()).digest():
        if byte == 0:
            zeros += 8
            continue
        zeros += 8 - byte.bit_length()
        break
    return zeros // 2


@dataclass
class _Tree:
    blocks: list[tuple[bytes, bytes]]  # every node, as (CID, bytes)

    def node(self, leaves: list[tuple[str, int, bytes]], layer: int) -> bytes | None:
        """The CID of the node holding `leaves` (key, layer, record CID; sorted) at `layer`; None when empty.
        Keys of this layer are its entries; the keys between them go into subtrees one layer down (a range
        with none of the next layer's keys is a node with only a left pointer, as the spec lays it out)."""
        if not leaves:
            return None
        groups: list[list[tuple[str, int, bytes]]] = [[]]
        mine: list[tuple[str, bytes]] = []
        for key, depth, value in leaves:
            if depth >= layer:
                mine.append((key, value))
                groups.append([])
            else:
                groups[-1].append((key, depth, value))
        left = self.node(groups[0], layer - 1)
        entries: list[dict[str, Any]] = []
        previous = b""
        for (key, value), group in zip(mine, groups[1:], strict=True):
            raw = key.encode()
            shared = 0
            while shared < min(len(raw), len(previous)) and raw[shared] == previous[shared]:
                shared += 1
            entries.append({"p": shared, "k": raw[shared:], "v": value, "t": self.node(group, layer - 1)})
            previous = raw
        data = libipld.encode_dag_cbor({"l": left, "e": entries})
        cid = cid_bytes(data)
        self.blocks.append((cid, data))
        return cid


def build_mst(records: dict[str, bytes]) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The root CID and the node blocks of the MST of `records` (MST key -> record CID)."""
    leaves = [(key, key_layer(key), records[key]) for key in sorted(records, key=str.encode)]
    tree = _Tree([])
    top = max((layer for _key, layer, _cid in leaves), default=0)
    root = tree.node(leaves, top)
    if root is None:  # an empty repository: one node with no entries
        data = libipld.encode_dag_cbor({"l": None, "e": []})
        root = cid_bytes(data)
        tree.blocks.append((root, data))
    return root, tree.blocks


# --- signing and the CAR ----------------------------------------------------------------------------------
def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA over SHA-256 as atproto wants it: 64 bytes r||s, in the low-S form. Deterministic (RFC 6979), so
    the same repository gives the same CAR every time."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)))
    order = CURVE_ORDERS[key.curve.name]
    if s > order // 2:  # both (r, s) and (r, n - s) verify: atproto accepts only the low one
        s = order - s
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def car(root: bytes, blocks: list[tuple[bytes, bytes]]) -> bytes:
    """A CAR v1: the header {version: 1, roots: [root]}, then each block as varint(len) + CID + bytes."""
    header = libipld.encode_dag_cbor({"version": 1, "roots": [root]})
    parts = [varint(len(header)), header]
    for cid, data in blocks:
        parts += [varint(len(cid) + len(data)), cid, data]
    return b"".join(parts)


def wrong_signer(did: str) -> ec.EllipticCurvePrivateKey:
    """A key that is not the account's (for the bad-signature tests)."""
    secret = int.from_bytes(hashlib.sha256(f"not the key of {did}".encode()).digest(), "big") % (SECP256K1_ORDER - 1)
    return ec.derive_private_key(secret + 1, ec.SECP256K1())


def build_repo_car(
    sim: BlueskySimulator,
    did: str | None = None,
    *,
    corrupt: str | None = None,
    truncate: int | None = None,
    wrong_key: bool = False,
) -> bytes:
    """The repository of `did` (default: the demo account) as a signed CAR: the commit block first (the root),
    then the MST nodes, then the records in key order.

    For tests: `corrupt` names a record by its MST key ("app.bsky.feed.post/<rkey>") whose block keeps its
    CID but not its bytes; `truncate` keeps only that many bytes of the file; `wrong_key` signs the commit
    with a key the DID document does not name. Records with no DAG-CBOR form (only /_sim/posts can store
    them) are left out, as no PDS could hold them."""
    with sim.repo_lock:
        account = sim.accounts[did or sim.demo_did]
        values = {
            f"{collection}/{rkey}": record.value
            for collection, records in account.records.items()
            for rkey, record in records.items()
        }
        rev = account.rev or tid(now_micros(), account.clock_id)
    if account.signer is None:
        raise ValueError(f"{account.did} has no signing key")
    record_blocks: dict[str, tuple[bytes, bytes]] = {}
    for key, value in values.items():
        try:
            record_blocks[key] = record_block(value)
        except (ValueError, OverflowError):
            continue
    root, nodes = build_mst({key: cid for key, (cid, _data) in record_blocks.items()})
    unsigned = {"did": account.did, "version": 3, "data": root, "rev": rev, "prev": None}
    signer = wrong_signer(account.did) if wrong_key else account.signer
    signature = sign(signer, libipld.encode_dag_cbor(unsigned))
    commit = libipld.encode_dag_cbor({**unsigned, "sig": signature})
    commit_cid = cid_bytes(commit)
    blocks = [(commit_cid, commit), *reversed(nodes)]  # the root node first, as a walk meets them
    for key in sorted(record_blocks, key=str.encode):
        cid, data = record_blocks[key]
        if key == corrupt:
            data = data.replace(b"createdAt", b"createdAx", 1) if b"createdAt" in data else data + b"\x00"
        blocks.append((cid, data))
    if corrupt is not None and corrupt not in record_blocks:
        raise KeyError(f"no record {corrupt} in {account.did}")
    out = car(commit_cid, blocks)
    return out[:truncate] if truncate is not None else out
