"""Writes what a connector fetched: the raw page, the latest raw post, the normalized post, engagement
history and media to download. Idempotent: storing the same page twice changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from trove.platforms.base import Account, MediaRef, NormalizedPost, Page
from trove.queries.ingest import INSERT_FETCHED_ITEM, INSERT_RAW_POST, LOCK_RAW_POST, UPDATE_RAW_POST
from trove.queries.media import LINK_MEDIA, UPSERT_MEDIA, UPSERT_MISSING_MEDIA
from trove.queries.posts import POST_ID, SNAPSHOT_ENGAGEMENT, UPSERT_POST

EXPORT_KEY = "trove_export"  # what an export said of a post, kept in its raw form (trove.imports)


class NotYours(Exception):
    """A post read from an export is in another user's archive: not written."""


@dataclass
class Counts:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    raw_post_id: str | None = None  # of the one post store_post wrote (its files are linked to it)

    def add(self, other: Counts) -> None:
        self.fetched += other.fetched
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted


async def store_raw_page(conn: AsyncConnection[Any], account: Account, page: Page, source: str) -> str:
    """Every API response page is archived as it came (DESIGN: ingested_items keeps each page); the id of
    the page's own (first) response."""
    first: str | None = None
    for event_type, payload in [(page.event_type, page.payload), *page.more_payloads]:
        cur = await conn.execute(
            INSERT_FETCHED_ITEM, (source, account.platform, account.id, event_type, Jsonb(payload))
        )
        row = await cur.fetchone()
        assert row is not None
        first = first or str(row[0])
    assert first is not None
    return first


async def store_post(
    conn: AsyncConnection[Any],
    account: Account,
    post: NormalizedPost,
    ingested_item_id: str | None,
    *,
    normalize: Callable[[dict[str, Any]], NormalizedPost] | None = None,
    detail_keys: tuple[str, ...] = (),
    extra_media: tuple[MediaRef, ...] = (),
    fill_only: bool = False,
) -> Counts:
    """Upsert the raw post, then the normalized post, engagement and media. A summary arriving for a post
    whose detail is stored keeps the detail-only keys (and asks for the detail again if anything changed).
    With `fill_only` (a post read from an export) a stored raw post keeps every key it has and takes only
    the ones it lacks: what the API said stays the truth."""
    counts = Counts(fetched=1)
    cur = await conn.execute(LOCK_RAW_POST, (account.platform, post.platform_post_id))
    existing = await cur.fetchone()
    data, pending = post.post_data, not post.complete
    if existing is None:
        cur = await conn.execute(
            INSERT_RAW_POST,
            (ingested_item_id, account.platform, account.id, post.platform_post_id, Jsonb(data), pending),
        )
        row = await cur.fetchone()
        assert row is not None
        ingested_post_id = row[0]
    else:
        ingested_post_id, stored, stored_pending, stored_user = existing
        if fill_only and stored_user != account.user_id:
            # Checked here, under the row's lock: an export never writes into someone else's archive (nor
            # into what a deleted account left, which is nobody's to take).
            raise NotYours(f"{post.platform_post_id} is in another Trove user's archive")
        if fill_only:
            data, pending = {**post.post_data, **stored}, stored_pending
        elif EXPORT_KEY in stored and EXPORT_KEY not in data and stored_user == account.user_id:
            # The API's form replaces the post; what the user's export said stays beside it (another user's
            # export of it, which proved nothing, goes).
            data = {**data, EXPORT_KEY: stored[EXPORT_KEY]}
        if not fill_only and not post.complete and not stored_pending:
            data = {**stored, **{k: v for k, v in post.post_data.items() if k not in detail_keys}}
            pending = data != stored
        if data != stored or pending != stored_pending:
            await conn.execute(UPDATE_RAW_POST, (Jsonb(data), pending, account.id, ingested_item_id, ingested_post_id))
    if normalize is not None and data is not post.post_data:
        post = normalize(data)
    counts.raw_post_id = str(ingested_post_id)

    cur = await conn.execute(
        UPSERT_POST,
        {
            "account": account.id,
            "platform": account.platform,
            "post_id": post.platform_post_id,
            "type": post.content_type,
            "text": post.text,
            "html": post.html,
            "created": post.created_at,
            "updated": post.updated_at,
            "published": post.published,
            "deleted": post.deleted,
            "visibility": post.visibility,
            "public_data": Jsonb(post.public_data),
            "author_handle": post.author_handle,
            "keywords": post.search_keywords,
            "permalink": post.permalink,
        },
    )
    written = await cur.fetchone()
    if written is None:
        cur = await conn.execute(POST_ID, (account.platform, post.platform_post_id))
        found = await cur.fetchone()
        assert found is not None
        post_id = found[0]
    else:
        post_id, inserted, deleted = written
        if inserted:
            counts.created += 1
        elif deleted:
            counts.deleted += 1
        else:
            counts.updated += 1

    if post.engagement is not None:
        # A snapshot only when the numbers changed since the last one.
        await conn.execute(
            SNAPSHOT_ENGAGEMENT,
            {"post": post_id, "stats": Jsonb(post.engagement)},
        )

    for position, media in enumerate((*post.media, *extra_media)):
        # Same stable key = same file: keep the row, take the fresh (re-signed) URL; then link it to this post
        # (a file shared by two posts is one row and one download, shown on both).
        params = {
            "post": ingested_post_id,
            "user": account.user_id,
            "platform": account.platform,
            "key": media.media_key,
            "url": media.url,
            "position": position,
            "reason": media.missing,
        }
        if media.url or media.missing:
            await conn.execute(UPSERT_MISSING_MEDIA if media.missing else UPSERT_MEDIA, params)
        # A file from an export has no URL: the import writes its row (copied), here it is only linked.
        await conn.execute(LINK_MEDIA, params)
    return counts
