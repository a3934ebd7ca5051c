-- Completing and failing a claimed batch in one statement (20261202130000_batch_completion): the same rules
-- as one item at a time (only the lease holder; backoff, dead letter when permanent), and hold_work locks
-- only what this worker still holds.
begin;
select plan(10);

insert into public.ingested_items (source, platform, event_type, payload)
values
('webhook', 'strava', 'batch', '{"n": 1}'),
('webhook', 'strava', 'batch', '{"n": 2}'),
('webhook', 'strava', 'batch', '{"n": 3}'),
('webhook', 'strava', 'batch', '{"n": 4}');
create temporary table claimed as
select c.id from trove_private.claim_work('ingested_items', 'w1', 4, '1 minute') as c (id);

select is(
    (select count(*)::int from trove_private.hold_work('ingested_items', (select array_agg(id) from claimed), 'w2')),
    0,
    'another worker holds none of them'
);
select is(
    (select count(*)::int from trove_private.hold_work('ingested_items', (select array_agg(id) from claimed), 'w1')),
    4,
    'the lease holder holds all four'
);
select is(
    (select count(*)::int from trove_private.complete_work_batch('ingested_items', (select array_agg(id) from claimed), 'w2')),
    0,
    'only the lease holder completes'
);
select is(
    (
        select count(*)::int from trove_private.complete_work_batch(
            'ingested_items', (
                select array_agg(
                    c.id) from (
                    select id from claimed
                    order by id limit 2
                ) as c
            ), 'w1'
        )
    ),
    2,
    'two completed in one statement'
);
select is(
    (
        select count(*)::int from public.ingested_items
        where status = 'completed' and locked_by is null
    ),
    2,
    'completed and released'
);
select is(
    (
        select array_agg(f.status order by f.status) from trove_private.fail_work_batch(
            'ingested_items',
            (
                select array_agg(
                    c.id order by c.id) from (
                    select id from claimed
                    order by id offset 2
                ) as c
            ),
            'w1',
            array['boom', 'gone for good'],
            array[false, true]
        ) as f
    ),
    array['dead_letter', 'failed'],
    'failed in one statement: retried, or dead-lettered when permanent'
);
select is(
    (
        select count(*)::int from public.ingested_items
        where error_message in ('boom', 'gone for good')
    ),
    2,
    'each with its own message'
);
select is(
    (
        select run_after > now() from public.ingested_items
        where error_message = 'boom'
    ),
    true,
    'a retry backs off'
);
select throws_ok(
    $$ select trove_private.fail_work_batch('ingested_items', array[gen_random_uuid()], 'w1', array[]::text[], array[true]) $$,
    '22023', null, 'ids, messages and flags go together'
);

set local role authenticated;
select throws_ok(
    $$ select trove_private.complete_work_batch('ingested_items', array[gen_random_uuid()], 'w1') $$,
    '42501', null, 'users cannot finish work'
);
reset role;

select finish();
rollback;
