-- RLS matrix for public.api_keys: select/insert/update/delete by anon, the owner (alice), another
-- user (bob) and service_role, each cell asserted. PostgREST is emulated: set local role + JWT claims.
begin;
select plan(27);

select tests.create_two_archives();

-- select
select tests.authenticate_as_anon();
select throws_ok($$ select id from public.api_keys where id = tests.id('api_key', 'alice') $$, '42501', null, 'api_keys select by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ select id from public.api_keys where id = tests.id('api_key', 'alice') $$, 'api_keys select by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ select id from public.api_keys where id = tests.id('api_key', 'alice') $$, 'api_keys select by another user (bob): no row');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ select id from public.api_keys where id = tests.id('api_key', 'alice') $$, 'api_keys select by service_role: allowed');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select is_empty($$ select id from public.api_keys where user_id is distinct from (select auth.uid()) $$, 'api_keys: a user sees no row of anybody else');
select tests.clear_authentication();

-- insert
select tests.authenticate_as_anon();
select throws_ok($$ insert into public.api_keys (user_id, name, prefix, key_hash) values (tests.id('user', 'alice'), 'by anon', 'abcd1234', 'hash-anon') returning id $$, '42501', null, 'api_keys insert by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select throws_ok($$ insert into public.api_keys (user_id, name, prefix, key_hash) values (tests.id('user', 'alice'), 'by alice', 'abcd1234', 'hash-alice') returning id $$, '42501', null, 'api_keys insert by the owner (alice): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select throws_ok($$ insert into public.api_keys (user_id, name, prefix, key_hash) values (tests.id('user', 'alice'), 'by bob', 'abcd1234', 'hash-bob') returning id $$, '42501', null, 'api_keys insert by another user (bob): refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ insert into public.api_keys (user_id, name, prefix, key_hash) values (tests.id('user', 'alice'), 'by service', 'abcd1234', 'hash-service') returning id $$, 'api_keys insert by service_role: allowed');
select tests.clear_authentication();

-- update
select tests.authenticate_as_anon();
select throws_ok($$ update public.api_keys set name = ('renamed by ' || 'anon') where id = tests.id('api_key', 'alice') returning id $$, '42501', null, 'api_keys update by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ update public.api_keys set name = ('renamed by ' || 'alice') where id = tests.id('api_key', 'alice') returning id $$, 'api_keys update by the owner (alice): allowed');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ update public.api_keys set name = ('renamed by ' || 'bob') where id = tests.id('api_key', 'alice') returning id $$, 'api_keys update by another user (bob): no row (the row is invisible)');
select tests.clear_authentication();
select is((
    select name from public.api_keys
    where id = tests.id('api_key', 'alice')
), 'renamed by alice', 'api_keys: bob''s update changed nothing of alice''s key');
select tests.authenticate_as_service_role();
select isnt_empty($$ update public.api_keys set name = ('renamed by ' || 'service') where id = tests.id('api_key', 'alice') returning id $$, 'api_keys update by service_role: allowed');
select tests.clear_authentication();

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

-- delete (the owner's own delete last: it cascades)
select tests.authenticate_as_anon();
select throws_ok($$ delete from public.api_keys where id = tests.id('api_key', 'alice') returning id $$, '42501', null, 'api_keys delete by anon: refused (42501)');
select tests.clear_authentication();
select tests.authenticate_as('bob');
select is_empty($$ delete from public.api_keys where id = tests.id('api_key', 'alice') returning id $$, 'api_keys delete by another user (bob): no row (the row is invisible)');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select isnt_empty($$ delete from public.api_keys where id = tests.id('api_key', 'bob') returning id $$, 'api_keys delete by service_role: allowed (bob''s row)');
select tests.clear_authentication();
select tests.authenticate_as('alice');
select isnt_empty($$ delete from public.api_keys where id = tests.id('api_key', 'alice') returning id $$, 'api_keys delete by the owner (alice): allowed');
select tests.clear_authentication();

select finish();
rollback;
