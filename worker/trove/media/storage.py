"""Storage backends behind one small interface: `local` (a directory; the default) and `supabase`
(Supabase Storage, bucket `media`). Writes go to a temporary object first and become visible under their
final path only when complete, so a crash never leaves a half file that looks downloaded."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
from storage3 import AsyncStorageClient
from storage3.exceptions import StorageException

from trove.config import public_url, state_dir

# The extensions the media sniffer gives (trove.media.sniff): files a browser may show inline.
MEDIA_EXTENSIONS = frozenset(
    {"jpg", "png", "gif", "webp", "heic", "heif", "avif", "mp4", "mov", "webm", "ogg", "mp3", "aac", "wav", "m4a"}
)
STORAGE_PATH = re.compile(r"^[0-9a-f-]{36}/[a-z][a-z0-9_]{0,31}/[0-9a-f]{64}\.[a-z0-9]{2,5}$")


def storage_path(user_id: str, platform: str, media_key: str, ext: str) -> str:
    """{user_id}/{platform}/{sha256(media_key)}.{ext}: nothing from the payload reaches the path verbatim."""
    path = f"{user_id}/{platform}/{hashlib.sha256(media_key.encode()).hexdigest()}.{ext}"
    if not STORAGE_PATH.match(path):
        raise ValueError(f"refusing storage path {path!r}")
    return path


class Upload(Protocol):
    async def write(self, chunk: bytes) -> None: ...
    async def commit(self, path: str, content_type: str) -> None: ...
    async def abort(self) -> None: ...


class Storage(Protocol):
    name: str

    async def begin(self) -> Upload: ...
    async def exists(self, path: str) -> bool: ...
    async def signed_url(self, path: str, ttl_seconds: int = 3600) -> str: ...


# --- local ---------------------------------------------------------------------------------------------
def _signing_key() -> bytes:
    configured = os.environ.get("TROVE_MEDIA_SIGNING_KEY")
    if configured:
        return configured.encode()
    path = Path(state_dir()) / "media_signing_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip().encode()


def media_signature(key: bytes, path: str, expires: int) -> str:
    digest = hmac.new(key, f"{path}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class LocalUpload:
    def __init__(self, root: Path) -> None:
        self.root = root
        partial = root / ".partial"
        partial.mkdir(parents=True, exist_ok=True)
        self.temp = partial / secrets.token_hex(16)
        self.handle = self.temp.open("wb")

    async def write(self, chunk: bytes) -> None:
        self.handle.write(chunk)

    async def commit(self, path: str, content_type: str) -> None:
        self.handle.flush()
        # In a thread: flushing a big file to disk takes long, and the other downloads go on meanwhile.
        await asyncio.to_thread(os.fsync, self.handle.fileno())
        self.handle.close()
        final = (self.root / path).resolve()
        if not final.is_relative_to(self.root.resolve()):
            raise ValueError(f"refusing to write outside the media root: {path!r}")
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.temp, final)  # atomic: the file appears complete or not at all

    async def abort(self) -> None:
        self.handle.close()
        self.temp.unlink(missing_ok=True)


@dataclass
class LocalStorage:
    root: Path
    key: bytes
    base_url: str
    name: str = "local"

    @classmethod
    def from_environment(cls) -> LocalStorage:
        root = Path(os.environ.get("TROVE_MEDIA_DIR") or Path(state_dir()) / "media")
        return cls(root, _signing_key(), public_url())

    async def begin(self) -> LocalUpload:
        return LocalUpload(self.root)

    def file(self, path: str) -> Path:
        if not STORAGE_PATH.match(path):
            raise FileNotFoundError(path)
        return self.root / path

    async def exists(self, path: str) -> bool:
        return self.file(path).is_file()

    async def signed_url(self, path: str, ttl_seconds: int = 3600) -> str:
        expires = int(time.time()) + ttl_seconds
        return f"{self.base_url}/media/{path}?expires={expires}&sig={media_signature(self.key, path, expires)}"

    def verify(self, path: str, expires: str, sig: str) -> bool:
        try:
            deadline = int(expires)
        except ValueError:
            return False
        return deadline >= time.time() and hmac.compare_digest(media_signature(self.key, path, deadline), sig)


# --- Supabase Storage ------------------------------------------------------------------------------------
class StorageError(Exception):
    """The storage backend refused or failed a write (the download is retried later)."""


class SupabaseUpload:
    """Supabase Storage takes an object in one request: the bytes are spooled to a temporary file (not
    memory), which storage3 then sends streaming."""

    def __init__(self, storage: SupabaseStorage) -> None:
        self.storage = storage
        self.spool = LocalUpload(Path(state_dir()) / "spool")

    async def write(self, chunk: bytes) -> None:
        await self.spool.write(chunk)

    async def commit(self, path: str, content_type: str) -> None:
        self.spool.handle.close()
        try:
            await self.storage.bucket.upload(
                path, self.spool.temp, {"content-type": content_type, "upsert": "true", "cache-control": "3600"}
            )
        except (StorageException, httpx.HTTPError) as error:
            raise StorageError(f"Supabase Storage refused the upload: {error}") from error
        finally:
            self.spool.temp.unlink(missing_ok=True)

    async def abort(self) -> None:
        await self.spool.abort()


@dataclass
class SupabaseStorage:
    """The `media` bucket through Supabase's own client (storage3), on our shared httpx client."""

    url: str
    service_key: str
    http: httpx.AsyncClient
    bucket_name: str = "media"
    name: str = "supabase"

    def __post_init__(self) -> None:
        self.client = AsyncStorageClient(
            f"{self.url}/storage/v1/",
            {"Authorization": f"Bearer {self.service_key}", "apikey": self.service_key},
            http_client=self.http,
        )
        self.bucket = self.client.from_(self.bucket_name)

    async def begin(self) -> SupabaseUpload:
        return SupabaseUpload(self)

    async def exists(self, path: str) -> bool:
        return await self.bucket.exists(path)

    async def signed_url(self, path: str, ttl_seconds: int = 3600) -> str:
        # Anything but a picture, video or sound (an activity file from an export, GPX being XML) is served
        # as a download, never rendered on the storage origin.
        options: dict[str, bool] = {} if path.rsplit(".", 1)[-1] in MEDIA_EXTENSIONS else {"download": True}
        signed = (await self.bucket.create_signed_url(path, ttl_seconds, options or None))["signedURL"]
        if not signed:
            raise StorageError(f"Supabase Storage gave no signed URL for {path}")
        return signed


def storage_from_environment(http: httpx.AsyncClient) -> LocalStorage | SupabaseStorage:
    """TROVE_STORAGE=supabase (with SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY) or local (default)."""
    if os.environ.get("TROVE_STORAGE", "local") == "supabase":
        url, key = os.environ.get("SUPABASE_URL"), os.environ.get("SUPABASE_SERVICE_ROLE_KEY")
        if not url or not key:
            raise RuntimeError("TROVE_STORAGE=supabase needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY")
        return SupabaseStorage(url.rstrip("/"), key, http)
    return LocalStorage.from_environment()
