-- Revoking an API key is final. The owner could write revoked_at through its column grant, so a revoked (say,
-- leaked) key could be brought back with `update api_keys set revoked_at = null`. Now only the service writes
-- revoked_at (the HTTP service's DELETE /api/keys/{id} revokes for the owner; the owner may still delete the
-- key outright), and nobody, whatever the role, takes a revocation back or moves its time.
revoke update (revoked_at) on table public.api_keys from authenticated;

create function trove_private.keep_api_key_revoked()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    raise exception 'API key % is revoked: a revocation is final', old.id
        using errcode = '23514', hint = 'create a new key instead';
end;
$$;

revoke execute on function trove_private.keep_api_key_revoked() from public;

create trigger api_keys_revocation_is_final
before update on public.api_keys
for each row
when (old.revoked_at is not null and new.revoked_at is distinct from old.revoked_at)
execute function trove_private.keep_api_key_revoked();
