-- RLS matrix for public.ingested_items (tests.rls_matrix): select/insert/update/delete by anon, the owner (alice),
-- another user (bob) and service_role, each cell asserted. The owner reads her raw payloads; only the service writes.
begin;
select plan(17);

select tests.create_two_archives();

select * from tests.rls_matrix(
    'ingested_items',
    p_row => $$ id = tests.id('ingested_item', 'alice') $$,
    p_insert => $$ insert into public.ingested_items (source, platform, account_id, event_type, payload)
        values ('fetch', 'strava', tests.id('account', 'alice'), 'by {actor}', '{}') $$,
    p_update => $$ event_type = 'changed by {actor}' $$
);

select finish();
rollback;
