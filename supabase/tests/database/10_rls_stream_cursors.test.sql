-- RLS matrix for public.stream_cursors (tests.rls_matrix): where the worker's stream consumers left off, for
-- the service role only. Then the rules: consumer names are plain, positions never negative, and a stream
-- event is stored once per identity (a replay after a reconnect stores nothing twice).
begin;
select plan(20);

select tests.create_two_archives();
insert into public.stream_cursors (platform, consumer, resume_from) values ('bluesky', 'seed', 1);

select * from tests.rls_matrix(
    'stream_cursors',
    p_row => null,
    p_insert => $$ insert into public.stream_cursors (platform, consumer, resume_from)
        values ('bluesky', 'c-{actor}', 42) $$,
    p_update => $$ resume_from = 7 $$,
    p_owner_may => array[]::text[],
    p_key => 'consumer'
);

select throws_ok(
    $$ insert into public.stream_cursors (platform, consumer, resume_from) values ('bluesky', 'x', -1) $$,
    '23514', null, 'stream_cursors: a negative position is refused (23514)'
);
select throws_ok(
    $$ insert into public.stream_cursors (platform, consumer, resume_from) values ('bluesky', 'Bad Name!', 1) $$,
    '23514', null, 'stream_cursors: a consumer name outside [a-z0-9_.:-] is refused (23514)'
);

insert into public.ingested_items (source, platform, event_type, external_id, payload)
values ('stream', 'bluesky', 'jetstream.commit', 'commit:did:plc:a:rev1:x', '{}');
insert into public.ingested_items (source, platform, event_type, external_id, payload)
values ('stream', 'bluesky', 'jetstream.commit', 'commit:did:plc:a:rev1:x', '{}')
on conflict do nothing;
select is(
    (
        select count(*)::int from public.ingested_items
        where external_id = 'commit:did:plc:a:rev1:x'
    ),
    1,
    'ingested_items: a replayed stream event is stored once'
);
select lives_ok(
    $$ insert into public.ingested_items (source, platform, event_type, external_id, payload)
       values ('webhook', 'bluesky', 'jetstream.commit', 'commit:did:plc:a:rev1:x', '{}') $$,
    'ingested_items: stream and webhook identities do not collide'
);

select * from finish();
rollback;
