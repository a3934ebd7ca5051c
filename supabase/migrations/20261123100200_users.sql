-- users: one row per Supabase Auth user, created and kept in step by a trigger on auth.users.
-- Email belongs to Auth (it confirms changes), so users edit only their profile fields here.

create table public.users (
    id uuid primary key references auth.users (id) on delete cascade,
    email text unique,
    display_name text,
    avatar_url text,
    timezone text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

comment on column public.users.email is
'Copied from auth.users by trove_private.sync_user_from_auth; null for phone-only or anonymous sign-ins.';

create trigger users_set_updated_at
before update on public.users
for each row execute function trove_private.set_updated_at();

alter table public.users enable row level security;

revoke all on table public.users from anon, authenticated, service_role;
grant select on table public.users to authenticated;
grant update (display_name, avatar_url, timezone) on table public.users to authenticated;
grant select, insert, update, delete on table public.users to service_role;

create policy users_select_own on public.users
for select to authenticated
using ((select auth.uid()) = id);

create policy users_update_own on public.users
for update to authenticated
using ((select auth.uid()) = id)
with check ((select auth.uid()) = id);

-- Runs as the Auth service's role, which may not write public tables: hence SECURITY DEFINER.
create function trove_private.sync_user_from_auth()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into public.users (id, email)
    values (new.id, new.email)
    on conflict (id) do update
        set email = excluded.email
        where public.users.email is distinct from excluded.email;
    return new;
end;
$$;

revoke execute on function trove_private.sync_user_from_auth() from public;

create trigger on_auth_user_saved
after insert or update of email on auth.users
for each row execute function trove_private.sync_user_from_auth();

-- Users who signed up before this migration.
insert into public.users (id, email)
select
    au.id,
    au.email
from auth.users as au
on conflict (id) do nothing;
