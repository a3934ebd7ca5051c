-- notifications: what Trove tells a user about their accounts (sync keeps failing, reauthorization
-- needed, account gone). Written by the engine; the user reads them, marks them read, deletes them.

create table public.notifications (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references public.users (id) on delete cascade,
    account_id uuid references public.connected_accounts (id) on delete set null,
    kind text not null,
    title text not null,
    body text,
    created_at timestamptz not null default now(),
    read_at timestamptz,

    constraint notifications_kind_check check (
        kind in ('sync_failing', 'reauthorization_required', 'account_disconnected', 'account_deauthorized')
    )
);

create index notifications_user_created_idx on public.notifications (user_id, created_at desc);
create index notifications_account_id_idx on public.notifications (account_id);

alter table public.notifications enable row level security;

revoke all on table public.notifications from anon, authenticated, service_role;
grant select, delete on table public.notifications to authenticated;
grant update (read_at) on table public.notifications to authenticated;
grant select, insert, update, delete on table public.notifications to service_role;

create policy notifications_select_own on public.notifications
for select to authenticated
using ((select auth.uid()) = user_id);

create policy notifications_update_own on public.notifications
for update to authenticated
using ((select auth.uid()) = user_id)
with check ((select auth.uid()) = user_id);

create policy notifications_delete_own on public.notifications
for delete to authenticated
using ((select auth.uid()) = user_id);

-- The engine's one way to notify: the account's owner, one unread notification per account and kind.
create function trove_private.notify_account_owner(p_account_id uuid, p_kind text, p_title text, p_body text)
returns void
language plpgsql
set search_path = ''
as $$
begin
    insert into public.notifications (user_id, account_id, kind, title, body)
    select ca.user_id, ca.id, p_kind, p_title, p_body
    from public.connected_accounts as ca
    where ca.id = p_account_id
        and not exists (
            select 1 from public.notifications as n
            where n.account_id = ca.id and n.kind = p_kind and n.read_at is null
        );
end;
$$;

revoke execute on function trove_private.notify_account_owner(uuid, text, text, text) from public;
grant execute on function trove_private.notify_account_owner(uuid, text, text, text) to service_role;
