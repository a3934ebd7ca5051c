-- RLS matrix for public.imports (tests.rls_matrix): the owner follows her imports; only the service writes
-- them. Then the rules: a file path is never the caller's, the same unfinished file is one import, and the
-- imports queue runs through the shared queue functions.
begin;
select plan(22);

select tests.create_two_archives();
insert into public.imports (user_id, file_name, file_path, file_sha256, byte_size)
values (
    tests.id('user', 'alice'), 'alice.zip', tests.id('user', 'alice')::text || '/' || repeat('a', 64),
    repeat('a', 64), 10
);
insert into public.imports (user_id, file_name, file_path, file_sha256, byte_size)
values (
    tests.id('user', 'bob'), 'bob.zip', tests.id('user', 'bob')::text || '/' || repeat('b', 64), repeat('b', 64), 10
);

select * from tests.rls_matrix(
    'imports',
    p_row => $$ file_sha256 = repeat('a', 64) $$,
    p_insert => $$ insert into public.imports (user_id, file_name, file_path, file_sha256, byte_size)
        values (tests.id('user', 'alice'), '{actor}.zip', tests.id('user', 'alice')::text || '/' || repeat('c', 64),
                repeat('c', 64), 1) $$,
    p_update => $$ file_name = 'by {actor}' $$
);

insert into public.imports (user_id, file_name, file_path, file_sha256, byte_size)
values (
    tests.id('user', 'alice'), 'alice.zip', tests.id('user', 'alice')::text || '/' || repeat('a', 64),
    repeat('a', 64), 10
);
select throws_ok(
    $$ insert into public.imports (user_id, file_name, file_path, file_sha256, byte_size)
       values (tests.id('user', 'alice'), 'x.zip', '../../etc/passwd', repeat('d', 64), 1) $$,
    '23514', null, 'imports: the file path is a name in the import directory, not a path of the caller''s'
);
select throws_ok(
    $$ insert into public.imports (user_id, file_name, file_path, file_sha256, byte_size)
       values (tests.id('user', 'alice'), 'again.zip', tests.id('user', 'alice')::text || '/' || repeat('a', 64),
               repeat('a', 64), 10) $$,
    '23505', null, 'imports: the same file, unfinished, is one import'
);
select ok(
    (
        select id from public.imports
        where file_name = 'alice.zip'
    ) in (
        select trove_private.claim_work('imports', 'w1', 10, interval '1 minute')
    ),
    'imports: claimed through the shared queue functions'
);
select ok(
    trove_private.extend_lease(
        'imports', (
            select id from public.imports
            where file_name = 'alice.zip'
        ), 'w1', interval '5 minutes'
    ),
    'imports: a long import keeps its lease'
);
select is(
    trove_private.fail_work(
        'imports', (
            select id from public.imports
            where file_name = 'bob.zip'
        ), 'w1', 'not an export', true
    ),
    'dead_letter', 'imports: an unreadable file ends at once'
);

select finish();
rollback;
