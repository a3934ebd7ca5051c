"""Writes what a connector fetched: the raw page, the latest raw post, the normalized post, engagement
history and media to download. Idempotent: storing the same page twice changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from trove.platforms.base import Account, MediaRef, NormalizedPost, Page


@dataclass
class Counts:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0

    def add(self, other: Counts) -> None:
        self.fetched += other.fetched
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted


async def store_raw_page(conn: AsyncConnection[Any], account: Account, page: Page, source: str) -> str:
    """Every API response page is archived as it came (DESIGN: ingested_items keeps each page)."""
    cur = await conn.execute(
        "insert into public.ingested_items (source, platform, account_id, event_type, payload, status,"
        " attempts, completed_at) values (%s, %s, %s, %s, %s, 'completed', 1, now()) returning id",
        (source, account.platform, account.id, page.event_type, Jsonb(page.payload)),
    )
    row = await cur.fetchone()
    assert row is not None
    return str(row[0])


async def store_post(
    conn: AsyncConnection[Any],
    account: Account,
    post: NormalizedPost,
    ingested_item_id: str | None,
    *,
    normalize: Callable[[dict[str, Any]], NormalizedPost] | None = None,
    detail_keys: tuple[str, ...] = (),
    extra_media: tuple[MediaRef, ...] = (),
) -> Counts:
    """Upsert the raw post, then the normalized post, engagement and media. A summary arriving for a post
    whose detail is stored keeps the detail-only keys (and asks for the detail again if anything changed)."""
    counts = Counts(fetched=1)
    cur = await conn.execute(
        "select id, post_data, detail_pending from public.ingested_posts"
        " where platform = %s and platform_post_id = %s for update",
        (account.platform, post.platform_post_id),
    )
    existing = await cur.fetchone()
    data, pending = post.post_data, not post.complete
    if existing is None:
        cur = await conn.execute(
            "insert into public.ingested_posts (ingested_item_id, platform, account_id, platform_post_id, post_data,"
            " status, attempts, completed_at, detail_pending)"
            " values (%s, %s, %s, %s, %s, 'completed', 1, now(), %s) returning id",
            (ingested_item_id, account.platform, account.id, post.platform_post_id, Jsonb(data), pending),
        )
        row = await cur.fetchone()
        assert row is not None
        ingested_post_id = row[0]
    else:
        ingested_post_id, stored, stored_pending = existing
        if not post.complete and not stored_pending:
            data = {**stored, **{k: v for k, v in post.post_data.items() if k not in detail_keys}}
            pending = data != stored
        if data != stored or pending != stored_pending:
            await conn.execute(
                "update public.ingested_posts set post_data = %s, detail_pending = %s, account_id = %s,"
                " ingested_item_id = coalesce(%s, ingested_item_id) where id = %s",
                (Jsonb(data), pending, account.id, ingested_item_id, ingested_post_id),
            )
    if normalize is not None and data is not post.post_data:
        post = normalize(data)

    cur = await conn.execute(
        """
        insert into public.posts (account_id, platform, platform_post_id, content_type, text_content, html_content,
                                  created_at_platform, updated_at_platform, published, deleted_on_platform,
                                  visibility, public_data, author_handle, search_keywords)
        values (%(account)s, %(platform)s, %(post_id)s, %(type)s, %(text)s, %(html)s, %(created)s, %(updated)s,
                %(published)s, %(deleted)s, %(visibility)s, %(public_data)s, %(author_handle)s, %(keywords)s)
        on conflict (platform, platform_post_id) do update
        set content_type = excluded.content_type,
            text_content = excluded.text_content,
            html_content = excluded.html_content,
            created_at_platform = excluded.created_at_platform,
            updated_at_platform = excluded.updated_at_platform,
            published = excluded.published,
            deleted_on_platform = excluded.deleted_on_platform,
            visibility = excluded.visibility,
            public_data = excluded.public_data,
            author_handle = excluded.author_handle,
            search_keywords = excluded.search_keywords
        where (posts.content_type, posts.text_content, posts.html_content, posts.created_at_platform,
               posts.updated_at_platform, posts.published, posts.deleted_on_platform, posts.visibility,
               posts.public_data, posts.author_handle, posts.search_keywords)
            is distinct from
              (excluded.content_type, excluded.text_content, excluded.html_content, excluded.created_at_platform,
               excluded.updated_at_platform, excluded.published, excluded.deleted_on_platform, excluded.visibility,
               excluded.public_data, excluded.author_handle, excluded.search_keywords)
        returning id, (xmax = 0) as inserted, deleted_on_platform
        """,
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
        },
    )
    written = await cur.fetchone()
    if written is None:
        cur = await conn.execute(
            "select id from public.posts where platform = %s and platform_post_id = %s",
            (account.platform, post.platform_post_id),
        )
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
            """
            insert into public.engagement_history (post_id, engagement_stats)
            select %(post)s, %(stats)s
            where %(stats)s is distinct from (
                select eh.engagement_stats from public.engagement_history as eh
                where eh.post_id = %(post)s order by eh.recorded_at desc limit 1
            )
            on conflict (post_id, recorded_at) do nothing
            """,
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
        }
        await conn.execute(
            """
            insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url)
            values (%(post)s, %(user)s, %(platform)s, %(key)s, %(url)s)
            on conflict (user_id, platform, media_key) do update
            set original_url = excluded.original_url
            where media_downloads.original_url is distinct from excluded.original_url
            """,
            params,
        )
        await conn.execute(
            """
            insert into public.post_media (ingested_post_id, media_download_id, user_id, position)
            select %(post)s, md.id, md.user_id, %(position)s
            from public.media_downloads as md
            where md.user_id = %(user)s and md.platform = %(platform)s and md.media_key = %(key)s
            on conflict (ingested_post_id, media_download_id) do update
            set position = excluded.position
            where post_media.position is distinct from excluded.position
            """,
            params,
        )
    return counts
