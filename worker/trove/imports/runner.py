"""Running one import: the file is recognized by the platform whose export it is, tied to the user's account
of that platform (one is made for an account known only from its export), and its records are written in
batches, each batch in one transaction with the import's progress, so an import killed halfway resumes at
the first record it had not committed. Every record is kept raw (ingested_items, source 'import', once per
identity and content: the same file twice changes nothing), its post stored like a synced one (a post the
API archived keeps what the API said and takes only what it lacked), and the media inside the export copied
to storage as they are. A record that cannot be read whole is recorded on the log and the others go on."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from trove.imports.archive import ExportArchive
from trove.json_input import unstorable_text
from trove.media.download import MAX_BYTES
from trove.media.sniff import MAX_SNIFF, sniff
from trove.media.storage import Storage, storage_path
from trove.platforms.base import (
    Account,
    ExportFile,
    ExportOwner,
    ExportReader,
    ExportRecord,
    ExportUnreadable,
    NormalizedPost,
    Platform,
)
from trove.queries.imports import (
    ACCOUNT_BY_PLATFORM_ID,
    ACCOUNT_BY_USERNAME,
    ACCOUNT_FOR_IMPORT,
    COUNT_IMPORT_BATCH,
    CREATE_EXPORT_ACCOUNT,
    CREATE_IMPORT_LOG,
    FINISH_IMPORT_LOG,
    IMPORT_JOB,
    IMPORT_PROGRESS,
    IMPORT_STARTED,
    INSERT_IMPORTED_ITEM,
    MATCHING_POST,
    MEDIA_COPIED_ALREADY,
    POST_OWNERS,
    REOPEN_IMPORT_LOG,
    UPSERT_IMPORTED_MEDIA,
)
from trove.queries.media import LINK_MEDIA, LOCK_ARCHIVE_VERSION
from trove.redact import redact
from trove.store import NotYours, store_post

log = logging.getLogger("trove.imports")

BATCH_RECORDS = 200  # records per transaction (and per progress write)
BATCH_BYTES = 64 * 1024 * 1024  # ... or fewer, once this much media was copied in it
MAX_PROBLEMS = 500  # kept on the log; beyond that only counted
CHUNK = 256 * 1024

# Files that are not pictures or video but belong in the archive: activity tracks as recorded.
TRACK_TYPES = {
    "gpx": "application/gpx+xml",
    "tcx": "application/vnd.garmin.tcx+xml",
    "fit": "application/vnd.ant.fit",
}


XML_TRACK_STARTS = (b"<?xml", b"<gpx", b"<TrainingCenterDatabase")


def imports_dir(state: Path) -> Path:
    """Where handed-in files wait for the worker: <state>/imports/<user id>/<sha256>."""
    return state / "imports"


@dataclass
class Progress:
    """Where an import stands; kept on the import's row (`progress`) after every batch."""

    records: int = 0  # records read and committed: the resume point
    posts: int = 0
    posts_created: int = 0
    posts_updated: int = 0
    unchanged: int = 0  # records imported before (the same file, or an older export)
    matched: int = 0  # records that are a post the API archived
    files: int = 0
    file_bytes: int = 0
    problems: int = 0
    total: int | None = None  # records in the file, once counted
    started: float = field(default_factory=time.monotonic)

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("started")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        known = {f.name for f in dataclasses.fields(cls)} - {"started"}
        return cls(**{k: v for k, v in data.items() if k in known and isinstance(v, int | None)})


class ImportRefused(Exception):
    """The file is read, but importing it would write into someone else's archive."""


@dataclass
class ImportResult:
    status: str  # success, partial, failed
    platform: str | None
    account_id: str | None
    sync_log_id: str | None
    progress: Progress
    problems: list[str]
    error: str | None = None


def recognize(archive: ExportArchive, platforms: dict[str, Platform]) -> tuple[Platform, ExportReader]:
    for platform in platforms.values():
        reader = platform.export
        if reader is not None and reader.recognizes(archive):
            return platform, reader
    known = ", ".join(sorted(p.name for p in platforms.values() if p.export is not None)) or "none"
    raise ExportUnreadable(f"{archive.name}: not an export Trove can read (formats: {known})")


