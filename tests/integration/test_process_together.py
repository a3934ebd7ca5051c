"""`process_items(..., together=True)` (issue 16): a claimed batch done in one transaction and completed in one
statement; an item that fails sends the batch through again with a savepoint per item, so it alone is recorded as failed
(its writes undone) and the others are done once; an item whose lease another worker took is left alone."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from tests.worker_harness import RING, query

from trove.jobs import JobContext, process_items
from trove.platforms.base import InvalidEventError


def claimed(db_url: str, count: int, worker: str) -> list[str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.ingested_items (source, platform, event_type, payload)"
            " select 'webhook', 'bluesky', 'n', jsonb_build_object('n', n) from generate_series(1, %s) as n",
            (count,),
        )
        rows = conn.execute(
            "select trove_private.claim_work('ingested_items', %s, %s, '1 minute')::text", (worker, count)
        ).fetchall()
    return [row[0] for row in rows]


async def run(db_url: str, ids: list[str], fail_on: set[int]) -> None:
    async def handle(ctx: JobContext, conn: AsyncConnection[Any], item_id: str) -> None:
        # A write the item's transaction must keep or undo: the event's type.
        cur = await conn.execute(
            "update public.ingested_items set event_type = 'handled' where id = %s returning (payload->>'n')::int",
            (item_id,),
        )
        n = (await cur.fetchone())[0]  # type: ignore[index]
        if n in fail_on:
            raise InvalidEventError(f"item {n} is broken")

    async with AsyncConnectionPool(db_url, min_size=1, max_size=4, kwargs={"autocommit": True}) as pool:
        ctx = JobContext(pool, None, None, RING, {}, "w1", timedelta(minutes=1))  # type: ignore[arg-type]
        await process_items(ctx, "ingested_items", ids, handle, together=True)


def states(db_url: str) -> list[tuple[Any, ...]]:
    return query(
        db_url,
        "select (payload->>'n')::int, status::text, event_type, error_message, locked_by"
        " from public.ingested_items order by 1",
    )


def test_a_batch_is_done_together(db_url: str) -> None:
    ids = claimed(db_url, 5, "w1")
    asyncio.run(run(db_url, ids, set()))
    assert states(db_url) == [(n, "completed", "handled", None, None) for n in range(1, 6)]


def test_a_failing_item_is_recorded_alone_and_the_others_are_done_once(db_url: str) -> None:
    ids = claimed(db_url, 5, "w1")
    asyncio.run(run(db_url, ids, {3}))
    rows = states(db_url)
    assert [r for r in rows if r[0] != 3] == [(n, "completed", "handled", None, None) for n in (1, 2, 4, 5)]
    assert rows[2][:3] == (3, "dead_letter", "n")  # permanent (InvalidEventError), its write undone
    assert "item 3 is broken" in rows[2][3]


def test_an_item_another_worker_took_over_is_left_alone(db_url: str) -> None:
    ids = claimed(db_url, 3, "w1")
    with psycopg.connect(db_url, autocommit=True) as conn:  # its lease ran out and w2 claimed it
        conn.execute("update public.ingested_items set locked_by = 'w2' where id = %s", (ids[1],))
    asyncio.run(run(db_url, ids, set()))
    rows = states(db_url)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (1, "completed", "handled"),
        (2, "processing", "n"),
        (3, "completed", "handled"),
    ]
    assert rows[1][4] == "w2"
