"""Taking in an export file (an upload, or a file named to `trove import`): written under the state
directory as <user id>/<sha256>, hashed as it streams, capped, and queued as an import; handing in the same
file while its import is unfinished joins that import."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from trove.imports.archive import Limits
from trove.imports.runner import imports_dir
from trove.queries.imports import CREATE_IMPORT


class TooLarge(Exception):
    pass


@dataclass(frozen=True)
class Received:
    import_id: str
    new: bool  # False: the same file's unfinished import was joined
    sha256: str
    size: int


def clean_file_name(name: str | None) -> str:
    """The name shown for the file: its last path part, printable, at most 255 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:255] or "export"


async def receive(
    conn: AsyncConnection[Any],
    state: Path,
    user_id: str,
    name: str | None,
    chunks: AsyncIterator[bytes],
    limits: Limits | None = None,
    holder: tuple[str, timedelta] | None = None,
) -> Received:
    """Stream `chunks` to the import directory and queue the import (with `holder`, a worker id and lease:
    taken by that process at once, when new). TooLarge past the import limit (the partial file is removed);
    ValueError for an empty file."""
    cap = (limits or Limits.from_environment()).total_bytes
    folder = imports_dir(state) / user_id
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".partial-{secrets.token_hex(8)}"
    digest = hashlib.sha256()
    size = 0
    try:
        with partial.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > cap:
                    raise TooLarge(f"the file is over the import limit of {cap} bytes")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise ValueError("the file is empty")
        sha = digest.hexdigest()
        os.replace(partial, folder / sha)  # the same content under the same name: replacing it changes nothing
    finally:
        partial.unlink(missing_ok=True)
    params = {
        "user": user_id,
        "name": clean_file_name(name),
        "path": f"{user_id}/{sha}",
        "sha": sha,
        "size": size,
        "holder": holder[0] if holder else None,
        "lease": holder[1] if holder else None,
    }
    for _ in range(3):  # the same file handed in twice at once: one insert wins, the other joins it
        cur = await conn.execute(CREATE_IMPORT, params)
        row = await cur.fetchone()
        if row is not None:
            return Received(str(row[0]), bool(row[1]), sha, size)
    raise RuntimeError("the import was neither created nor found")
