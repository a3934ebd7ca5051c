"""`process_items` (issue 16). Together: a claimed batch done in one transaction and completed in one statement;
an item that fails (a statement timeout included) sends the batch through again with a savepoint per item, in the
same transaction, so it alone is recorded as failed (its writes undone) and the others are done once; an item
whose lease another worker took is left alone; one another transaction has locked goes back to the queue
without counting the attempt; a claim never waits on a batch's held rows. One by one: an item whose lease was
lost meanwhile keeps none of its writes."""

from __future__ import annotations

import asyncio
import threading
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


async def run(
    db_url: str, ids: list[str], fail_on: set[int], *, slow_on: set[int] = frozenset(), together: bool = True,
    meanwhile: Any = None,
) -> None:  # fmt: skip
    async def handle(ctx: JobContext, conn: AsyncConnection[Any], item_id: str) -> None:
        # A write the item's transaction must keep or undo: the event's type.
        cur = await conn.execute(
            "update public.ingested_items set event_type = 'handled' where id = %s returning (payload->>'n')::int",
            (item_id,),
        )
        n = (await cur.fetchone())[0]  # type: ignore[index]
        if n in slow_on:  # a statement Postgres cancels: an OperationalError, but the item's failure
            await conn.execute("set local statement_timeout = '50ms'")
            await conn.execute("select pg_sleep(1)")
        if n in fail_on:
            raise InvalidEventError(f"item {n} is broken")
        if meanwhile is not None:
            await asyncio.to_thread(meanwhile, n)

    async with AsyncConnectionPool(db_url, min_size=1, max_size=4, kwargs={"autocommit": True}) as pool:
        ctx = JobContext(pool, None, None, RING, {}, "w1", timedelta(minutes=1))  # type: ignore[arg-type]
        await process_items(ctx, "ingested_items", ids, handle, together=together)


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


def test_a_statement_postgres_cancels_is_that_items_failure_not_the_batchs(db_url: str) -> None:
    ids = claimed(db_url, 4, "w1")
    asyncio.run(run(db_url, ids, set(), slow_on={2}))
    rows = states(db_url)
    assert [(r[0], r[1], r[2]) for r in rows if r[0] != 2] == [(n, "completed", "handled") for n in (1, 3, 4)]
    assert rows[1][:3] == (2, "failed", "n") and "QueryCanceled" in rows[1][3]  # retried later, writes undone


def test_an_item_another_transaction_has_locked_goes_back_without_counting_the_attempt(db_url: str) -> None:
    ids = claimed(db_url, 3, "w1")
    with psycopg.connect(db_url) as other:  # a sync page writing the same row, say, and done a moment later
        other.execute("select 1 from public.ingested_items where id = %s for update", (ids[2],))
        threading.Timer(0.5, other.rollback).start()
        asyncio.run(run(db_url, ids, set()))
    rows = query(db_url, "select (payload->>'n')::int, status::text, attempts from public.ingested_items order by 1")
    assert rows == [(1, "completed", 1), (2, "completed", 1), (3, "pending", 0)]


def test_a_claim_never_waits_on_a_batchs_held_rows_nor_ends_them(db_url: str) -> None:
    """A batch past its lease, on its items' last attempt: another worker's claim neither waits for it nor
    dead-letters what it is finishing; the batch completes them."""
    ids = claimed(db_url, 3, "w1")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update public.ingested_items set attempts = 5, locked_until = now() - interval '1 second'")
    seen: list[int] = []

    def claim_meanwhile(n: int) -> None:
        if n != 2:
            return
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("set statement_timeout = '2s'")
            got = conn.execute("select count(*) from trove_private.claim_work('ingested_items', 'w2', 10, '1 minute')")
            seen.append(got.fetchone()[0])  # type: ignore[index]

    asyncio.run(run(db_url, ids, set(), meanwhile=claim_meanwhile))
    assert seen == [0]
    assert [r[1] for r in states(db_url)] == ["completed"] * 3


def test_one_by_one_an_item_whose_lease_was_lost_keeps_none_of_its_writes(db_url: str) -> None:
    ids = claimed(db_url, 2, "w1")
    with psycopg.connect(db_url, autocommit=True) as conn:  # its lease ran out and w2 claimed it: w1 is late
        conn.execute("update public.ingested_items set locked_by = 'w2' where id = %s", (ids[0],))
    asyncio.run(run(db_url, ids, set(), together=False))
    rows = states(db_url)
    assert rows[0][:3] == (1, "processing", "n") and rows[0][4] == "w2"  # w1's write rolled back
    assert rows[1][:3] == (2, "completed", "handled")
