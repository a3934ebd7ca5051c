-- Per-user API keys for personal websites: `trove_<prefix>_<secret>`, shown once, stored as a SHA-256
-- hash (the secret is random, so a fast hash is enough). Users list, rename and delete their own keys;
-- only the HTTP service (service role) creates them, resolves them to a user and revokes them (its
-- DELETE /api/keys/{id} revokes for the owner).
create table public.api_keys (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references public.users (id) on delete cascade,
    name text not null, -- noqa: RF04
    prefix text not null, -- noqa: RF04
    key_hash text not null unique,
    created_at timestamptz not null default now(),
    last_used_at timestamptz,
    revoked_at timestamptz,

    constraint api_keys_name_check check (length(name) between 1 and 100)
);

create index api_keys_user_id_idx on public.api_keys (user_id);

alter table public.api_keys enable row level security;
revoke all on table public.api_keys from anon, authenticated, service_role;
grant select (id, user_id, name, prefix, created_at, last_used_at, revoked_at) on table public.api_keys
to authenticated;
-- Not revoked_at: the owner could bring a revoked (say, leaked) key back with `set revoked_at = null`.
grant update (name) on table public.api_keys to authenticated;
grant delete on table public.api_keys to authenticated;
grant select, insert, update, delete on table public.api_keys to service_role;

create policy api_keys_select_own on public.api_keys
for select to authenticated
using ((select auth.uid()) = user_id);

create policy api_keys_update_own on public.api_keys
for update to authenticated
using ((select auth.uid()) = user_id)
with check ((select auth.uid()) = user_id);

create policy api_keys_delete_own on public.api_keys
for delete to authenticated
using ((select auth.uid()) = user_id);

-- The key's user, or null (unknown or revoked); last_used_at is touched at most once a minute.
create function trove_private.authenticate_api_key(p_key_hash text)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    key_id uuid;
    owner uuid;
    used timestamptz;
begin
    select k.id, k.user_id, k.last_used_at into key_id, owner, used
    from public.api_keys as k
    where k.key_hash = p_key_hash and k.revoked_at is null;
    if key_id is not null and (used is null or used < now() - interval '1 minute') then
        update public.api_keys set last_used_at = now() where id = key_id;
    end if;
    return owner;
end;
$$;

revoke execute on function trove_private.authenticate_api_key(text) from public;
grant execute on function trove_private.authenticate_api_key(text) to service_role;

-- Revoking a key is final: nobody, whatever the role, takes a revocation back or moves its time.
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
