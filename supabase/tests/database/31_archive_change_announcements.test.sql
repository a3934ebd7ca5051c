-- Archive version changes are announced to the HTTP processes (NOTIFY trove_archive_changed, the user's id):
-- the triggers are there for every change (inserts, updates, deletes, truncate), and their function is
-- nobody's to call.
begin;
select plan(5);

select has_trigger(
    'public', 'archive_versions', 'archive_versions_announce',
    'archive_versions announces its changes'
);
select has_trigger(
    'public', 'archive_versions', 'archive_versions_announce_truncate',
    'and when it is emptied'
);
select trigger_is(
    'public', 'archive_versions', 'archive_versions_announce',
    'trove_private', 'announce_archive_change',
    'through trove_private.announce_archive_change'
);
select is(
    (
        select proconfig from pg_catalog.pg_proc
        where oid = 'trove_private.announce_archive_change()'::regprocedure
    ),
    array['search_path=""'],
    'its search_path is pinned'
);
select ok(
    not has_function_privilege('authenticated', 'trove_private.announce_archive_change()', 'execute')
    and not has_function_privilege('anon', 'trove_private.announce_archive_change()', 'execute'),
    'no client role may call it'
);

select * from finish();
rollback;