def record_external_id(record: ExportRecord) -> str:
    """The record's identity and a hash of its content: read again unchanged it is the same item; changed in
    a newer export it is kept beside the first."""
    content = json.dumps(record.payload, sort_keys=True, separators=(",", ":"), default=str)
    return f"{record.identity}#{hashlib.sha256(content.encode()).hexdigest()[:32]}"


def file_type(entry: str, head: bytes) -> tuple[str, str] | None:
    """(content type, extension) of a file from an export: media by its first bytes; an activity file by its
    name and its first bytes agreeing (a FIT header, gzip, XML); None for anything else."""
    found = sniff(head)
    if found:
        return found
    name = entry.lower()
    if name.endswith(".gz"):
        return ("application/gzip", "gz") if head[:2] == b"\x1f\x8b" else None
    ext = name.rsplit(".", 1)[-1]
    if ext == "fit":
        return (TRACK_TYPES[ext], ext) if head[8:12] == b".FIT" else None
    if ext in TRACK_TYPES and head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(XML_TRACK_STARTS):
        return TRACK_TYPES[ext], ext
    return None


class ImportRunner:
    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        platforms: dict[str, Platform],
        storage: Storage,
        http: httpx.AsyncClient,
        state: Path,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        batch_records: int = BATCH_RECORDS,
    ) -> None:
        self.pool = pool
        self.platforms = platforms
        self.storage = storage
        self.http = http
        self.state = state
        self.on_progress = on_progress
        self.batch_records = batch_records
        self.archive: ExportArchive | None = None

    @property
    def read_bytes(self) -> int:
        """How much of the file (as stored) has been read: the progress line's share and ETA."""
        return self.archive.bytes_read if self.archive is not None else 0

    async def run(self, import_id: str) -> ImportResult:
        """Import the file of `import_id` (resuming where it stopped). ExportUnreadable and ImportRefused
        end it failed (the caller records that on the queue); other errors are for the caller to retry."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(IMPORT_JOB, (import_id,))
            row = await cur.fetchone()
        if row is None:
            raise LookupError(f"no import {import_id}")
        user_id, file_name, file_path, progress_json, log_id = row
        progress = Progress.from_json(progress_json or {})
        problems: list[str] = []
        platform_name: str | None = None
        account_id: str | None = None
        try:
            with ExportArchive(imports_dir(self.state) / file_path, name=file_name) as archive:
                self.archive = archive
                platform, reader = recognize(archive, self.platforms)
                platform_name = platform.name
                owner = reader.owner(archive)
                account_id = await self._account(user_id, platform.name, owner)
                log_id = await self._start(import_id, platform.name, account_id, log_id, file_name)
                context = await reader.prepare(self.http, owner)
                account = await self._load_account(account_id)
                await self._records(
                    import_id, archive, reader, owner, context, account, platform, log_id, progress, problems
                )
        except (ExportUnreadable, ImportRefused) as error:
            if log_id:
                await self._finish_log(log_id, "failed", str(error), progress, problems)
            return ImportResult("failed", platform_name, account_id, log_id, progress, problems, str(error))
        except Exception as error:
            # Interrupted (the database or the platform away): the log says so until the import runs again.
            if log_id:
                message = redact(
                    f"interrupted after {progress.records} records ({type(error).__name__}: {error});"
                    " it resumes when run again"
                )
                with contextlib.suppress(psycopg.Error):
                    await self._finish_log(log_id, "failed", message, progress, problems)
            raise
        status = "partial" if progress.problems else "success"
        assert log_id is not None
        await self._finish_log(log_id, status, None, progress, problems)
        return ImportResult(status, platform_name, account_id, log_id, progress, problems)

    # --- the account and the log ------------------------------------------------------------------------
    async def _account(self, user_id: str, platform: str, owner: ExportOwner) -> str:
        """The user's account the export belongs to. An account of another user is refused. Where the user
        has none, one known only from its export is made (not connected, never synced) under an id of its
        own, never the platform's: an export proves nothing, so it must not claim the platform's account
        (its real owner connects it later, and the API's posts then move to that account)."""
        async with self.pool.connection() as conn, conn.transaction():
            if owner.platform_user_id:
                cur = await conn.execute(ACCOUNT_BY_PLATFORM_ID, (platform, owner.platform_user_id))
                found = await cur.fetchone()
                if found is not None:
                    if found[1] != user_id:
                        raise ImportRefused(f"this {platform} export is of an account connected to another Trove user")
                    return str(found[0])
            else:
                cur = await conn.execute(ACCOUNT_BY_USERNAME, (user_id, platform, owner.username))
                found = await cur.fetchone()
                if found is not None:
                    return str(found[0])
            export_id = f"export:{user_id}:{owner.platform_user_id or owner.username}"
            cur = await conn.execute(ACCOUNT_BY_PLATFORM_ID, (platform, export_id))
            found = await cur.fetchone()
            if found is not None:
                return str(found[0])
            cur = await conn.execute(
                CREATE_EXPORT_ACCOUNT,
                (user_id, platform, export_id, owner.username[:200], (owner.display_name or "")[:200] or None),
            )
            created = await cur.fetchone()
            assert created is not None
            return str(created[0])

    async def _start(self, import_id: str, platform: str, account_id: str, log_id: str | None, name: str) -> str:
        async with self.pool.connection() as conn, conn.transaction():
            if log_id is not None:
                await conn.execute(REOPEN_IMPORT_LOG, (log_id,))
            else:
                cur = await conn.execute(CREATE_IMPORT_LOG, (account_id, Jsonb({"import_id": import_id, "file": name})))
                row = await cur.fetchone()
                assert row is not None
                log_id = str(row[0])
            await conn.execute(IMPORT_STARTED, (platform, account_id, log_id, import_id))
        return log_id

    async def _load_account(self, account_id: str) -> Account:
        async with self.pool.connection() as conn:
            cur = await conn.execute(ACCOUNT_FOR_IMPORT, (account_id,))
            row = await cur.fetchone()
        assert row is not None
        return Account(row[0], row[1], row[2], row[3], row[4], None, row[5] or {})

    async def _finish_log(
        self, log_id: str, status: str, error: str | None, progress: Progress, problems: list[str]
    ) -> None:
        if error is None and progress.problems:
            error = f"{progress.problems} record(s) of the export could not be read whole"
        details = {"problems": problems[:MAX_PROBLEMS], "progress": progress.as_json()} if problems or error else None
        async with self.pool.connection() as conn:
            await conn.execute(FINISH_IMPORT_LOG, (status, error, Jsonb(details) if details else None, log_id))

    # --- records ----------------------------------------------------------------------------------------
    async def _records(
        self,
        import_id: str,
        archive: ExportArchive,
        reader: ExportReader,
        owner: ExportOwner,
        context: dict[str, Any],
        account: Account,
        platform: Platform,
        log_id: str,
        progress: Progress,
        problems: list[str],
    ) -> None:
        done = progress.records
        batch: list[ExportRecord] = []
        batch_bytes = 0
        position = 0
        for record in self._read(reader.records(archive, owner, context), archive.name):
            position += 1
            if position <= done:
                continue  # committed by an earlier run of this import
            batch.append(record)
            batch_bytes += sum(archive.size(f.entry) for f in record.files if f.entry in archive.names_set)
            if len(batch) >= self.batch_records or batch_bytes >= BATCH_BYTES:
                await self._write_batch(import_id, archive, account, platform, log_id, batch, progress, problems)
                batch, batch_bytes = [], 0
                await asyncio.sleep(0)
        if batch:
            await self._write_batch(import_id, archive, account, platform, log_id, batch, progress, problems)
        progress.total = progress.records
        async with self.pool.connection() as conn:
            await conn.execute(IMPORT_PROGRESS, (Jsonb(progress.as_json()), import_id))

    @staticmethod
    def _read(records: Iterator[ExportRecord], name: str) -> Iterator[ExportRecord]:
        """The reader's records; a reader that fails past its own checks (a value it did not expect) cannot go
        on, and retrying would fail the same way: the file is unreadable there, named."""
        count = 0
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            except ExportUnreadable:
                raise
            except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as error:
                raise ExportUnreadable(
                    f"{name}: unreadable after record {count} ({type(error).__name__}: {str(error)[:200]})"
                ) from error
            count += 1
            yield record

    async def _write_batch(
        self,
        import_id: str,
        archive: ExportArchive,
        account: Account,
        platform: Platform,
        log_id: str,
        batch: list[ExportRecord],
        progress: Progress,
        problems: list[str],
    ) -> None:
        step = Progress(**progress.as_json())
        step_problems: list[str] = []
        async with self.pool.connection() as conn, conn.transaction():
            # The archive version first, as a sync's page and a media copy take it (no deadlock between them).
            await conn.execute(LOCK_ARCHIVE_VERSION, (account.user_id,))
            # Looked up once per batch, not per record: whose archive its posts are in, which files are copied.
            post_ids = [r.post.platform_post_id for r in batch if r.post is not None]
            cur = await conn.execute(POST_OWNERS, (account.platform, post_ids))
            owners = {row[0]: row[1] for row in await cur.fetchall()}
            keys = [f.media_key for r in batch for f in r.files]
            cur = await conn.execute(MEDIA_COPIED_ALREADY, (account.user_id, account.platform, keys))
            copied = {row[0] for row in await cur.fetchall()}
            for record in batch:
                await self._write_record(conn, archive, account, platform, record, owners, copied, step, step_problems)
                step.records += 1
            fetched = step.posts - progress.posts
            created = step.posts_created - progress.posts_created
            updated = step.posts_updated - progress.posts_updated
            files = step.files - progress.files
            meta = {"import_id": import_id, "records": step.records, "files": step.files, "problems": step.problems}
            await conn.execute(COUNT_IMPORT_BATCH, (fetched, created, updated, files, Jsonb(meta), log_id))
            await conn.execute(IMPORT_PROGRESS, (Jsonb(step.as_json()), import_id))
        for name in dataclasses.fields(Progress):
            if name.name != "started":
                setattr(progress, name.name, getattr(step, name.name))
        problems.extend(step_problems)
        if self.on_progress is not None:
            self.on_progress(progress)

    async def _write_record(
        self,
        conn: AsyncConnection[Any],
        archive: ExportArchive,
        account: Account,
        platform: Platform,
        record: ExportRecord,
        owners: dict[str, str],
        copied: set[str],
        step: Progress,
        problems: list[str],
    ) -> None:
        if record.problem:
            step.problems += 1
            problems.append(record.problem)
        unstorable = unstorable_text(record.payload) or (record.post and unstorable_text(record.post.post_data))
        if unstorable:
            step.problems += 1
            problems.append(f"{record.identity}: not stored: its {unstorable}")
            return
        cur = await conn.execute(
            INSERT_IMPORTED_ITEM,
            (account.platform, account.id, record.event_type, record_external_id(record), Jsonb(record.payload)),
        )
        item = await cur.fetchone()
        if item is None:
            step.unchanged += 1  # imported before, with everything it brought
            return
        post = record.post
        if post is None:
            return
        files = record.files
        if record.match is not None:
            cur = await conn.execute(
                MATCHING_POST,
                (account.id, record.match.created_at, record.match.created_at, sorted(record.match.content_types)),
            )
            matched = await cur.fetchone()
            if matched is not None:
                # The same post archived from the API: it stays as the API gave it, with the export's record
                # beside it (its files are the API's copies).
                export_data = post.post_data.get("trove_export", post.post_data)
                post = dataclasses.replace(
                    post, platform_post_id=matched[0], post_data={"trove_export": export_data}, media=()
                )
                files = ()
                step.matched += 1
        owner = owners.get(post.platform_post_id, account.user_id)  # a matched post is the account's own
        if owner != account.user_id:
            step.problems += 1
            problems.append(f"{record.identity}: this post is in another Trove user's archive; not imported")
            return
        created = (step.posts_created, step.posts_updated, step.files, step.file_bytes)
        try:
            # A savepoint: a post Postgres refuses (a text too long to index) is this record's problem; its raw
            # record stays.
            async with conn.transaction():
                counts = await store_post(
                    conn, account, post, item[0], normalize=platform.connector.normalize, fill_only=True
                )
                step.posts_created += counts.created
                step.posts_updated += counts.updated
                if files:
                    assert counts.raw_post_id is not None
                    await self._copy_files(
                        conn, archive, account, post, counts.raw_post_id, files, copied, step, problems
                    )
        except (NotYours, psycopg.DataError, psycopg.errors.ProgramLimitExceeded) as error:
            step.posts_created, step.posts_updated, step.files, step.file_bytes = created
            step.problems += 1
            reason = error.diag.message_primary if isinstance(error, psycopg.Error) else str(error)
            problems.append(f"{record.identity}: its post was not stored ({reason})")
            return
        step.posts += 1
        owners[post.platform_post_id] = account.user_id

    async def _copy_files(
        self,
        conn: AsyncConnection[Any],
        archive: ExportArchive,
        account: Account,
        post: NormalizedPost,
        raw_post_id: str,
        files: tuple[ExportFile, ...],
        copied: set[str],
        step: Progress,
        problems: list[str],
    ) -> None:
        order = {ref.media_key: i for i, ref in enumerate(post.media)}
        extra = len(order)
        for export_file in files:
            if export_file.media_key in order:
                position = order[export_file.media_key]
            else:
                position, extra = extra, extra + 1
            params: dict[str, Any] = {
                "post": raw_post_id,
                "user": account.user_id,
                "platform": account.platform,
                "key": export_file.media_key,
                "position": position,
            }
            if export_file.media_key not in copied:
                try:
                    written = await self._copy_file(archive, account, export_file)
                except ExportUnreadable as error:
                    step.problems += 1
                    problems.append(str(error))
                    continue
                params.update(written)
                await conn.execute(UPSERT_IMPORTED_MEDIA, params)
                copied.add(export_file.media_key)
                step.files += 1
                step.file_bytes += int(written["size"])
            await conn.execute(LINK_MEDIA, params)

    async def _copy_file(self, archive: ExportArchive, account: Account, export_file: ExportFile) -> dict[str, Any]:
        """Stream one file from the export into storage (checked like a download: media or a track, capped)."""
        entry = export_file.entry
        if entry not in archive.names_set:
            raise ExportUnreadable(f"{entry}: named by the export but not in the archive")
        if archive.size(entry) > MAX_BYTES:
            raise ExportUnreadable(f"{entry}: {archive.size(entry)} bytes, over the {MAX_BYTES} byte media limit")
        digest = hashlib.sha256()
        upload = await self.storage.begin()
        size = 0
        kind: tuple[str, str] | None = None
        try:
            with archive.stream(entry) as source:
                head = source.read(max(MAX_SNIFF, 512))  # an XML track may open with blank lines
                kind = file_type(entry, head)
                if kind is None:
                    raise ExportUnreadable(f"{entry}: not a picture, video or activity file")
                chunk = head
                while chunk:
                    size += len(chunk)
                    if size > MAX_BYTES:
                        raise ExportUnreadable(f"{entry}: over the {MAX_BYTES} byte media limit")
                    digest.update(chunk)
                    await upload.write(chunk)
                    chunk = source.read(CHUNK)
            path = storage_path(account.user_id, account.platform, export_file.media_key, kind[1])
            await upload.commit(path, kind[0])
        except BaseException:
            await upload.abort()
            raise
        return {"path": path, "type": kind[0], "size": size, "sha": digest.hexdigest()}
