"""An export file as the importers read it: a ZIP whose entries are checked before anything is read
(no `..`, no absolute names, no links, no bombs), or a single file (a repository CAR). Nothing is
extracted to disk: entries are read from the archive, each read capped."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from trove.platforms.base import ExportUnreadable

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True)
class Limits:
    """Caps on what an export may unpack to: the whole (declared sizes), each entry read into memory, and
    the compression ratio of any entry big enough to matter (a bomb packs gigabytes of zeros in kilobytes)."""

    total_bytes: int = 20 * 1024**3
    entry_bytes: int = 512 * 1024**2
    ratio: int = 200
    ratio_floor: int = 1024**2  # entries under this size may compress as well as they like

    @classmethod
    def from_environment(cls) -> Limits:
        total = os.environ.get("TROVE_IMPORT_MAX_BYTES")
        return cls(total_bytes=int(total)) if total else cls()


class ExportArchive:
    """One export file. `names()` lists its files (directories left out); a single file that is not a ZIP
    is seen as one entry named after it."""

    def __init__(self, path: Path, name: str | None = None, limits: Limits | None = None) -> None:
        self.path = path
        self.name = name or path.name
        self.limits = limits or Limits.from_environment()
        self._zip: zipfile.ZipFile | None = None
        self._entries: dict[str, zipfile.ZipInfo] = {}
        self.bytes_read = 0  # of the file as stored (compressed): how far through it an import is
        try:
            with path.open("rb") as handle:
                head = handle.read(4)
        except OSError as error:
            raise ExportUnreadable(f"{self.name}: cannot be read ({error.strerror})") from error
        if head in ZIP_MAGIC:
            self._open_zip()
        elif path.stat().st_size > self.limits.total_bytes:
            raise ExportUnreadable(f"{self.name}: larger than the import limit of {self.limits.total_bytes} bytes")

    @property
    def is_zip(self) -> bool:
        return self._zip is not None

    def _open_zip(self) -> None:
        try:
            archive = zipfile.ZipFile(self.path)
            infos = archive.infolist()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ExportUnreadable(f"{self.name}: not a readable ZIP (truncated or damaged: {error})") from error
        total = 0
        for info in infos:
            entry = info.filename
            check_entry_name(entry)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ExportUnreadable(f"{entry}: a symbolic link in the archive (refused)")
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise ExportUnreadable(f"{entry}: encrypted (export it again without a password)")
            total += info.file_size
            if total > self.limits.total_bytes:
                raise ExportUnreadable(
                    f"{entry}: the archive unpacks to more than the import limit of {self.limits.total_bytes} bytes"
                )
            if info.file_size > self.limits.ratio_floor and info.file_size > self.limits.ratio * max(
                info.compress_size, 1
            ):
                raise ExportUnreadable(
                    f"{entry}: compressed {info.file_size // max(info.compress_size, 1)}:1 (a zip bomb?), refused"
                )
            if entry in self._entries:
                raise ExportUnreadable(f"{entry}: appears twice in the archive")
            self._entries[entry] = info
        self._zip = archive

    def names(self) -> list[str]:
        return list(self._entries) if self._zip is not None else [self.name]

    @property
    def names_set(self) -> frozenset[str]:
        return frozenset(self._entries) if self._zip is not None else frozenset((self.name,))

    def size(self, entry: str) -> int:
        if self._zip is None:
            return self.path.stat().st_size
        return self._info(entry).file_size

    def _info(self, entry: str) -> zipfile.ZipInfo:
        info = self._entries.get(entry)
        if info is None:
            raise ExportUnreadable(f"{entry}: not in the archive")
        return info

    def read(self, entry: str) -> bytes:
        if self._zip is None:
            if entry != self.name:
                raise ExportUnreadable(f"{entry}: not in the file")
            if self.path.stat().st_size > self.limits.entry_bytes:
                raise ExportUnreadable(f"{entry}: larger than {self.limits.entry_bytes} bytes")
            self.bytes_read += self.path.stat().st_size
            return self.path.read_bytes()
        info = self._info(entry)
        if info.file_size > self.limits.entry_bytes:
            raise ExportUnreadable(f"{entry}: larger than {self.limits.entry_bytes} bytes")
        try:
            # zipfile stops at the declared size and checks the CRC: a lying header cannot unpack more.
            data = self._zip.read(info)
            self.bytes_read += info.compress_size
            return data
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as error:
            raise ExportUnreadable(f"{entry}: damaged in the archive ({error})") from error

    def read_unpacked(self, entry: str) -> bytes:
        data = self.read(entry)
        if not entry.lower().endswith(".gz"):
            return data
        return gunzip_capped(data, entry, self.limits)

    def open(self, entry: str) -> zipfile.ZipExtFile:
        """A stream of a (large) entry, for copying media to storage without holding it in memory."""
        if self._zip is None:
            raise ExportUnreadable(f"{entry}: the file is not an archive")
        return self._zip.open(self._info(entry))

    @contextlib.contextmanager
    def stream(self, entry: str) -> Iterator[BinaryIO]:
        """`open`, for a single file too, with damage inside the entry (a bad CRC, a truncated member)
        reported as ExportUnreadable naming it."""
        try:
            if self._zip is None:
                if entry != self.name:
                    raise ExportUnreadable(f"{entry}: not in the file")
                with self.path.open("rb") as handle:
                    yield handle
                self.bytes_read += self.path.stat().st_size
            else:
                info = self._info(entry)
                with self._zip.open(info) as handle:
                    yield handle
                self.bytes_read += info.compress_size
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as error:
            raise ExportUnreadable(f"{entry}: damaged in the archive ({error})") from error

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> ExportArchive:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def check_entry_name(entry: str) -> None:
    """Refuse names that would leave a directory if anyone unpacked the archive (we never do, but such a
    file is hostile or broken, and nothing in it is trusted)."""
    if not entry or "\x00" in entry:
        raise ExportUnreadable(f"{entry!r}: an entry without a usable name")
    if entry.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", entry) or "\\" in entry:
        raise ExportUnreadable(f"{entry}: an absolute or Windows path in the archive (refused)")
    if ".." in PurePosixPath(entry).parts:
        raise ExportUnreadable(f"{entry}: a path that climbs out with '..' (refused)")


def gunzip_capped(data: bytes, entry: str, limits: Limits) -> bytes:
    """Gunzip at most `limits.entry_bytes` and within the ratio: an export's .gz files are user-supplied."""
    cap = min(limits.entry_bytes, max(limits.ratio_floor, limits.ratio * max(len(data), 1)))
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=_Bytes(data)) as stream:
            while chunk := stream.read(1024 * 1024):
                out += chunk
                if len(out) > cap:
                    raise ExportUnreadable(f"{entry}: unpacks to more than {cap} bytes (a bomb?), refused")
    except (OSError, EOFError, zlib.error) as error:
        raise ExportUnreadable(f"{entry}: not a readable gzip file ({error})") from error
    return bytes(out)


class _Bytes:
    """A minimal read-only file over bytes (io.BytesIO would copy them)."""

    def __init__(self, data: bytes) -> None:
        self.view = memoryview(data)
        self.at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.view) if size < 0 else min(len(self.view), self.at + size)
        chunk = bytes(self.view[self.at : end])
        self.at = end
        return chunk
