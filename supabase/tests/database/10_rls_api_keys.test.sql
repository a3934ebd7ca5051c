-- RLS matrix for public.api_keys (tests.rls_matrix): select/insert/update/delete by anon, the owner (alice),
-- another user (bob) and service_role, each cell asserted. The owner lists, renames and deletes her keys; only
-- the service creates them. Between the updates and the deletes: a revocation is final.
begin;
select plan(27);

select tests.create_two_archives();

select * from tests.rls_matrix(
    'api_keys',
    p_row => $$ id = tests.id('api_key', 'alice') $$,
    p_insert => $$ insert into public.api_keys (user_id, name, prefix, key_hash)
        values (tests.id('user', 'alice'), 'by {actor}', 'abcd1234', 'hash-{actor}') $$,
    p_update => $$ name = ('renamed by ' || '{actor}') $$,
    p_owner_may => array['select', 'update', 'delete'],
    p_other_row => $$ id = tests.id('api_key', 'bob') $$,
    p_operations => array['select', 'insert', 'update']
);

-- revocation is final: only the service writes revoked_at, and nobody takes it back
select tests.authenticate_as('alice');
select throws_ok($$ update public.api_keys set revoked_at = now() where id = tests.id('api_key', 'alice') $$, '42501', null, 'api_keys: the owner cannot write revoked_at (the service revokes for her)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.api_keys set revoked_at = now() where id = tests.id('api_key', 'alice') returning id $$, 'api_keys: the service revokes a key');
select isnt_empty(
    $$ update public.api_keys set revoked_at = coalesce(revoked_at, now()) where id = tests.id('api_key', 'alice') returning id $$,
    'api_keys: revoking a revoked key again changes nothing and is no error'
);
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ update public.api_keys set revoked_at = null where id = tests.id('api_key', 'alice') $$, '42501', null, 'api_keys: the owner cannot un-revoke her key');
select isnt_empty($$ update public.api_keys set name = 'old site' where id = tests.id('api_key', 'alice') returning id $$, 'api_keys: the owner may still rename a revoked key');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select throws_ok($$ update public.api_keys set revoked_at = null where id = tests.id('api_key', 'alice') $$, '23514', null, 'api_keys: the service cannot un-revoke a key either');
select throws_ok(
    $$ update public.api_keys set revoked_at = revoked_at + interval '1 day' where id = tests.id('api_key', 'alice') $$,
    '23514', null, 'api_keys: nor move a revocation'
);
select tests.clear_authentication();
select throws_ok($$ update public.api_keys set revoked_at = null where id = tests.id('api_key', 'alice') $$, '23514', null, 'api_keys: nor can the database owner');
select ok(
    (
        select revoked_at is not null and trove_private.authenticate_api_key(key_hash) is null from public.api_keys
        where id = tests.id('api_key', 'alice')
    ),
    'api_keys: the key stays revoked and authenticates nobody'
);

select * from tests.rls_matrix(
    'api_keys',
    p_row => $$ id = tests.id('api_key', 'alice') $$,
    p_insert => null,
    p_update => null,
    p_owner_may => array['select', 'update', 'delete'],
    p_other_row => $$ id = tests.id('api_key', 'bob') $$,
    p_operations => array['delete']
);

select finish();
rollback;
